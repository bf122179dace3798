// The Parquet sink of `medrep stream`: batches of one topic partition are gathered into a shard
// named after topic, partition and offset range (`events/medrep.events-p3-00000000000000000012-
// 00000000000000000040.parquet`), written atomically (temp file, fsync, rename), and only then are
// the offsets committed (ctx.commitThrough). Where a shard closes depends only on the messages
// (shardRoll.ts: rows, bytes, log time, the end of a load), so after a crash the sink re-reads
// from the first offset not on disk and rebuilds the same shards; a shard already on disk is not
// written again. Replay (runners/kafka/replay.ts) rebuilds shards from the same function.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { EventBatch } from '../../sinks/eventShards';
import { writeFileAtomic, writeParquetAtomic } from '../../sinks/parquet';
import { SequenceBatch } from '../../sinks/sequenceShards';
import { SampleBatch } from '../../sinks/sampleShards';
import { StageContext, StageMessage, OutputMessage, StageTransform } from './stage';
import { parseValue, StreamValue } from './streamValues';
import { eventAt, eventCount } from '../../schemas/eventColumns';
import { emptyCanonicalEvent } from '../../schemas/canonicalEvent';
import { stringifyJsonExact } from '../../schemas/exactJson';
import { sha256 } from '../../transforms/hashing';
import { countEndMarker, LoadCount, NO_LOADS, ShardBounds } from './shardRoll';

export interface ShardRange {
  topic: string;
  partition: number;
  from: bigint;
  to: bigint;
}

const OFFSET_DIGITS = 20;

export function shardFileName(r: ShardRange): string {
  const pad = (o: bigint) => o.toString().padStart(OFFSET_DIGITS, '0');
  return `${r.topic}-p${r.partition}-${pad(r.from)}-${pad(r.to)}.parquet`;
}

const SHARD_NAME = /^(.+)-p(\d+)-(\d{20})-(\d{20})\.parquet$/;

export function parseShardFileName(name: string): ShardRange | null {
  const m = SHARD_NAME.exec(name);
  return m ? { topic: m[1], partition: Number(m[2]), from: BigInt(m[3]), to: BigInt(m[4]) } : null;
}

/** Rows a message holds for a shard (0 for persons and markers). */
export function shardRows(v: StreamValue): number {
  return v.k === 'events' ? eventCount(v) : v.k === 'pretrain' || v.k === 'samples' ? v.rows.length : 0;
}

/** Tasks with samples in a range of messages, in name order (one shard per task). */
export function sampleTasks(values: StreamValue[]): string[] {
  const tasks = new Set<string>();
  for (const v of values) if (v.k === 'samples') for (const r of v.rows) if (r.kind !== 'correction') tasks.add(r.task);
  return [...tasks].sort();
}

/** Samples (not corrections) of one task in a range of messages: the rows of its shard. */
export function sampleRows(values: StreamValue[], task: string): number {
  let n = 0;
  for (const v of values) if (v.k === 'samples') for (const r of v.rows) if (r.task === task && r.kind !== 'correction') n++;
  return n;
}

/** Corrections in a range of messages, by task (label records without the window). */
export function sampleCorrections(values: StreamValue[]): Map<string, object[]> {
  const out = new Map<string, object[]>();
  for (const v of values) {
    if (v.k !== 'samples') continue;
    for (const r of v.rows) {
      if (r.kind !== 'correction') continue;
      const list = out.get(r.task) ?? [];
      list.push({ task: r.task, person_id: r.p, version: r.version, retracted: r.retracted, index_visit_id: r.iv, prediction_time: r.retracted ? null : r.pt, label: r.label, labels: r.labels });
      out.set(r.task, list);
    }
  }
  return out;
}

/** A range's corrections file of one task: samples/<task>/corrections/<range>.json. */
export function correctionsPath(dir: string, task: string, range: ShardRange): string {
  return path.posix.join(dir, task, 'corrections', shardFileName(range).replace(/\.parquet$/, '.json'));
}

/** The bytes of a corrections file (replay rebuilds the same bytes from the same messages). */
export function correctionsBytes(list: object[]): Uint8Array {
  return new TextEncoder().encode(stringifyJsonExact(list, 1) + '\n');
}

