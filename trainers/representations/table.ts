// Representation tables: Parquet with columns concept_id int64, decile int8 (null for the base
// concept), vector list<float32> of one fixed dimension. Written streaming (parquet-wasm's
// stream writer over Arrow record batches), so a 22 GB import never holds the matrix; read back
// with DuckDB.
import * as fs from 'fs';
import * as path from 'path';
import { createHash } from 'crypto';
import * as arrow from 'apache-arrow';
import { DuckDBInstance, DuckDBListValue } from '@duckdb/node-api';
import { sqlString } from '../../common/sql';

// parquet-wasm's Node build (its "exports" map); types from the same build's declarations.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const parquetWasm = require('parquet-wasm/node') as typeof import('parquet-wasm/node/parquet_wasm');

/** One block of rows to append: vectors row-major, rows x dim. decile null (or -1) = base concept. */
export interface RepresentationBatch {
  conceptIds: ArrayLike<number | bigint>;
  deciles: ArrayLike<number | null>;
  vectors: Float32Array;
}

export interface WrittenTable {
  path: string;
  rows: number;
  dim: number;
  sha256: string;
}

function representationSchema(): arrow.Schema {
  return new arrow.Schema([
    new arrow.Field('concept_id', new arrow.Int64(), false),
    new arrow.Field('decile', new arrow.Int8(), true),
    new arrow.Field('vector', new arrow.List(new arrow.Field('item', new arrow.Float32(), false)), false),
  ]);
}

function toArrowBatch(batch: RepresentationBatch, dim: number, schema: arrow.Schema): arrow.RecordBatch {
  const n = batch.conceptIds.length;
  if (batch.deciles.length !== n) throw new Error(`representation batch: ${n} concept ids but ${batch.deciles.length} deciles`);
  if (batch.vectors.length !== n * dim) {
    throw new Error(`representation batch: ${batch.vectors.length} floats for ${n} rows of dimension ${dim}`);
  }
  const ids = new BigInt64Array(n);
  const dec = new Int8Array(n);
  const validity = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) {
    ids[i] = BigInt(batch.conceptIds[i]);
    const d = batch.deciles[i];
    if (d !== null && d >= 0) {
      if (!Number.isInteger(d) || d > 9) throw new Error(`representation batch row ${i}: decile ${d} is not 0..9 or null`);
      dec[i] = d;
      validity[i >> 3] |= 1 << (i & 7);
    }
  }
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i <= n; i++) offsets[i] = i * dim;
  const [fId, fDec, fVec] = schema.fields;
  const idData = arrow.makeData({ type: fId.type as arrow.Int64, length: n, data: ids });
  const decData = arrow.makeData({ type: fDec.type as arrow.Int8, length: n, data: dec, nullBitmap: validity });
  const listType = fVec.type as arrow.List<arrow.Float32>;
  const child = arrow.makeData({ type: listType.children[0].type, length: n * dim, data: batch.vectors });
  const vecData = arrow.makeData({ type: listType, length: n, valueOffsets: offsets, child });
  const struct = arrow.makeData({
    type: new arrow.Struct(schema.fields), length: n, children: [idData, decData, vecData],
  });
  return new arrow.RecordBatch(schema, struct);
}

/**
 * Streaming writer of one representation table. Rows go out in record batches as they are
 * appended; the file appears atomically (temporary name, then rename) on close().
 */
export class RepresentationWriter {
  private readonly schema = representationSchema();
  private readonly tmp: string;
  private controller!: ReadableStreamDefaultController<unknown>;
  private readonly done: Promise<void>;
  private readonly hash = createHash('sha256');
  private rows = 0;
  private readonly out: fs.WriteStream;

  constructor(readonly filePath: string, readonly dim: number) {
    if (!Number.isInteger(dim) || dim <= 0) throw new Error(`representation dimension must be a positive integer, got ${dim}`);
    fs.mkdirSync(path.dirname(filePath), { recursive: true });
    this.tmp = `${filePath}.tmp-${process.pid}`;
    const source = new ReadableStream<unknown>({ start: (c) => { this.controller = c; } });
    const props = new parquetWasm.WriterPropertiesBuilder().setCompression(parquetWasm.Compression.ZSTD).build();
    const out = (this.out = fs.createWriteStream(this.tmp));
    const hash = this.hash;
    this.done = parquetWasm.transformParquetStream(source as ReadableStream, props).then(async (bytes) => {
      const sink = new WritableStream<Uint8Array>({
        write(chunk) {
          hash.update(chunk);
          return new Promise<void>((res, rej) => out.write(chunk, (e) => (e ? rej(e) : res())));
        },
        close() { return new Promise<void>((res) => out.end(res)); },
      });
      await bytes.pipeTo(sink);
    });
  }

  append(batch: RepresentationBatch): void {
    if (batch.conceptIds.length === 0) return;
    const rb = toArrowBatch(batch, this.dim, this.schema);
    const ipc = arrow.tableToIPC(new arrow.Table(rb), 'stream');
    const table = parquetWasm.Table.fromIPCStream(ipc);
    for (const b of table.recordBatches()) this.controller.enqueue(b);
    this.rows += batch.conceptIds.length;
  }

