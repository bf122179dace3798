// A MEDS dataset as an OMOP input: DIR/data/**/*.parquet (subject_id, time, code, numeric_value,
// optionally text_value and the metadata columns of MEDS-from-OMOP converters) becomes the
// relations person, visit_occurrence, condition_occurrence, drug_exposure, measurement,
// procedure_occurrence and death, so the checked views, the vocabulary closure, deciles, labels
// and the event pass run on them unchanged. Rules (README "MEDS input"):
// - a code resolves to a concept through the vocabulary's vocabulary_id/concept_code ("SNOMED/22298006",
//   the vocabulary_id matched in any case); medrep's own codes "OMOP_CONCEPT/<id>" and "GENDER/<id>",
//   and a bare integer, name the concept id itself; MEDS_BIRTH and MEDS_DEATH are birth and death;
// - a resolved code goes to the OMOP table of its concept's domain (of the standard concept it
//   "Maps to" when it is not standard); a concept outside the vocabulary, or of a domain medrep
//   does not read (concept 0 is "Metadata"), goes to the table its row names in a `table` column
//   when there is one (medrep's and meds_etl's MEDS have it); the rest is counted per domain, not read;
// - a Gender-domain code (or GENDER/<id>) gives the person's gender (0 when none), MEDS_BIRTH the birth time;
// - a row whose `table` column says death, other than MEDS_DEATH, is the cause of the death at its time;
// - a Visit-domain code is a visit: its id from `visit_id` / `visit_occurrence_id` (else minus its row),
//   its end from the `end` column, else the latest event linked to it by that id, else unknown;
// - a code that resolves to nothing is set aside in rejects/meds.jsonl with its file and row.
// Row numbers count through the data files in name order; rejects name the file and its own row.
// Its views and tables belong to the database, not TEMP: the run's second DuckDB connection reads
// them through the checked views (the event pass's person ranges, the label queries).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DuckDBConnection } from '@duckdb/node-api';
import { ClinicalTable, CLINICAL_TABLES } from '../schemas/omop';
import { q } from '../schemas/sqlChecks';
import { idColumn, numericColumn, queryRows, sqlString, streamChunks, stringColumn } from './duck';
import { UserError } from '../common/errors';
import { CsvRejectLog } from './csvRecords';
import { InputDerivation, OmopInput, SourceTable, describe, openVocabularyFolder, processScratchDir, requireVocabulary } from './omopSource';
import { RejectSink } from '../sinks/rejects';

/** The MEDS column that carries each derived row's 0-based position over all data files. */
const ROW_COLUMN = '__meds_row';
const REQUIRED = ['subject_id', 'time', 'code'];
/** Optional MEDS columns read when present (unit, visit link and end as MEDS-from-OMOP converters write them). */
const OPTIONAL = ['numeric_value', 'unit', 'visit_id', 'visit_occurrence_id', 'end', 'table'];

export const UNRESOLVED_NOT_FOUND = 'code not in the vocabulary (no concept has its vocabulary_id and concept_code)';
export const UNRESOLVED_FORM = 'code is neither <vocabulary_id>/<concept_code> nor a concept id';
export const UNRESOLVED_MISSING = 'missing code';

/** Domain of a concept -> the OMOP table its events belong to. */
const DOMAIN_TABLE: Record<string, ClinicalTable> = {
  Condition: 'condition_occurrence',
  Drug: 'drug_exposure',
  Measurement: 'measurement',
  Procedure: 'procedure_occurrence',
  Visit: 'visit_occurrence',
};

/** A `table` column value (medrep's event tables, meds_etl's OMOP tables) -> the OMOP table. */
const TABLE_COLUMN_TABLE: Record<string, ClinicalTable> = {
  condition: 'condition_occurrence', condition_occurrence: 'condition_occurrence',
  drug: 'drug_exposure', drug_exposure: 'drug_exposure',
  measurement: 'measurement',
  procedure: 'procedure_occurrence', procedure_occurrence: 'procedure_occurrence',
  visit: 'visit_occurrence', visit_occurrence: 'visit_occurrence',
};

