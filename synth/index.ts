// `medrep synth`: writes a synthetic hospital as an OMOP CDM 5.4 folder (clinical tables and the
// CONCEPT, CONCEPT_RELATIONSHIP and CONCEPT_ANCESTOR tables they need), in CSV or Parquet.
// Persons are generated one at a time and written through buffered files, so memory stays flat
// at any size; the same options give byte-identical files.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { UserError } from '../common/errors';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { ClinicalProcess } from './clinical';
import { Site } from './catalogue';
import { CdmCsvSink, IdStyle } from './sink';
import { SynthVocabulary, defaultHcupCsv, ancestorRows, buildVocabulary, conceptRows, relationshipRows } from './vocabulary';
import {
  CLINICAL_OUT_TABLES, ClinicalOutTable, CsvTable, OUT_COLUMNS, OutTable, VOCABULARY_OUT_TABLES, csvField, csvToParquetSql,
} from './writers';

export { buildVocabulary } from './vocabulary';
export type { SynthVocabulary } from './vocabulary';
export { OUT_COLUMNS, CLINICAL_OUT_TABLES, VOCABULARY_OUT_TABLES } from './writers';

export const SYNTH_VERSION = 'medrep-synth-1';

/**
 * Mean clinical rows (all eight clinical tables together) per person with the default process:
 * 2,363,352 rows for 20,000 persons of seed 42 (site A and B alike). Sizes a data set by rows:
 * about 8,460 persons for 1M rows, 84,600 for 10M.
 */
export const MEAN_CLINICAL_ROWS_PER_PERSON = 118.2;

/** Persons to generate for about `targetClinicalRows` clinical rows (e.g. 1e6 or 1e7 for the benchmark). */
export function personsForRows(targetClinicalRows: number): number {
  return Math.max(1, Math.round(targetClinicalRows / MEAN_CLINICAL_ROWS_PER_PERSON));
}

export interface SynthOptions {
  persons: number;
  seed: number;
  out: string;
  format: 'csv' | 'parquet';
  site: Site;
  onProgress?: (personsDone: number, rowsDone: number) => void;
  /** Append a few invalid rows (bad type, impossible date, year out of range, unknown concept, missing required value). */
  injectErrors?: boolean;
  /** HCUP-CCS phenotype csv; default ../shared/tasks/hcup_ccs_phenotypes_icd9.csv, built-in codes when absent; null: built-in only. */
  hcupCsv?: string | null;
  /** Persons per batch between progress reports and buffer flushes. */
  batchSize?: number;
  /** 'hashed': person, visit and row ids are signed 64-bit hashes, as real ETLs write them (default 'sequential'). */
  ids?: IdStyle;
}

export interface InjectedError {
  table: ClinicalOutTable;
  /** 1-based data row (the header is not counted). */
  row: number;
  column: string;
  reason: string;
}

export interface SynthSummary {
  persons: number;
  seed: number;
  site: Site;
  format: 'csv' | 'parquet';
  /** Rows per table, clinical and vocabulary. */
  rows: Record<OutTable, number>;
  clinicalRows: number;
  files: string[];
  seconds: number;
  /** 'csv:<sha256>' when the HCUP phenotype csv was read, 'builtin' otherwise. */
  icd9Source: string;
  injected: InjectedError[];
}

interface Written {
  rows: number;
  sha256: string;
}

function writeVocabulary(dir: string, vocab: SynthVocabulary): Record<string, Written> {
  const VALID_START = '1970-01-01';
  const VALID_END = '2099-12-31';
  const concept = new CsvTable(join(dir, 'concept.csv'), OUT_COLUMNS.concept.map(([n]) => n));
  for (const c of conceptRows(vocab)) {
    concept.line(
      [c.id, csvField(c.name), c.domain, c.vocabulary, csvField(c.conceptClass), c.standard, csvField(c.code), VALID_START, VALID_END, ''].join(','),
    );
  }
  const conceptSha = concept.close();
  const rel = new CsvTable(join(dir, 'concept_relationship.csv'), OUT_COLUMNS.concept_relationship.map(([n]) => n));
  for (const [a, b, r] of relationshipRows(vocab)) rel.line(`${a},${b},${r},${VALID_START},${VALID_END},`);
  const relSha = rel.close();
  const anc = new CsvTable(join(dir, 'concept_ancestor.csv'), OUT_COLUMNS.concept_ancestor.map(([n]) => n));
  for (const [a, d, mn, mx] of ancestorRows(vocab)) anc.line(`${a},${d},${mn},${mx}`);
  const ancSha = anc.close();
  return {
    concept: { rows: concept.rows, sha256: conceptSha },
    concept_relationship: { rows: rel.rows, sha256: relSha },
    concept_ancestor: { rows: anc.rows, sha256: ancSha },
  };
}

