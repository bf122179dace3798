// Finds the OMOP tables of an input (a folder of CSV/TSV[.gz] or Parquet files, or a DuckDB
// database file; upper- or lower-case names) and exposes each as a DuckDB relation with
// lower-case column names. Vocabulary tables may come from a separate Athena folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DuckDBConnection } from '@duckdb/node-api';
import { CLINICAL_TABLES, ClinicalTable, ColumnSpec, VOCABULARY_TABLES, VocabularyTable } from '../schemas/omop';
import { q } from '../schemas/sqlChecks';
import { queryRows, sqlString } from './duck';
import { UserError } from '../common/errors';
import { dialectOf, openCsvTable, readFirstLine, verifyGzip } from './csvRead';
import { CsvRejectLog, unreadableFile } from './csvRecords';
import { makeProcessTempDir } from '../common/processTempDir';
import { RejectSink } from '../sinks/rejects';
import { isDuckOutOfMemory } from './memoryLimit';

/** `meds`: OMOP tables derived from a MEDS dataset (sources/medsSource.ts). */
export type InputKind = 'csv' | 'parquet' | 'duckdb' | 'meds';

export interface SourceTable {
  table: ClinicalTable | VocabularyTable;
  /** What a user recognises: the file (or database.table) the rows come from. */
  file: string;
  files: string[];
  kind: InputKind;
  /** SQL relation with the original column names. */
  relation: string;
  /** lower-case column name -> original name */
  columns: Map<string, string>;
  /** lower-case column name -> DuckDB type */
  types: Map<string, string>;
  /** Column of the relation holding each row's 0-based source record (a checked CSV copy), else null. */
  fileRowColumn: string | null;
  /** CSV records that could not be read as rows (field count, quoting, encoding). */
  readRejects: CsvRejectLog;
  /** The Parquet copy of a CSV table that `relation` reads (see csvRead.ts), else null. */
  staged?: string | null;
  /** Whether the staged copy holds the typed person id (csvRead.ts PERSON_KEY). */
  stagedPersonKey?: boolean;
}

export interface OmopInput {
  path: string;
  kind: InputKind;
  tables: Map<string, SourceTable>;
  /** Set when the tables are derived from another layout (MEDS): what that derivation set aside and counted. */
  derivation?: InputDerivation;
}

/** What a source that derives OMOP tables from another layout adds to a run. */
export interface InputDerivation {
  /** Key of its counts in the manifest (`counts.<name>`). */
  name: string;
  /** Sets aside the rows it could not place in a table (with file, row, reason) and maps the derived tables' row numbers back to their files. */
  setAside(conn: DuckDBConnection, rejects: RejectSink): Promise<void>;
  counts: Record<string, unknown>;
  /** Lines for the run summary. */
  summary: string[];
}

const TABLE_NAMES = new Set<string>([...CLINICAL_TABLES.map((t) => t.table), ...Object.keys(VOCABULARY_TABLES)]);
const DATA_EXT = /\.(csv|tsv|txt|parquet)(\.gz)?$/i;

function tableNameOf(fileName: string): string | null {
  const base = fileName.replace(DATA_EXT, '').toLowerCase();
  return TABLE_NAMES.has(base) ? base : null;
}

/**
 * Vocabulary files (Athena's TSV or CDM CSV) are read as DuckDB's sniffer finds them. A .gz file
 * is first inflated to its end: DuckDB alone reads one cut short as a shorter vocabulary.
 */
export async function vocabularyRelation(files: string[]): Promise<string> {
  await Promise.all(files.filter((f) => /\.gz$/i.test(f)).map(verifyGzip));
  const { quote } = dialectOf(readFirstLine(files[0]));
  const list = `[${files.map(sqlString).join(', ')}]`;
  const opts = quote ? `delim=',', quote='"', escape='"'` : `delim='\\t', quote='', escape=''`;
  return `read_csv(${list}, header=true, all_varchar=true, ${opts}, null_padding=true, strict_mode=false)`;
}

/** A file this process may not read is named before DuckDB tries it (exit 3 when the machine refuses it). */
function assertReadable(file: string): void {
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    throw unreadableFile(file, e);
  }
}