const caseOf = (expr: string, map: Record<string, string>): string =>
  `CASE ${expr} ${Object.entries(map).map(([k, v]) => `WHEN ${sqlString(k)} THEN ${sqlString(v)}`).join(' ')} END`;

function listDataFiles(dataDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (/\.parquet$/i.test(e.name)) out.push(full);
    }
  };
  walk(dataDir);
  return out;
}

/** Files with the 0-based position of their first row over all files: maps a row back to its file. */
class RowLocator {
  constructor(readonly files: string[], readonly starts: number[]) {}
  /** 1-based row over all files -> the file and its own 1-based row. */
  locate(row: number): { file: string; row: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid] <= row - 1) lo = mid;
      else hi = mid - 1;
    }
    return { file: this.files[lo], row: row - this.starts[lo] };
  }
}

/** A typed column of the vocabulary's raw relation. */
const vocabColumn = (t: SourceTable, name: string, type: 'BIGINT' | 'VARCHAR'): string => {
  const actual = t.columns.get(name);
  if (!actual) return `NULL::${type}`;
  return type === 'BIGINT' ? `TRY_CAST(CAST(${q(actual)} AS VARCHAR) AS BIGINT)` : `nullif(CAST(${q(actual)} AS VARCHAR), '')`;
};

/** Opens a MEDS folder; the vocabulary comes from `vocabDir`, else from CONCEPT files in the folder itself. */
export async function openMedsInput(conn: DuckDBConnection, dir: string, vocabDir?: string, scratchDir?: string): Promise<OmopInput> {
  const scratch = scratchDir ? () => scratchDir : processScratchDir();
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UserError(`MEDS input not found: ${dir} (expected a folder with data/*.parquet)`);
  const dataDir = path.join(dir, 'data');
  const files = fs.existsSync(dataDir) && fs.statSync(dataDir).isDirectory() ? listDataFiles(dataDir) : [];
  if (!files.length) throw new UserError(`${dir}: no MEDS data files (looked for data/*.parquet and data/<split>/*.parquet)`);

  const vocab = await openVocabularyFolder(conn, vocabDir ?? dir, scratch);
  const tables = new Map<string, SourceTable>(vocab);
  requireVocabulary(tables, dir);

  // Each file's columns: a missing required column, or a time that is not a timestamp, is named with its file.
  const present = new Set<string>();
  /** Type of each timestamp column in the files that have it: with or without a time zone, never both. */
  const timeTypes = new Map<string, { zoned: boolean; file: string }>();
  const starts: number[] = [];
  let total = 0;
  for (const f of files) {
    const { columns, types } = await describe(conn, `read_parquet(${sqlString(f)})`, f);
    for (const c of REQUIRED) if (!columns.has(c)) throw new UserError(`${f}: missing required MEDS column "${c}"`);
    for (const c of ['time', 'end']) {
      const type = types.get(c);
      if (type === undefined) continue;
      if (!type.startsWith('TIMESTAMP')) throw new UserError(`${f}: MEDS column "${c}" is ${type}, expected a timestamp`);
      const zoned = type === 'TIMESTAMP WITH TIME ZONE';
      const seen = timeTypes.get(c);
      if (seen && seen.zoned !== zoned) throw new UserError(`${f}: MEDS column "${c}" is ${type}, but ${seen.file} has it ${seen.zoned ? 'with' : 'without'} a time zone`);
      timeTypes.set(c, { zoned, file: f });
    }
    for (const c of OPTIONAL) if (columns.has(c)) present.add(c);
    starts.push(total);
    const [{ n }] = await queryRows<{ n: number }>(conn, `SELECT CAST(count(*) AS DOUBLE) AS n FROM read_parquet(${sqlString(f)})`);
    total += n;
  }
  const locator = new RowLocator(files, starts);
  const opt = (c: string, type: string) => (present.has(c) ? `CAST(d.${q(c)} AS ${type})` : `NULL::${type}`);
  // A time with a zone is read as UTC, whatever the machine's zone.
  const timestamp = (c: string) => (!timeTypes.has(c) ? 'NULL::TIMESTAMP' : timeTypes.get(c)!.zoned ? `timezone('UTC', d.${q(c)})` : `CAST(d.${q(c)} AS TIMESTAMP)`);
  const visitId = present.has('visit_id') && present.has('visit_occurrence_id')
    ? `coalesce(${opt('visit_occurrence_id', 'BIGINT')}, ${opt('visit_id', 'BIGINT')})`
    : present.has('visit_id') ? opt('visit_id', 'BIGINT') : opt('visit_occurrence_id', 'BIGINT');
  const start = `CASE d.filename ${files.map((f, i) => `WHEN ${sqlString(f)} THEN ${starts[i]}`).join(' ')} END`;
  await conn.run(`CREATE OR REPLACE VIEW medrep_meds_rows AS
    SELECT CAST(${start} + d.file_row_number AS BIGINT) AS g, d.subject_id, ${timestamp('time')} AS time, CAST(d.code AS VARCHAR) AS code,
           ${opt('numeric_value', 'DOUBLE')} AS numeric_value, ${opt('unit', 'VARCHAR')} AS unit, ${visitId} AS visit_id,
           ${timestamp('end')} AS "end", lower(${opt('table', 'VARCHAR')}) AS src_table
      FROM read_parquet([${files.map(sqlString).join(', ')}], filename = true, file_row_number = true, union_by_name = true) d`);

  await resolveCodes(conn, tables.get('concept')!, tables.get('concept_relationship'));
  const tableColumnTarget = caseOf('r.src_table', TABLE_COLUMN_TABLE);
  await conn.run(`CREATE OR REPLACE VIEW medrep_meds_placed AS
    SELECT r.*, k.concept_id, k.domain_id, k.reason,
           CASE WHEN k.kind IN ('birth', 'death', 'gender') THEN k.kind
                WHEN k.concept_id IS NULL THEN 'unresolved'
                WHEN r.src_table = 'death' THEN 'death_cause'
                ELSE coalesce(k.target, ${tableColumnTarget}, 'other') END AS target
      FROM medrep_meds_rows r LEFT JOIN medrep_meds_codes k ON k.code = r.code`);
  await createDerivedViews(conn);

  const label = `${dataDir} (${files.length} file${files.length === 1 ? '' : 's'})`;
  for (const spec of CLINICAL_TABLES) {
    if (spec.table === 'observation_period') continue;
    const relation = `medrep_meds_${spec.table}`;
    const { columns, types } = await describe(conn, relation, label);
    columns.delete(ROW_COLUMN);
    types.delete(ROW_COLUMN);
    tables.set(spec.table, { table: spec.table, file: label, files, kind: 'meds', relation, columns, types, fileRowColumn: ROW_COLUMN, readRejects: CsvRejectLog.none() });
  }
  const counts = await placementCounts(conn, files.length, total);
  return { path: dir, kind: 'meds', tables, derivation: derivation(locator, counts) };
}

