// Strict reading of clinical CSV/TSV tables. DuckDB reads every file with the header's columns
// and strict_mode: a record whose field count differs from the header, a quote that does not
// close, or bytes that are not UTF-8 can never shift, pad or cut values silently. A first scan
// over every column tells whether a table has such records; if it has (rare), the table is read
// once by the record scanner below instead, which sets each bad record aside with its file,
// line and reason and goes on with the next line, and writes the good records, numbered, to a
// scratch copy that DuckDB then reads. A clean file costs one extra parallel scan (and a .gz
// file one inflation to its end, which DuckDB does not check).
// With a staging file, that scan is a copy of the table into Parquet in file order: every later
// query reads the copy, so a large CSV table is parsed once, counted from its metadata, numbered
// by file_row_number and sorted in bounded person ranges, as a Parquet input is.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { isUtf8 } from 'node:buffer';
import { DuckDBConnection } from '@duckdb/node-api';
import { q } from '../schemas/sqlChecks';
import { queryRows, sqlString } from './duck';
import { EnvironmentError, MedrepError, UserError } from '../common/errors';
import { isDuckOutOfMemory } from './memoryLimit';

/** A record that could not be read as a row of its table. */
export interface CsvReadReject {
  file: string;
  /** 1-based data record of the file (the header is not a record). */
  row: number;
  /** 1-based physical line of the file where the record starts (absent where unknown). */
  line?: number;
  column: string;
  reason: string;
  /** The record's text as read (invalid bytes replaced), at most MAX_RECORD_BYTES. */
  text: string;
}

export interface CsvDialect {
  delim: string;
  /** '' when the files are unquoted (Athena's TSV). */
  quote: string;
}

export interface CsvTable {
  /** DuckDB relation over the files (or their checked copy), all columns VARCHAR. */
  relation: string;
  /** Name of the 0-based source record column the relation carries, when it is a copy. */
  fileRowColumn: string | null;
  rejects: CsvRejectLog;
  /** The Parquet copy the relation reads (records in file order), when the table was staged. */
  staged: string | null;
}

/**
 * The records set aside while reading one table, kept in a scratch JSONL file rather than in
 * memory (a file whose every record is bad must not exhaust the heap); read back in order.
 */
export class CsvRejectLog implements Iterable<CsvReadReject> {
  count = 0;
  private fd: number | null = null;
  private constructor(readonly file: string | null) {}

  static none(): CsvRejectLog {
    return new CsvRejectLog(null);
  }

  static create(file: string): CsvRejectLog {
    const log = new CsvRejectLog(file);
    log.fd = fs.openSync(file, 'w');
    return log;
  }

  private pending: string[] = [];
  private pendingChars = 0;

  add(r: CsvReadReject): void {
    if (this.fd === null) throw new Error('reject log is closed');
    const line = JSON.stringify(r) + '\n';
    this.pending.push(line);
    this.pendingChars += line.length;
    this.count++;
    if (this.pendingChars >= 1 << 20) this.flush();
  }

  private flush(): void {
    if (this.fd !== null && this.pending.length) fs.writeSync(this.fd, this.pending.join(''));
    this.pending = [];
    this.pendingChars = 0;
  }