/**
 * Invalid rows for tests of reject handling, appended after the valid ones. With Parquet, only
 * faults a typed column can hold are written (unknown concept, missing value, year out of range).
 */
function injectErrors(sink: CdmCsvSink, format: 'csv' | 'parquet'): InjectedError[] {
  const out: InjectedError[] = [];
  const t = sink.tables;
  const p1 = sink.personIdText(1);
  const add = (table: ClinicalOutTable, line: string, column: string, reason: string) => {
    t[table].line(line);
    out.push({ table, row: t[table].rows, column, reason });
  };
  add('person', `${900000001},,1950,1,1,1950-01-01 00:00:00,8527,38003564,PX1,`, 'gender_concept_id', 'required value is missing');
  add('visit_occurrence', `${sink.takeId('visit_occurrence')},${p1},9202,1700-01-01,1700-01-01 09:00:00,1700-01-01,1700-01-01 10:00:00,32817,OP,0`, 'visit_start_date', 'year before 1800');
  add('drug_exposure', `${sink.takeId('drug_exposure')},${p1},999999999,2020-01-01,2020-01-01 09:00:00,2020-01-02,32817,1,1,X,0,`, 'drug_concept_id', 'concept id not in the vocabulary');
  if (format === 'csv') {
    add('measurement', `${sink.takeId('measurement')},${p1},3000963,2020-01-01,2020-01-01 09:00:00,32817,abc,8713,718-7,3000963,g/dL,`, 'value_as_number', 'not a number');
    add('condition_occurrence', `${sink.takeId('condition_occurrence')},${p1},201826,2021-02-30,2021-02-30 08:00:00,,32817,250.00,${0},`, 'condition_start_date', 'impossible date');
  }
  return out;
}

