// A per-key state store for a stage, one map per input partition, backed by a compacted
// changelog topic (Kafka Streams' design). Writes made while a transaction is open are pending:
// they go to the changelog inside that transaction and become the state only when it commits,
// so an aborted transaction leaves the state as it was. After a restart or a rebalance the
// partitions a worker now owns are rebuilt by reading their changelog partitions to the end.
import { Kafka, Message } from 'kafkajs';
import { readToEnd } from './readToEnd';
import { parseJsonExact, stringifyJsonExact } from '../../schemas/exactJson';

const TOMBSTONE = Symbol('tombstone');
type Pending<V> = Map<string, V | typeof TOMBSTONE>;

/** The store as a transform sees it: bound to the partition being processed. */
export interface KeyValueView<V> {
  get(key: string): V | undefined;
  set(key: string, value: V): void;
  delete(key: string): void;
  /** Every key with a value (committed or pending), e.g. to flush all of a partition's state. */
  keys(): string[];
}

/** What a stage worker needs of any changelog-backed store (see StageWorker.runTransaction). */
export interface StateStore {
  readonly name: string;
  readonly changelogTopic: string;
  /** The writes of the open transaction as changelog messages. */
  changelogMessages(partition: number): Message[];
  /** The transaction that carried the pending writes committed: they become the state. */
  commitPending(partition: number): void;
  abortPending(partition: number): void;
  /** A save point of the pending writes, to roll back to after a failed step (restorePending). */
  savePending(partition: number): unknown;
  restorePending(partition: number, saved: unknown): void;
  /** Forgets a partition this worker no longer owns. */
  drop(partition: number): void;
  /** Rebuilds the given partitions from the changelog (read_committed, to its end); returns records read. */
  restore(kafka: Kafka, partitions: number[], timeoutMs?: number): Promise<number>;
}

export class ChangelogStore<V> implements StateStore {
  private readonly committed = new Map<number, Map<string, V>>();
  private readonly pending = new Map<number, Pending<V>>();

  constructor(
    readonly name: string,
    readonly changelogTopic: string,
  ) {}

  view(partition: number): KeyValueView<V> {
    return {
      get: (key) => this.get(partition, key),
      set: (key, value) => this.set(partition, key, value),
      delete: (key) => this.delete(partition, key),
      keys: () => this.keys(partition),
    };
  }

  get(partition: number, key: string): V | undefined {
    const p = this.pending.get(partition)?.get(key);
    if (p === TOMBSTONE) return undefined;
    if (p !== undefined) return p;
    return this.committed.get(partition)?.get(key);
  }

  set(partition: number, key: string, value: V): void {
    this.pendingOf(partition).set(key, value);
  }

  delete(partition: number, key: string): void {
    this.pendingOf(partition).set(key, TOMBSTONE);
  }

  keys(partition: number): string[] {
    const keys = new Set(this.committed.get(partition)?.keys() ?? []);
    for (const [k, v] of this.pending.get(partition) ?? []) {
      if (v === TOMBSTONE) keys.delete(k);
      else keys.add(k);
    }
    return [...keys];
  }

  /** Committed entries of one partition (a copy, for inspection and tests). */
  entries(partition: number): Map<string, V> {
    return new Map(this.committed.get(partition) ?? []);
  }

  size(partition: number): number {
    return this.committed.get(partition)?.size ?? 0;
  }

  /** The pending writes of a partition as changelog messages (latest value per key). */
  changelogMessages(partition: number): Message[] {
    const out: Message[] = [];
    for (const [key, v] of this.pending.get(partition) ?? []) {
      out.push({ key, value: v === TOMBSTONE ? null : stringifyJsonExact(v), partition });
    }
    return out;
  }

  /** The transaction that carried the pending writes committed: they become the state. */
  commitPending(partition: number): void {
    const pending = this.pending.get(partition);
    if (!pending) return;
    const state = this.stateOf(partition);
    for (const [key, v] of pending) {
      if (v === TOMBSTONE) state.delete(key);
      else state.set(key, v);
    }
    this.pending.delete(partition);
  }

  abortPending(partition: number): void {
    this.pending.delete(partition);
  }

  /** Copy of the pending writes, to roll back to after a failed step (see restorePending). */
  savePending(partition: number): Pending<V> {
    return new Map(this.pending.get(partition) ?? []);
  }

  restorePending(partition: number, saved: unknown): void {
    this.pending.set(partition, new Map(saved as Pending<V>));
  }

  /** Forgets a partition this worker no longer owns. */
  drop(partition: number): void {
    this.committed.delete(partition);
    this.pending.delete(partition);
  }

  /** Rebuilds the given partitions from the changelog (read_committed, to its end). */
  async restore(kafka: Kafka, partitions: number[], timeoutMs = 120_000): Promise<number> {
    for (const p of partitions) this.drop(p);
    return readChangelog(kafka, this.changelogTopic, partitions, timeoutMs, (partition, key, value) => {
      const state = this.stateOf(partition);
      if (value === null) state.delete(key);
      else state.set(key, parseJsonExact(value.toString()) as V);
    });
  }

  private pendingOf(partition: number): Pending<V> {
    return partitionMap(this.pending, partition);
  }

  private stateOf(partition: number): Map<string, V> {
    return partitionMap(this.committed, partition);
  }
}

/** A store's map for one partition, created empty on first use. */
export function partitionMap<K, V>(byPartition: Map<number, Map<K, V>>, partition: number): Map<K, V> {
  let m = byPartition.get(partition);
  if (!m) byPartition.set(partition, (m = new Map()));
  return m;
}

/**
 * Reads the given partitions of a changelog to its end (read_committed), handing each keyed
 * record to `apply` in log order; returns how many there were.
 */
export async function readChangelog(
  kafka: Kafka,
  topic: string,
  partitions: number[],
  timeoutMs: number,
  apply: (partition: number, key: string, value: Buffer | null) => void,
): Promise<number> {
  let records = 0;
  await readToEnd(kafka, topic, { partitions, timeoutMs }, (partition, m) => {
    if (m.key === null) return;
    records++;
    apply(partition, m.key.toString(), m.value);
  });
  return records;
}
