// Comparison of the Kafka runner's output with the local runner's, shared by the Kafka stream
// tests: DuckDB EXCEPT ALL both ways over all shards of a kind, ignoring shard boundaries.
// (Kept out of the test files so that importing them does not register another file's suites.)
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kafkaOptions } from '../../runners/kafka/config';
import { parseShardFileName, ShardRange } from '../../runners/kafka/shardSink';
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
  assertShardsDisjoint(streamOut);
  for (const kind of ['events', 'pretrain'] as const) {
    const columns = kind === 'events' && !input.sameFiles ? `* REPLACE (regexp_replace(origin, ':[0-9]+$', '') AS origin)` : '*';
    const d = await differences(localOut, streamOut, kind, columns);
    assert.ok(d.rowsA > 0, `${kind}: the local runner wrote rows`);
    if (d.onlyA || d.onlyB || d.rowsA !== d.rowsB) assert.fail(`${kind}: not the same rows in both runners: ${JSON.stringify(d)}; ${await repeatedRows(path.join(streamOut, kind, '*.parquet'))}`);
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

/**
 * The sink's shard files of one topic partition (and task) cover disjoint offset ranges: two
 * overlapping files hold the same messages twice (a file of an aborted transaction whose range a
 * later commit did not rebuild), which a reader of the folder would count twice.
 */
export function assertShardsDisjoint(streamOut: string): void {
  const series = new Map<string, Array<ShardRange & { file: string }>>();
  for (const rel of fs.readdirSync(streamOut, { recursive: true }) as string[]) {
    const range = parseShardFileName(path.basename(rel));
    // Parquet shards only: a corrections file (<range>.json) has no shard name.
    if (!range) continue;
    const key = `${path.dirname(rel)}|${range.topic}|${range.partition}`;
    const list = series.get(key) ?? [];
    list.push({ ...range, file: rel });
    series.set(key, list);
  }
  const overlaps: string[] = [];
  for (const list of series.values()) {
    list.sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
    for (let i = 1; i < list.length; i++) if (list[i].from <= list[i - 1].to) overlaps.push(`${list[i - 1].file} and ${list[i].file}`);
  }
  assert.deepEqual(overlaps, [], 'shard files whose offset ranges overlap');
}

/** Where the rows that occur more than once in a stream's shards lie: files and offset ranges, for a failure message. */
async function repeatedRows(glob: string): Promise<string> {
  const files = await sql<{ files: string; rows: number }>(`SELECT string_agg(f, ' + ' ORDER BY f) AS files, CAST(count(*) AS INTEGER) AS rows FROM (
      SELECT h, regexp_extract(filename, '[^/]+$') AS f FROM (SELECT hash(COLUMNS(* EXCLUDE (filename))) AS h, filename FROM read_parquet(${lit(glob)}, filename = true))
      QUALIFY count(*) OVER (PARTITION BY h) > 1)
    GROUP BY h ORDER BY rows DESC LIMIT 200`);
  if (files.length === 0) return 'no row occurs twice in the stream';
  const byFiles = new Map<string, number>();
  for (const r of files) byFiles.set(r.files, (byFiles.get(r.files) ?? 0) + 1);
  return `rows that occur more than once, by the files that hold them: ${[...byFiles].slice(0, 8).map(([f, n]) => `${n} in ${f}`).join('; ')}`;
}