async function convertToParquet(dir: string, tables: OutTable[], threads: number): Promise<void> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:', { threads: String(threads) });
  const conn = await db.connect();
  try {
    for (const table of tables) {
      const csv = join(dir, `${table}.csv`);
      const tmp = join(dir, `${table}.parquet.tmp`);
      await conn.run(csvToParquetSql(csv, tmp, table));
      renameSync(tmp, join(dir, `${table}.parquet`));
      rmSync(csv);
    }
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

export async function generateSynthetic(opts: SynthOptions): Promise<SynthSummary> {
  const began = process.hrtime.bigint();
  if (!Number.isInteger(opts.persons) || opts.persons < 1) throw new Error(`synth: --persons must be a positive integer, got ${opts.persons}`);
  if (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > 0xffffffff) throw new Error(`synth: --seed must be an integer in 0..4294967295, got ${opts.seed}`);
  if (opts.format !== 'csv' && opts.format !== 'parquet') throw new Error(`synth: --format must be csv or parquet, got ${opts.format}`);
  if (opts.site !== 'A' && opts.site !== 'B') throw new Error(`synth: --site must be A or B, got ${opts.site}`);
  const ids = opts.ids ?? 'sequential';
  if (ids !== 'sequential' && ids !== 'hashed') throw new Error(`synth: --ids must be sequential or hashed, got ${ids}`);
  mkdirSync(opts.out, { recursive: true });
  // Only a folder the generator wrote (its synth_meta.json) or an empty one: the tables it writes
  // would replace a real hospital's files of the same names.
  const present = readdirSync(opts.out).filter((n) => !n.startsWith('.synth-'));
  if (present.length > 0 && !present.includes('synth_meta.json')) {
    throw new UserError(`synth: ${opts.out} is not empty and holds no synth_meta.json of an earlier synth run; choose an empty or new --out`);
  }
  // Tables of the other format left from an earlier run would make a mixed folder that readers misread.
  const other = opts.format === 'csv' ? 'parquet' : 'csv';
  const stale = [...CLINICAL_OUT_TABLES, ...VOCABULARY_OUT_TABLES].map((t) => `${t}.${other}`).filter((f) => existsSync(join(opts.out, f)));
  if (stale.length) throw new Error(`synth: ${opts.out} already holds ${stale.join(', ')} from another run; remove them or choose another --out`);
  // Write into a scratch folder next to the output and move the files in at the end, so that a
  // failed run leaves no half-written table behind.
  const work = mkdtempSync(join(opts.out, '.synth-'));
  try {
    const vocab = buildVocabulary(opts.hcupCsv === undefined ? defaultHcupCsv() : opts.hcupCsv);
    const vocabFiles = writeVocabulary(work, vocab);
    const sink = new CdmCsvSink(work, { style: ids, seed: opts.seed });
    const process_ = new ClinicalProcess(vocab, sink, opts.seed, opts.site);
    const batch = Math.max(1, opts.batchSize ?? 1000);
    for (let first = 1; first <= opts.persons; first += batch) {
      const last = Math.min(opts.persons, first + batch - 1);
      for (let id = first; id <= last; id++) process_.person(id);
      opts.onProgress?.(last, sink.totalRows());
    }
    const injected = opts.injectErrors ? injectErrors(sink, opts.format) : [];
    const clinicalCounts = sink.counts();
    const shas: Record<string, string> = { ...sink.close() };
    for (const [t, w] of Object.entries(vocabFiles)) shas[t] = w.sha256;

    const tables: OutTable[] = [...CLINICAL_OUT_TABLES, ...VOCABULARY_OUT_TABLES];
    if (opts.format === 'parquet') await convertToParquet(work, tables, 2);
    const files: string[] = [];
    for (const table of tables) {
      const name = `${table}.${opts.format}`;
      renameSync(join(work, name), join(opts.out, name));
      files.push(join(opts.out, name));
    }
    const rows = { ...clinicalCounts } as Record<OutTable, number>;
    for (const [t, w] of Object.entries(vocabFiles)) rows[t as OutTable] = w.rows;
    const clinicalRows = CLINICAL_OUT_TABLES.reduce((n, t) => n + rows[t], 0);
    // What made these files, for audits: no clock time, so that reruns stay byte-identical.
    const meta = {
      generator: SYNTH_VERSION, persons: opts.persons, seed: opts.seed, site: opts.site, format: opts.format, ids,
      icd9Source: vocab.icd9Source, rows, injected,
      files: tables.map((t) => ({
        file: `${t}.${opts.format}`,
        sha256: opts.format === 'csv' ? shas[t] : createHash('sha256').update(readFileSync(join(opts.out, `${t}.parquet`))).digest('hex'),
      })),
    };
    writeFileSync(join(opts.out, 'synth_meta.json'), JSON.stringify(meta, null, 2) + '\n');
    return {
      persons: opts.persons, seed: opts.seed, site: opts.site, format: opts.format, rows, clinicalRows,
      files, seconds: Number(process.hrtime.bigint() - began) / 1e9, icd9Source: vocab.icd9Source, injected,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** `medrep synth ...`: generate with progress on stderr and print a summary. */
export async function runSynth(opts: SynthOptions): Promise<SynthSummary> {
  const tty = process.stderr.isTTY;
  let lastLog = 0;
  const began = Date.now();
  opts.onProgress = (done, rows) => {
    const now = Date.now();
    if (now - lastLog < 1000 && done < opts.persons) return;
    lastLog = now;
    const secs = (now - began) / 1000;
    const rate = secs > 0 ? Math.round(rows / secs) : 0;
    const eta = done > 0 ? Math.round((secs * (opts.persons - done)) / done) : 0;
    const line = `synth: ${done}/${opts.persons} persons, ${rows} rows, ${rate} rows/s, ETA ${eta}s`;
    if (tty) process.stderr.write(`\r${line}`);
    else process.stderr.write(`${line}\n`);
  };
  const summary = await generateSynthetic(opts);
  if (tty) process.stderr.write('\n');
  const lines = [
    `synthetic OMOP CDM 5.4, site ${summary.site}, seed ${summary.seed}: ${summary.persons} persons -> ${opts.out} (${summary.format})`,
    ...Object.entries(summary.rows).map(([t, n]) => `  ${t.padEnd(22)} ${String(n).padStart(12)}`),
    `  clinical rows ${summary.clinicalRows} in ${summary.seconds.toFixed(1)} s (${Math.round(summary.clinicalRows / summary.seconds)} rows/s)`,
    `  ICD-9 phenotype codes: ${summary.icd9Source}`,
  ];
  if (summary.injected.length) lines.push(`  injected ${summary.injected.length} invalid rows (see synth_meta.json)`);
  process.stdout.write(lines.join('\n') + '\n');
  return summary;
}
