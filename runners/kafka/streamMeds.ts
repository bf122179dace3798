// The MEDS copy of a stream's output (meds/), as the local runner writes it: the person table read
// back from `omop.person` (MEDS birth and gender rows), one MEDS data file per partition from its
// events shards, codes, splits and the labels of the sample shards in the LabelSchema.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Kafka } from 'kafkajs';
import type { DuckDBConnection } from '@duckdb/node-api';
import { tableSpec } from '../../schemas/omop';
import { rowValidator } from '../../schemas/rowSchemas';
import { Id } from '../../schemas/ids';
import { parseJsonExact, stringifyJsonExact } from '../../schemas/exactJson';
import { exportMeds } from '../../sinks/meds';
import { writeMedsLabels } from '../../sinks/medsLabels';
import { ShardEntry } from '../../sinks/shards';
import { idValue, queryRows, sqlString } from '../../sources/duck';
import { Split, splitOf } from '../../transforms/splits';
import { CompiledTask } from '../../transforms/labels';
import { CONTROL_HEADER } from './omopLoad';
import { readToEnd } from './readToEnd';
import { TopicNames } from './topics';

const filesOf = (out: string, list: ShardEntry[]) => `read_parquet([${list.map((s) => sqlString(path.join(out, s.path))).join(', ')}])`;

/** The person rows canonicalize took (the same check), one per line, from `omop.person`. */
async function writePersonRows(kafka: Kafka, names: TopicNames, file: string): Promise<void> {
  const personCheck = rowValidator(tableSpec('person'));
  const fd = fs.openSync(file, 'w');
  try {
    await readToEnd(kafka, names.omop('person'), { timeoutMs: 60_000 }, (_p, m) => {
      if (m.headers?.[CONTROL_HEADER] !== undefined || !m.value) return;
      // A message holds one row or an array of rows (one person's); a line per row either way.
      let value: unknown;
      try {
        value = parseJsonExact(m.value.toString());
      } catch {
        return; // not JSON: canonicalize dead-lettered it
      }
      for (const row of Array.isArray(value) ? value : [value]) {
        if (row === null || typeof row !== 'object' || personCheck.check(row as Record<string, unknown>).length) continue;
        fs.writeSync(fd, stringifyJsonExact(row) + '\n');
      }
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** DuckDB's `person` table from those rows; a person_id seen twice keeps its first source row, as the local runner's person view does. */
async function createPersonTable(conn: DuckDBConnection, file: string): Promise<void> {
  await conn.run('DROP VIEW IF EXISTS person');
  await conn.run(`CREATE OR REPLACE TABLE person AS SELECT
      TRY_CAST(person_id AS BIGINT) AS person_id, TRY_CAST(gender_concept_id AS BIGINT) AS gender_concept_id,
      TRY_CAST(year_of_birth AS BIGINT) AS year_of_birth, TRY_CAST(month_of_birth AS BIGINT) AS month_of_birth,
      TRY_CAST(day_of_birth AS BIGINT) AS day_of_birth, TRY_CAST(birth_datetime AS TIMESTAMP) AS birth_datetime
    FROM read_json(${sqlString(file)}, format='newline_delimited', columns={person_id: 'VARCHAR', gender_concept_id: 'VARCHAR',
      year_of_birth: 'VARCHAR', month_of_birth: 'VARCHAR', day_of_birth: 'VARCHAR', birth_datetime: 'VARCHAR', __row: 'VARCHAR'})
    QUALIFY row_number() OVER (PARTITION BY TRY_CAST(person_id AS BIGINT) ORDER BY TRY_CAST(__row AS BIGINT) NULLS LAST) = 1`);
}

/** Splits of every person with events or samples (the persons the local runner assigns one). */
async function personSplits(conn: DuckDBConnection, out: string, lists: ShardEntry[][]): Promise<Map<Id, Split>> {
  const splits = new Map<Id, Split>();
  for (const list of lists) {
    if (!list.length) continue;
    for (const r of await queryRows<{ p: bigint }>(conn, `SELECT DISTINCT person_id AS p FROM ${filesOf(out, list)}`)) splits.set(idValue(r.p), splitOf(r.p));
  }
  return splits;
}

/** MEDS wants a subject in one data file: one file per partition (a person's rows share one), from that partition's event shards. */
async function eventsByPartition(conn: DuckDBConnection, out: string, eventShards: ShardEntry[]): Promise<ShardEntry[]> {
  const byPartition = new Map<string, ShardEntry[]>();
  for (const s of eventShards) {
    const key = path.basename(s.path).replace(/-\d{20}-\d{20}\.parquet$/, '');
    byPartition.set(key, [...(byPartition.get(key) ?? []), s]);
  }
  const merged: ShardEntry[] = [];
  for (const [key, list] of [...byPartition.entries()].sort()) {
    const rel = path.posix.join('.tmp', `${key}.parquet`);
    await conn.run(`COPY (SELECT * FROM ${filesOf(out, list)}) TO ${sqlString(path.join(out, rel))} (FORMAT parquet)`);
    merged.push({ kind: 'events', path: rel, rows: list.reduce((a, s) => a + s.rows, 0), bytes: 0, sha256: '' });
  }
  return merged;
}

/** Each task's samples as MEDS labels (subject, prediction time, label or labels). */
async function sampleLabels(conn: DuckDBConnection, out: string, sampleShards: ShardEntry[], compiled: CompiledTask[]) {
  const samples = new Map<string, { multi: boolean; meds: { subjectId: Id; predictionMs: number; labels: number[] }[] }>();
  for (const t of compiled) {
    const list = sampleShards.filter((s) => s.path.startsWith(`samples/${t.name}/`));
    if (!list.length) continue;
    const rows = await queryRows<{ p: bigint; t: number; l: number[] }>(
      conn,
      `SELECT person_id AS p, CAST(epoch_ms(prediction_time) AS DOUBLE) AS t,
              ${t.multiLabel ? 'list_transform(labels, x -> CAST(x AS INTEGER))' : '[CAST(label AS INTEGER)]'} AS l
         FROM ${filesOf(out, list)} ORDER BY p, t`,
    );
    samples.set(t.name, { multi: t.multiLabel, meds: rows.map((r) => ({ subjectId: idValue(r.p), predictionMs: r.t, labels: Array.from(r.l, Number) })) });
  }
  return samples;
}

/** meds/ of the stream's shards; returns its entries for the manifest. */
export async function exportStreamMeds(kafka: Kafka, conn: DuckDBConnection, names: TopicNames, out: string, shards: ShardEntry[], compiled: CompiledTask[]): Promise<ShardEntry[]> {
  fs.rmSync(path.join(out, 'meds'), { recursive: true, force: true });
  const tmp = path.join(out, '.tmp');
  fs.mkdirSync(tmp, { recursive: true });
  const personsFile = path.join(tmp, 'person.ndjson');
  await writePersonRows(kafka, names, personsFile);
  await createPersonTable(conn, personsFile);
  const eventShards = shards.filter((s) => s.kind === 'events');
  const sampleShards = shards.filter((s) => s.kind === 'samples');
  const splits = await personSplits(conn, out, [eventShards, sampleShards]);
  const entries = await exportMeds([conn], out, await eventsByPartition(conn, out, eventShards), splits);
  entries.push(...writeMedsLabels(out, compiled, await sampleLabels(conn, out, sampleShards, compiled)));
  fs.rmSync(tmp, { recursive: true, force: true });
  return entries;
}
