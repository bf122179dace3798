// Loads the person table: birth time and gender per person_id, setting aside invalid rows and
// duplicate ids as rejects.
import { DuckDBConnection } from '@duckdb/node-api';
import { tableSpec } from '../schemas/omop';
import { rowValidator } from '../schemas/rowSchemas';
import { Reject, RejectSink } from '../sinks/rejects';
import { BIRTH_TIMESTAMP_SQL } from '../sinks/personSql';
import { idValue, parseDuckJson, queryRows } from './duck';
import { Id, parseId } from '../schemas/ids';
import { OmopInput } from './omopSource';

export interface Person {
  birthMs: number;
  genderConceptId: Id;
}

/**
 * `rejectedReasons`, when given, receives the reason of every person row set aside whose
 * person_id is readable, so that the rows of that person can say why they have no person.
 */
export async function loadPersons(
  conn: DuckDBConnection,
  input: OmopInput,
  rejects: RejectSink,
  rejectedReasons?: Map<Id, string>,
): Promise<Map<Id, Person>> {
  const source = input.tables.get('person')!;
  const spec = tableSpec('person');
  const bad = await queryRows<{ __row: number; raw: string }>(
    conn,
    `SELECT CAST(__row AS DOUBLE) AS __row, CAST(to_json(c) AS VARCHAR) AS raw FROM checked_person c WHERE NOT __ok ORDER BY __row`,
  );
  for (const b of bad) {
    const r = rejectRow(rejects, source.file, 'person', b.__row, parseDuckJson(b.raw), spec);
    const id = r.column !== 'person_id' ? parseId(r.values.person_id) : null;
    if (rejectedReasons && id !== null) rejectedReasons.set(id, `${r.column}: ${r.reason}`);
  }
  const rows = await queryRows<{ row: number; person_id: bigint; gender: bigint; birth_ms: number }>(
    conn,
    `SELECT CAST(p.__row AS DOUBLE) AS row, p.person_id, coalesce(p.gender_concept_id, 0) AS gender,
            CAST(epoch_ms(${BIRTH_TIMESTAMP_SQL('p')}) AS DOUBLE) AS birth_ms
       FROM person p ORDER BY p.__row`,
  );
  // The person view keeps the first row of each person_id; the later ones are rejects.
  const dups = await queryRows<{ row: number; person_id: bigint }>(
    conn,
    `SELECT CAST(__row AS DOUBLE) AS row, TRY_CAST(CAST(person_id AS VARCHAR) AS BIGINT) AS person_id FROM checked_person
      WHERE __ok QUALIFY row_number() OVER (PARTITION BY TRY_CAST(CAST(person_id AS VARCHAR) AS BIGINT) ORDER BY __row) > 1 ORDER BY __row`,
  );
  for (const d of dups) {
    rejects.add({ file: source.file, table: 'person', row: d.row, column: 'person_id', reason: 'duplicate person_id', values: { person_id: idValue(d.person_id) } });
  }
  const persons = new Map<Id, Person>();
  for (const r of rows) persons.set(idValue(r.person_id), { birthMs: r.birth_ms, genderConceptId: idValue(r.gender) });
  return persons;
}

/** A reject from a row that failed the SQL check: ajv names the column and the reason. */
export function rejectRow(
  rejects: RejectSink,
  file: string,
  table: string,
  row: number,
  values: Record<string, unknown>,
  spec: ReturnType<typeof tableSpec>,
): Reject & { values: Record<string, unknown> } {
  const lower: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (!k.startsWith('__')) lower[k.toLowerCase()] = v;
  const problems = rowValidator(spec).check(lower);
  // The SQL check and ajv agree by construction (tested); should they ever not, say so rather than drop.
  const p = problems[0] ?? { column: '(row)', reason: 'failed the bulk schema check' };
  const reject = { file, table, row, column: p.column, reason: p.reason, values: lower };
  rejects.add(reject);
  return reject;
}
