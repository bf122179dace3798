// The per-partition side of a stage worker (Kafka Streams' "task"): each input partition has its
// own transactional producer (`<group>.p<N>`), its slice of every state store and a lock that runs
// its transactions one at a time. Before its first transaction a partition is made ready: its
// transactional id initialised (which aborts and fences what a previous owner left open), its
// stores rebuilt from their changelogs and the consumer moved to the group's committed offsets.
// A transaction then holds the outputs, dead letters, changelog writes and the consumed offsets.
import { Consumer, Message, Partitioners, Producer } from 'kafkajs';
import { AppendLogStore } from './appendStore';
import { StageHealth } from './health';
import { OutputSender } from './outputSender';
import { ChunkScope, chunkContext, CommitPlan, resetChunk, TransformEnvironmentError, transformEach, transformStreaming } from './stageTransform';
import { StageMessage, StageOptions, StagePhaseInfo, TickView } from './stageTypes';
import { ChangelogStore, StateStore } from './stateStore';
import { watermarkMetadata } from './watermarks';

type Serial = Promise<unknown>;

/** What the tasks need of the group they belong to. */
export interface TaskGroup {
  /** The partitions the group assigned to this worker now. */
  assigned(): ReadonlySet<number>;
  consumer(): Consumer | null;
}

const offsetKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class PartitionTasks {
  readonly stores = new Map<string, StateStore>();
  private readonly producers = new Map<number, Producer>();
  private readonly ready = new Set<number>();
  /** Per topic-partition, the group's committed offset as this worker last set or read it. */
  private readonly committedNext = new Map<string, bigint>();
  private readonly locks = new Map<number, Serial>();
  private readinessLock: Serial = Promise.resolve();
  private transactionCount = 0;
  private readonly groupId: string;

  constructor(
    private readonly opts: StageOptions,
    private readonly health: StageHealth,
    private readonly log: (line: string) => void,
    private readonly group: TaskGroup,
  ) {
    this.groupId = opts.names.group(opts.stage);
    for (const name of opts.stores ?? []) this.stores.set(name, new ChangelogStore(name, opts.names.changelog(opts.stage, name)));
    for (const name of opts.appendStores ?? []) this.stores.set(name, new AppendLogStore(name, opts.names.changelog(opts.stage, name)));
  }


  /** Runs `fn` after the partition's earlier work (its transactions never overlap). */
  serialized<T>(partition: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(partition) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.locks.set(partition, next.catch(() => undefined));
    return next;
  }

  /** A revoked partition: its state and transactional id now belong to another worker. */
  revoke(partition: number): void {
    this.ready.delete(partition);
    for (const s of this.stores.values()) s.drop(partition);
    const producer = this.producers.get(partition);
    this.producers.delete(partition);
    if (producer) void producer.disconnect().catch(() => undefined);
  }

  /** Drops every partition's producer and state; they are rebuilt from the broker when next used. */
  forgetAll(): void {
    for (const p of [...this.ready, ...this.producers.keys()]) for (const s of this.stores.values()) s.drop(p);
    this.ready.clear();
    for (const producer of this.producers.values()) void producer.disconnect().catch(() => undefined);
    this.producers.clear();
  }

  async disconnectAll(): Promise<void> {
    await Promise.all([...this.producers.values()].map((p) => p.disconnect().catch(() => undefined)));
    this.producers.clear();
  }

  /** The committed state of a ready partition, for a tick's `due`. */
  view(partition: number): TickView {
    return {
      partition,
      store: <V>(name: string) => {
        const s = this.stores.get(name);
        if (!(s instanceof ChangelogStore)) throw new Error(`stage ${this.opts.stage} has no state store "${name}"`);
        return (s as ChangelogStore<V>).view(partition);
      },
    };
  }

  /**
   * Before a partition's first transaction: initialise its transactional id, then rebuild its
   * state from the changelogs. All assigned partitions not yet ready are done together, one
   * restore read per store.
   */
  ensureReady(partition: number): Promise<void> {
    if (this.ready.has(partition)) return Promise.resolve();
    const run = async () => {
      if (this.ready.has(partition)) return;
      const todo = [...new Set([...this.group.assigned(), partition])].filter((p) => !this.ready.has(p)).sort((a, b) => a - b);
      for (const p of todo) await (await this.producerOf(p)).transaction().then((init) => init.abort());
      for (const store of this.stores.values()) {
        const records = await store.restore(this.opts.kafka, todo);
        this.health.restoredRecords += records;
        this.log(`[medrep ${this.opts.stage}] restored store ${store.name} partitions [${todo.join(',')}] from ${records} changelog records`);
      }
      await this.seekToCommitted(todo);
      for (const p of todo) this.ready.add(p);
    };
    const next = this.readinessLock.then(run, run);
    this.readinessLock = next.catch(() => undefined);
    return next;
  }

  private async producerOf(p: number): Promise<Producer> {
    let producer = this.producers.get(p);
    if (producer) return producer;
    producer = this.opts.kafka.producer({
      transactionalId: `${this.groupId}.p${p}`,
      idempotent: true,
      maxInFlightRequests: 1,
      // A load's close is one transaction that can take minutes at 10M rows on two cores; the
      // broker aborts a transaction open longer than this (and caps it at its
      // transaction.max.timeout.ms, 15 minutes by default). A crashed worker's transaction
      // does not wait for it: the next owner fences and aborts it at once.
      transactionTimeout: this.opts.transactionTimeoutMs ?? 900_000,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    this.producers.set(p, producer);
    return producer;
  }

  /**
   * Moves the consumer to the group's committed offsets of these partitions. The consumer read
   * them when it joined, but a transaction of the previous owner (or of this worker, before a
   * failure) may have been completing then; once the transactional ids are initialised those
   * offsets are final, and reading from anywhere else could repeat or skip input.
   */
  private async seekToCommitted(partitions: number[]): Promise<void> {
    const consumer = this.group.consumer();
    if (!consumer) return;
    const admin = this.opts.kafka.admin();
    await admin.connect();
    try {
      const committed = await admin.fetchOffsets({ groupId: this.groupId, topics: this.opts.inputTopics });
      for (const t of committed) {
        let ends: Array<{ partition: number; low: string; high: string }> | null = null;
        for (const p of partitions) {
          const stored = BigInt(t.partitions.find((x) => x.partition === p)?.offset ?? '-1');
          let offset = stored.toString();
          if (stored < 0n) {
            ends ??= await admin.fetchTopicOffsets(t.topic);
            const end = ends.find((e) => e.partition === p);
            offset = (this.opts.fromBeginning ?? true) ? (end?.low ?? '0') : (end?.high ?? '0');
          }
          consumer.seek({ topic: t.topic, partition: p, offset });
          if (stored >= 0n) this.committedNext.set(offsetKey(t.topic, p), stored);
          else this.committedNext.delete(offsetKey(t.topic, p));
        }
      }
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * One transaction over a chunk of input messages of one partition. `heartbeat` (the fetched
   * batch's) is called after each request the transaction sends: kafkajs heartbeats only when told,
   * and a long transaction (a load's close) must not outlive the group's session.
   */
  run(topic: string, partition: number, chunk: StageMessage[], heartbeat?: () => Promise<void>): Promise<boolean> {
    const chunkEnd = BigInt(chunk[chunk.length - 1].offset) + 1n;
    return this.transaction(topic, partition, chunk, chunkEnd, heartbeat);
  }

  /**
   * A tick of an owned partition: the transform with no input, in a transaction of its own, if
   * the stage's tick says something is due. The offsets stay where they are (re-committed with the
   * new watermark). Returns whether it produced output.
   */
  tick(partition: number): Promise<boolean> {
    const tick = this.opts.tick;
    return this.serialized(partition, async () => {
      if (!tick || !this.group.assigned().has(partition)) return false;
      // A partition no batch reached since this worker got it (a restart into a quiet stream) is
      // made ready as a batch would make it: its committed state may hold what is now due.
      await this.ensureReady(partition);
      if (!this.ready.has(partition) || !tick.due(this.view(partition))) return false;
      const topic = this.opts.inputTopics[0];
      const committed = this.committedNext.get(offsetKey(topic, partition));
      return this.transaction(topic, partition, [], committed ?? null);
    });
  }

  private async transaction(topic: string, partition: number, chunk: StageMessage[], chunkEnd: bigint | null, heartbeat?: () => Promise<void>): Promise<boolean> {
    const producer = this.producers.get(partition);
    if (!producer) throw new Error(`stage ${this.opts.stage}: partition ${partition} has no producer (not assigned?)`);
    const info: StagePhaseInfo = {
      transaction: ++this.transactionCount, topic, partition,
      firstOffset: chunk[0]?.offset ?? '', lastOffset: chunk[chunk.length - 1]?.offset ?? '', messages: chunk.length, outputs: 0,
    };
    const key = offsetKey(topic, partition);
    const commit: CommitPlan = { next: chunkEnd ?? -1n, rowsRead: null, watermark: undefined };
    const scope: ChunkScope = { stage: this.opts.stage, stores: this.stores, topic, partition, chunkEnd: chunkEnd ?? -1n, committed: this.committedNext.get(key), deadLetters: [], commit };
    const began = Date.now();
    let txn = await producer.transaction();
    let sender = new OutputSender(txn, this.opts.compression, heartbeat);
    try {
      const ctx = chunkContext(scope);
      const failure = await transformStreaming(this.opts.transform, chunk, ctx, sender);
      if (failure) {
        resetChunk(scope);
        // Outputs of the failed try already went out: they leave with this transaction.
        if (sender.sentAny) {
          await txn.abort();
          txn = await producer.transaction();
          sender = new OutputSender(txn, this.opts.compression, heartbeat);
        } else sender.discard();
        const failed = await transformEach(this.opts.transform, chunk, ctx, sender, scope);
        this.log(`[medrep ${this.opts.stage}] transform failed on ${describeChunk(info)} (${failure.message}); ${failed} of ${chunk.length} messages dead-lettered`);
      }
      info.outputs = sender.outputs;
      this.opts.onPhase?.('transformed', info);
      await this.sendRest(sender, scope);
      this.opts.onPhase?.('produced', info);
      if (chunkEnd !== null && (commit.next !== this.committedNext.get(key) || (chunk.length === 0 && commit.watermark !== undefined))) {
        const metadata = commit.watermark === undefined ? undefined : watermarkMetadata(commit.watermark);
        await txn.sendOffsets({ consumerGroupId: this.groupId, topics: [{ topic, partitions: [{ partition, offset: commit.next.toString(), ...(metadata && { metadata }) }] }] });
      }
      this.opts.onPhase?.('offsets-sent', info);
      await txn.commit();
      if (chunkEnd !== null) this.committedNext.set(key, commit.next);
    } catch (e) {
      this.health.aborted++;
      this.log(`[medrep ${this.opts.stage}] transaction on ${describeChunk(info)} failed after ${((Date.now() - began) / 1000).toFixed(1)} s and is ${e instanceof TransformEnvironmentError ? 'aborted' : 'retried'}: ${(e as Error).message}`);
      await txn.abort().catch(() => undefined);
      // The outcome on the broker may be unknown (e.g. a commit that timed out): forget this
      // partition's producer and state so both are rebuilt from the broker before the next try.
      for (const s of this.stores.values()) s.drop(partition);
      this.ready.delete(partition);
      this.producers.delete(partition);
      void producer.disconnect().catch(() => undefined);
      throw e;
    }
    this.committed(partition, chunk.length, scope, sender);
    this.opts.onPhase?.('committed', info);
    return sender.outputs > 0;
  }

  /** Dead letters and changelog writes, after the outputs (the changelog holds every write of the transform). */
  private async sendRest(sender: OutputSender, scope: ChunkScope): Promise<void> {
    for (const d of scope.deadLetters) await sender.add(this.opts.names.dlq, d);
    for (const store of this.stores.values()) for (const m of store.changelogMessages(scope.partition) as Message[]) await sender.add(store.changelogTopic, m);
    await sender.flush();
  }

  private committed(partition: number, messages: number, scope: ChunkScope, sender: OutputSender): void {
    for (const s of this.stores.values()) s.commitPending(partition);
    if (scope.commit.watermark !== undefined) this.health.onWatermark(partition, scope.commit.watermark);
    this.health.transactions++;
    this.health.consumed += messages;
    this.health.produced += sender.outputs;
    this.health.rowsConsumed += scope.commit.rowsRead ?? messages;
    this.health.rowsProduced += sender.rows;
    this.health.deadLettered += scope.deadLetters.length;
  }
}

function describeChunk(info: StagePhaseInfo): string {
  return info.messages === 0 ? `${info.topic}/${info.partition} (tick)` : `${info.topic}/${info.partition}@${info.firstOffset}..${info.lastOffset}`;
}