/** medrep_meds_codes: every distinct code of the data with its concept, domain, target table or the reason it has none. */
async function resolveCodes(conn: DuckDBConnection, concept: SourceTable, relationship: SourceTable | undefined): Promise<void> {
  const cid = vocabColumn(concept, 'concept_id', 'BIGINT');
  const valid = `coalesce(${vocabColumn(concept, 'invalid_reason', 'VARCHAR')}, '') = ''`;
  const standard = `coalesce(${vocabColumn(concept, 'standard_concept', 'VARCHAR')} = 'S', false)`;
  await conn.run(`CREATE OR REPLACE TABLE medrep_meds_vocab AS
    SELECT ${cid} AS concept_id, ${vocabColumn(concept, 'vocabulary_id', 'VARCHAR')} AS vocabulary_id,
           ${vocabColumn(concept, 'concept_code', 'VARCHAR')} AS concept_code, ${vocabColumn(concept, 'domain_id', 'VARCHAR')} AS domain_id,
           ${valid} AS valid, ${standard} AND ${valid} AS standard
      FROM ${concept.relation}`);
  const mapsTo = relationship
    ? `SELECT ${vocabColumn(relationship, 'concept_id_1', 'BIGINT')} AS a, ${vocabColumn(relationship, 'concept_id_2', 'BIGINT')} AS b
         FROM ${relationship.relation}
        WHERE ${vocabColumn(relationship, 'relationship_id', 'VARCHAR')} = 'Maps to' AND coalesce(${vocabColumn(relationship, 'invalid_reason', 'VARCHAR')}, '') = ''`
    : 'SELECT NULL::BIGINT AS a, NULL::BIGINT AS b WHERE false';
  const domainTarget = caseOf('domain_id', DOMAIN_TABLE);
  await conn.run(`CREATE OR REPLACE TABLE medrep_meds_codes AS
    WITH codes AS (
      SELECT code, nullif(position('/' IN code), 0) AS slash FROM (SELECT DISTINCT code FROM medrep_meds_rows WHERE code IS NOT NULL)
    ), parts AS (
      SELECT code, lower(left(code, slash - 1)) AS vocab, substr(code, slash + 1) AS ccode,
             TRY_CAST(regexp_extract(code, '^(?:OMOP_CONCEPT/|GENDER/)?(-?[0-9]+)$', 1) AS BIGINT) AS id_form
        FROM codes
    ), by_code AS (
      -- (vocabulary_id, concept_code) is not unique in every vocabulary: a valid, standard, lowest id first.
      SELECT p.code, arg_min(v.concept_id, (NOT v.valid, NOT v.standard, v.concept_id)) AS concept_id
        FROM parts p JOIN medrep_meds_vocab v ON lower(v.vocabulary_id) = p.vocab AND v.concept_code = p.ccode GROUP BY p.code
    ), resolved AS (
      SELECT p.code, p.vocab, coalesce(b.concept_id, p.id_form) AS concept_id, p.ccode IS NOT NULL AS has_slash
        FROM parts p LEFT JOIN by_code b USING (code)
    ), maps AS (
      SELECT m.a, min(m.b) AS b FROM (${mapsTo}) m JOIN medrep_meds_vocab s ON s.concept_id = m.b AND s.standard
       WHERE m.a IN (SELECT concept_id FROM resolved) GROUP BY m.a
    )
    SELECT code, concept_id, kind, domain_id, ${domainTarget} AS target, reason FROM (
      SELECT r.code, r.concept_id,
             CASE WHEN r.code = 'MEDS_BIRTH' THEN 'birth' WHEN r.code = 'MEDS_DEATH' THEN 'death'
                  WHEN r.concept_id IS NOT NULL AND (r.vocab = 'gender' OR c.domain_id = 'Gender') THEN 'gender' END AS kind,
             -- The table of a non-standard code is that of the standard concept it maps to (as OMOP ETLs place rows).
             coalesce(CASE WHEN c.standard THEN c.domain_id END, t.domain_id, c.domain_id) AS domain_id,
             CASE WHEN r.code IN ('MEDS_BIRTH', 'MEDS_DEATH') OR r.concept_id IS NOT NULL THEN NULL
                  WHEN r.has_slash THEN ${sqlString(UNRESOLVED_NOT_FOUND)} ELSE ${sqlString(UNRESOLVED_FORM)} END AS reason
        FROM resolved r LEFT JOIN medrep_meds_vocab c ON c.concept_id = r.concept_id
        LEFT JOIN maps m ON m.a = r.concept_id LEFT JOIN medrep_meds_vocab t ON t.concept_id = m.b)`);
  // The vocabulary's copy served the codes only: the runner reads the vocabulary through its own views.
  await conn.run('DROP TABLE medrep_meds_vocab');
}

