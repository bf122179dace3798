// A small synthetic OMOP dataset for the label tests, built from a seeded generator so that
// every rule of every shipped task has cases: short and same-day stays, missing end dates,
// persons without a person row, ages around 18 and 100, deaths before, on and during stays,
// readmissions around 30 days, condition codes of every event set, ICD-9 phenotype codes (via a
// tiny vocabulary with "Maps to" and ancestors), and datetimes that make record ranks.
import type { DuckDBConnection } from '@duckdb/node-api';

/** Mulberry32: a small seeded PRNG, enough for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The synthetic vocabulary: ICD-9 sources, their standard targets, descendants, fracture names. */
export const SYNTH_VOCAB = {
  icd9RenalFailure: 9000001, // ICD9CM 584.5 -> 9100001 -> descendant 9100002
  icd9Hypertension: 9000002, // ICD9CM 401.9 -> 9100003
  renalStandard: 9100001,
  renalChild: 9100002,
  renalInvalidTarget: 9100009, // a "Maps to" with invalid_reason D: not followed
  hypertensionStandard: 9100003,
  icd9Unlisted: 9000003, // ICD9CM 999.99: in no phenotype list
  fractureClosed: 9200001, // SNOMED Condition "Closed fracture of femur"
  fractureOpen: 9200002, // SNOMED Condition "Open fracture of femur": does not match
  fractureIcd10: 9200003, // ICD10CM "Closed fracture of femur": wrong vocabulary
  other: [9300001, 9300002, 9300003, 9300004],
};

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const isoTs = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
const lit = (v: string | number | null) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${v.replace(/'/g, "''")}'`);

async function insert(conn: DuckDBConnection, table: string, rows: (string | number | null)[][]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500);
    if (chunk.length) await conn.run(`INSERT INTO ${table} VALUES ${chunk.map((r) => `(${r.map(lit).join(', ')})`).join(', ')}`);
  }
}

/** Creates the tables person, visit_occurrence, death, condition_occurrence and the vocabulary. */
export async function createSyntheticOmop(
  conn: DuckDBConnection,
  opts: { persons: number; seed: number; eventConcepts: Record<string, number[]> },
): Promise<void> {
  const rnd = prng(opts.seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const V = SYNTH_VOCAB;

  await conn.run(`CREATE TABLE person (person_id BIGINT, gender_concept_id BIGINT, year_of_birth BIGINT, month_of_birth BIGINT,
    day_of_birth BIGINT, birth_datetime TIMESTAMP)`);
  await conn.run(`CREATE TABLE visit_occurrence (visit_occurrence_id BIGINT, person_id BIGINT, visit_concept_id BIGINT,
    visit_start_date DATE, visit_start_datetime TIMESTAMP, visit_end_date DATE, visit_end_datetime TIMESTAMP, visit_source_concept_id BIGINT)`);
  await conn.run(`CREATE TABLE death (person_id BIGINT, death_date DATE, death_datetime TIMESTAMP, cause_concept_id BIGINT)`);
  await conn.run(`CREATE TABLE condition_occurrence (condition_occurrence_id BIGINT, person_id BIGINT, condition_concept_id BIGINT,
    condition_start_date DATE, condition_start_datetime TIMESTAMP, condition_source_concept_id BIGINT, visit_occurrence_id BIGINT)`);
  await conn.run(`CREATE TABLE concept (concept_id BIGINT, concept_name VARCHAR, domain_id VARCHAR, vocabulary_id VARCHAR,
    concept_class_id VARCHAR, standard_concept VARCHAR, concept_code VARCHAR, invalid_reason VARCHAR)`);
  await conn.run(`CREATE TABLE concept_relationship (concept_id_1 BIGINT, concept_id_2 BIGINT, relationship_id VARCHAR, invalid_reason VARCHAR)`);
  await conn.run(`CREATE TABLE concept_ancestor (ancestor_concept_id BIGINT, descendant_concept_id BIGINT)`);

  await insert(conn, 'concept', [
    [V.icd9RenalFailure, 'Acute kidney failure with lesion of tubular necrosis', 'Condition', 'ICD9CM', '5-dig billing code', null, '584.5', null],
    [V.icd9Hypertension, 'Unspecified essential hypertension', 'Condition', 'ICD9CM', '4-dig billing code', null, '401.9', null],
    [V.icd9Unlisted, 'Unlisted', 'Condition', 'ICD9CM', '5-dig billing code', null, '999.99', null],
    [V.renalStandard, 'Acute renal failure', 'Condition', 'SNOMED', 'Clinical Finding', 'S', '14669001', null],
    [V.renalChild, 'Acute renal failure with tubular necrosis', 'Condition', 'SNOMED', 'Clinical Finding', 'S', '1', null],
    [V.renalInvalidTarget, 'Old target', 'Condition', 'SNOMED', 'Clinical Finding', 'S', '2', null],
    [V.hypertensionStandard, 'Essential hypertension', 'Condition', 'SNOMED', 'Clinical Finding', 'S', '59621000', null],
    [V.fractureClosed, 'Closed fracture of femur', 'Condition', 'SNOMED', 'Clinical Finding', 'S', '3', null],
    [V.fractureOpen, 'Open fracture of femur', 'Condition', 'SNOMED', 'Clinical Finding', 'S', '4', null],
    [V.fractureIcd10, 'Closed fracture of femur', 'Condition', 'ICD10CM', '4-char billing code', null, 'S72.0', null],
  ]);
  await insert(conn, 'concept_relationship', [
    [V.icd9RenalFailure, V.renalStandard, 'Maps to', null],
    [V.icd9RenalFailure, V.renalInvalidTarget, 'Maps to', 'D'],
    [V.icd9Hypertension, V.hypertensionStandard, 'Maps to', null],
    [V.renalStandard, V.icd9RenalFailure, 'Mapped from', null],
  ]);
  await insert(conn, 'concept_ancestor', [
    [V.renalStandard, V.renalStandard],
    [V.renalStandard, V.renalChild],
    [V.renalChild, V.renalChild],
    [V.hypertensionStandard, V.hypertensionStandard],
  ]);

  const eventCodes = Object.values(opts.eventConcepts).map((ids) => ids[0]);
  const codePool = [
    ...eventCodes,
    V.fractureClosed,
    V.fractureOpen,
    V.fractureIcd10,
    V.icd9RenalFailure,
    V.renalChild,
    V.hypertensionStandard,
    ...V.other,
    ...V.other,
  ];

  const persons: (string | number | null)[][] = [];
  const visits: (string | number | null)[][] = [];
  const deaths: (string | number | null)[][] = [];
  const conds: (string | number | null)[][] = [];
  let visitId = 1000;
  let condId = 1;
  const base = Date.UTC(2010, 0, 1);
  // The data end at a fixed day: records after it are not written, so stays near it have
  // readmission windows the data do not cover.
  const dataEnd = base + 3100 * DAY;
  for (let p = 1; p <= opts.persons; p++) {
    // Ages at admission spread over 10..110 years, so 17/18 and 100/101 occur.
    const firstAdmit = base + (rnd() < 0.15 ? int(3040, 3100) : int(0, 3000)) * DAY;
    const birth = firstAdmit - int(10 * 365, 110 * 365) * DAY;
    const b = new Date(birth);
    if (rnd() < 0.95) {
      const withDatetime = rnd() < 0.7;
      persons.push([p, pick([8507, 8532]), b.getUTCFullYear(), withDatetime ? b.getUTCMonth() + 1 : null,
        withDatetime ? b.getUTCDate() : null, withDatetime ? isoTs(birth) : null]);
    }
    let t = firstAdmit;
    const stays: { s: number; e: number }[] = [];
    const nVisits = int(1, 5);
    for (let k = 0; k < nVisits; k++) {
      const len = pick([0, 0, 1, 1, 2, 3, 4, 6, 7, 8, 12]);
      const s = t;
      const e = s + len * DAY;
      const concept = pick([9201, 9201, 9201, 262, 9202, 9203]);
      const end = rnd() < 0.03 ? null : e;
      visits.push([visitId, p, concept, iso(s), isoTs(s), end === null ? null : iso(end), end === null ? null : isoTs(end), 0]);
      stays.push({ s, e });
      // Conditions in and around the stay, some with times of day so record ranks split within a day.
      const nCond = int(0, 8);
      for (let c = 0; c < nCond; c++) {
        const day = s + int(-1, len + 1) * DAY;
        const time = rnd() < 0.5 ? day : day + int(1, 23) * 3_600_000;
        conds.push([condId++, p, pick(codePool), iso(time), isoTs(time), 0, rnd() < 0.8 ? visitId : null]);
      }
      visitId += int(1, 3);
      t = e + pick([0, 1, 5, 15, 29, 30, 31, 45, 200]) * DAY;
    }
    if (rnd() < 0.2) {
      const st = pick(stays);
      const death = st.s + int(-2, (st.e - st.s) / DAY + 40) * DAY;
      deaths.push([p, iso(death), isoTs(death), 0]);
      if (rnd() < 0.1) deaths.push([p, iso(death + 3 * DAY), isoTs(death + 3 * DAY), 0]); // a second, later death row
    }
  }
  const until = (col: number) => (r: (string | number | null)[]) => r[col] === null || Date.parse(r[col] as string) <= dataEnd;
  await insert(conn, 'person', persons);
  await insert(conn, 'visit_occurrence', visits.filter(until(5)).filter(until(3)));
  await insert(conn, 'death', deaths.filter(until(1)));
  await insert(conn, 'condition_occurrence', conds.filter(until(3)));
}
