// An append-only per-key state store: each key holds a growing list of numbers or exact ids (e.g. a person's
// events, a fixed number of fields per event). The changelog carries only what each transaction
// appended, under a key of its own (`<key>@<writer>.<n>`), so a compacted changelog keeps every
// delta and a key's list is rebuilt by concatenating its deltas in log order. This keeps the
// changelog traffic proportional to the data (a key-value store rewrites a person's whole history
// on every transaction that touches it) and the memory to one packed number per field.
//
// As in ChangelogStore, appends made while a transaction is open are pending: they reach the
// changelog inside that transaction and an abort truncates every touched list back to its
// committed length.
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
}

/** Numbers per changelog message at most (a delta is split to stay far below message.max.bytes). */
const NUMBERS_PER_MESSAGE = 20_000;

/** Pending appends of a partition: key -> committed length of its list. */
type Pending = Map<string, number>;
/** A save point: key -> [committed length, length at the save point]. */
type SavePoint = Map<string, [number, number]>;

export class AppendLogStore implements StateStore {
  private readonly lists = new Map<number, Map<string, Id[]>>();
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
      get: (key) => this.listsOf(partition).get(key),
      append: (key, values) => this.append(partition, key, values),
    };
  }

  append(partition: number, key: string, values: readonly Id[]): void {
    const lists = this.listsOf(partition);
    let list = lists.get(key);
    if (!list) lists.set(key, (list = [] as Id[]));
    const pending = this.pendingOf(partition);
    if (!pending.has(key)) pending.set(key, list.length);
    for (let i = 0; i < values.length; i++) list.push(values[i]);
  }

  /** Keys of one partition with their committed lists (a copy, for inspection and tests). */
  entries(partition: number): Map<string, Id[]> {
    const out = new Map<string, Id[]>();
    const pending = this.pending.get(partition);
    for (const [k, list] of this.lists.get(partition) ?? []) {
      const n = pending?.get(k) ?? list.length;
      if (n > 0) out.set(k, list.slice(0, n));
    }
    return out;
  }

  changelogMessages(partition: number): Message[] {
    const out: Message[] = [];
    const lists = this.listsOf(partition);
    for (const [key, from] of this.pending.get(partition) ?? []) {
      const list = lists.get(key)!;
      for (let i = from; i < list.length; i += NUMBERS_PER_MESSAGE) {
        out.push({ key: `${key}@${this.writer}.${(this.sequence++).toString(36)}`, value: stringifyJsonExact(list.slice(i, Math.min(list.length, i + NUMBERS_PER_MESSAGE))), partition });
      }
    }
    return out;
  }

  commitPending(partition: number): void {
    this.pending.delete(partition);
  }

  abortPending(partition: number): void {
    const lists = this.listsOf(partition);
    for (const [key, committed] of this.pending.get(partition) ?? []) truncate(lists, key, committed);
    this.pending.delete(partition);
  }

  savePending(partition: number): SavePoint {
    const lists = this.listsOf(partition);
    const saved: SavePoint = new Map();
    for (const [key, committed] of this.pending.get(partition) ?? []) saved.set(key, [committed, lists.get(key)!.length]);
    return saved;
  }

  restorePending(partition: number, saved: unknown): void {
    const point = saved as SavePoint;
    const lists = this.listsOf(partition);
    const pending: Pending = new Map();
    for (const [key, committed] of this.pending.get(partition) ?? []) {
      const at = point.get(key);
      truncate(lists, key, at ? at[1] : committed);
    }
    for (const [key, [committed]] of point) pending.set(key, committed);
    this.pending.set(partition, pending);
  }

  drop(partition: number): void {
    this.lists.delete(partition);
    this.pending.delete(partition);
  }

  /** Rebuilds the given partitions by concatenating each key's deltas in changelog order. */
  async restore(kafka: Kafka, partitions: number[], timeoutMs = 120_000): Promise<number> {
    for (const p of partitions) this.drop(p);
    return readChangelog(kafka, this.changelogTopic, partitions, timeoutMs, (partition, deltaKey, value) => {
      if (value === null) return; // deltas are never deleted; a tombstone carries nothing to append
      const at = deltaKey.lastIndexOf('@');
      if (at < 0) throw new Error(`${this.changelogTopic}/${partition}: key ${JSON.stringify(deltaKey)} is not <key>@<delta> (not an append-log changelog?)`);
      const key = deltaKey.slice(0, at);
      // Ids beyond 2^53 (row ids, concept ids) are bigints, kept exact through the changelog.
      const values = parseJsonExact(value.toString()) as Id[];
      const lists = this.listsOf(partition);
      let list = lists.get(key);
      if (!list) lists.set(key, (list = [] as Id[]));
      for (let i = 0; i < values.length; i++) list.push(values[i]);
    });
  }

  private listsOf(partition: number): Map<string, Id[]> {
    return partitionMap(this.lists, partition);
  }

  private pendingOf(partition: number): Pending {
    return partitionMap(this.pending, partition);
  }
}

function truncate(lists: Map<string, Id[]>, key: string, length: number): void {
  const list = lists.get(key);
  if (!list) return;
  if (length === 0) lists.delete(key);
  else list.length = length;
}
