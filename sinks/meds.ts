// MEDS export (https://github.com/Medical-Event-Data-Standard/meds, the schemas of the `meds`
// 0.4 package): data/*.parquet with subject_id, time, code, numeric_value and our extra columns,
// one file per events shard (a subject never spans files), static rows (MEDS_BIRTH, gender)
// first; a death is MEDS_DEATH, its cause (when the row names one) a second event at the same
// time; metadata/codes.parquet (every code of the data), metadata/subject_splits.parquet,
// metadata/dataset.json. DuckDB converts the event shards.
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { DuckDBConnection } from '@duckdb/node-api';
import { sha256 } from '../transforms/hashing';
import { Split, medsSplit } from '../transforms/splits';
import { NumberColumn, StringColumn, tableOf } from './columns';
import { WrittenFile, copyParquetAtomic, writeFileAtomic, writeParquetAtomic } from './parquet';
import { ShardEntry } from './shards';
import { BIRTH_TIMESTAMP_SQL } from './personSql';
import { Id, compareIds, idBigInt } from '../schemas/ids';
import { sqlString } from '../common/sql';

/** The MEDS release whose schemas the output follows (test/sinks/meds.test.ts validates with it). */
export const MEDS_VERSION = '0.4.1';
export const MEDS_BIRTH = 'MEDS_BIRTH';
export const MEDS_DEATH = 'MEDS_DEATH';

/**
 * `conns`: the first sees the input's views (person, concept); the data files are written on all
 * of them at once, each file by one connection, so the files are the same whatever their number.
 */
export async function exportMeds(
  conns: readonly DuckDBConnection[],
  out: string,
  eventShards: ShardEntry[],
  splits: Map<Id, Split>,
): Promise<ShardEntry[]> {
  const [conn] = conns;
  const entries: ShardEntry[] = [];
  const add = (f: WrittenFile, rel: string) => {
    entries.push({ kind: 'meds', path: rel, rows: f.rows, bytes: f.bytes, sha256: f.sha256 });
  };
  // Tables of the database, not TEMP: every connection reads them. The person view checks every
  // row when read, so the static rows are computed once, not twice per data file.
  // codes of the concepts in the vocabulary: <vocabulary_id>/<concept_code>; others OMOP_CONCEPT/<id>
  await conn.run(`CREATE OR REPLACE TABLE medrep_codes AS
    SELECT concept_id, vocabulary_id || '/' || concept_code AS code, concept_name AS description
    FROM concept WHERE vocabulary_id IS NOT NULL AND concept_code IS NOT NULL`);
  await conn.run(`CREATE OR REPLACE TABLE medrep_meds_static AS
    SELECT p.person_id, ${BIRTH_TIMESTAMP_SQL('p')} AS birth, p.gender_concept_id FROM person p`);
  const files = eventShards.map((shard) => ({ src: sqlString(path.join(out, shard.path)), rel: path.posix.join('meds', 'data', path.basename(shard.path)) }));
  const dataFiles: WrittenFile[] = new Array(files.length);
  let next = 0;
  const settled = await Promise.allSettled(
    conns.map(async (c) => {
      try {
        for (let i = next++; i < files.length; i = next++) dataFiles[i] = await copyParquetAtomic(c, medsShardSql(files[i].src), path.join(out, files[i].rel));
      } catch (e) {
        next = files.length; // the other connections stop after their current file
        throw e;
      }
    }),
  );
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  await conn.run('DROP TABLE medrep_meds_static');
  files.forEach((f, i) => add(dataFiles[i], f.rel));
  // metadata/codes.parquet: every code in the data with its description and "Is a" parents.
  const codesRel = 'meds/metadata/codes.parquet';
  // Every code of the data files: the concepts' codes, MEDS_BIRTH, MEDS_DEATH and the gender codes.
  const dataFileList = `read_parquet([${entries.filter((e) => e.path.startsWith('meds/data/')).map((e) => sqlString(path.join(out, e.path))).join(', ')}])`;
  const codesSelect = medsCodesSql(eventShards.length ? dataFileList : null);
  add(await copyParquetAtomic(conn, codesSelect, path.join(out, codesRel)), codesRel);
  await conn.run('DROP TABLE medrep_codes');
  // metadata/subject_splits.parquet
  const ids = [...splits.keys()].sort(compareIds);
  const subject = new NumberColumn(BigInt64Array);
  const split = new StringColumn();
  for (const id of ids) {
    subject.push(idBigInt(id));
    split.push(medsSplit(splits.get(id)!));
  }
  const fields = [new arrow.Field('subject_id', new arrow.Int64(), false), new arrow.Field('split', new arrow.Utf8(), false)];
  const splitsRel = 'meds/metadata/subject_splits.parquet';
  const written = writeParquetAtomic(path.join(out, splitsRel), tableOf(fields, { subject_id: subject.data(new arrow.Int64()), split: split.data() }));
  add(written, splitsRel);
  const dataset = {
    dataset_name: 'medrep',
    dataset_version: sha256(entries.map((e) => e.sha256).join('')).slice(0, 16),
    etl_name: 'medrep',
    etl_version: require('../../package.json').version as string,
    meds_version: MEDS_VERSION,
    // Our columns beyond the MEDS data schema (DatasetMetadataSchema names them).
    raw_source_id_columns: ['visit_occurrence_id', 'origin'],
    code_modifier_columns: ['unit'],
    other_extension_columns: ['table', 'concept_id', 'source_concept_id', 'decile'],
  };
  writeFileAtomic(path.join(out, 'meds/metadata/dataset.json'), new TextEncoder().encode(JSON.stringify(dataset, null, 2) + '\n'));
  return entries;
}

