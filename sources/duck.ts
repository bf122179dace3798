// Small helpers over @duckdb/node-api: one instance per run, typed row reads, chunk streaming.
import { DuckDBConnection, DuckDBDataChunk, DuckDBInstance, DuckDBResult } from '@duckdb/node-api';
import { Id, int64Reader, parseId } from '../schemas/ids';
import { parseJsonExact } from '../schemas/exactJson';

export interface DuckOptions {
  /** DuckDB's own memory cap; spills to tempDir beyond it. */
  memoryLimit?: string;
  tempDir?: string;
  threads?: number;
}

export async function openDuckInstance(opts: DuckOptions = {}): Promise<DuckDBInstance> {
  const config: Record<string, string> = { preserve_insertion_order: 'true' };
  if (opts.memoryLimit) config.memory_limit = opts.memoryLimit;
  if (opts.tempDir) config.temp_directory = opts.tempDir;
  if (opts.threads) config.threads = String(opts.threads);
  return DuckDBInstance.create(':memory:', config);
}

export async function openDuck(opts: DuckOptions = {}): Promise<DuckDBConnection> {
  return (await openDuckInstance(opts)).connect();
}

// Quoting lives in common/ so that every layer quotes the same way; re-exported for the runners.
export { sqlString } from '../common/sql';

/** Rows as plain JS objects (BIGINT -> bigint is avoided by the callers' casts). */
export async function queryRows<T = Record<string, unknown>>(conn: DuckDBConnection, sql: string): Promise<T[]> {
  const reader = await conn.runAndReadAll(sql);
  return reader.getRowObjectsJS() as T[];
}

export async function queryValue<T>(conn: DuckDBConnection, sql: string): Promise<T> {
  const rows = await queryRows<Record<string, T>>(conn, sql);
  return Object.values(rows[0])[0];
}

/** Streams the result of `sql` chunk by chunk (2048 rows each) without materializing it. */
export async function* streamChunks(conn: DuckDBConnection, sql: string): AsyncGenerator<DuckDBDataChunk> {
  yield* prefetchedChunks(startQuery(conn, sql));
}

/**
 * Starts a query and its first fetch at once: DuckDB runs it (a sort, say) on its own threads
 * while JavaScript works on something else. Consume it with prefetchedChunks.
 */
export function startQuery(conn: DuckDBConnection, sql: string): Promise<{ result: DuckDBResult; first: DuckDBDataChunk | null }> {
  return conn.stream(sql).then(async (result) => ({ result, first: await result.fetchChunk() }));
}

/** Chunks of a started query; the next chunk is fetched while the caller handles the current one. */
export async function* prefetchedChunks(started: Promise<{ result: DuckDBResult; first: DuckDBDataChunk | null }>): AsyncGenerator<DuckDBDataChunk> {
  const { result, first } = await started;
  let chunk = first;
  while (chunk && chunk.rowCount > 0) {
    const next = result.fetchChunk();
    yield chunk;
    chunk = await next;
  }
}

/**
 * A copy of the typed array behind a DOUBLE / TINYINT / INTEGER column vector of a chunk, and a
 * null test. node-api keeps the array private; reading it avoids one JS call per value on the hot
 * path. Every reader here owns what it reads or keeps its chunk alive: a chunk's vectors are
 * views of native memory that its finalizer frees, and a caller may drop the chunk (await in its
 * loop, a generator past its yield) while it still reads the columns.
 */
export function numericColumn(chunk: DuckDBDataChunk, index: number): { values: ArrayLike<number>; isNull: (i: number) => boolean } {
  const vector = chunk.getColumnVector(index) as unknown as {
    items?: ArrayLike<number>;
    validity?: VectorValidity;
    getItem(i: number): unknown;
  };
  const validity = vector.validity;
  // A copy: the vector's array is a view of the chunk's native memory, freed with the chunk.
  if (vector.items && validity) return { values: (vector.items as Float64Array).slice(), isNull: nullTest(validity) };
  // Fallback through the public API if node-api's internals change.
  const n = chunk.rowCount;
  const values = new Float64Array(n);
  const nulls = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = vector.getItem(i);
    if (v === null) nulls[i] = 1;
    else values[i] = Number(v);
  }
  return { values, isNull: (i) => nulls[i] === 1 };
}

/**
 * A BIGINT column of a chunk as Ids (exact: numbers when safe, else bigints), and a null test.
 * Safe values are read from the vector's 32-bit halves, without a BigInt each.
 */
export function idColumn(chunk: DuckDBDataChunk, index: number): { get: (i: number) => Id; isNull: (i: number) => boolean } {
  const vector = chunk.getColumnVector(index) as unknown as {
    items?: unknown;
    validity?: VectorValidity;
    getItem(i: number): unknown;
  };
  const validity = vector.validity;
  if (vector.items instanceof BigInt64Array && validity) return { get: int64Reader(vector.items.slice()), isNull: nullTest(validity) };
  // Fallback through the public API if node-api's internals change (through the chunk, which it keeps alive).
  const item = (i: number) => chunk.getColumnVector(index).getItem(i);
  return { get: (i) => parseId(item(i)) ?? 0, isNull: (i) => item(i) === null };
}

