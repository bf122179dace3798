// The codec of the topics between the stages of `medrep stream` (layouts: schemas/streamSchemas.ts).
// Batches travel as Arrow IPC record batches: a stage reads typed columns instead of parsing and
// re-encoding text per row, and int64 ids stay exact without any digit scanning. End-of-load
// markers stay small JSON objects. Producer and consumer of every internal topic use this module
// only; the value types (EventsBatchValue, ...) are the stages' in-memory form.
import * as arrow from 'apache-arrow';
import { IHeaders } from 'kafkajs';
import { lz4FrameCompress, lz4FrameDecompress } from './lz4Frame';
import { Id, int64Reader } from '../../schemas/ids';
import { parseJsonExact, stringifyJsonExact } from '../../schemas/exactJson';
import {
  EVENTS_COLUMNS, EVENTS_FIELDS, PERSONS_FIELDS, PRETRAIN_FIELDS, SAMPLES_FIELDS, STREAM_SCHEMA_HEADER, STREAM_SCHEMAS, STREAM_TOPIC_SCHEMAS, StreamSchemaKind,
} from '../../schemas/streamSchemas';
import { Int64Column, ListColumn, NumberColumn, StringColumn, tableOf } from '../../sinks/columns';
import { CanonicalEventColumns, emptyEventColumns, eventCount, hasLabelerFields, isLabelerColumn } from '../../schemas/eventColumns';
import { SampleRow, SequenceRow, sampleRow, sequenceRow } from './sequenceRows';
import type { EventsBatchValue, PersonsBatchValue, PretrainBatchValue, SamplesBatchValue, StreamValue } from './streamValues';

/** A message a reader cannot decode: no schema header, a schema (version) this build does not read, or one its topic does not carry. */
export class StreamSchemaError extends Error {}

export interface EncodedValue {
  value: Buffer;
  headers: IHeaders;
}

const KIND_OF_SCHEMA = new Map<string, StreamSchemaKind>(Object.entries(STREAM_SCHEMAS).map(([k, v]) => [v, k as StreamSchemaKind]));

// ---------------------------------------------------------------------------------------------
// writing

function ids(values: readonly (Id | null)[], length: number, nullable = false): Int64Column {
  const col = new Int64Column(nullable, Math.max(1, length));
  for (let i = 0; i < length; i++) {
    const x = values[i];
    if (x === null || x === undefined) col.pushNull();
    else col.push(x);
  }
  return col;
}

function doubles(values: readonly (number | null)[], length: number, nullable = false): NumberColumn<Float64Array> {
  const col = new NumberColumn(Float64Array, nullable, Math.max(1, length));
  for (let i = 0; i < length; i++) {
    const x = values[i];
    if (x === null || x === undefined) col.pushNull();
    else col.push(x);
  }
  return col;
}

/** Strings as dictionary indices (units repeat: each distinct one is encoded once per batch). */
function dictionary(values: readonly (string | null)[], type: arrow.Dictionary<arrow.Utf8, arrow.Int32>): arrow.Data {
  const index = new Map<string, number>();
  const words = new StringColumn();
  const indices = new NumberColumn(Int32Array, true, Math.max(1, values.length));
  for (const s of values) {
    if (s === null) {
      indices.pushNull();
      continue;
    }
    let k = index.get(s);
    if (k === undefined) {
      index.set(s, (k = index.size));
      words.push(s);
    }
    indices.push(k);
  }
  const data = indices.data(new arrow.Int32());
  return arrow.makeData({ type, length: data.length, data: data.values, nullBitmap: data.nullBitmap, nullCount: data.nullCount, dictionary: arrow.makeVector(words.data()) } as never);
}

function metadata(entries: Record<string, string>): Map<string, string> {
  return new Map(Object.entries(entries));
}

// Arrow IPC body compression: LZ4 frames per buffer (a buffer that does not shrink is stored as
// it is). MEDREP_STREAM_COMPRESSION=none writes uncompressed batches (to measure the difference);
// readers take either, as the batch says which.
arrow.compressionRegistry.set(arrow.CompressionType.LZ4_FRAME, { encode: lz4FrameCompress, decode: lz4FrameDecompress });

