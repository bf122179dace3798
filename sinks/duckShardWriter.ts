// Shards encoded by DuckDB's Parquet writer (C++, zstd, on DuckDB's threads): COPY reads the
// shard from a table function that hands DuckDB an Arrow table's buffers as they are
// (fixed-width values, validity bits, list offsets and children: one memory copy per column per
// 2,048 rows; a call per value only for text, which the events shard sends as codes). Nothing is
// stored in DuckDB on the way. Measured against parquet-wasm on the same shards
// (bench/shardWriters.ts, bench/results/shard-writers.json): 0.4-0.7x its CPU, 7-15% smaller
// files. The file is written under a temporary name and renamed (parquet.ts copyParquetAtomic).
import * as arrow from 'apache-arrow';
import {
  BIGINT, BOOLEAN, DOUBLE, DuckDBConnection, DuckDBTableFunction, DuckDBType, FLOAT, INTEGER, LIST, SMALLINT, TIMESTAMP, TINYINT, VARCHAR,
} from '@duckdb/node-api';
import { WrittenFile, copyParquetAtomic } from './parquet';
import { ShardData, ShardWriter } from './shards';

// The C API beneath node-api: the vector calls node-api makes one value at a time, here per chunk.
const duckdb = require('@duckdb/node-bindings') as typeof import('@duckdb/node-bindings');

/** Rows per DuckDB data chunk (STANDARD_VECTOR_SIZE). */
const CHUNK_ROWS = 2048;

/** The DuckDB column type of an Arrow type (the types shards use). */
export function duckTypeOf(t: arrow.DataType): DuckDBType {
  if (arrow.DataType.isList(t)) return LIST(duckTypeOf(t.children[0].type));
  if (arrow.DataType.isTimestamp(t)) {
    if (t.unit !== arrow.TimeUnit.MICROSECOND || t.timezone) throw new Error(`shard writer: timestamps are microseconds without a zone, not ${t}`);
    return TIMESTAMP;
  }
  if (arrow.DataType.isInt(t) && t.isSigned) {
    const byWidth: Record<number, DuckDBType> = { 8: TINYINT, 16: SMALLINT, 32: INTEGER, 64: BIGINT };
    return byWidth[t.bitWidth];
  }
  if (arrow.DataType.isFloat(t) && t.precision !== arrow.Precision.HALF) return t.precision === arrow.Precision.DOUBLE ? DOUBLE : FLOAT;
  if (arrow.DataType.isBool(t)) return BOOLEAN;
  if (arrow.DataType.isUtf8(t)) return VARCHAR;
  throw new Error(`shard writer: no DuckDB type for ${t}`);
}

type Vector = ReturnType<typeof duckdb.data_chunk_get_vector>;

/** Copies rows [from, from + n) of `data`'s validity bits (Arrow: LSB first, as DuckDB's mask). */
function copyValidity(vec: Vector, data: arrow.Data, from: number, n: number): void {
  if (!data.nullCount || !data.nullBitmap || data.nullBitmap.length === 0) return;
  const bytes = data.nullBitmap;
  const start = data.offset + from;
  duckdb.vector_ensure_validity_writable(vec);
  if (start % 8 === 0) {
    duckdb.copy_data_to_vector_validity(vec, 0, bytes.buffer as ArrayBuffer, bytes.byteOffset + start / 8, Math.min(Math.ceil(n / 8), bytes.length - start / 8));
    return;
  }
  // Not on a byte boundary (a list's items): the bits shifted into place, a byte at a time.
  const shift = start & 7;
  const src = start >> 3;
  const bits = new Uint8Array(Math.ceil(n / 64) * 8);
  for (let j = 0; j < Math.ceil(n / 8); j++) bits[j] = ((bytes[src + j] >> shift) | ((bytes[src + j + 1] ?? 0) << (8 - shift))) & 0xff;
  duckdb.copy_data_to_vector_validity(vec, 0, bits.buffer, 0, bits.byteLength);
}

/** Copies values [from, from + n) of a fixed-width or boolean Data into `vec` (its validity apart). */
function copyValues(vec: Vector, data: arrow.Data, from: number, n: number): void {
  if (arrow.DataType.isBool(data.type)) {
    // Arrow packs booleans in bits; DuckDB keeps a byte per value.
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = data.values[(data.offset + from + i) >> 3] & (1 << ((data.offset + from + i) & 7)) ? 1 : 0;
    duckdb.copy_data_to_vector(vec, 0, bytes.buffer, 0, n);
    return;
  }
  const values = data.values as ArrayBufferView & { BYTES_PER_ELEMENT: number };
  const width = values.BYTES_PER_ELEMENT * (arrow.DataType.isTimestamp(data.type) && values.BYTES_PER_ELEMENT === 4 ? 2 : 1);
  if (n > 0) duckdb.copy_data_to_vector(vec, 0, values.buffer as ArrayBuffer, values.byteOffset + (data.offset + from) * width, n * width);
}

