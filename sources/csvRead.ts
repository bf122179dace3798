// Strict reading of clinical CSV/TSV tables. DuckDB reads every file with the header's columns
// and strict_mode: a record whose field count differs from the header, a quote that does not
// close, or bytes that are not UTF-8 can never shift, pad or cut values silently. A first scan
// over every column tells whether a table has such records; if it has (rare), the table is read
// once by the record scanner (csvRecords.ts) instead, which sets each bad record aside with its file,
// line and reason and goes on with the next line, and writes the good records, numbered, to a
// scratch copy that DuckDB then reads. A clean file costs one extra parallel scan (and a .gz
// file one inflation to its end, which DuckDB does not check).
// With a staging file, that scan is a copy of the table into Parquet in file order: every later
// query reads the copy, so a large CSV table is parsed once, counted from its metadata, numbered
// by file_row_number and sorted in bounded person ranges, as a Parquet input is (the copy also
// holds the typed person id, so a range reads its own persons' row groups, not every row).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DuckDBConnection } from '@duckdb/node-api';
import { q } from '../schemas/sqlChecks';
import { queryRows, sqlString } from './duck';
import { UserError } from '../common/errors';
import { CsvDialect, CsvRejectLog, FILE_ROW_COLUMN, fileBytes, unreadableFile, writeCheckedCopy } from './csvRecords';
import { isDuckOutOfMemory } from './memoryLimit';

export interface CsvTable {
  /** DuckDB relation over the files (or their checked copy), all columns VARCHAR. */
  relation: string;
  /** Name of the 0-based source record column the relation carries, when it is a copy. */
  fileRowColumn: string | null;
  rejects: CsvRejectLog;
  /** The Parquet copy the relation reads (records in file order), when the table was staged. */
  staged: string | null;
  /** Whether the staged copy also holds the typed person id as PERSON_KEY (the relation hides it). */
  stagedPersonKey: boolean;
}

/**
 * The staged copy's typed person id (`TRY_CAST` of the text, as every reader types it): its
 * row-group statistics let a query for a range of persons skip the other persons' rows, as in a
 * typed Parquet input. Only the event pass's range queries read it (sources/eventSource.ts).
 */
export const PERSON_KEY = '__medrep_person_key';

const HEAD_BYTES = 65536;