/** The samples shard of one task from a range of messages (layout: sinks/sampleShards.ts). */
export function sampleTable(values: StreamValue[], task: string): arrow.Table {
  let batch: SampleBatch | null = null;
  for (const v of values) {
    if (v.k !== 'samples') continue;
    for (const r of v.rows) {
      if (r.task !== task || r.kind === 'correction') continue;
      batch ??= new SampleBatch(r.labels !== null);
      batch.push(r.p, r, r.split, r.pt, r.iv, r.label, r.labels);
    }
  }
  if (!batch) throw new Error(`no samples of task ${task} in the range`);
  return batch.toTable();
}

/** The Arrow table of a shard from its messages' values (events or pretraining sequences). */
export function shardTable(kind: 'events' | 'pretrain', values: StreamValue[]): arrow.Table {
  if (kind === 'events') {
    const b = new EventBatch();
    const e = emptyCanonicalEvent();
    for (const v of values) if (v.k === 'events') for (let i = 0; i < eventCount(v); i++) b.push(eventAt(v, v.table, i, e));
    return b.toTable();
  }
  const b = new SequenceBatch();
  for (const v of values) {
    if (v.k !== 'pretrain') continue;
    for (const r of v.rows) {
      b.push(r.p, r.chunk, r, r.split);
    }
  }
  return b.toTable();
}

export interface SinkTopic {
  topic: string;
  kind: 'events' | 'pretrain' | 'samples';
  /** Folder under OUT. */
  dir: string;
  bounds: ShardBounds;
  /** Tables whose end markers together end a load in this topic (shardRoll.ts countEndMarker). */
  loadTables: readonly string[];
}

/** The sink's state store: per topic, the end markers counted up to the partition's committed offset. */
export const SINK_LOADS_STORE = 'loads';

/** A LoadCount valid at offset `next` of its partition (the first offset after what it counted). */
interface LoadsAt extends LoadCount {
  next: string;
}

/** What the sink knows of a topic partition in memory between chunks. */
interface Seen {
  /** End markers counted through the last message seen. */
  loads: LoadCount;
  /** The offset after the last message seen (the next message may come later: transaction markers take offsets). */
  next: bigint;
  /** The offset this sink last asked to commit, with the count stored there. */
  committed: string;
}

interface Pending {
  from: bigint;
  last: bigint;
  /** Log timestamp of the first message (the time bound counts from it). */
  firstMs: number;
  values: StreamValue[];
  rows: number;
  bytes: number;
  /** The end markers counted before the shard's first message. */
  loadsBefore: LoadCount;
}

/** A shard file the sink wrote or found on disk, with the rows it holds. */
export interface SinkShard {
  /** Path relative to OUT. */
  path: string;
  /** corrections: a samples sink's corrections file of a task (JSON, not Parquet). */
  kind: SinkTopic['kind'] | 'corrections';
  /** Samples shards and corrections: the task. */
  task?: string;
  range: ShardRange;
  rows: number;
  /** The file's size and sha256 when this sink wrote it now (a file found on disk is read for them). */
  content?: { bytes: number; sha256: string };
}

/** Follows what the sink makes durable (the manifest log, manifestLog.ts). */
export interface SinkObserver {
  /** A shard of the transaction in flight: durable only once the transaction commits. */
  written(s: SinkShard): void;
  /** The transaction in flight commits the partition's offsets through `next` (exclusive). */
  commitThrough(topic: string, partition: number, next: bigint): void;
}