function fillVector(vec: Vector, data: arrow.Data, from: number, n: number): void {
  copyValidity(vec, data, from, n);
  const t = data.type;
  if (arrow.DataType.isUtf8(t)) {
    const offsets = data.valueOffsets as Int32Array;
    const bytes = data.values as Uint8Array;
    for (let i = 0; i < n; i++) {
      const r = data.offset + from + i;
      if (data.nullCount && !data.getValid(from + i)) continue;
      duckdb.vector_assign_string_element_len(vec, i, bytes.subarray(offsets[r], offsets[r + 1]));
    }
    return;
  }
  if (arrow.DataType.isList(t)) {
    const offsets = data.valueOffsets as Int32Array;
    const first = offsets[data.offset + from];
    const count = offsets[data.offset + from + n] - first;
    // duckdb_list_entry: two uint64 (offset, length) per row, written as 32-bit halves.
    const entries = new Uint32Array(n * 4);
    for (let i = 0; i < n; i++) {
      const r = data.offset + from + i;
      entries[i * 4] = offsets[r] - first;
      entries[i * 4 + 2] = offsets[r + 1] - offsets[r];
    }
    duckdb.copy_data_to_vector(vec, 0, entries.buffer, 0, entries.byteLength);
    duckdb.list_vector_reserve(vec, count);
    duckdb.list_vector_set_size(vec, count);
    fillVector(duckdb.list_vector_get_child(vec), data.children[0], first, count);
    return;
  }
  copyValues(vec, data, from, n);
}

/** Bytes of shard data per Parquet row group: what DuckDB's writer holds per group before it is written. */
const ROW_GROUP_BYTES = 8 << 20;

/**
 * Rows per row group: DuckDB's default (122,880) for narrow rows, fewer for wide ones (a sample's
 * token lists), so that a group stays near ROW_GROUP_BYTES of memory. A function of the data alone.
 */
export function rowGroupRows(table: arrow.Table): number {
  const bytes = table.batches.reduce((a, b) => a + b.data.byteLength, 0);
  const perRow = table.numRows ? bytes / table.numRows : 1;
  return Math.max(1024, Math.min(122_880, Math.floor(ROW_GROUP_BYTES / perRow)));
}

/** Writers made in this process: each registers its table function under its own name. */
let writersMade = 0;

/** Where a table function's scan of one shard stands: the batch and the row within it. */
interface ScanState { batch: number; row: number }

export class DuckShardWriter implements ShardWriter {
  private next = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly pending: Promise<WrittenFile>[] = [];
  /** The tables COPY is to read, by the id the SQL passes to the table function. */
  private readonly tables = new Map<number, arrow.Table>();
  private readonly fn: string;

  /** `conn` runs the COPYs one after another; at most `maxPending` shards wait, which bounds memory. */
  constructor(
    private readonly conn: DuckDBConnection,
    private readonly maxPending = 2,
  ) {
    this.fn = `medrep_arrow_shard_${writersMade++}`;
    conn.registerTableFunction(DuckDBTableFunction.create({
      name: this.fn,
      parameterTypes: [BIGINT],
      bindFunction: (bind) => {
        const id = Number(bind.getParameter(0));
        const table = this.tables.get(id);
        if (!table) return bind.setError(`shard writer: no table ${id}`);
        for (const f of table.schema.fields) bind.addResultColumn(f.name, duckTypeOf(f.type));
        bind.setBindData({ table });
        bind.setCardinality(table.numRows, true);
      },
      initFunction: (init) => init.setInitData({ batch: 0, row: 0 } as ScanState),
      mainFunction: (info, out) => {
        const { table } = info.getBindData() as { table: arrow.Table };
        const st = info.getInitData() as ScanState;
        while (st.batch < table.batches.length && st.row >= table.batches[st.batch].numRows) {
          st.batch++;
          st.row = 0;
        }
        if (st.batch >= table.batches.length) {
          out.rowCount = 0;
          return;
        }
        const batch = table.batches[st.batch];
        const n = Math.min(CHUNK_ROWS, batch.numRows - st.row);
        out.rowCount = n;
        for (let c = 0; c < batch.numCols; c++) fillVector(duckdb.data_chunk_get_vector(out.chunk, c), batch.data.children[c], st.row, n);
        st.row += n;
      },
    }));
  }

  /** Queues a shard (waiting first if too many are queued); `done` resolves when its file is durable. */
  async write(target: string, data: ShardData): Promise<{ done: Promise<WrittenFile> }> {
    while (this.pending.length >= this.maxPending) await this.pending.shift();
    const id = this.next++;
    const staged = data instanceof arrow.Table ? { staging: data, select: '*' } : data;
    for (const f of staged.staging.schema.fields) duckTypeOf(f.type); // an unknown type fails here, not inside DuckDB's scan
    this.tables.set(id, staged.staging);
    const groupRows = rowGroupRows(staged.staging);
    const copy = () =>
      copyParquetAtomic(this.conn, `SELECT ${staged.select} FROM ${this.fn}(${id})`, target, `, ROW_GROUP_SIZE ${groupRows}`).finally(() => this.tables.delete(id));
    const done = (this.tail = this.tail.then(copy, copy)) as Promise<WrittenFile>;
    this.pending.push(done);
    done.catch(() => undefined); // surfaced by the caller's await; avoid an unhandled rejection meanwhile
    return { done };
  }

  async close(): Promise<void> {
    await Promise.all(this.pending.splice(0));
  }

  /** After a failure elsewhere: waits for the COPYs queued (none may outlive the connection). */
  async terminate(): Promise<void> {
    await Promise.allSettled(this.pending.splice(0));
  }
}