export async function describe(conn: DuckDBConnection, relation: string, label: string): Promise<{ columns: Map<string, string>; types: Map<string, string> }> {
  let rows: { column_name: string; column_type: string }[];
  try {
    rows = await queryRows(conn, `DESCRIBE SELECT * FROM ${relation}`);
  } catch (e) {
    if (isDuckOutOfMemory(e)) throw e;
    throw new UserError(`cannot read ${label}: ${(e as Error).message.split('\n')[0]}`);
  }
  const columns = new Map<string, string>();
  const types = new Map<string, string>();
  for (const r of rows) {
    columns.set(r.column_name.toLowerCase(), r.column_name);
    types.set(r.column_name.toLowerCase(), r.column_type);
  }
  return { columns, types };
}

async function fromFolder(conn: DuckDBConnection, dir: string, scratchDir: () => string, opts: OpenOptions = {}, names: Set<string> = TABLE_NAMES): Promise<Map<string, SourceTable>> {
  const groups = new Map<string, string[]>();
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw unreadableFile(dir, e);
  }
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      // A folder per table holding part files (e.g. measurement/part-0.parquet).
      const name = entry.name.toLowerCase();
      if (!names.has(name)) continue;
      const parts = fs.readdirSync(full).filter((f) => DATA_EXT.test(f)).sort().map((f) => path.join(full, f));
      if (parts.length) groups.set(name, parts);
    } else if (DATA_EXT.test(entry.name)) {
      const name = tableNameOf(entry.name);
      if (!name || !names.has(name)) continue;
      if (groups.has(name)) {
        throw new UserError(`${dir}: two files for table ${name}: ${path.basename(groups.get(name)![0])} and ${entry.name}`);
      }
      groups.set(name, [full]);
    }
  }
  const tables = new Map<string, SourceTable>();
  for (const [name, files] of groups) {
    files.forEach(assertReadable);
    const parquet = files.every((f) => /\.parquet$/i.test(f));
    const label = files.length === 1 ? files[0] : `${path.dirname(files[0])} (${files.length} files)`;
    const csv = parquet ? null
      : name in VOCABULARY_TABLES ? { relation: await vocabularyRelation(files), fileRowColumn: null, rejects: CsvRejectLog.none(), staged: null, stagedPersonKey: false }
      : await openCsvTable(conn, files, label, scratchDir, { stage: opts.stageCsv, unchecked: opts.uncheckedCsv });
    const relation = csv?.relation ?? `read_parquet([${files.map(sqlString).join(', ')}])`;
    const { columns, types } = await describe(conn, relation, label);
    if (csv?.fileRowColumn) {
      columns.delete(csv.fileRowColumn);
      types.delete(csv.fileRowColumn);
    }
    tables.set(name, {
      table: name as ClinicalTable,
      file: label,
      files,
      kind: parquet ? 'parquet' : 'csv',
      relation,
      columns,
      types,
      fileRowColumn: csv?.fileRowColumn ?? null,
      readRejects: csv?.rejects ?? CsvRejectLog.none(),
      staged: csv?.staged ?? null,
      stagedPersonKey: csv?.stagedPersonKey ?? false,
    });
  }
  return tables;
}

