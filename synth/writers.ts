// Writers of the synthetic CDM folder: buffered CSV tables with fast date formatting, the column
// layout of every table written (with the DuckDB type each column gets in Parquet), and the
// CSV -> Parquet conversion.
import { closeSync, openSync, writeSync } from 'node:fs';
import { Hash, createHash } from 'node:crypto';
import { join } from 'node:path';
import { sqlString } from '../common/sql';

export type SqlType = 'BIGINT' | 'DOUBLE' | 'DATE' | 'TIMESTAMP' | 'VARCHAR';

export type ClinicalOutTable =
  | 'person' | 'observation_period' | 'visit_occurrence' | 'condition_occurrence' | 'drug_exposure'
  | 'measurement' | 'procedure_occurrence' | 'death';
export type VocabularyOutTable = 'concept' | 'concept_relationship' | 'concept_ancestor';
export type OutTable = ClinicalOutTable | VocabularyOutTable;

export const CLINICAL_OUT_TABLES: ClinicalOutTable[] = [
  'person', 'observation_period', 'visit_occurrence', 'condition_occurrence', 'drug_exposure', 'measurement',
  'procedure_occurrence', 'death',
];
export const VOCABULARY_OUT_TABLES: VocabularyOutTable[] = ['concept', 'concept_relationship', 'concept_ancestor'];

const B = 'BIGINT';
const D = 'DATE';
const T = 'TIMESTAMP';
const V = 'VARCHAR';

/** Columns of each written table, in file order (OMOP CDM 5.4 names). */
export const OUT_COLUMNS: Record<OutTable, Array<[string, SqlType]>> = {
  person: [
    ['person_id', B], ['gender_concept_id', B], ['year_of_birth', B], ['month_of_birth', B], ['day_of_birth', B],
    ['birth_datetime', T], ['race_concept_id', B], ['ethnicity_concept_id', B], ['person_source_value', V], ['gender_source_value', V],
  ],
  observation_period: [
    ['observation_period_id', B], ['person_id', B], ['observation_period_start_date', D], ['observation_period_end_date', D],
    ['period_type_concept_id', B],
  ],
  visit_occurrence: [
    ['visit_occurrence_id', B], ['person_id', B], ['visit_concept_id', B], ['visit_start_date', D], ['visit_start_datetime', T],
    ['visit_end_date', D], ['visit_end_datetime', T], ['visit_type_concept_id', B], ['visit_source_value', V], ['visit_source_concept_id', B],
  ],
  condition_occurrence: [
    ['condition_occurrence_id', B], ['person_id', B], ['condition_concept_id', B], ['condition_start_date', D],
    ['condition_start_datetime', T], ['condition_end_date', D], ['condition_type_concept_id', B], ['condition_source_value', V],
    ['condition_source_concept_id', B], ['visit_occurrence_id', B],
  ],
  drug_exposure: [
    ['drug_exposure_id', B], ['person_id', B], ['drug_concept_id', B], ['drug_exposure_start_date', D],
    ['drug_exposure_start_datetime', T], ['drug_exposure_end_date', D], ['drug_type_concept_id', B], ['quantity', 'DOUBLE'],
    ['days_supply', B], ['drug_source_value', V], ['drug_source_concept_id', B], ['visit_occurrence_id', B],
  ],
  measurement: [
    ['measurement_id', B], ['person_id', B], ['measurement_concept_id', B], ['measurement_date', D], ['measurement_datetime', T],
    ['measurement_type_concept_id', B], ['value_as_number', 'DOUBLE'], ['unit_concept_id', B], ['measurement_source_value', V],
    ['measurement_source_concept_id', B], ['unit_source_value', V], ['visit_occurrence_id', B],
  ],
  procedure_occurrence: [
    ['procedure_occurrence_id', B], ['person_id', B], ['procedure_concept_id', B], ['procedure_date', D], ['procedure_datetime', T],
    ['procedure_type_concept_id', B], ['procedure_source_value', V], ['procedure_source_concept_id', B], ['visit_occurrence_id', B],
  ],
  death: [['person_id', B], ['death_date', D], ['death_datetime', T], ['death_type_concept_id', B], ['cause_concept_id', B]],
  concept: [
    ['concept_id', B], ['concept_name', V], ['domain_id', V], ['vocabulary_id', V], ['concept_class_id', V], ['standard_concept', V],
    ['concept_code', V], ['valid_start_date', D], ['valid_end_date', D], ['invalid_reason', V],
  ],
  concept_relationship: [
    ['concept_id_1', B], ['concept_id_2', B], ['relationship_id', V], ['valid_start_date', D], ['valid_end_date', D], ['invalid_reason', V],
  ],
  concept_ancestor: [
    ['ancestor_concept_id', B], ['descendant_concept_id', B], ['min_levels_of_separation', B], ['max_levels_of_separation', B],
  ],
};

