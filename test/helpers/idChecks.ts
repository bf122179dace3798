// Checks that every id in a run's output is the input's id, exactly: DuckDB compares them as
// BIGINT (never as doubles), so an id rounded anywhere on the way (beyond 2^53 a double cannot
// hold it) shows up as a missing or foreign id. Shared by the local and the Kafka runner tests.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lit, sql } from './index';

/** The SQL relation of an input table of a synthetic folder (CSV read as text, Parquet typed). */
export function inputTable(omop: string, table: string): string {
  const csv = path.join(omop, `${table}.csv`);
  return fs.existsSync(csv) ? `read_csv(${lit(csv)}, header = true, all_varchar = true)` : `read_parquet(${lit(path.join(omop, `${table}.parquet`))})`;
}

const count = async (query: string): Promise<number> => Number((await sql<{ n: bigint }>(`SELECT count(*) AS n FROM (${query})`))[0].n);

/** Row counts of ids that are in `a` but not in `b`. */
async function notIn(a: string, b: string): Promise<number> {
  return count(`SELECT id FROM (${a}) WHERE id IS NOT NULL EXCEPT SELECT id FROM (${b})`);
}

const parquet = (out: string, dir: string) => `read_parquet(${lit(path.join(out, dir, '**', '*.parquet'))})`;

/**
 * Every person id in events, pretrain, samples, MEDS data, MEDS splits and MEDS labels is a
 * person_id of the input, and every event carries the person and visit ids of its source row.
 * Returns how many persons of the input lie beyond 2^53 (so a test can say the check meant something).
 */
export async function assertIdsExact(omop: string, out: string, opts: { meds: boolean } = { meds: true }): Promise<{ persons: number; beyondSafe: number }> {
  const persons = `SELECT TRY_CAST(person_id AS BIGINT) AS id FROM ${inputTable(omop, 'person')}`;
  const [p] = await sql<{ n: bigint; big: bigint }>(
    `SELECT count(*) AS n, count(*) FILTER (WHERE abs(CAST(id AS HUGEINT)) > 9007199254740991) AS big FROM (${persons})`,
  );
  const outputs: Record<string, string> = {
    events: `SELECT person_id AS id FROM ${parquet(out, 'events')}`,
    pretrain: `SELECT person_id AS id FROM ${parquet(out, 'pretrain')}`,
    samples: `SELECT person_id AS id FROM read_parquet(${lit(path.join(out, 'samples', '*', '*.parquet'))})`,
  };
  if (opts.meds) {
    outputs['meds/data'] = `SELECT subject_id AS id FROM ${parquet(out, 'meds/data')}`;
    outputs['meds/metadata/subject_splits'] = `SELECT subject_id AS id FROM read_parquet(${lit(path.join(out, 'meds/metadata/subject_splits.parquet'))})`;
    outputs['meds/labels'] = `SELECT subject_id AS id FROM ${parquet(out, 'meds/labels')}`;
  }
  for (const [name, q] of Object.entries(outputs)) {
    assert.ok((await count(q)) > 0, `${name}: has rows`);
    assert.equal(await notIn(q, persons), 0, `${name}: every person id is an input person_id, exactly`);
  }
  const withRows = ['visit_occurrence', 'condition_occurrence', 'drug_exposure', 'measurement', 'procedure_occurrence', 'death']
    .map((t) => `SELECT TRY_CAST(person_id AS BIGINT) AS id FROM ${inputTable(omop, t)}`).join(' UNION ');
  assert.equal(await notIn(withRows, outputs.events), 0, 'every input person with clinical rows has events');
  // Per row: an event's origin names its source row; that row's person and visit ids are the event's.
  const [mismatch] = await sql<{ n: bigint; rows: bigint }>(`
    WITH ev AS (SELECT person_id, visit_occurrence_id, split_part(origin, ':', 1) AS t, CAST(split_part(origin, ':', 2) AS BIGINT) AS row_id FROM ${parquet(out, 'events')}),
    src AS (
      SELECT 'condition_occurrence' AS t, TRY_CAST(condition_occurrence_id AS BIGINT) AS row_id, TRY_CAST(person_id AS BIGINT) AS person_id, TRY_CAST(visit_occurrence_id AS BIGINT) AS visit_id FROM ${inputTable(omop, 'condition_occurrence')}
      UNION ALL SELECT 'measurement', TRY_CAST(measurement_id AS BIGINT), TRY_CAST(person_id AS BIGINT), TRY_CAST(visit_occurrence_id AS BIGINT) FROM ${inputTable(omop, 'measurement')}
      UNION ALL SELECT 'visit_occurrence', TRY_CAST(visit_occurrence_id AS BIGINT), TRY_CAST(person_id AS BIGINT), TRY_CAST(visit_occurrence_id AS BIGINT) FROM ${inputTable(omop, 'visit_occurrence')})
    SELECT count(*) FILTER (WHERE s.person_id IS DISTINCT FROM ev.person_id OR s.visit_id IS DISTINCT FROM ev.visit_occurrence_id) AS n, count(*) AS rows
      FROM ev JOIN src s USING (t, row_id)`);
  assert.ok(Number(mismatch.rows) > 0, 'events of conditions, measurements and visits were matched to their source rows');
  assert.equal(Number(mismatch.n), 0, 'every event has the person and visit ids of its source row');
  // A sample's index visit is a visit of that person.
  const [foreign] = await sql<{ n: bigint }>(`SELECT count(*) AS n FROM read_parquet(${lit(path.join(out, 'samples', '*', '*.parquet'))}) s
    WHERE s.index_visit_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${inputTable(omop, 'visit_occurrence')} v
      WHERE TRY_CAST(v.visit_occurrence_id AS BIGINT) = s.index_visit_id AND TRY_CAST(v.person_id AS BIGINT) = s.person_id)`);
  assert.equal(Number(foreign.n), 0, 'every index_visit_id is a visit of the sample\'s person');
  return { persons: Number(p.n), beyondSafe: Number(p.big) };
}