/** The OMOP relations over the placed MEDS rows, with the OMOP column names the table specs read. */
async function createDerivedViews(conn: DuckDBConnection): Promise<void> {
  const placed = (target: string) => `SELECT * FROM medrep_meds_placed WHERE target = '${target}'`;
  // Condition, drug, measurement and procedure rows: the code's concept is both the concept and the source concept.
  const event = (table: ClinicalTable, extra = '') => {
    const ev = CLINICAL_TABLES.find((t) => t.table === table)!.events!;
    return `CREATE OR REPLACE VIEW medrep_meds_${table} AS
       SELECT g AS ${ROW_COLUMN}, g + 1 AS ${ev.idColumn}, subject_id AS person_id, concept_id AS ${ev.conceptColumn},
              CAST(time AS DATE) AS ${ev.dateColumn}, time AS ${ev.datetimeColumn}, concept_id AS ${ev.sourceConceptColumn},
              visit_id AS visit_occurrence_id${extra}, code AS meds_code
         FROM (${placed(table)})`;
  };
  for (const table of ['condition_occurrence', 'drug_exposure', 'procedure_occurrence'] as const) await conn.run(event(table));
  await conn.run(event('measurement', ', numeric_value AS value_as_number, NULL::BIGINT AS unit_concept_id, unit AS unit_source_value'));
  // A visit ends at its `end`, else at the latest event linked to it by its id, else it has no known end.
  await conn.run(`CREATE OR REPLACE VIEW medrep_meds_visit_occurrence AS
    WITH linked AS (
      SELECT subject_id, visit_id, max(time) AS last FROM medrep_meds_placed
       WHERE visit_id IS NOT NULL AND target NOT IN ('visit_occurrence', 'unresolved', 'birth', 'gender') GROUP BY ALL
    )
    SELECT v.g AS ${ROW_COLUMN}, coalesce(v.visit_id, -(v.g + 1)) AS visit_occurrence_id, v.subject_id AS person_id,
           v.concept_id AS visit_concept_id, CAST(v.time AS DATE) AS visit_start_date, v.time AS visit_start_datetime,
           CAST(coalesce(v."end", greatest(l.last, v.time)) AS DATE) AS visit_end_date, coalesce(v."end", greatest(l.last, v.time)) AS visit_end_datetime,
           v.concept_id AS visit_source_concept_id, v.code AS meds_code,
           CASE WHEN v."end" IS NOT NULL THEN 'end column' WHEN l.last IS NOT NULL THEN 'linked events' END AS meds_visit_end
      FROM (${placed('visit_occurrence')}) v LEFT JOIN linked l ON l.subject_id = v.subject_id AND l.visit_id = v.visit_id`);
  await conn.run(`CREATE OR REPLACE VIEW medrep_meds_death AS
    WITH causes AS (SELECT subject_id, time, min(concept_id) AS cause FROM (${placed('death_cause')}) GROUP BY ALL)
    SELECT d.g AS ${ROW_COLUMN}, d.subject_id AS person_id, CAST(d.time AS DATE) AS death_date, d.time AS death_datetime,
           c.cause AS cause_concept_id, d.code AS meds_code
      FROM (${placed('death')}) d LEFT JOIN causes c ON c.subject_id = d.subject_id AND c.time = d.time`);
  // One person per subject: birth from its first MEDS_BIRTH, gender from its first gender code (0 without one);
  // its row is that of the MEDS_BIRTH, else the subject's first row.
  await conn.run(`CREATE OR REPLACE VIEW medrep_meds_person AS
    WITH subjects AS (SELECT subject_id, min(g) AS g FROM medrep_meds_placed GROUP BY subject_id),
    births AS (SELECT subject_id, arg_min(time, g) AS birth, min(g) AS g FROM (${placed('birth')}) GROUP BY subject_id),
    genders AS (SELECT subject_id, arg_min(concept_id, g) AS gender FROM (${placed('gender')}) GROUP BY subject_id)
    SELECT coalesce(b.g, s.g) AS ${ROW_COLUMN}, s.subject_id AS person_id, coalesce(x.gender, 0) AS gender_concept_id,
           year(b.birth) AS year_of_birth, month(b.birth) AS month_of_birth, day(b.birth) AS day_of_birth, b.birth AS birth_datetime
      FROM subjects s LEFT JOIN births b ON b.subject_id = s.subject_id LEFT JOIN genders x ON x.subject_id = s.subject_id`);
}