/** An id from a row object of queryRows (a BIGINT arrives as bigint): exact. */
export function idValue(v: unknown): Id {
  const id = parseId(v);
  if (id === null) throw new Error(`not a 64-bit integer id: ${String(v)}`);
  return id;
}

/**
 * A VARCHAR column of a chunk. Short strings (DuckDB stores up to 12 bytes inline) are decoded
 * once per distinct value in the chunk: a unit or a code repeats on thousands of rows.
 */
export function stringColumn(chunk: DuckDBDataChunk, index: number): (i: number) => string | null {
  const vector = chunk.getColumnVector(index) as unknown as { dataView?: unknown; validity?: VectorValidity; getItem(i: number): unknown };
  // Through the chunk: the reader keeps it alive, and with it the native memory its strings are read from.
  const publicRead = (i: number) => chunk.getColumnVector(index).getItem(i) as string | null;
  const { dataView, validity } = vector;
  if (!(dataView instanceof DataView) || !validity) return publicRead;
  const isNull = nullTest(validity);
  const seen = new Map<number, InlineString[]>();
  return (i) => {
    if (isNull(i)) return null;
    const at = i * 16;
    const len = dataView.getUint32(at, true);
    if (len > 12) return publicRead(i);
    const w0 = inlineWord(dataView, at, len, 0);
    const w1 = inlineWord(dataView, at, len, 4);
    const w2 = inlineWord(dataView, at, len, 8);
    const hash = (Math.imul(w0 ^ len, 0x9e3779b1) ^ Math.imul(w1, 0x85ebca6b) ^ Math.imul(w2, 0xc2b2ae35)) | 0;
    const bucket = seen.get(hash);
    const hit = bucket?.find((e) => e.len === len && e.w0 === w0 && e.w1 === w1 && e.w2 === w2);
    if (hit) return hit.text;
    const text = publicRead(i)!;
    if (bucket) bucket.push({ len, w0, w1, w2, text });
    else seen.set(hash, [{ len, w0, w1, w2, text }]);
    return text;
  };
}

interface InlineString { len: number; w0: number; w1: number; w2: number; text: string }

/** Bytes [from, from + 4) of an inline string at `at`, those past its length read as 0. */
function inlineWord(view: DataView, at: number, len: number, from: number): number {
  const n = len - from;
  if (n <= 0) return 0;
  const w = view.getUint32(at + 4 + from, true);
  return n >= 4 ? w : w & ((1 << (8 * n)) - 1);
}

/** node-api's validity of a vector: 64-bit words (null: every row valid) from a bit offset. */
interface VectorValidity {
  data?: unknown;
  offset?: unknown;
  itemValid(i: number): boolean;
}

/**
 * A null test over a vector's validity bits, read as 32-bit words: node-api's itemValid does
 * BigInt arithmetic per call. Falls back to itemValid if node-api's internals change.
 */
function nullTest(validity: VectorValidity): (i: number) => boolean {
  const { data, offset } = validity;
  if (data === null) return () => false;
  if (!(data instanceof BigUint64Array) || typeof offset !== 'number' || !LITTLE_ENDIAN) return (i) => !validity.itemValid(i);
  // A copy, as the values: the bits are the chunk's native memory.
  const words = new Uint32Array(data.buffer, data.byteOffset, data.length * 2).slice();
  return (i) => {
    const bit = offset + i;
    return (words[bit >>> 5] & (1 << (bit & 31))) === 0;
  };
}

/** A 64-bit word's low 32 bits come first in memory (the validity words are native order). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Parses DuckDB's to_json text, which writes non-finite doubles as bare NaN, Infinity and
 * -Infinity (not JSON): those become the strings "NaN", "Infinity", "-Infinity", so a row check
 * sees them as the values they are instead of JSON.parse failing on the whole row.
 */
export function parseDuckJson(text: string): Record<string, unknown> {
  try {
    return parseJsonExact(text) as Record<string, unknown>;
  } catch {
    let out = '';
    let inString = false;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (inString) {
        out += ch;
        if (ch === '\\') out += text[++i] ?? '';
        else if (ch === '"') inString = false;
        continue;
      }
      if (ch === '"') inString = true;
      const token = /^(-?Infinity|NaN)/.exec(text.slice(i, i + 9));
      if (!inString && token) {
        out += `"${token[1]}"`;
        i += token[1].length - 1;
        continue;
      }
      out += ch;
    }
    return parseJsonExact(out) as Record<string, unknown>;
  }
}