async function fromDatabase(conn: DuckDBConnection, file: string): Promise<Map<string, SourceTable>> {
  assertReadable(file);
  try {
    await conn.run(`ATTACH ${sqlString(file)} AS omop_src (READ_ONLY)`);
  } catch (e) {
    throw new UserError(`cannot open DuckDB database ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const rows = await queryRows<{ schema_name: string; table_name: string }>(
    conn,
    `SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'omop_src' ORDER BY schema_name = 'main' DESC, schema_name, table_name`,
  );
  const tables = new Map<string, SourceTable>();
  for (const r of rows) {
    const name = r.table_name.toLowerCase();
    if (!TABLE_NAMES.has(name) || tables.has(name)) continue;
    const relation = `omop_src.${q(r.schema_name)}.${q(r.table_name)}`;
    const label = `${file}:${r.schema_name}.${r.table_name}`;
    const { columns, types } = await describe(conn, relation, label);
    tables.set(name, { table: name as ClinicalTable, file: label, files: [file], kind: 'duckdb', relation, columns, types, fileRowColumn: null, readRejects: CsvRejectLog.none(), staged: null });
  }
  return tables;
}

/** A folder of this process for checked CSV copies, made on first use and removed at exit. */
export function processScratchDir(): () => string {
  let dir: string | null = null;
  return () => {
    if (!dir) {
      const made = (dir = makeProcessTempDir('medrep-csv'));
      process.on('exit', () => fs.rmSync(made, { recursive: true, force: true }));
    }
    return dir;
  };
}

export interface OpenOptions {
  /**
   * Copy each clinical CSV table into Parquet in the scratch folder while checking it, and read
   * the copy from then on: memory and rescans then follow the rows, not the text format.
   */
  stageCsv?: boolean;
  /** Read clinical CSV as DuckDB's strict reader does, without medrep's first scan (a benchmark yardstick only). */
  uncheckedCsv?: boolean;
}

/**
 * Opens the OMOP input; vocabulary tables from `vocabDir` replace those found beside the data.
 * `scratchDir` holds checked copies of CSV files with unreadable records and staged copies
 * (default: a folder of this process in the system's temp folder).
 */
export async function openOmopInput(conn: DuckDBConnection, inputPath: string, vocabDir?: string, scratchDir?: string, opts: OpenOptions = {}): Promise<OmopInput> {
  const scratch = scratchDir ? () => scratchDir : processScratchDir();
  if (!fs.existsSync(inputPath)) throw new UserError(`OMOP input not found: ${inputPath}`);
  const stat = fs.statSync(inputPath);
  let kind: InputKind;
  let tables: Map<string, SourceTable>;
  if (stat.isDirectory()) {
    tables = await fromFolder(conn, inputPath, scratch, opts);
    const any = [...tables.values()][0];
    kind = any?.kind ?? 'csv';
  } else if (/\.(duckdb|db|ddb)$/i.test(inputPath)) {
    tables = await fromDatabase(conn, inputPath);
    kind = 'duckdb';
  } else {
    throw new UserError(`${inputPath}: expected a folder of OMOP CSV/Parquet files or a DuckDB database file (.duckdb)`);
  }
  if (vocabDir) for (const [t, v] of await openVocabularyFolder(conn, vocabDir, scratch)) tables.set(t, v);
  for (const spec of CLINICAL_TABLES) {
    const t = tables.get(spec.table);
    if (!t) {
      if (spec.required) {
        const lookedFor = kind === 'duckdb'
          ? `no table named ${spec.table} in any schema of the database (any case)`
          : `looked for ${spec.table}.csv/.parquet in any case`;
        throw new UserError(`${inputPath}: required OMOP table ${spec.table} not found (${lookedFor})`);
      }
      continue;
    }
    requireColumns(t, spec.columns);
  }
  requireVocabulary(tables, inputPath);
  return { path: inputPath, kind, tables };
}

/** The vocabulary tables (CONCEPT, CONCEPT_RELATIONSHIP, CONCEPT_ANCESTOR) of a folder, such as an Athena download. */
export async function openVocabularyFolder(conn: DuckDBConnection, dir: string, scratchDir: () => string): Promise<Map<string, SourceTable>> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UserError(`vocabulary folder not found: ${dir}`);
  // Only the vocabulary files: clinical tables beside them (a CDM folder) are not opened.
  return fromFolder(conn, dir, scratchDir, {}, new Set(Object.keys(VOCABULARY_TABLES)));
}

/** CONCEPT must be there, and every vocabulary table found must have its required columns. */
export function requireVocabulary(tables: Map<string, SourceTable>, inputPath: string): void {
  const concept = tables.get('concept');
  if (!concept) throw new UserError(`${inputPath}: no CONCEPT table found beside the data; pass the Athena vocabulary folder with --vocab DIR`);
  for (const [name, cols] of Object.entries(VOCABULARY_TABLES)) {
    const t = tables.get(name);
    if (t) requireColumns(t, cols);
  }
}

function requireColumns(t: SourceTable, cols: ColumnSpec[]): void {
  for (const c of cols) {
    if (c.required && !t.columns.has(c.name)) {
      throw new UserError(`${t.file}: missing required column "${c.name}" of OMOP table ${t.table}`);
    }
  }
}

/** Whether reading the table again costs a Parquet scan, not a text parse (a CSV table's staged copy counts). */
export function cheapToRescan(t: SourceTable): boolean {
  return t.kind !== 'csv' || !!t.staged;
}

/** SQL expression for a column of the table by its lower-case name, NULL when the column is absent. */
export function col(t: SourceTable, name: string): string {
  const actual = t.columns.get(name);
  return actual ? q(actual) : 'NULL';
}