export interface MedsInputCounts {
  files: number;
  rows: number;
  /** Rows per place: an OMOP table, birth, gender, death_cause. */
  placed: Record<string, number>;
  /** Resolved rows of domains medrep does not read, per domain. */
  not_read: Record<string, number>;
  unresolved: { rows: number; codes: number; by_reason: Record<string, number> };
  /** Visits by where their end came from. */
  visit_ends: Record<string, number>;
}

async function placementCounts(conn: DuckDBConnection, files: number, rows: number): Promise<MedsInputCounts> {
  const placed: Record<string, number> = {};
  const notRead: Record<string, number> = {};
  const byTarget = await queryRows<{ target: string; domain: string | null; n: number }>(
    conn,
    `SELECT target, domain_id AS domain, CAST(count(*) AS DOUBLE) AS n FROM medrep_meds_placed GROUP BY ALL ORDER BY ALL`,
  );
  for (const r of byTarget) {
    if (r.target === 'unresolved') continue;
    if (r.target === 'other') notRead[r.domain ?? '(not in the vocabulary, no table column)'] = (notRead[r.domain ?? '(not in the vocabulary, no table column)'] ?? 0) + r.n;
    else placed[r.target] = (placed[r.target] ?? 0) + r.n;
  }
  const reasons = await queryRows<{ reason: string; n: number; codes: number }>(
    conn,
    `SELECT coalesce(reason, ${sqlString(UNRESOLVED_MISSING)}) AS reason, CAST(count(*) AS DOUBLE) AS n, CAST(count(DISTINCT code) AS DOUBLE) AS codes
       FROM medrep_meds_placed WHERE target = 'unresolved' GROUP BY ALL ORDER BY ALL`,
  );
  const ends = await queryRows<{ source: string | null; n: number }>(
    conn,
    `SELECT meds_visit_end AS source, CAST(count(*) AS DOUBLE) AS n FROM medrep_meds_visit_occurrence GROUP BY ALL ORDER BY ALL`,
  );
  return {
    files,
    rows,
    placed,
    not_read: notRead,
    unresolved: {
      rows: reasons.reduce((a, r) => a + r.n, 0),
      codes: reasons.reduce((a, r) => a + r.codes, 0),
      by_reason: Object.fromEntries(reasons.map((r) => [r.reason, r.n])),
    },
    visit_ends: Object.fromEntries(ends.map((e) => [e.source ?? 'unknown', e.n])),
  };
}

