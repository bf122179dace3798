// An append-only per-key state store: each key holds a growing list of numbers or exact ids (e.g. a person's
// events, a fixed number of fields per event). The changelog carries only what each transaction
// appended, under a key of its own (`<key>@<writer>.<n>`), so a compacted changelog keeps every
// delta and a key's list is rebuilt by concatenating its deltas in log order. This keeps the
// changelog traffic proportional to the data (a key-value store rewrites a person's whole history
// on every transaction that touches it) and the memory to one packed number per field.
//
// A list's oldest values can be dropped (dropPrefix): the list then starts at an offset (base,
// the values dropped so far). In the changelog a drop is a tombstone for every delta that lies
// wholly in the dropped prefix (compaction removes them) and one record under `<key>@drop`
// (compacted to the latest): {"skip": values to skip at the start of the deltas still there,
// "base": the list's offset}. A changelog without drop records restores as before.
//
// As in ChangelogStore, appends and drops made while a transaction is open are pending: they
// reach the changelog inside that transaction and an abort puts every touched list back as it was
// committed.
import { randomBytes } from 'node:crypto';
import { Kafka, Message } from 'kafkajs';
import { partitionMap, readChangelog, StateStore } from './stateStore';
import { Id } from '../../schemas/ids';
import { parseJsonExact, stringifyJsonExact } from '../../schemas/exactJson';

/** The store as a transform sees it: bound to the partition being processed. */
export interface AppendView {
  /** The list of a key (committed and pending appends), or undefined if never appended to. */
  get(key: string): readonly Id[] | undefined;
  append(key: string, values: readonly Id[]): void;
  /** Values dropped from the start of the key's list so far: get(key)[i] is value base + i of all ever appended. */
  base(key: string): number;
  /** Drops the first `count` values of the key's list (durable with the transaction). */
  dropPrefix(key: string, count: number): void;
  /** Whether the open transaction appended to the key. */
  appended(key: string): boolean;
}

/** Numbers per changelog message at most (a delta is split to stay far below message.max.bytes). */
const NUMBERS_PER_MESSAGE = 20_000;
/** The suffix of a key's drop record (not `<writer>.<n>`: a writer id is 12 hex digits). */
const DROP = 'drop';

/** A delta record in the changelog: its key and the values it holds (absolute positions). */
interface Delta {
  key: string;
  start: number;
  length: number;
}

interface Entry {
  list: Id[];
  /** Values dropped before list[0]. */
  base: number;
  /** The committed deltas still live in the changelog, in order, covering [base - skip, base + list.length). */
  deltas: Delta[];
}

/** A key touched by the open transaction: its committed end and base, and the values it dropped. */
interface Touch {
  end: number;
  base: number;
  dropped: Id[];
  /** The key's live deltas once this transaction commits (set by changelogMessages). */
  next?: Delta[];
}

type Pending = Map<string, Touch>;
/** A save point: key -> [its touch at the save point, list end, values dropped by then]. */
type SavePoint = Map<string, [Touch, number, number]>;

interface DropRecord {
  skip: number;
  base: number;
}

export class AppendLogStore implements StateStore {
  private readonly lists = new Map<number, Map<string, Entry>>();
  private readonly pending = new Map<number, Pending>();
  /** Makes delta keys unique across writers and restarts (deltas of one key must never compact). */
  private readonly writer = randomBytes(6).toString('hex');
  private sequence = 0;

  constructor(
    readonly name: string,
    readonly changelogTopic: string,
  ) {}

  view(partition: number): AppendView {
    return {
      get: (key) => this.listsOf(partition).get(key)?.list,
      append: (key, values) => this.append(partition, key, values),
      base: (key) => this.listsOf(partition).get(key)?.base ?? 0,
      dropPrefix: (key, count) => this.dropPrefix(partition, key, count),
      appended: (key) => {
        const t = this.pending.get(partition)?.get(key);
        const e = this.lists.get(partition)?.get(key);
        return t !== undefined && e !== undefined && e.base + e.list.length > t.end;
      },
    };
  }

