// Comparison of the Kafka runner's output with the local runner's, shared by the Kafka stream
// tests: DuckDB EXCEPT ALL both ways over all shards of a kind, ignoring shard boundaries.
// (Kept out of the test files so that importing them does not register another file's suites.)
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kafkaOptions } from '../../runners/kafka/config';
import { BROKERS } from './kafka';
import { lit, sql } from './index';

export function kafkaOpts(prefix: string) {
  return kafkaOptions({ brokers: BROKERS, topicPrefix: prefix, clientId: 'medrep-stream-test' }, {});
}

/** Rows of `dir` in one output but not the other (both directions), as counts. */
export async function differences(a: string, b: string, dir: string, columns = '*') {
  return differencesOf(path.join(a, dir, '*.parquet'), path.join(b, dir, '*.parquet'), columns);
}

export async function differencesOf(fileA: string, fileB: string, columns = '*'): Promise<{ onlyA: number; onlyB: number; rowsA: number; rowsB: number }> {
  const ga = lit(fileA);
  const gb = lit(fileB);
  const [r] = await sql<Record<string, bigint>>(`SELECT
    (SELECT count(*) FROM (SELECT ${columns} FROM read_parquet(${ga}) EXCEPT ALL SELECT ${columns} FROM read_parquet(${gb}))) AS only_a,
    (SELECT count(*) FROM (SELECT ${columns} FROM read_parquet(${gb}) EXCEPT ALL SELECT ${columns} FROM read_parquet(${ga}))) AS only_b,
    (SELECT count(*) FROM read_parquet(${ga})) AS rows_a,
    (SELECT count(*) FROM read_parquet(${gb})) AS rows_b`);
  return { onlyA: Number(r.only_a), onlyB: Number(r.only_b), rowsA: Number(r.rows_a), rowsB: Number(r.rows_b) };
}

/**
 * Events, pretraining sequences and (unless withSamples is false) every task's samples hold the
 * same rows. `sameFiles: false` when the stream read the rows from other files than the local run
 * (the same rows split differently): an event's origin then names another row of another file, so
 * origins are compared without their row part.
 */
export async function assertSameRows(localOut: string, streamOut: string, withSamples = true, input: { sameFiles: boolean } = { sameFiles: true }) {
  for (const kind of ['events', 'pretrain'] as const) {
    const columns = kind === 'events' && !input.sameFiles ? `* REPLACE (regexp_replace(origin, ':[0-9]+$', '') AS origin)` : '*';
    const d = await differences(localOut, streamOut, kind, columns);
    assert.ok(d.rowsA > 0, `${kind}: the local runner wrote rows`);
    assert.deepEqual(d, { onlyA: 0, onlyB: 0, rowsA: d.rowsA, rowsB: d.rowsA }, `${kind}: same rows in both runners`);
  }
  if (!withSamples) return;
  // Labelled samples, task by task (windows and labels); tasks without samples have no folder in either.
  const localTasks = fs.existsSync(path.join(localOut, 'samples')) ? fs.readdirSync(path.join(localOut, 'samples')).sort() : [];
  const streamTasks = fs.existsSync(path.join(streamOut, 'samples')) ? fs.readdirSync(path.join(streamOut, 'samples')).sort() : [];
  assert.deepEqual(streamTasks, localTasks, 'the same tasks have samples');
  let samples = 0;
  for (const t of localTasks) {
    const d = await differences(localOut, streamOut, `samples/${t}`);
    assert.deepEqual(d, { onlyA: 0, onlyB: 0, rowsA: d.rowsA, rowsB: d.rowsA }, `samples/${t}: same rows in both runners`);
    samples += d.rowsA;
  }
  assert.ok(samples > 0, 'some samples were compared');
}