export function shardSinkTransform(out: string, topics: SinkTopic[], observer?: SinkObserver): StageTransform {
  const byTopic = new Map(topics.map((t) => [t.topic, t]));
  const pending = new Map<string, Pending>();
  const seen = new Map<string, Seen>();
  return (messages: StageMessage[], ctx: StageContext): OutputMessage[] => {
    const sink = byTopic.get(ctx.topic);
    if (!sink) throw new Error(`sink: no shard series for topic ${ctx.topic}`);
    const key = `${ctx.topic}/${ctx.partition}`;
    const store = ctx.store<LoadsAt>(SINK_LOADS_STORE);
    const first = BigInt(messages[0].offset);
    // A copy: a chunk whose transform throws leaves the gathered state as it was for the retry.
    const kept = pending.get(key);
    let p: Pending | undefined = kept && { ...kept, values: [...kept.values] };
    let loads: LoadCount;
    const mine = seen.get(key);
    const saved = store.get(ctx.topic);
    // Memory holds while the input goes on and the store still holds this sink's last commit.
    if (mine && first >= mine.next && saved?.next === mine.committed) loads = mine.loads;
    else {
      // The stage moved to the committed offset (start, restart, aborted transaction, or a
      // partition back from another worker): what was gathered in memory is read again, from the
      // count stored with that offset (the first message may lie past it, after transaction markers).
      p = undefined;
      loads = saved && BigInt(saved.next) <= first ? saved : NO_LOADS;
    }
    const close = (q: Pending): undefined => {
      if (q.rows > 0) writeShards(out, sink, q, { topic: ctx.topic, partition: ctx.partition, from: q.from, to: q.last }, observer);
      return undefined;
    };
    const { rows, bytes, maxAgeMs } = sink.bounds;
    for (const m of messages) {
      const offset = BigInt(m.offset);
      const at = Number(m.timestamp);
      if (p && maxAgeMs > 0 && at - p.firstMs >= maxAgeMs) p = close(p);
      const value = parseValue(m);
      ctx.rowsRead(shardRows(value));
      p ??= { from: offset, last: offset, firstMs: at, values: [], rows: 0, bytes: 0, loadsBefore: loads };
      p.values.push(value);
      p.rows += shardRows(value);
      p.bytes += m.value?.length ?? 0;
      p.last = offset;
      let loadEnded = false;
      if (value.k === 'end') ({ state: loads, loadEnded } = countEndMarker(loads, value.table, sink.loadTables));
      if (p.rows >= rows || p.bytes >= bytes || loadEnded) p = close(p);
    }
    const next = BigInt(messages[messages.length - 1].offset) + 1n;
    if (p) pending.set(key, p);
    else pending.delete(key);
    // Durable through the start of what is still only in memory; the count at that offset is
    // stored in the same transaction, so a restart there counts on from it.
    const commit: LoadsAt = p ? { ...p.loadsBefore, next: p.from.toString() } : { ...loads, next: next.toString() };
    // The count at an offset is a function of the offset: a new offset is all that needs writing.
    if (saved?.next !== commit.next) store.set(ctx.topic, commit);
    seen.set(key, { loads, next, committed: commit.next });
    ctx.commitThrough(commit.next);
    observer?.commitThrough(ctx.topic, ctx.partition, BigInt(commit.next));
    return [];
  };
}

/** Writes what a closed range gathered: its shard files (one per task for samples) and corrections. */
function writeShards(out: string, sink: SinkTopic, q: Pending, range: ShardRange, observer?: SinkObserver): void {
  const files: Array<[string, string | undefined, () => arrow.Table]> =
    sink.kind === 'samples'
      ? sampleTasks(q.values).map((task) => [path.posix.join(sink.dir, task, shardFileName(range)), task, () => sampleTable(q.values, task)])
      : [[path.posix.join(sink.dir, shardFileName(range)), undefined, () => shardTable(sink.kind as 'events' | 'pretrain', q.values)]];
  for (const [rel, task, table] of files) {
    const file = path.join(out, rel);
    // A shard already on disk is the same file (its boundaries depend only on the messages).
    const made = fs.existsSync(file) ? null : writeParquetAtomic(file, table());
    const rows = made ? made.rows : task === undefined ? q.rows : sampleRows(q.values, task);
    const content = made ? { content: { bytes: made.bytes, sha256: made.sha256 } } : {};
    observer?.written({ path: rel, kind: sink.kind, ...(task === undefined ? {} : { task }), range, rows, ...content });
  }
  // Corrections of labels emitted by an earlier load: samples/<task>/corrections/<range>.json.
  if (sink.kind === 'samples') {
    for (const [task, list] of sampleCorrections(q.values)) {
      const rel = correctionsPath(sink.dir, task, range);
      const bytes = correctionsBytes(list);
      writeFileAtomic(path.join(out, rel), bytes);
      observer?.written({ path: rel, kind: 'corrections', task, range, rows: list.length, content: { bytes: bytes.length, sha256: sha256(bytes) } });
    }
  }
}