  close(): void {
    this.flush();
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  *[Symbol.iterator](): Iterator<CsvReadReject> {
    if (!this.file || this.count === 0) return;
    const fd = fs.openSync(this.file, 'r');
    try {
      const buf = Buffer.alloc(1 << 20);
      let rest = '';
      for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) {
        const lines = (rest + buf.toString('utf8', 0, n)).split('\n');
        rest = lines.pop()!;
        for (const l of lines) yield JSON.parse(l) as CsvReadReject;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** A record longer than this (DuckDB's default max_line_size) is a broken record, not a long one. */
const MAX_RECORD_BYTES = 2 * 1024 * 1024;
export const UNBALANCED_QUOTE = 'unbalanced quote: a quoted value does not close where its field ends';
const HEAD_BYTES = 65536;
export const FILE_ROW_COLUMN = '__file_row';

/** A file that cannot be opened or read: the user's (missing, a folder) or the machine's (permission, I/O). */
const ERRNO_REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOENT: 'no such file or directory (or a link to none)',
  EIO: 'input/output error',
};

export function unreadableFile(file: string, e: unknown): MedrepError {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  const reason = ERRNO_REASONS[code] ?? (e as Error).message;
  const environment = ['EACCES', 'EPERM', 'EIO', 'EMFILE', 'ENFILE'].includes(code);
  return environment ? new EnvironmentError(`cannot read ${file}: ${reason}`) : new UserError(`cannot read ${file}: ${reason}`);
}

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
async function strictScanOk(conn: DuckDBConnection, relation: string, columns: string[], label: string, stage: string | null): Promise<boolean> {
  try {
    if (stage) await stageCopy(conn, relation, stage);
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
async function stageCopy(conn: DuckDBConnection, relation: string, target: string): Promise<void> {
  const tmp = `${target}.tmp-${process.pid}`;
  try {
    await conn.run(`COPY (SELECT * FROM ${relation}) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION snappy)`);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.renameSync(tmp, target);
}

/** The relation over a staged copy (all columns VARCHAR, as read from the CSV). */
const stagedRelation = (file: string) => `read_parquet(${sqlString(file)})`;

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
  if (opts.unchecked) return { relation: direct(''), fileRowColumn: null, rejects: CsvRejectLog.none(), staged: null };
  const staged = opts.stage ? path.join(scratchDir(), `staged-${n}-${base}.parquet`) : null;
  // Both run to their end before either's error is thrown: a connection must not close under a running query.
  const [scan, ...gzips] = await Promise.allSettled([strictScanOk(conn, direct(''), columns, label, staged), ...files.filter((f) => /\.gz$/i.test(f)).map(verifyGzip)]);
  for (const g of gzips) if (g.status === 'rejected') throw g.reason;
  if (scan.status === 'rejected') throw scan.reason;
  if (scan.value) return { relation: staged ? stagedRelation(staged) : direct(''), fileRowColumn: null, rejects: CsvRejectLog.none(), staged };

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
    if (!staged) return { relation: ofCopy(', ignore_errors=true'), fileRowColumn: FILE_ROW_COLUMN, rejects, staged };
    await stageCopy(conn, ofCopy(', ignore_errors=true'), staged);
    fs.rmSync(copy, { force: true });
    return { relation: stagedRelation(staged), fileRowColumn: FILE_ROW_COLUMN, rejects, staged };
  } finally {
    rejects.close();
  }
}

/** Chunks of a file's bytes, decompressed when it is .gz. */
async function* fileBytes(file: string): AsyncGenerator<Buffer> {
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  let stream: NodeJS.ReadableStream = raw;
  if (/\.gz$/i.test(file)) {
    const gunzip = zlib.createGunzip();
    raw.on('error', (e) => gunzip.destroy(e)); // pipe() does not pass a read error on
    stream = raw.pipe(gunzip);
  }
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (code.startsWith('Z_')) throw new UserError(`${file}: not a readable gzip file (${(e as Error).message})`);
    throw unreadableFile(file, e);
  } finally {
    raw.destroy();
  }
}

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;

type Scan =
  | { kind: 'record'; end: number; next: number; fieldStarts: number[] }
  | { kind: 'bad'; reason: string; field: number }
  | { kind: 'more' };

/**
 * One record from `start`: its end (before the line break), the start of the next and where each
 * field starts; or why it is broken; or that more bytes are needed. A quote opens a field only at
 * its start (elsewhere it is a character, as DuckDB reads it); "" inside quotes is one quote.
 */
function scanRecord(buf: Buffer, start: number, eof: boolean, delim: number, quote: number): Scan {
  const fieldStarts = [start];
  let i = start;
  for (;;) {
    if (quote >= 0 && buf[i] === quote) {
      let j = i + 1;
      for (;;) {
        const k = buf.indexOf(quote, j);
        if (k < 0 || k + 1 >= buf.length) {
          if (!eof && buf.length - start <= MAX_RECORD_BYTES) return { kind: 'more' };
          if (k < 0) return { kind: 'bad', reason: UNBALANCED_QUOTE, field: fieldStarts.length - 1 };
          i = k + 1;
          break;
        }
        if (buf[k + 1] === quote) {
          j = k + 2;
          continue;
        }
        i = k + 1;
        break;
      }
      while (i < buf.length && buf[i] === SPACE && delim !== SPACE) i++;
      if (i < buf.length && buf[i] !== delim && buf[i] !== LF && !(buf[i] === CR && buf[i + 1] === LF)) {
        if (i + 1 >= buf.length && !eof) return { kind: 'more' };
        return { kind: 'bad', reason: UNBALANCED_QUOTE, field: fieldStarts.length - 1 };
      }
      if (buf[i] === CR) i++;
    } else {
      while (i < buf.length && buf[i] !== delim && buf[i] !== LF) i++;
    }
    if (i >= buf.length) {
      if (!eof && buf.length - start <= MAX_RECORD_BYTES) return { kind: 'more' };
      if (!eof) return { kind: 'bad', reason: `record longer than ${MAX_RECORD_BYTES} bytes`, field: fieldStarts.length - 1 };
      return { kind: 'record', end: buf[i - 1] === CR ? i - 1 : i, next: i, fieldStarts };
    }
    if (buf[i] === LF) return { kind: 'record', end: i > start && buf[i - 1] === CR ? i - 1 : i, next: i + 1, fieldStarts };
    if (i - start > MAX_RECORD_BYTES) return { kind: 'bad', reason: `record longer than ${MAX_RECORD_BYTES} bytes`, field: fieldStarts.length - 1 };
    i++;
    fieldStarts.push(i);
  }
}

function countLf(buf: Buffer, from: number, to: number): number {
  let n = 0;
  for (let i = buf.indexOf(LF, from); i >= 0 && i < to; i = buf.indexOf(LF, i + 1)) n++;
  return n;
}

/** Lines of the checked copy, gathered in one reused buffer (no allocation per record). */
class CopyWriter {
  private buf = Buffer.allocUnsafe(4 << 20);
  private length = 0;
  constructor(private readonly fd: number) {}

  /** Writes `prefix`, then (after `delim`, when >= 0) the bytes src[from, to), then a line break. */
  record(prefix: string, src: Buffer, from: number, to: number, delim: number): void {
    const need = prefix.length * 3 + 2 + (to - from);
    if (this.length + need > this.buf.length) {
      this.flush();
      if (need > this.buf.length) this.buf = Buffer.allocUnsafe(need);
    }
    this.length += this.buf.write(prefix, this.length, 'utf8');
    if (delim >= 0) this.buf[this.length++] = delim;
    this.length += src.copy(this.buf, this.length, from, to);
    this.buf[this.length++] = LF;
  }

  flush(): void {
    if (this.length) fs.writeSync(this.fd, this.buf, 0, this.length);
    this.length = 0;
  }
}

/**
 * Reads every file record by record; writes the good ones to `target` as CSV with their 0-based
 * source record number first; returns the bad ones. A broken record is its first line only:
 * the scan goes on at the next line, so one stray quote cannot swallow the rest of the file.
 */
async function writeCheckedCopy(files: string[], columns: string[], d: CsvDialect, target: string, rejects: CsvRejectLog): Promise<void> {
  const width = columns.length;
  const delim = d.delim.charCodeAt(0);
  const quote = d.quote ? d.quote.charCodeAt(0) : -1;
  const tmp = `${target}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  const out = new CopyWriter(fd);
  let sourceRow = 0; // over all files of the table, as DuckDB numbers the rows of a clean table
  try {
    const copyHeader = [FILE_ROW_COLUMN, ...columns].map((c) => (d.quote && /[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c)).join(d.delim);
    out.record(copyHeader, Buffer.alloc(0), 0, 0, -1);
    for (const file of files) {
      let buf: Buffer = Buffer.alloc(0);
      let pos = 0;
      let line = 1;
      let fileRow = 0;
      let header = true;
      const step = (eof: boolean): boolean => {
        if (pos >= buf.length) return false;
        if (header && pos === 0 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) pos = 3;
        const s = scanRecord(buf, pos, eof, delim, quote);
        if (s.kind === 'more') return false;
        const reject = (reason: string, column: string, end: number) => {
          sourceRow++;
          fileRow++;
          rejects.add({ file, row: fileRow, line, column, reason, text: buf.subarray(pos, Math.min(end, pos + MAX_RECORD_BYTES)).toString('utf8') });
        };
        if (s.kind === 'bad') {
          const lineEnd = buf.indexOf(LF, pos);
          const end = lineEnd < 0 ? buf.length : lineEnd;
          if (header) throw new UserError(`${file} line 1: the header is not readable as CSV (${s.reason})`);
          reject(s.reason, columns[s.field] ?? '(row)', end > pos && buf[end - 1] === CR ? end - 1 : end);
          pos = lineEnd < 0 ? buf.length : lineEnd + 1;
          line++;
          return true;
        }
        const lines = 1 + countLf(buf, pos, s.end);
        if (s.end === pos && !header) {
          // DuckDB skips an empty line; it is no record.
        } else if (header) {
          header = false;
        } else if (s.fieldStarts.length !== width) {
          reject(`${s.fieldStarts.length} fields where the header has ${width}`, '(row)', s.end);
        } else if (!isUtf8(buf.subarray(pos, s.end))) {
          const f = s.fieldStarts.findIndex((from, k) => !isUtf8(buf.subarray(from, k + 1 < s.fieldStarts.length ? s.fieldStarts[k + 1] - 1 : s.end)));
          reject('bytes that are not UTF-8 (the file must be UTF-8 encoded)', columns[f] ?? '(row)', s.end);
        } else {
          out.record(String(sourceRow), buf, pos, s.end, delim);
          sourceRow++;
          fileRow++;
        }
        line += lines;
        pos = s.next;
        return true;
      };
      for await (const chunk of fileBytes(file)) {
        buf = pos < buf.length ? Buffer.concat([buf.subarray(pos), chunk]) : chunk;
        pos = 0;
        while (step(false));
      }
      while (step(true));
    }
    out.flush();
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, target);
}
