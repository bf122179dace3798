// Rows of a run's shards on disk, per kind, as the Kafka benchmarks compare them with the local
// runner's: a worker that wrote some output twice (or lost some) shows here, whatever it reports.
import * as path from 'node:path';
import { openDuck, queryValue } from '../sources/duck';

/** Rows of the events, pretraining and samples shards under `out` (corrections are not samples). */
export async function shardRows(out: string): Promise<Record<string, number>> {
  const conn = await openDuck();
  try {
    const count = async (glob: string) => Number(await queryValue<bigint | number>(conn, `SELECT count(*) FROM read_parquet('${path.join(out, glob).replace(/'/g, "''")}')`));
    return { events: await count('events/*.parquet'), pretrain: await count('pretrain/*.parquet'), samples: await count('samples/*/*.parquet') };
  } finally {
    conn.closeSync();
  }
}