function compressionOf(setting: string | undefined): arrow.CompressionType | null {
  if (setting === undefined || setting === '' || setting === 'lz4') return arrow.CompressionType.LZ4_FRAME;
  if (setting === 'none') return null;
  throw new Error(`MEDREP_STREAM_COMPRESSION=${setting}: expected lz4 or none`);
}

const COMPRESSION = compressionOf(process.env.MEDREP_STREAM_COMPRESSION);

function ipc(table: arrow.Table): Buffer {
  const bytes = arrow.tableToIPC(table, 'stream', COMPRESSION);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** An events column as its Arrow field says: int64 ids, doubles, int8 deciles or dictionary strings. */
function eventColumnData(field: arrow.Field, values: readonly unknown[], n: number): arrow.Data {
  const t = field.type;
  if (t instanceof arrow.Dictionary) return dictionary(values as (string | null)[], t as arrow.Dictionary<arrow.Utf8, arrow.Int32>);
  if (t instanceof arrow.Int64) return ids(values as (Id | null)[], n, field.nullable).data(new arrow.Int64());
  if (t instanceof arrow.Int8) {
    const d = new NumberColumn(Int8Array, false, Math.max(1, n));
    for (let i = 0; i < n; i++) d.push(values[i] as number);
    return d.data(new arrow.Int8());
  }
  return doubles(values as (number | null)[], n, field.nullable).data(new arrow.Float64());
}

const EVENT_COLUMNS = Object.entries(EVENTS_COLUMNS) as [keyof CanonicalEventColumns, arrow.Field][];

function encodeEvents(v: EventsBatchValue): Buffer {
  const n = eventCount(v);
  // Batches the trajectory stage releases carry no labeler fields: null columns, flagged.
  const labeler = hasLabelerFields(v);
  const col: Record<string, arrow.Data> = {};
  for (const [name, field] of EVENT_COLUMNS) col[field.name] = eventColumnData(field, labeler || !isLabelerColumn(name) ? v[name] : [], n);
  const meta = metadata({ table: v.table, deciles: v.versions.deciles, vocabulary: v.versions.vocabulary, labeler: labeler ? '1' : '0' });
  return ipc(tableOf(EVENTS_FIELDS, col, meta));
}

function encodePersons(v: PersonsBatchValue): Buffer {
  const n = v.p.length;
  const col = { p: ids(v.p, n).data(new arrow.Int64()), b: doubles(v.b, n).data(new arrow.Float64()), g: ids(v.g, n).data(new arrow.Int64()), n: doubles(v.n, n).data(new arrow.Float64()) };
  const meta: Record<string, string> = {};
  if (v.rp !== undefined || v.rw !== undefined) meta.rejected = stringifyJsonExact({ rp: v.rp ?? [], rw: v.rw ?? [] });
  return ipc(tableOf(PERSONS_FIELDS, col, metadata(meta)));
}

/** The message columns of a sequence's number lists. */
const SEQUENCE_NUMBER_LISTS = [['a', 'ages'], ['s', 'segments'], ['r', 'recordRanks'], ['m', 'domains']] as const;

/** The columns of sequence rows (pretraining chunks, or samples' windows). */
function sequenceColumns(rows: readonly SequenceRow[]): Record<string, arrow.Data> {
  const n = rows.length;
  const p = new Int64Column(false, Math.max(1, n));
  const chunk = new NumberColumn(Float64Array, false, Math.max(1, n));
  const split = new StringColumn();
  const c = new ListColumn(new Int64Column());
  const lists = { d: new ListColumn(new NumberColumn(Float64Array, true)), a: new ListColumn(new NumberColumn(Float64Array)), s: new ListColumn(new NumberColumn(Float64Array)), r: new ListColumn(new NumberColumn(Float64Array)), m: new ListColumn(new NumberColumn(Float64Array)) };
  for (const row of rows) {
    p.push(row.p);
    chunk.push(row.chunk);
    split.push(row.split);
    for (const x of row.conceptIds) c.child.push(x);
    c.endRow();
    for (const x of row.deciles) if (x === null) lists.d.child.pushNull();
    else lists.d.child.push(x);
    lists.d.endRow();
    for (const [k, field] of SEQUENCE_NUMBER_LISTS) {
      for (const x of row[field]) lists[k].child.push(x);
      lists[k].endRow();
    }
  }
  const out: Record<string, arrow.Data> = { p: p.data(new arrow.Int64()), chunk: chunk.data(new arrow.Float64()), split: split.data(), c: c.data(new arrow.Int64()) };
  for (const k of ['d', 'a', 's', 'r', 'm'] as const) out[k] = lists[k].data(new arrow.Float64());
  return out;
}

function encodePretrain(v: PretrainBatchValue): Buffer {
  return ipc(tableOf(PRETRAIN_FIELDS, sequenceColumns(v.rows), metadata({ deciles: v.versions.deciles, vocabulary: v.versions.vocabulary })));
}

function encodeSamples(v: SamplesBatchValue): Buffer {
  const rows = v.rows;
  const n = rows.length;
  const task = new StringColumn();
  const kind = new StringColumn(true);
  const labels = new ListColumn(new NumberColumn(Float64Array, true));
  const labelsValid: boolean[] = [];
  for (const r of rows) {
    task.push(r.task);
    if (r.kind === undefined) kind.pushNull();
    else kind.push(r.kind);
    labelsValid.push(r.labels !== null);
    for (const x of r.labels ?? []) if (x === null) labels.child.pushNull();
    else labels.child.push(x);
    labels.endRow();
  }
  const labelsData = labels.data(new arrow.Float64());
  const col: Record<string, arrow.Data> = {
    ...sequenceColumns(rows),
    task: task.data(),
    pt: doubles(rows.map((r) => r.pt), n).data(new arrow.Float64()),
    iv: ids(rows.map((r) => r.iv), n, true).data(new arrow.Int64()),
    label: doubles(rows.map((r) => r.label), n, true).data(new arrow.Float64()),
    labels: arrow.makeData({
      type: labelsData.type, length: n, valueOffsets: labelsData.valueOffsets, child: labelsData.children[0],
      nullBitmap: bitmap(labelsValid), nullCount: labelsValid.filter((x) => !x).length,
    } as never),
    kind: kind.data(),
    version: doubles(rows.map((r) => r.version ?? null), n, true).data(new arrow.Float64()),
    retracted: arrow.vectorFromArray(rows.map((r) => r.retracted ?? null), new arrow.Bool()).data[0],
  };
  return ipc(tableOf(SAMPLES_FIELDS, col, metadata({ deciles: v.versions.deciles, vocabulary: v.versions.vocabulary })));
}

function bitmap(valid: boolean[]): Uint8Array {
  const bits = new Uint8Array((valid.length + 7) >> 3);
  valid.forEach((v, i) => {
    if (v) bits[i >> 3] |= 1 << (i & 7);
  });
  return bits;
}

/** A stream value as a message value and its schema header. */
export function encodeStreamValue(v: StreamValue): EncodedValue {
  let value: Buffer;
  if (v.k === 'events') value = encodeEvents(v);
  else if (v.k === 'persons') value = encodePersons(v);
  else if (v.k === 'pretrain') value = encodePretrain(v);
  else if (v.k === 'samples') value = encodeSamples(v);
  else value = Buffer.from(stringifyJsonExact(v));
  return { value, headers: { [STREAM_SCHEMA_HEADER]: STREAM_SCHEMAS[v.k] } };
}

// ---------------------------------------------------------------------------------------------
// reading

const valid = (d: arrow.Data, i: number) => d.nullCount === 0 || ((d.nullBitmap![(d.offset + i) >> 3] >> ((d.offset + i) & 7)) & 1) === 1;

function readIds(d: arrow.Data): Id[] {
  const at = int64Reader(d.values as BigInt64Array);
  const out: Id[] = new Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = at(d.offset + i);
  return out;
}

function readNullableIds(d: arrow.Data): (Id | null)[] {
  const at = int64Reader(d.values as BigInt64Array);
  const out: (Id | null)[] = new Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = valid(d, i) ? at(d.offset + i) : null;
  return out;
}

function readNumbers(d: arrow.Data): number[] {
  const values = d.values as Float64Array | Int8Array;
  const out: number[] = new Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = values[d.offset + i];
  return out;
}

function readNullableNumbers(d: arrow.Data): (number | null)[] {
  const values = d.values as Float64Array;
  const out: (number | null)[] = new Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = valid(d, i) ? values[d.offset + i] : null;
  return out;
}

function readDictionary(d: arrow.Data): (string | null)[] {
  const words = (d.dictionary!.toArray() as string[]) ?? [];
  const indices = d.values as Int32Array;
  const out: (string | null)[] = new Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = valid(d, i) ? words[indices[d.offset + i]] : null;
  return out;
}

const decoder = new TextDecoder();

function readStrings(d: arrow.Data): (string | null)[] {
  const offsets = d.valueOffsets as Int32Array;
  const bytes = d.values as Uint8Array;
  const out: (string | null)[] = new Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = valid(d, i) ? decoder.decode(bytes.subarray(offsets[d.offset + i], offsets[d.offset + i + 1])) : null;
  return out;
}

/** The items of each row of a list column, read by `item` from the child data. */
function readLists<T>(d: arrow.Data, item: (child: arrow.Data) => T[]): (T[] | null)[] {
  const offsets = d.valueOffsets as Int32Array;
  const all = item(d.children[0]);
  const out: (T[] | null)[] = new Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = valid(d, i) ? all.slice(offsets[d.offset + i], offsets[d.offset + i + 1]) : null;
  return out;
}

function readBools(d: arrow.Data): (boolean | null)[] {
  const bits = d.values as Uint8Array;
  const out: (boolean | null)[] = new Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = valid(d, i) ? ((bits[(d.offset + i) >> 3] >> ((d.offset + i) & 7)) & 1) === 1 : null;
  return out;
}

/** The columns of the one record batch of a message, by name, and its schema metadata. */
function batchOf(value: Buffer): { col: (name: string) => arrow.Data; meta: Map<string, string> } {
  const table = arrow.tableFromIPC(value);
  const batch = table.batches[0];
  return {
    col: (name) => {
      const child = batch?.getChild(name);
      if (!child) throw new StreamSchemaError(`column ${name} missing from the record batch`);
      return child.data[0];
    },
    meta: table.schema.metadata,
  };
}

const versionsOf = (meta: Map<string, string>) => ({ deciles: meta.get('deciles') ?? '', vocabulary: meta.get('vocabulary') ?? '' });

/** An events column back from its Arrow data, as its field says. */
function readEventColumn(field: arrow.Field, d: arrow.Data): unknown[] {
  const t = field.type;
  if (t instanceof arrow.Dictionary) return readDictionary(d);
  if (t instanceof arrow.Int64) return field.nullable ? readNullableIds(d) : readIds(d);
  return field.nullable ? readNullableNumbers(d) : readNumbers(d);
}

function decodeEvents(value: Buffer): EventsBatchValue {
  const { col, meta } = batchOf(value);
  const labeler = meta.get('labeler') !== '0';
  const out: EventsBatchValue = { k: 'events', table: meta.get('table') ?? '', versions: versionsOf(meta), ...emptyEventColumns() };
  for (const [name, field] of EVENT_COLUMNS) if (labeler || !isLabelerColumn(name)) out[name] = readEventColumn(field, col(field.name)) as never;
  return out;
}

function decodePersons(value: Buffer): PersonsBatchValue {
  const { col, meta } = batchOf(value);
  const out: PersonsBatchValue = { k: 'persons', p: readIds(col('p')), b: readNumbers(col('b')), g: readIds(col('g')), n: readNumbers(col('n')) };
  const rejected = meta.get('rejected');
  if (rejected !== undefined) Object.assign(out, parseJsonExact(rejected) as { rp: Id[]; rw: string[] });
  return out;
}

function sequenceRows(col: (name: string) => arrow.Data): SequenceRow[] {
  const p = readIds(col('p'));
  const chunk = readNumbers(col('chunk'));
  const split = readStrings(col('split'));
  const c = readLists(col('c'), readIds);
  const d = readLists(col('d'), readNullableNumbers);
  const [a, s, r, m] = (['a', 's', 'r', 'm'] as const).map((k) => readLists(col(k), readNumbers));
  return p.map((id, i) => sequenceRow(id, chunk[i], { conceptIds: c[i]!, deciles: d[i]!, ages: a[i]!, segments: s[i]!, recordRanks: r[i]!, domains: m[i]! }, split[i]!));
}

function decodePretrain(value: Buffer): PretrainBatchValue {
  const { col, meta } = batchOf(value);
  return { k: 'pretrain', versions: versionsOf(meta), rows: sequenceRows(col) };
}

function decodeSamples(value: Buffer): SamplesBatchValue {
  const { col, meta } = batchOf(value);
  const task = readStrings(col('task'));
  const pt = readNumbers(col('pt'));
  const iv = readNullableIds(col('iv'));
  const label = readNullableNumbers(col('label'));
  const labels = readLists(col('labels'), readNullableNumbers) as (number[] | null)[];
  const kind = readStrings(col('kind'));
  const version = readNullableNumbers(col('version'));
  const retracted = readBools(col('retracted'));
  const rows: SampleRow[] = sequenceRows(col).map((window, i) => sampleRow(window, {
    task: task[i]!, pt: pt[i], iv: iv[i], label: label[i], labels: labels[i],
    ...(kind[i] === 'correction' ? { kind: 'correction' as const, version: version[i] ?? undefined, retracted: retracted[i] ?? undefined } : {}),
  }));
  return { k: 'samples', versions: versionsOf(meta), rows };
}

/** The schema a message names, checked against what this build reads and what its topic carries. */
function schemaKind(topic: string, headers: IHeaders | undefined): StreamSchemaKind {
  const h = headers?.[STREAM_SCHEMA_HEADER];
  const name = h === undefined ? undefined : String(Array.isArray(h) ? h[0] : h);
  const known = Object.values(STREAM_SCHEMAS).join(', ');
  if (name === undefined) throw new StreamSchemaError(`unknown schema version: message has no ${STREAM_SCHEMA_HEADER} header (this build reads ${known})`);
  const kind = KIND_OF_SCHEMA.get(name);
  if (kind === undefined) throw new StreamSchemaError(`unknown schema version: ${STREAM_SCHEMA_HEADER} ${name} (this build reads ${known})`);
  const carried = Object.entries(STREAM_TOPIC_SCHEMAS).find(([t]) => topic.endsWith(`medrep.${t}`))?.[1];
  if (carried && !carried.includes(kind)) throw new StreamSchemaError(`schema ${name} is not one that ${topic} carries (${carried.map((k) => STREAM_SCHEMAS[k]).join(', ')})`);
  return kind;
}

/** A stream topic message's value. Throws StreamSchemaError for a schema (version) this build does not read. */
export function decodeStreamValue(m: { topic: string; value: Buffer | null; headers?: IHeaders }): StreamValue {
  const kind = schemaKind(m.topic, m.headers);
  const value = m.value ?? Buffer.alloc(0);
  switch (kind) {
    case 'events':
      return decodeEvents(value);
    case 'persons':
      return decodePersons(value);
    case 'pretrain':
      return decodePretrain(value);
    case 'samples':
      return decodeSamples(value);
    case 'end':
      return parseJsonExact(value.toString()) as StreamValue;
  }
}