// ---------------------------------------------------------------- dates

export const SECONDS_PER_DAY = 86400;
const DAY_CACHE_BASE = -25567; // 1900-01-01 as days since 1970-01-01
const dayCache: string[] = [];

/** 'YYYY-MM-DD' of a day number (days since 1970-01-01, UTC); cached, since few distinct days occur. */
export function formatDay(day: number): string {
  const i = day - DAY_CACHE_BASE;
  let s = dayCache[i];
  if (s === undefined) {
    s = new Date(day * SECONDS_PER_DAY * 1000).toISOString().slice(0, 10);
    if (i >= 0 && i < 200 * 366) dayCache[i] = s;
  }
  return s;
}

const MINUTES: string[] = [];
for (let m = 0; m < 1440; m++) MINUTES.push(`${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}:00`);

/** 'YYYY-MM-DD HH:MM:SS' of a time in seconds since 1970 (the generator keeps times to the minute). */
export function formatDatetime(t: number): string {
  const day = Math.floor(t / SECONDS_PER_DAY);
  const minute = Math.floor((t - day * SECONDS_PER_DAY) / 60);
  return `${formatDay(day)} ${MINUTES[minute]}`;
}

export function dayOf(y: number, m: number, d: number): number {
  return Math.round(Date.UTC(y, m - 1, d) / 86400000);
}

/** CSV field: quoted when it holds a comma, quote or line break. */
export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

// ---------------------------------------------------------------- buffered CSV table

const BUFFER_BYTES = 1 << 20;

/** A CSV file written through a reusable byte buffer: no large intermediate strings to collect. */
export class CsvTable {
  rows = 0;
  private buf = Buffer.allocUnsafe(BUFFER_BYTES);
  private used = 0;
  private fd: number;
  private hash: Hash = createHash('sha256');

  constructor(readonly path: string, columns: readonly string[]) {
    this.fd = openSync(path, 'w');
    this.write(columns.join(',') + '\n');
  }

  /** Append one line (without its line break). */
  line(s: string): void {
    this.write(s + '\n');
    this.rows++;
  }

  private write(s: string): void {
    // A UTF-8 character takes at most 3 bytes per UTF-16 unit.
    if (this.used + s.length * 3 > BUFFER_BYTES) {
      this.flush();
      if (s.length * 3 > BUFFER_BYTES) {
        const bytes = Buffer.from(s, 'utf8');
        this.hash.update(bytes);
        writeSync(this.fd, bytes);
        return;
      }
    }
    this.used += this.buf.write(s, this.used, 'utf8');
  }

  flush(): void {
    if (this.used) {
      this.hash.update(this.buf.subarray(0, this.used));
      writeSync(this.fd, this.buf, 0, this.used);
    }
    this.used = 0;
  }

  /** Flush and close; returns the sha256 of the file's bytes. */
  close(): string {
    this.flush();
    closeSync(this.fd);
    return this.hash.digest('hex');
  }
}

export function tableFile(dir: string, table: OutTable, ext: 'csv' | 'parquet'): string {
  return join(dir, `${table}.${ext}`);
}

/** SQL that copies one CSV written here into a typed, zstd-compressed Parquet file. */
export function csvToParquetSql(csvPath: string, parquetPath: string, table: OutTable): string {
  const cols = OUT_COLUMNS[table].map(([n, t]) => `${sqlString(n)}: ${sqlString(t)}`).join(', ');
  return (
    `COPY (SELECT * FROM read_csv(${sqlString(csvPath)}, header = true, delim = ',', quote = '"', escape = '"', ` +
    `nullstr = '', columns = {${cols}}, timestampformat = '%Y-%m-%d %H:%M:%S', dateformat = '%Y-%m-%d')) ` +
    `TO ${sqlString(parquetPath)} (FORMAT parquet, COMPRESSION zstd)`
  );
}
