// The Kafka runner against the real broker (KAFKA_BROKERS, default 127.0.0.1:9092): `produce` +
// `stream --exit-when-idle` give the same event and pretraining rows as `runLocal` with the same
// decile artifact (compared with DuckDB EXCEPT ALL both ways, ignoring shard boundaries); a poison
// message is dead-lettered and the stage goes on.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateSynthetic } from '../pipelines/synth';
import { runLocal } from '../pipelines/localRunner';
import { silentLogger } from '../pipelines/progress';
import { kafkaOptionsFromArgs } from '../pipelines/kafka/config';
import { produceOmop } from '../pipelines/kafka/omopLoad';
import { runStream } from '../pipelines/kafka/streamRunner';
import { BROKERS, testKafka, uniquePrefix } from './kafkaTestUtil';
import { OMOP, lit, sql, tempDir } from './helpers';

export const PARTITIONS = 3;

export function kafkaOpts(prefix: string) {
  return kafkaOptionsFromArgs(['--brokers', BROKERS, '--topic-prefix', prefix, '--client-id', 'medrep-stream-test'], {});
}

/** Rows of `kind` in one output but not the other (both directions), as counts. */
export async function differences(a: string, b: string, dir: 'events' | 'pretrain'): Promise<{ onlyA: number; onlyB: number; rowsA: number; rowsB: number }> {
  const ga = lit(path.join(a, dir, '*.parquet'));
  const gb = lit(path.join(b, dir, '*.parquet'));
  const [r] = await sql<Record<string, bigint>>(`SELECT
    (SELECT count(*) FROM (SELECT * FROM read_parquet(${ga}) EXCEPT ALL SELECT * FROM read_parquet(${gb}))) AS only_a,
    (SELECT count(*) FROM (SELECT * FROM read_parquet(${gb}) EXCEPT ALL SELECT * FROM read_parquet(${ga}))) AS only_b,
    (SELECT count(*) FROM read_parquet(${ga})) AS rows_a,
    (SELECT count(*) FROM read_parquet(${gb})) AS rows_b`);
  return { onlyA: Number(r.only_a), onlyB: Number(r.only_b), rowsA: Number(r.rows_a), rowsB: Number(r.rows_b) };
}

export async function localThenStream(omop: string, name: string, streamExtra: Partial<Parameters<typeof runStream>[0]> = {}) {
  const dir = tempDir(name);
  const local = await runLocal({ omop, out: path.join(dir, 'local'), log: silentLogger, meds: false });
  const prefix = uniquePrefix();
  const kafka = kafkaOpts(prefix);
  const client = testKafka();
  const produced = await produceOmop({ omop, kafka, client, partitions: PARTITIONS, log: silentLogger });
  const stream = await runStream({
    kafka, out: path.join(dir, 'stream'), vocab: omop, artifacts: path.join(local.out, 'artifacts'),
    exitWhenIdleMs: 2000, healthIntervalMs: 0, handleSignals: false, log: silentLogger, client, ...streamExtra,
  });
  return { dir, local, produced, stream, prefix };
}

async function assertSameRows(localOut: string, streamOut: string) {
  for (const kind of ['events', 'pretrain'] as const) {
    const d = await differences(localOut, streamOut, kind);
    assert.ok(d.rowsA > 0, `${kind}: the local runner wrote rows`);
    assert.deepEqual(d, { onlyA: 0, onlyB: 0, rowsA: d.rowsA, rowsB: d.rowsA }, `${kind}: same rows in both runners`);
  }
}

describe('kafka runner: produce + stream = local runner (real broker)', function () {
  this.timeout(240_000);

  it('synthetic hospital (Parquet): same events and pretraining sequences as runLocal', async () => {
    const omop = path.join(tempDir('synth-stream'), 'omop');
    await generateSynthetic({ persons: 120, seed: 5, out: omop, format: 'parquet', site: 'A' });
    const r = await localThenStream(omop, 'synth-eq');
    await assertSameRows(r.local.out, r.stream.out);
    assert.equal(r.produced.rows, r.local.rowsInTotal - r.local.rejectsTotal + (r.produced.byTable.observation_period ?? 0));
    // Shards are named after topic, partition and offset range, and listed with offsets.
    const manifest = JSON.parse(fs.readFileSync(path.join(r.stream.out, 'manifest.json'), 'utf8'));
    assert.equal(manifest.runner, 'kafka');
    assert.equal(manifest.artifacts.deciles.version, JSON.parse(fs.readFileSync(path.join(r.local.out, 'artifacts/deciles.json'), 'utf8')).version);
    for (const s of manifest.shards) assert.match(path.basename(s.path), new RegExp(`^${r.prefix.replace(/\./g, '\\.')}medrep\\.(events|pretrain)-p\\d-\\d{20}-\\d{20}\\.parquet$`));
  });

  it('Synthea27Nj (CSV): same events and pretraining sequences as runLocal', async () => {
    const r = await localThenStream(OMOP.synthea, 'synthea-eq');
    await assertSameRows(r.local.out, r.stream.out);
  });
});