  async close(): Promise<WrittenTable> {
    if (this.rows === 0) {
      // an empty table still has the schema: write one empty batch
      const empty = arrow.tableToIPC(new arrow.Table(toArrowBatch({ conceptIds: [], deciles: [], vectors: new Float32Array(0) }, this.dim, this.schema)), 'stream');
      for (const b of parquetWasm.Table.fromIPCStream(empty).recordBatches()) this.controller.enqueue(b);
    }
    this.controller.close();
    await this.done;
    fs.renameSync(this.tmp, this.filePath);
    return { path: this.filePath, rows: this.rows, dim: this.dim, sha256: this.hash.digest('hex') };
  }

  /** Stops a write that failed: the temporary file is removed, nothing appears at filePath. */
  async abort(): Promise<void> {
    try {
      this.controller.error(new Error('representation table write aborted'));
    } catch {
      /* already closed */
    }
    await this.done.catch(() => undefined);
    if (!this.out.closed) await new Promise<void>((res) => this.out.once('close', () => res()).destroy());
    fs.rmSync(this.tmp, { force: true });
  }
}

/** Whether `file` is a Parquet file with exactly the representation table's columns and types. */
export async function isRepresentationTable(file: string): Promise<boolean> {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    const r = await conn.runAndReadAll(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(${sqlString(file)}))`);
    const cols = r.getRowObjects().map((x) => `${x.column_name} ${x.column_type}`);
    return cols.join(', ') === 'concept_id BIGINT, decile TINYINT, vector FLOAT[]';
  } catch {
    return false; // not Parquet at all
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** Writes a whole table (rows x dim vectors in one Float32Array). */
export async function writeRepresentations(filePath: string, dim: number, batch: RepresentationBatch, rowsPerGroup = 65536): Promise<WrittenTable> {
  const w = new RepresentationWriter(filePath, dim);
  const n = batch.conceptIds.length;
  for (let s = 0; s < n; s += rowsPerGroup) {
    const e = Math.min(n, s + rowsPerGroup);
    w.append({
      conceptIds: Array.prototype.slice.call(batch.conceptIds, s, e) as (number | bigint)[],
      deciles: Array.prototype.slice.call(batch.deciles, s, e) as (number | null)[],
      vectors: batch.vectors.subarray(s * dim, e * dim),
    });
  }
  return w.close();
}

/** Key of a (concept, decile) token in the in-memory table; decile null -> slot 0, k -> k + 1. */
export function tokenKey(conceptId: number, decile: number | null): number {
  if (!Number.isSafeInteger(conceptId * 16)) throw new Error(`concept_id ${conceptId} is out of the supported range`);
  return conceptId * 16 + (decile === null || decile < 0 ? 0 : decile + 1);
}

/** A representation table held in memory: one Float32Array, an index from token to row. */
export class RepresentationTable {
  private readonly index = new Map<number, number>();
  constructor(
    readonly dim: number,
    readonly conceptIds: Float64Array,
    readonly deciles: Int8Array, // -1 = base concept
    readonly vectors: Float32Array,
  ) {
    for (let i = 0; i < conceptIds.length; i++) {
      const key = tokenKey(conceptIds[i], deciles[i]);
      if (this.index.has(key)) throw new Error(`representation table: duplicate row for concept ${conceptIds[i]} decile ${deciles[i] < 0 ? 'null' : deciles[i]}`);
      this.index.set(key, i);
    }
  }
  get size(): number { return this.conceptIds.length; }
  has(conceptId: number, decile: number | null): boolean { return this.index.has(tokenKey(conceptId, decile)); }
  /** The stored vector (a view into the table), or undefined. */
  get(conceptId: number, decile: number | null): Float32Array | undefined {
    const i = this.index.get(tokenKey(conceptId, decile));
    return i === undefined ? undefined : this.vectors.subarray(i * this.dim, (i + 1) * this.dim);
  }
}

/** Reads a representation table written by RepresentationWriter (or any file with the same columns). */
export async function loadRepresentations(filePath: string): Promise<RepresentationTable> {
  if (!fs.existsSync(filePath)) throw new Error(`representation table ${filePath} does not exist`);
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    const src = `read_parquet(${sqlString(filePath)})`;
    const meta = await conn.runAndReadAll(`SELECT count(*)::BIGINT, min(len(vector)), max(len(vector)) FROM ${src}`);
    const [count, minLen, maxLen] = meta.getRows()[0] as [bigint, number | bigint | null, number | bigint | null];
    const n = Number(count);
    if (n > 0 && Number(minLen) !== Number(maxLen)) {
      throw new Error(`representation table ${filePath}: column vector has lengths ${minLen}..${maxLen}; one fixed dimension is required`);
    }
    const dim = n > 0 ? Number(minLen) : 0;
    const ids = new Float64Array(n);
    const dec = new Int8Array(n);
    const vec = new Float32Array(n * dim);
    const result = await conn.stream(`SELECT concept_id, decile, vector FROM ${src}`);
    let row = 0;
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const [c, d, v] = chunk.getColumns();
      for (let i = 0; i < chunk.rowCount; i++, row++) {
        if (c[i] === null) throw new Error(`representation table ${filePath}: row ${row}: concept_id is null`);
        ids[row] = Number(c[i] as bigint);
        dec[row] = d[i] === null ? -1 : Number(d[i]);
        const items = (v[i] as DuckDBListValue).items;
        for (let k = 0; k < dim; k++) {
          const x = items[k];
          if (x === null) throw new Error(`representation table ${filePath}: row ${row}: vector[${k}] is null`);
          vec[row * dim + k] = x as number;
        }
      }
    }
    return new RepresentationTable(dim, ids, dec, vec);
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}