  append(partition: number, key: string, values: readonly Id[]): void {
    const e = this.touch(partition, key);
    for (let i = 0; i < values.length; i++) e.list.push(values[i]);
  }

  dropPrefix(partition: number, key: string, count: number): void {
    if (count === 0) return;
    const e = this.listsOf(partition).get(key);
    if (!e || !(count > 0 && count <= e.list.length) || !Number.isInteger(count)) {
      throw new Error(`${this.name}: cannot drop ${count} values of key ${key} (it holds ${e?.list.length ?? 0})`);
    }
    this.touch(partition, key);
    const t = this.pendingOf(partition).get(key)!;
    const removed = e.list.splice(0, count);
    for (let i = 0; i < removed.length; i++) t.dropped.push(removed[i]);
    e.base += count;
  }

  /** Keys of one partition with their committed lists (a copy, for inspection and tests). */
  entries(partition: number): Map<string, Id[]> {
    const out = new Map<string, Id[]>();
    for (const [k, list] of this.committedLists(partition)) if (list.length > 0) out.set(k, list);
    return out;
  }

  /** Committed values kept and dropped per key of one partition. */
  sizes(partition: number): Map<string, { kept: number; base: number }> {
    const out = new Map<string, { kept: number; base: number }>();
    const pending = this.pending.get(partition);
    for (const [k, e] of this.lists.get(partition) ?? []) {
      const t = pending?.get(k);
      const base = t ? t.base : e.base;
      const kept = (t ? t.end : e.base + e.list.length) - base;
      if (kept > 0 || base > 0) out.set(k, { kept, base });
    }
    return out;
  }

  changelogMessages(partition: number): Message[] {
    const out: Message[] = [];
    const lists = this.listsOf(partition);
    for (const [key, t] of this.pending.get(partition) ?? []) {
      const e = lists.get(key)!;
      const deltas = e.deltas.slice();
      // Values appended and dropped in this transaction never reach the changelog.
      const end = e.base + e.list.length;
      for (let i = Math.max(t.end, e.base); i < end; i += NUMBERS_PER_MESSAGE) {
        const to = Math.min(end, i + NUMBERS_PER_MESSAGE);
        const d: Delta = { key: `${key}@${this.writer}.${(this.sequence++).toString(36)}`, start: i, length: to - i };
        out.push({ key: d.key, value: stringifyJsonExact(e.list.slice(i - e.base, to - e.base)), partition });
        deltas.push(d);
      }
      if (e.base !== t.base) {
        const live = deltas.filter((d) => d.start + d.length > e.base);
        for (const d of deltas) if (d.start + d.length <= e.base) out.push({ key: d.key, value: null, partition });
        const drop: DropRecord = { skip: live.length > 0 ? e.base - live[0].start : 0, base: e.base };
        out.push({ key: `${key}@${DROP}`, value: JSON.stringify(drop), partition });
        t.next = live;
      } else t.next = deltas;
    }
    return out;
  }

  commitPending(partition: number): void {
    const lists = this.listsOf(partition);
    for (const [key, t] of this.pending.get(partition) ?? []) {
      const e = lists.get(key);
      if (e && t.next) e.deltas = t.next;
    }
    this.pending.delete(partition);
  }

  abortPending(partition: number): void {
    const lists = this.listsOf(partition);
    for (const [key, t] of this.pending.get(partition) ?? []) rollBack(lists, key, t, t.end, 0);
    this.pending.delete(partition);
  }

  savePending(partition: number): SavePoint {
    const lists = this.listsOf(partition);
    const saved: SavePoint = new Map();
    for (const [key, t] of this.pending.get(partition) ?? []) {
      const e = lists.get(key)!;
      saved.set(key, [t, e.base + e.list.length, t.dropped.length]);
    }
    return saved;
  }

  restorePending(partition: number, saved: unknown): void {
    const point = saved as SavePoint;
    const lists = this.listsOf(partition);
    const pending: Pending = new Map();
    for (const [key, t] of this.pending.get(partition) ?? []) {
      const at = point.get(key);
      rollBack(lists, key, t, at ? at[1] : t.end, at ? at[2] : 0);
      if (at) pending.set(key, t);
    }
    this.pending.set(partition, pending);
  }

