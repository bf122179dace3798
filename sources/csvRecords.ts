// CSV records at the byte level, for tables whose strict scan found broken records: the file's
// bytes (inflated when .gz), one record at a time with its fields and physical line, the reject
// log of the records set aside, and the checked copy of the good ones that DuckDB then reads.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { isUtf8 } from 'node:buffer';
import { EnvironmentError, MedrepError, UserError } from '../common/errors';

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

/** Chunks of a file's bytes, decompressed when it is .gz. */
export async function* fileBytes(file: string): AsyncGenerator<Buffer> {
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
export async function writeCheckedCopy(files: string[], columns: string[], d: CsvDialect, target: string, rejects: CsvRejectLog): Promise<void> {
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