function derivation(locator: RowLocator, counts: MedsInputCounts): InputDerivation {
  const n = (x: number) => x.toLocaleString('en-US');
  const list = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k} ${n(v)}`).join(', ') || 'none';
  return {
    name: 'meds_input',
    counts: counts as unknown as Record<string, unknown>,
    summary: [
      `meds input         ${n(counts.rows)} rows in ${counts.files} file${counts.files === 1 ? '' : 's'}; placed: ${list(counts.placed)}`,
      `  not read (domain) ${list(counts.not_read)}`,
      `  unresolved codes  ${n(counts.unresolved.rows)} rows, ${n(counts.unresolved.codes)} distinct codes (rejects/meds.jsonl)`,
      `  visit ends        ${list(counts.visit_ends)}`,
    ],
    async setAside(conn: DuckDBConnection, rejects: RejectSink): Promise<void> {
      for (const spec of CLINICAL_TABLES) rejects.locateRows(spec.table, (row) => locator.locate(row));
      const sql = `SELECT CAST(g + 1 AS DOUBLE) AS row, subject_id, CAST(time AS VARCHAR) AS time, code, numeric_value,
                          coalesce(reason, ${sqlString(UNRESOLVED_MISSING)}) AS reason
                     FROM medrep_meds_placed WHERE target = 'unresolved' ORDER BY g`;
      for await (const chunk of streamChunks(conn, sql)) {
        const row = numericColumn(chunk, 0).values;
        const subject = idColumn(chunk, 1);
        const time = stringColumn(chunk, 2);
        const code = stringColumn(chunk, 3);
        const value = numericColumn(chunk, 4);
        const reason = stringColumn(chunk, 5);
        for (let i = 0, count = chunk.rowCount; i < count; i++) {
          const at = locator.locate(row[i]);
          rejects.add({
            file: at.file, table: 'meds', row: at.row, column: 'code', reason: reason(i)!,
            values: { subject_id: subject.isNull(i) ? null : subject.get(i), time: time(i), code: code(i), numeric_value: value.isNull(i) ? null : value.values[i] },
          });
        }
      }
    },
  };
}