  drop(partition: number): void {
    this.lists.delete(partition);
    this.pending.delete(partition);
  }

  /**
   * Rebuilds the given partitions: each key's deltas in changelog order, less those a tombstone
   * deleted, concatenated; a drop record skips the values it names at their start.
   */
  async restore(kafka: Kafka, partitions: number[], timeoutMs = 120_000): Promise<number> {
    for (const p of partitions) this.drop(p);
    const read = new Map<number, Map<string, { deltas: Map<string, Id[]>; drop: DropRecord }>>();
    const n = await readChangelog(kafka, this.changelogTopic, partitions, timeoutMs, (partition, deltaKey, value) => {
      const at = deltaKey.lastIndexOf('@');
      if (at < 0) throw new Error(`${this.changelogTopic}/${partition}: key ${JSON.stringify(deltaKey)} is not <key>@<delta> (not an append-log changelog?)`);
      const key = deltaKey.slice(0, at);
      const keys = partitionMap(read, partition);
      let r = keys.get(key);
      if (!r) keys.set(key, (r = { deltas: new Map(), drop: { skip: 0, base: 0 } }));
      if (deltaKey.slice(at + 1) === DROP) {
        if (value !== null) r.drop = JSON.parse(value.toString()) as DropRecord;
      } else if (value === null) r.deltas.delete(deltaKey);
      // Ids beyond 2^53 (row ids, concept ids) are bigints, kept exact through the changelog.
      else r.deltas.set(deltaKey, parseJsonExact(value.toString()) as Id[]);
    });
    for (const [partition, keys] of read) {
      const lists = this.listsOf(partition);
      for (const [key, r] of keys) {
        const list: Id[] = [];
        const deltas: Delta[] = [];
        let start = r.drop.base - r.drop.skip;
        for (const [k, values] of r.deltas) {
          deltas.push({ key: k, start, length: values.length });
          start += values.length;
          for (let i = 0; i < values.length; i++) list.push(values[i]);
        }
        list.splice(0, r.drop.skip);
        lists.set(key, { list, base: r.drop.base, deltas });
        keys.delete(key); // its parsed deltas are garbage from here on
      }
    }
    return n;
  }

  /** The committed lists of a partition (pending appends and drops left out). */
  private committedLists(partition: number): Map<string, Id[]> {
    const out = new Map<string, Id[]>();
    const pending = this.pending.get(partition);
    for (const [k, e] of this.lists.get(partition) ?? []) {
      const t = pending?.get(k);
      if (!t) {
        out.set(k, e.list.slice());
        continue;
      }
      const all = [...t.dropped, ...e.list];
      out.set(k, all.slice(0, t.end - t.base));
    }
    return out;
  }

  /** The key's entry, recording its committed state the first time the open transaction touches it. */
  private touch(partition: number, key: string): Entry {
    const lists = this.listsOf(partition);
    let e = lists.get(key);
    if (!e) lists.set(key, (e = { list: [], base: 0, deltas: [] }));
    const pending = this.pendingOf(partition);
    if (!pending.has(key)) pending.set(key, { end: e.base + e.list.length, base: e.base, dropped: [] });
    return e;
  }

  private listsOf(partition: number): Map<string, Entry> {
    return partitionMap(this.lists, partition);
  }

  private pendingOf(partition: number): Pending {
    return partitionMap(this.pending, partition);
  }
}

/**
 * Puts a key back to the list it had with `keepDropped` of its pending drops done and its values
 * up to `end` (absolute): the values dropped since go back in front, later appends are cut off.
 */
function rollBack(lists: Map<string, Entry>, key: string, t: Touch, end: number, keepDropped: number): void {
  const e = lists.get(key);
  if (!e) return;
  if (t.dropped.length > keepDropped) {
    const back = t.dropped.splice(keepDropped);
    e.list = [...back, ...e.list];
    e.base -= back.length;
  }
  t.next = undefined;
  if (end - e.base < e.list.length) e.list.length = Math.max(0, end - e.base);
  if (e.list.length === 0 && e.base === 0 && e.deltas.length === 0) lists.delete(key);
}
