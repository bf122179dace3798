// Parquet files written atomically: encode (parquet-wasm, zstd), write to a temporary name,
// fsync, rename, fsync the folder. A crash leaves either the old state or the whole new file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { DuckDBConnection } from '@duckdb/node-api';
import { sha256 } from '../transforms/hashing';
import { sqlString } from '../common/sql';
import { ROW_UNIQUE_COLUMNS } from '../schemas/records';

// parquet-wasm's Node build (its "exports" map); types from the same build's declarations.
const parquetWasm = require('parquet-wasm/node') as typeof import('parquet-wasm/node/parquet_wasm');

export interface WrittenFile {
  path: string;
  rows: number;
  bytes: number;
  sha256: string;
}

/**
 * Columns written without a dictionary: the top-level ones of fixed-width types (ids, times,
 * numbers, flags), whose dictionary pages cost more to build than they save (events shards: a
 * fifth less encoding CPU and 4% smaller files), and text unique to each row (an event's origin:
 * its dictionary fills up and is dropped, after the work). Other text and list columns keep it:
 * their values (units, table names, the concept ids and deciles of a window) repeat.
 */
export function plainColumns(schema: arrow.Schema): string[] {
  const fixedWidth = (t: arrow.DataType) => arrow.DataType.isInt(t) || arrow.DataType.isFloat(t) || arrow.DataType.isTimestamp(t) || arrow.DataType.isBool(t) || arrow.DataType.isDate(t);
  return schema.fields.filter((f) => fixedWidth(f.type) || ROW_UNIQUE_COLUMNS.includes(f.name)).map((f) => f.name);
}

/** Parquet bytes (zstd) of an Arrow IPC stream; `plain` as plainColumns gives for its schema. */
export function encodeParquetFromIpc(ipc: Uint8Array, plain: readonly string[]): Uint8Array {
  const wasmTable = parquetWasm.Table.fromIPCStream(ipc);
  // writeParquet consumes the table and the properties object: fresh properties per call.
  let builder = new parquetWasm.WriterPropertiesBuilder().setCompression(parquetWasm.Compression.ZSTD).setMaxRowGroupSize(1 << 20);
  for (const name of plain) builder = builder.setColumnDictionaryEnabled(name, false);
  return parquetWasm.writeParquet(wasmTable, builder.build());
}

export function encodeParquet(table: arrow.Table): Uint8Array {
  return encodeParquetFromIpc(arrow.tableToIPC(table, 'stream'), plainColumns(table.schema));
}

export function writeFileAtomic(target: string, bytes: Uint8Array): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}`;
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      // A write may be short (the disk filled up mid-way); the next one reports why.
      for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done);
    } finally {
      fs.closeSync(fd);
    }
    commitFileAtomic(tmp, target);
  } catch (e) {
    // A failed write (disk full) leaves no half-written file behind, and its error names the
    // file (a write to a descriptor names none).
    fs.rmSync(tmp, { force: true });
    const errno = e as NodeJS.ErrnoException;
    if (errno.code && errno.path === undefined) errno.path = tmp;
    throw e;
  }
}

/** Makes a complete temporary file `tmp` durable and renames it to `target` (written by another writer, e.g. DuckDB's COPY). */
export function commitFileAtomic(tmp: string, target: string): void {
  const fd = fs.openSync(tmp, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, target);
  const dirFd = fs.openSync(path.dirname(target), 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}

/** Parquet written by DuckDB's COPY of `select` (`options`: more COPY options), atomically as writeFileAtomic. */
export async function copyParquetAtomic(conn: DuckDBConnection, select: string, target: string, options = ''): Promise<WrittenFile> {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}`;
  let rows: number;
  try {
    // COPY answers with the rows it wrote; its file becomes the target as it is (no second write).
    rows = Number((await conn.runAndReadAll(`COPY (${select}) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd${options})`)).getRows()[0][0]);
    commitFileAtomic(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  const bytes = fs.readFileSync(target);
  return { path: target, rows, bytes: bytes.length, sha256: sha256(bytes) };
}

export function writeParquetAtomic(target: string, table: arrow.Table): WrittenFile {
  const bytes = encodeParquet(table);
  writeFileAtomic(target, bytes);
  return { path: target, rows: table.numRows, bytes: bytes.length, sha256: sha256(bytes) };
}