/** A concept's MEDS code: <vocabulary_id>/<concept_code> when the vocabulary has it, else OMOP_CONCEPT/<id>. */
const CODE_SQL = `coalesce(c.code, 'OMOP_CONCEPT/' || e.concept_id)`;

/**
 * One MEDS data file from one events shard (`src`, an SQL string): each subject's birth and
 * gender, then its events, a death's cause right after MEDS_DEATH, in MEDS order.
 */
function medsShardSql(src: string): string {
  const codeExpr = CODE_SQL;
  return `
    WITH ev AS (SELECT * FROM read_parquet(${src})),
    subjects AS (SELECT DISTINCT person_id FROM ev)
    SELECT subject_id, time, code, numeric_value, "table", concept_id, source_concept_id, decile, unit, visit_occurrence_id, origin FROM (
      SELECT p.person_id AS subject_id, p.birth AS time, '${MEDS_BIRTH}' AS code, NULL::FLOAT AS numeric_value,
             'person' AS "table", NULL::BIGINT AS concept_id, NULL::BIGINT AS source_concept_id, NULL::TINYINT AS decile,
             NULL::VARCHAR AS unit, NULL::BIGINT AS visit_occurrence_id, 'person:' || p.person_id AS origin, 0 AS k
        FROM medrep_meds_static p SEMI JOIN subjects s ON s.person_id = p.person_id
      UNION ALL
      SELECT p.person_id, NULL::TIMESTAMP, 'GENDER/' || coalesce(p.gender_concept_id, 0), NULL::FLOAT, 'person', p.gender_concept_id, NULL, NULL,
             NULL, NULL, 'person:' || p.person_id, -1
        FROM medrep_meds_static p SEMI JOIN subjects s ON s.person_id = p.person_id
      UNION ALL
      SELECT e.person_id, e.time, CASE WHEN e."table" = 'death' THEN '${MEDS_DEATH}' ELSE ${codeExpr} END, CAST(e.value AS FLOAT), e."table",
             e.concept_id, e.source_concept_id, e.decile, e.unit, e.visit_occurrence_id, e.origin, 1
        FROM ev e LEFT JOIN medrep_codes c USING (concept_id)
      UNION ALL
      -- The cause of a death, as its own event right after MEDS_DEATH.
      SELECT e.person_id, e.time, ${codeExpr}, NULL::FLOAT, e."table", e.concept_id, e.source_concept_id, NULL, NULL,
             e.visit_occurrence_id, e.origin, 2
        FROM ev e LEFT JOIN medrep_codes c USING (concept_id) WHERE e."table" = 'death' AND e.concept_id <> 0
    ) ORDER BY subject_id, time NULLS FIRST, k, origin`;
}

/** metadata/codes: every code of the data files (`dataFiles` a read_parquet; null: no file) with its description and "Is a" parents. */
function medsCodesSql(dataFiles: string | null): string {
  return dataFiles !== null
    ? `WITH used AS (SELECT code, min(concept_id) AS concept_id FROM ${dataFiles} GROUP BY code)
       SELECT u.code,
              CASE u.code WHEN '${MEDS_BIRTH}' THEN 'birth' WHEN '${MEDS_DEATH}' THEN 'death' ELSE c.description END AS description,
              CASE WHEN u.code IN ('${MEDS_BIRTH}', '${MEDS_DEATH}') OR u.code LIKE 'GENDER/%' THEN []::VARCHAR[]
                   ELSE coalesce((SELECT list(p.code ORDER BY p.code) FROM concept_relationship r JOIN medrep_codes p ON p.concept_id = r.concept_id_2
                                   WHERE r.concept_id_1 = u.concept_id AND r.relationship_id = 'Is a'), []::VARCHAR[]) END AS parent_codes
         FROM used u LEFT JOIN medrep_codes c ON c.concept_id = u.concept_id ORDER BY u.code`
    : `SELECT NULL::VARCHAR AS code, NULL::VARCHAR AS description, []::VARCHAR[] AS parent_codes WHERE false`;
}