/** The first line of a file (decompressing only the start of a .gz file). */
export function readFirstLine(file: string): string {
  let head: Buffer;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(HEAD_BYTES);
      head = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw unreadableFile(file, e);
  }
  if (/\.gz$/i.test(file)) {
    try {
      // SYNC_FLUSH: inflate what these bytes hold, without requiring the end of the stream.
      head = zlib.gunzipSync(head, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (e) {
      throw new UserError(`${file}: not a readable gzip file (${(e as Error).message})`);
    }
  }
  return head.toString('utf8').replace(/^\uFEFF/, '').split('\n')[0].replace(/\r$/, '');
}

/** Athena's files are tab separated with no quoting; CDM exports are usually comma separated with quotes. */
export function dialectOf(headerLine: string): CsvDialect {
  return headerLine.includes('\t') ? { delim: '\t', quote: '' } : { delim: ',', quote: '"' };
}

/** Column names of a header line; an empty one (a trailing delimiter) is named by its position. */
export function headerFields(headerLine: string, d: CsvDialect): string[] {
  const fields = headerLine.split(d.delim).map((f) => f.trim());
  const unquoted = d.quote ? fields.map((f) => (f.startsWith(d.quote) && f.endsWith(d.quote) && f.length >= 2 ? f.slice(1, -1).replace(/""/g, '"') : f)) : fields;
  return unquoted.map((f, i) => f || `column${i}`);
}

function readCsvSql(files: string[], columns: string[], d: CsvDialect, extra: string): string {
  const list = `[${files.map(sqlString).join(', ')}]`;
  const cols = `{${columns.map((c) => `${sqlString(c)}: 'VARCHAR'`).join(', ')}}`;
  const dialect = d.quote ? `delim=',', quote='"', escape='"'` : `delim='\\t', quote='', escape=''`;
  return `read_csv(${list}, header=true, auto_detect=false, columns=${cols}, ${dialect}, strict_mode=true, null_padding=false${extra})`;
}

let scanCount = 0;

/** Reads every column: DuckDB checks UTF-8 only in the columns a query reads. */
const scanAll = (relation: string, columns: string[]) => `SELECT sum(hash(${columns.map(q).join(', ')})) FROM ${relation}`;

/**
 * Whether DuckDB's strict reader reads every record of the files. It stops at the first record
 * it refuses, so a table with bad records costs no more to find than a clean one.
 */
async function strictScanOk(conn: DuckDBConnection, relation: string, columns: string[], label: string, stage: string | null, personColumn: string | null): Promise<boolean> {
  try {
    if (stage) await stageCopy(conn, relation, stage, personColumn);
    else await conn.run(scanAll(relation, columns));
    return true;
  } catch (e) {
    const message = (e as Error).message;
    if (/^Invalid Input Error: CSV Error on Line/.test(message)) return false;
    // Not about the file: memory, a full disk while staging, a failed rename (classified by the CLI).
    if (isDuckOutOfMemory(e) || /no space left|disk quota/i.test(message) || (e as NodeJS.ErrnoException).code) throw e;
    throw new UserError(`cannot read ${label}: ${message.split('\n')[0]}`);
  }
}

/**
 * Copies every column of `relation` into the Parquet file `target`, records in the order read
 * (the instance keeps insertion order), under a temporary name until complete.
 */
async function stageCopy(conn: DuckDBConnection, relation: string, target: string, personColumn: string | null): Promise<void> {
  const tmp = `${target}.tmp-${process.pid}`;
  const key = personColumn === null ? '' : `, TRY_CAST(CAST(${q(personColumn)} AS VARCHAR) AS BIGINT) AS ${PERSON_KEY}`;
  try {
    await conn.run(`COPY (SELECT *${key} FROM ${relation}) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION snappy)`);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.renameSync(tmp, target);
}

/** The relation over a staged copy (all columns VARCHAR, as read from the CSV; the person key hidden). */
const stagedRelation = (file: string, keyed: boolean) => (keyed ? `(SELECT * EXCLUDE (${PERSON_KEY}) FROM read_parquet(${sqlString(file)}))` : `read_parquet(${sqlString(file)})`);

/** The records of the checked copy that DuckDB's strict reader still refuses (none expected). */
async function copyRefusals(conn: DuckDBConnection, relationOf: (extra: string) => string, columns: string[], label: string) {
  const n = ++scanCount;
  const [errors, scans] = [`medrep_csv_errors_${n}`, `medrep_csv_scans_${n}`];
  try {
    await conn.run(scanAll(relationOf(`, store_rejects=true, rejects_table='${errors}', rejects_scan='${scans}'`), columns));
    return await queryRows<{ error_type: string; csv_line: string }>(conn, `SELECT CAST(error_type AS VARCHAR) AS error_type, csv_line FROM ${errors} ORDER BY line`);
  } catch (e) {
    if (isDuckOutOfMemory(e)) throw e;
    throw new UserError(`cannot read ${label}: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    await conn.run(`DROP TABLE IF EXISTS ${errors}`);
    await conn.run(`DROP TABLE IF EXISTS ${scans}`);
  }
}

/**
 * DuckDB reads a .gz file cut short as if it ended there (no error when the cut falls between
 * lines), so every .gz file is inflated once to its end, streaming, on zlib's own threads.
 */
export async function verifyGzip(file: string): Promise<void> {
  for await (const chunk of fileBytes(file)) void chunk;
}

export interface CsvOpenOptions {
  /** Copy the table into Parquet while checking it, and read the copy (see the top of this file). */
  stage?: boolean;
  /** No first scan: DuckDB's strict reader fails at a bad record (the benchmark's DuckDB-only yardstick). */
  unchecked?: boolean;
}

/**
 * Opens the CSV files of one clinical table strictly. `scratchDir()` gives the folder for the
 * checked copy, asked for only when a file has records DuckDB's strict reader refuses, and for
 * the Parquet copy when `opts.stage` is set.
 */
export async function openCsvTable(conn: DuckDBConnection, files: string[], label: string, scratchDir: () => string, opts: CsvOpenOptions = {}): Promise<CsvTable> {
  const headerLine = readFirstLine(files[0]);
  const dialect = dialectOf(headerLine);
  const columns = headerFields(headerLine, dialect);
  for (const f of files.slice(1)) {
    if (readFirstLine(f) !== headerLine) throw new UserError(`${f}: header differs from ${files[0]}'s; the files of one table must have the same columns`);
  }
  const duplicate = columns.find((c, i) => columns.findIndex((x) => x.toLowerCase() === c.toLowerCase()) !== i);
  if (duplicate !== undefined) throw new UserError(`${files[0]}: column "${duplicate}" appears twice in the header`);
  const direct = (extra: string) => readCsvSql(files, columns, dialect, extra);
  const n = ++scanCount;
  const base = path.basename(files[0]).replace(/\.gz$/i, '');
  if (opts.unchecked) return { relation: direct(''), fileRowColumn: null, rejects: CsvRejectLog.none(), staged: null, stagedPersonKey: false };
  const staged = opts.stage ? path.join(scratchDir(), `staged-${n}-${base}.parquet`) : null;
  const personColumn = columns.find((c) => c.toLowerCase() === 'person_id') ?? null;
  const keyed = staged !== null && personColumn !== null;
  // Both run to their end before either's error is thrown: a connection must not close under a running query.
  const [scan, ...gzips] = await Promise.allSettled([strictScanOk(conn, direct(''), columns, label, staged, personColumn), ...files.filter((f) => /\.gz$/i.test(f)).map(verifyGzip)]);
  for (const g of gzips) if (g.status === 'rejected') throw g.reason;
  if (scan.status === 'rejected') throw scan.reason;
  if (scan.value) return { relation: staged ? stagedRelation(staged, keyed) : direct(''), fileRowColumn: null, rejects: CsvRejectLog.none(), staged, stagedPersonKey: keyed };

  const copy = path.join(scratchDir(), `checked-${n}-${base}`);
  const rejects = CsvRejectLog.create(`${copy}.rejects.jsonl`);
  try {
    await writeCheckedCopy(files, columns, dialect, copy, rejects);
    const copyColumns = [FILE_ROW_COLUMN, ...columns];
    const ofCopy = (extra: string) => readCsvSql([copy], copyColumns, dialect, extra);
    // The scanner accepts only what DuckDB's reader accepts; should DuckDB still refuse a record
    // of the copy, it is a reject too (its source record number is the copy's first field).
    for (const r of await copyRefusals(conn, ofCopy, copyColumns, label)) {
      const sourceRow = Number(r.csv_line.replace(/^[\r\n]+/, '').split(dialect.delim)[0]) + 1;
      rejects.add({ file: label, row: sourceRow, column: '(row)', reason: `not readable as CSV (${r.error_type.toLowerCase()})`, text: r.csv_line });
    }
    if (!staged) return { relation: ofCopy(', ignore_errors=true'), fileRowColumn: FILE_ROW_COLUMN, rejects, staged, stagedPersonKey: false };
    await stageCopy(conn, ofCopy(', ignore_errors=true'), staged, personColumn);
    fs.rmSync(copy, { force: true });
    return { relation: stagedRelation(staged, keyed), fileRowColumn: FILE_ROW_COLUMN, rejects, staged, stagedPersonKey: keyed };
  } finally {
    rejects.close();
  }
}

