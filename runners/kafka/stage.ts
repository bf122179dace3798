// A stage worker: consume -> transform -> produce, exactly once. Every chunk of input is turned
// into output inside one Kafka transaction that also carries the consumed offsets and the state
// store's changelog writes, so a crash at any point either commits all three or none of them.
//
// Transactional ids are per input partition (`<group>.p<N>`), as in Kafka Streams' first
// exactly-once design: whichever worker owns partition N initialises that id, which aborts a
// dead or stalled predecessor's open transaction and fences it, on restart and on rebalance alike.
// Readers of the output use read_committed. The transform is a plain callback, so the pure
// transforms of transforms/ plug in without knowing about Kafka.
import { CompressionTypes, Consumer, IHeaders, Kafka, KafkaMessage, Message, Partitioners, Producer } from 'kafkajs';
import { CONSUMER_TIMEOUTS } from './config';
import { copartitionAssigner } from './copartitionAssigner';
import { deadLetterMessage, DeadLetterKind } from './deadLetter';
import { HealthSnapshot, StageHealth } from './health';
import { watermarkMetadata } from './watermarks';
import { ChangelogStore, KeyValueView, StateStore } from './stateStore';
import { AppendLogStore, AppendView } from './appendStore';
import { changelogTopicSpec, ensureTopics, partitionCount, TopicNames } from './topics';
import { classifyError, EnvironmentError, EXIT } from '../../common/errors';

export interface StageMessage {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

export interface OutputMessage {
  topic: string;
  key?: string | Buffer | null;
  value: string | Buffer | null;
  headers?: IHeaders;
  /** Explicit partition; by default the key decides (Kafka's murmur2, as Java clients do). */
  partition?: number;
  /** Rows the message holds, for the progress line (default 1). */
  rows?: number;
}

export interface StageContext {
  /** The input topic and partition of the messages being transformed. */
  topic: string;
  partition: number;
  /** A state store of this stage (named in StageOptions.stores), bound to this partition. */
  store<V>(name: string): KeyValueView<V>;
  /** An append-only store of this stage (named in StageOptions.appendStores), bound to this partition. */
  appendStore(name: string): AppendView;
  /** Sends one input message to the dead-letter topic (in the same transaction) and counts it. */
  /**
   * Sets a message aside in the dead-letter topic. `element`: only one row of a message that
   * carries several (its JSON and index; the source header names it as `@offset#index`).
   */
  deadLetter(message: StageMessage, kind: DeadLetterKind, reason: string, table?: string, element?: { value: string; index: number }): void;
  /**
   * For sinks that keep input across calls until it is durable (e.g. a Parquet shard covering a
   * fixed offset range): commit the group's offset only up to `nextOffset` (the first offset not
   * yet durable) instead of past the whole chunk. After a crash the stage re-reads from there.
   * Must lie between the offset already committed and the chunk's last offset + 1.
   */
  commitThrough(nextOffset: string): void;
  /**
   * Rows the chunk's messages held, for the progress line (a message may carry many rows; see
   * OutputMessage.rows for the outputs). A transform that never calls it counts a row per message.
   */
  rowsRead(rows: number): void;
  /**
   * The partition's event-time watermark after this chunk (epoch ms, null: none yet): shown in the
   * health line and committed as the offset's metadata, where `medrep status` reads it.
   */
  watermark?(ms: number | null): void;
}

/** Turns a chunk of input messages of one partition into output messages. */
export type StageTransform = (messages: StageMessage[], ctx: StageContext) => OutputMessage[] | Promise<OutputMessage[]>;

export type StagePhase = 'transformed' | 'produced' | 'offsets-sent' | 'committed';

export interface StagePhaseInfo {
  /** 1-based count of transactions begun by this worker. */
  transaction: number;
  topic: string;
  partition: number;
  firstOffset: string;
  lastOffset: string;
  messages: number;
  outputs: number;
}

export interface StageOptions {
  kafka: Kafka;
  names: TopicNames;
  /** Stage name: the consumer group is `names.group(stage)`. */
  stage: string;
  inputTopics: string[];
  transform: StageTransform;
  /** Names of the per-key state stores, each backed by a compacted changelog topic. */
  stores?: string[];
  /** Names of the per-key append-only stores (lists of numbers; the changelog carries deltas). */
  appendStores?: string[];
  /** How long a transaction may stay open before the broker aborts it (default 15 minutes). */
  transactionTimeoutMs?: number;
  /** Input messages per transaction at most (default 5000); a fetched batch is split. */
  maxMessagesPerTransaction?: number;
  /** Compression of the stage's output (default none: CPU matters more than bytes on one host). */
  compression?: 'gzip' | 'none';
  /** Where a new group starts (default true: from the beginning, so nothing retained is skipped). */
  fromBeginning?: boolean;
  partitionsConsumedConcurrently?: number;
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Health line every N ms (default 30000, 0 = never); also on SIGUSR1. */
  healthIntervalMs?: number;
  /** A partition whose watermark did not move for this long (ms) does not hold the stage's back. */
  watermarkIdleMs?: number;
  /** Stop once every assigned partition is consumed to its end and nothing came for this long. */
  exitWhenIdleMs?: number;
  /**
   * With exitWhenIdleMs: not idle before this settles, e.g. before the stages that feed this one
   * from the same process began to stop (their output may come late, after a broker restart, while
   * this stage's own input looks drained). They stop after an idle period of their own, in which
   * this stage fetched their last output.
   */
  idleAfter?: Promise<unknown>;
  /** SIGTERM/SIGINT finish the transaction in flight and stop; SIGUSR1 prints health (default true). */
  handleSignals?: boolean;
  log?: (line: string) => void;
  /** Observes each step of each transaction (metrics, fault-injection tests). */
  onPhase?: (phase: StagePhase, info: StagePhaseInfo) => void;
}

export interface StageSummary extends HealthSnapshot {
  reason: 'idle' | 'stopped' | 'signal';
}

type Serial = Promise<unknown>;

const SEND_SLICE = 1000;
/** Bytes of message values per produce request at most: the broker refuses requests over its
 * socket.request.max.bytes (100 MB by default), and a load's close can emit gigabytes. */
const SEND_SLICE_BYTES = 16 * 1024 * 1024;

/** Consecutive slices of at most SEND_SLICE messages and about SEND_SLICE_BYTES of values each. */
export function sendSlices(messages: Message[]): Message[][] {
  const slices: Message[][] = [];
  let slice: Message[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = m.value === null || m.value === undefined ? 0 : typeof m.value === 'string' ? Buffer.byteLength(m.value) : m.value.byteLength;
    if (slice.length > 0 && (slice.length >= SEND_SLICE || bytes + size > SEND_SLICE_BYTES)) {
      slices.push(slice);
      slice = [];
      bytes = 0;
    }
    slice.push(m);
    bytes += size;
  }
  if (slice.length > 0) slices.push(slice);
  return slices;
}

/** A fetched batch, as eachBatch and kafkajs' END_BATCH_PROCESS event both name it. */
const batchKey = (topic: string, partition: number, lastOffset: string) => `${topic}\u0000${partition}\u0000${lastOffset}`;

export class StageWorker {
  readonly health: StageHealth;
  readonly groupId: string;
  readonly done: Promise<StageSummary>;
  /** Settles when stop() begins: from then on this worker starts no transaction. */
  readonly stopBegan: Promise<void>;
  private resolveStopBegan!: () => void;
  private resolveDone!: (s: StageSummary) => void;
  private rejectDone!: (e: Error) => void;
  private consumer: Consumer | null = null;
  private readonly producers = new Map<number, Producer>();
  private readonly stores = new Map<string, StateStore>();
  private assigned = new Set<number>();
  /** The partitions of each input topic this worker owns (the same numbers for every topic). */
  assignment: Record<string, number[]> = {};
  private readonly ready = new Set<number>();
  /** Per topic-partition, the group's committed offset as this worker last set or read it. */
  private readonly committedNext = new Map<string, bigint>();
  private readonly partitionLocks = new Map<number, Serial>();
  private readinessLock: Serial = Promise.resolve();
  private stopping: Promise<StageSummary> | null = null;
  private transactionCount = 0;
  private lastActivity = Date.now();
  /** Batches eachBatch returned from without processing them all (topic, partition, last offset). */
  private readonly unfinishedBatches = new Set<string>();
  private joined = false;
  /** Batches being processed now: a stage is never idle while one runs (or fails and retries). */
  private busy = 0;
  private checkingIdle = false;
  private upstreamRunning = false;
  private timers: NodeJS.Timeout[] = [];
  private signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  private readonly log: (line: string) => void;

  constructor(private readonly opts: StageOptions) {
    this.health = new StageHealth(opts.stage, opts.watermarkIdleMs);
    this.groupId = opts.names.group(opts.stage);
    this.log = opts.log ?? ((line) => console.error(line));
    this.done = new Promise<StageSummary>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A failure is reported through done; keep an unobserved rejection from killing the process.
    this.done.catch(() => undefined);
    for (const name of opts.stores ?? []) {
      this.stores.set(name, new ChangelogStore(name, opts.names.changelog(opts.stage, name)));
    }
    for (const name of opts.appendStores ?? []) {
      this.stores.set(name, new AppendLogStore(name, opts.names.changelog(opts.stage, name)));
    }
    this.stopBegan = new Promise<void>((resolve) => (this.resolveStopBegan = resolve));
    if (opts.idleAfter) {
      this.upstreamRunning = true;
      const upstreamDone = () => (this.upstreamRunning = false);
      opts.idleAfter.then(upstreamDone, upstreamDone);
    }
  }

  /** Checks the topics, creates the changelogs, joins the group and starts consuming. */
  async start(): Promise<void> {
    const { kafka, inputTopics } = this.opts;
    if (inputTopics.length === 0) throw new Error(`stage ${this.opts.stage}: no input topics`);
    const admin = kafka.admin();
    await admin.connect();
    try {
      const counts = await Promise.all(inputTopics.map((t) => partitionCount(admin, t)));
      if (new Set(counts).size > 1) {
        const detail = inputTopics.map((t, i) => `${t}=${counts[i]}`).join(', ');
        throw new Error(`stage ${this.opts.stage}: input topics must have one partition count (${detail})`);
      }
      await ensureTopics(
        admin,
        [...this.stores.values()].map((s) => changelogTopicSpec(s.changelogTopic, counts[0])),
      );
    } finally {
      await admin.disconnect();
    }

    await this.launchConsumer();

    const healthMs = this.opts.healthIntervalMs ?? 30_000;
    if (healthMs > 0) this.timers.push(setInterval(() => this.log(this.health.line()), healthMs));
    if (this.opts.exitWhenIdleMs !== undefined) {
      const idleMs = this.opts.exitWhenIdleMs;
      this.timers.push(setInterval(() => this.checkIdle(idleMs), Math.min(500, Math.max(50, idleMs / 4))));
    }
    if (this.opts.handleSignals ?? true) this.installSignals();
  }

  private async launchConsumer(): Promise<void> {
    const consumer = this.opts.kafka.consumer({
      groupId: this.groupId,
      readUncommitted: false,
      sessionTimeout: this.opts.sessionTimeoutMs ?? CONSUMER_TIMEOUTS.sessionTimeoutMs,
      rebalanceTimeout: this.opts.rebalanceTimeoutMs ?? CONSUMER_TIMEOUTS.rebalanceTimeoutMs,
      heartbeatInterval: this.opts.heartbeatIntervalMs ?? CONSUMER_TIMEOUTS.heartbeatIntervalMs,
      allowAutoTopicCreation: false,
      partitionAssigners: [copartitionAssigner],
      // Larger fetches make larger transactions: fewer broker round trips per row.
      maxBytesPerPartition: 2 * 1024 * 1024,
      maxBytes: 16 * 1024 * 1024,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => this.onAssignment(payload.memberAssignment));
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      // A batch left unprocessed (stale after a seek, or stopping) moves no position: judged
      // consumed, it could end the stage as idle with its messages never handled.
      if (this.unfinishedBatches.delete(batchKey(payload.topic, payload.partition, payload.lastOffset))) return;
      this.health.onBatchEnd(payload.topic, payload.partition, payload.lastOffset, payload.highWatermark);
      this.lastActivity = Date.now();
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      this.log(`[medrep ${this.opts.stage}] consumer error: ${payload.error.message}${payload.restart ? ' (kafkajs restarts it)' : ''}`);
      if (!payload.restart && consumer === this.consumer) this.relaunch(1);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: this.opts.inputTopics, fromBeginning: this.opts.fromBeginning ?? true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Partitions run concurrently (each has its own transactional producer and store), so one
      // partition's broker round trips overlap another's work.
      partitionsConsumedConcurrently: this.opts.partitionsConsumedConcurrently ?? 4,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        const unfinished = batchKey(batch.topic, batch.partition, batch.lastOffset());
        if (this.stopping) {
          this.unfinishedBatches.add(unfinished);
          return;
        }
        this.busy++;
        let skipped = true;
        try {
          await this.serialized(batch.partition, async () => {
            const { topic, partition, highWatermark } = batch;
            this.health.onProgress(topic, partition, BigInt(batch.messages[0].offset), highWatermark);
            await this.ensureReady(partition);
            // ensureReady may have moved this partition to its committed offsets: this batch is stale.
            if (isStale()) return;
            const max = this.opts.maxMessagesPerTransaction ?? 5000;
            for (let i = 0; i < batch.messages.length; i += max) {
              if (this.stopping || !isRunning() || isStale()) return;
              const chunk = batch.messages.slice(i, i + max).map((m) => stageMessage(topic, partition, m));
              await this.runTransaction(topic, partition, chunk);
              const last = chunk[chunk.length - 1].offset;
              resolveOffset(last);
              this.health.onProgress(topic, partition, BigInt(last) + 1n, highWatermark);
              this.lastActivity = Date.now();
              await heartbeat();
            }
            skipped = false;
          });
        } catch (e) {
          // The machine failed the transform (disk full, permission): retrying cannot help and
          // skipping would lose rows; the transaction is aborted, so the offsets stay where every
          // row before them is durable, and the stage stops.
          if (e instanceof TransformEnvironmentError) {
            this.fail(e.machineError);
            return;
          }
          skipped = false; // kafkajs retries a failed batch and reports no end for it
          throw e;
        } finally {
          if (skipped) this.unfinishedBatches.add(unfinished);
          this.busy--;
          this.lastActivity = Date.now();
        }
      },
    });
  }

  /**
   * kafkajs gave up on its consumer (e.g. the broker was away longer than its retries): start a
   * new one, with backoff, until it runs or the stage is stopped. All partitions are made ready
   * again (fence, restore, seek to committed offsets) before their next transaction.
   */
  private relaunch(attempt: number): void {
    if (this.stopping) return;
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(attempt - 1, 5));
    this.log(`[medrep ${this.opts.stage}] restarting the consumer in ${delay} ms (attempt ${attempt})`);
    const old = this.consumer;
    this.consumer = null;
    // Positions fetched before the failure may be stale: not idle before the group is joined again.
    this.joined = false;
    this.forgetAll();
    const timer = setTimeout(async () => {
      this.timers = this.timers.filter((t) => t !== timer);
      if (this.stopping) return;
      await old?.disconnect().catch(() => undefined);
      try {
        await this.launchConsumer();
      } catch (e) {
        this.log(`[medrep ${this.opts.stage}] consumer restart failed: ${(e as Error).message}`);
        this.relaunch(attempt + 1);
      }
    }, delay);
    this.timers.push(timer);
  }

  /** Drops every partition's producer and state; they are rebuilt from the broker when next used. */
  private forgetAll(): void {
    for (const p of [...this.ready, ...this.producers.keys()]) for (const s of this.stores.values()) s.drop(p);
    this.ready.clear();
    for (const producer of this.producers.values()) void producer.disconnect().catch(() => undefined);
    this.producers.clear();
  }

  /** Finishes the transaction in flight, leaves the group and disconnects. Idempotent. */
  stop(reason: StageSummary['reason'] = 'stopped'): Promise<StageSummary> {
    if (this.stopping) return this.stopping;
    this.resolveStopBegan();
    this.stopping = (async () => {
      for (const t of this.timers) clearInterval(t);
      this.timers = [];
      // kafkajs waits for the eachBatches in progress, which end after their current transactions.
      if (this.consumer) await this.consumer.disconnect();
      await Promise.all([...this.producers.values()].map((p) => p.disconnect().catch(() => undefined)));
      this.producers.clear();
      // Only now: a second signal while transactions finish (SIGUSR1, a repeated SIGTERM) is
      // handled, not the default action that would kill the worker mid-commit.
      for (const [sig, h] of this.signalHandlers) process.off(sig, h);
      this.signalHandlers = [];
      const summary: StageSummary = { ...this.health.snapshot(), reason };
      this.log(this.health.line() + ` stopped (${reason})`);
      this.resolveDone(summary);
      return summary;
    })();
    this.stopping.catch((e: Error) => this.rejectDone(e));
    return this.stopping;
  }

  snapshot(): HealthSnapshot {
    return this.health.snapshot();
  }

  private fail(e: Error): void {
    const { line, exitCode } = classifyError(e);
    this.rejectDone(exitCode === EXIT.environment ? new EnvironmentError(`stage ${this.opts.stage}: ${line}`) : new Error(`stage ${this.opts.stage} failed: ${e.message}`));
    void this.stop('stopped').catch(() => undefined);
  }

  private installSignals(): void {
    const onStop = () => void this.stop('signal');
    const onStatus = () => this.log(this.health.line());
    for (const [sig, h] of [
      ['SIGTERM', onStop],
      ['SIGINT', onStop],
      ['SIGUSR1', onStatus],
    ] as Array<[NodeJS.Signals, () => void]>) {
      process.on(sig, h);
      this.signalHandlers.push([sig, h]);
    }
  }

  private checkIdle(idleMs: number): void {
    if (this.stopping || this.checkingIdle || this.upstreamRunning || !this.joined || this.busy > 0) return;
    if (Date.now() - this.lastActivity < idleMs) return;
    const unknown: Array<{ topic: string; partition: number }> = [];
    for (const topic of this.opts.inputTopics) {
      for (const partition of this.assigned) {
        const pos = this.health.positionOf(topic, partition);
        if (!pos) unknown.push({ topic, partition });
        else if (pos.position < pos.highWatermark) return;
      }
    }
    this.checkingIdle = true;
    this.atEndOnBroker(unknown)
      .then((atEnd) => {
        if (atEnd && !this.stopping && this.busy === 0 && Date.now() - this.lastActivity >= idleMs) void this.stop('idle');
      })
      .catch((e: Error) => this.log(`[medrep ${this.opts.stage}] idle check failed: ${e.message}`))
      .finally(() => (this.checkingIdle = false));
  }

  /**
   * Whether partitions this worker has not fetched from yet hold nothing for it: the group's
   * committed offset is at the end, or the partition is empty. (Partitions it has fetched from
   * are judged by their fetched position, which also moves past transaction markers.)
   */
  private async atEndOnBroker(partitions: Array<{ topic: string; partition: number }>): Promise<boolean> {
    if (partitions.length === 0) return true;
    const admin = this.opts.kafka.admin();
    await admin.connect();
    try {
      const topics = [...new Set(partitions.map((p) => p.topic))];
      const committed = await admin.fetchOffsets({ groupId: this.groupId, topics });
      for (const topic of topics) {
        const ends = await admin.fetchTopicOffsets(topic);
        for (const { partition } of partitions.filter((p) => p.topic === topic)) {
          const end = ends.find((e) => e.partition === partition);
          const c = BigInt(committed.find((t) => t.topic === topic)?.partitions.find((x) => x.partition === partition)?.offset ?? '-1');
          const high = BigInt(end?.high ?? '0');
          const low = BigInt(end?.low ?? '0');
          if (c >= 0n ? c < high : low < high) return false;
        }
      }
      return true;
    } finally {
      await admin.disconnect();
    }
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const now = new Set<number>();
    for (const t of this.opts.inputTopics) for (const p of assignment[t] ?? []) now.add(p);
    for (const p of this.assigned) {
      if (now.has(p)) continue;
      // Revoked: its state and transactional id now belong to another worker.
      this.ready.delete(p);
      for (const s of this.stores.values()) s.drop(p);
      const producer = this.producers.get(p);
      this.producers.delete(p);
      if (producer) void producer.disconnect().catch(() => undefined);
    }
    this.assigned = now;
    this.assignment = Object.fromEntries(this.opts.inputTopics.map((t) => [t, [...(assignment[t] ?? [])].sort((a, b) => a - b)]));
    this.health.assigned = [...now].sort((a, b) => a - b);
    this.health.retain(now);
    this.joined = true;
    this.lastActivity = Date.now();
  }

  private serialized<T>(partition: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.partitionLocks.get(partition) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.partitionLocks.set(
      partition,
      next.catch(() => undefined),
    );
    return next;
  }

  /**
   * Before a partition's first transaction: initialise its transactional id (aborting and fencing
   * whatever a previous owner left open), then rebuild its state from the changelogs. All assigned
   * partitions not yet ready are done together, one restore read per store.
   */
  private ensureReady(partition: number): Promise<void> {
    if (this.ready.has(partition)) return Promise.resolve();
    const run = async () => {
      if (this.ready.has(partition)) return;
      const todo = [...new Set([...this.assigned, partition])].filter((p) => !this.ready.has(p)).sort((a, b) => a - b);
      for (const p of todo) {
        let producer = this.producers.get(p);
        if (!producer) {
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
        }
        const init = await producer.transaction();
        await init.abort();
      }
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

  /**
   * Moves the consumer to the group's committed offsets of these partitions. The consumer read
   * them when it joined, but a transaction of the previous owner (or of this worker, before a
   * failure) may have been completing then; once the transactional ids are initialised those
   * offsets are final, and reading from anywhere else could repeat or skip input.
   */
  private async seekToCommitted(partitions: number[]): Promise<void> {
    const consumer = this.consumer;
    if (!consumer) return;
    const admin = this.opts.kafka.admin();
    await admin.connect();
    try {
      const committed = await admin.fetchOffsets({ groupId: this.groupId, topics: this.opts.inputTopics });
      for (const t of committed) {
        let ends: Array<{ partition: number; low: string; high: string }> | null = null;
        for (const p of partitions) {
          let offset = t.partitions.find((x) => x.partition === p)?.offset ?? '-1';
          if (BigInt(offset) < 0n) {
            ends ??= await admin.fetchTopicOffsets(t.topic);
            const end = ends.find((e) => e.partition === p);
            offset = (this.opts.fromBeginning ?? true) ? (end?.low ?? '0') : (end?.high ?? '0');
          }
          consumer.seek({ topic: t.topic, partition: p, offset });
          if (BigInt(t.partitions.find((x) => x.partition === p)?.offset ?? '-1') >= 0n) {
            this.committedNext.set(`${t.topic}\u0000${p}`, BigInt(offset));
          } else {
            this.committedNext.delete(`${t.topic}\u0000${p}`);
          }
        }
      }
    } finally {
      await admin.disconnect();
    }
  }

  private async runTransaction(topic: string, partition: number, chunk: StageMessage[]): Promise<void> {
    const producer = this.producers.get(partition);
    if (!producer) throw new Error(`stage ${this.opts.stage}: partition ${partition} has no producer (not assigned?)`);
    const info: StagePhaseInfo = {
      transaction: ++this.transactionCount,
      topic,
      partition,
      firstOffset: chunk[0].offset,
      lastOffset: chunk[chunk.length - 1].offset,
      messages: chunk.length,
      outputs: 0,
    };
    const deadLetters: Message[] = [];
    const key = `${topic}\u0000${partition}`;
    const chunkEnd = BigInt(info.lastOffset) + 1n;
    const commit = { next: chunkEnd, rowsRead: null as number | null, watermark: undefined as number | null | undefined };
    const began = Date.now();
    let rowsProduced = 0;
    const txn = await producer.transaction();
    try {
      const outputs = await this.transformChunk(topic, partition, chunk, deadLetters, commit);
      info.outputs = outputs.length;
      for (const o of outputs) rowsProduced += o.rows ?? 1;
      this.opts.onPhase?.('transformed', info);

      const byTopic = new Map<string, Message[]>();
      const add = (t: string, m: Message) => {
        let list = byTopic.get(t);
        if (!list) byTopic.set(t, (list = []));
        list.push(m);
      };
      for (const o of outputs) add(o.topic, { key: o.key ?? null, value: o.value, headers: o.headers, partition: o.partition });
      for (const d of deadLetters) add(this.opts.names.dlq, d);
      for (const store of this.stores.values()) for (const m of store.changelogMessages(partition)) add(store.changelogTopic, m);
      // kafkajs groups a request's messages by partition in time quadratic in their number, so
      // large outputs go out as several requests of bounded count and size (same transaction).
      const compression = this.opts.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
      for (const [t, messages] of byTopic) {
        for (const slice of sendSlices(messages)) {
          await txn.send({ topic: t, messages: slice, compression });
        }
      }
      this.opts.onPhase?.('produced', info);

      if (commit.next !== this.committedNext.get(key)) {
        const metadata = commit.watermark === undefined ? undefined : watermarkMetadata(commit.watermark);
        await txn.sendOffsets({ consumerGroupId: this.groupId, topics: [{ topic, partitions: [{ partition, offset: commit.next.toString(), ...(metadata && { metadata }) }] }] });
      }
      this.opts.onPhase?.('offsets-sent', info);
      await txn.commit();
      this.committedNext.set(key, commit.next);
    } catch (e) {
      this.health.aborted++;
      this.log(`[medrep ${this.opts.stage}] transaction on ${topic}/${partition}@${info.firstOffset}..${info.lastOffset} failed after ${((Date.now() - began) / 1000).toFixed(1)} s and is ${e instanceof TransformEnvironmentError ? 'aborted' : 'retried'}: ${(e as Error).message}`);
      await txn.abort().catch(() => undefined);
      // The outcome on the broker may be unknown (e.g. a commit that timed out): forget this
      // partition's producer and state so both are rebuilt from the broker before the next try.
      for (const s of this.stores.values()) s.drop(partition);
      this.ready.delete(partition);
      this.producers.delete(partition);
      void producer.disconnect().catch(() => undefined);
      throw e;
    }
    for (const s of this.stores.values()) s.commitPending(partition);
    if (commit.watermark !== undefined) this.health.onWatermark(partition, commit.watermark);
    this.health.transactions++;
    this.health.consumed += chunk.length;
    this.health.produced += info.outputs;
    this.health.rowsConsumed += commit.rowsRead ?? chunk.length;
    this.health.rowsProduced += rowsProduced;
    this.health.deadLettered += deadLetters.length;
    this.opts.onPhase?.('committed', info);
  }

  /**
   * Runs the transform on the chunk. If it throws, runs it message by message so that only the
   * messages it cannot handle go to the dead-letter topic and the stage goes on.
   */
  private async transformChunk(
    topic: string,
    partition: number,
    chunk: StageMessage[],
    deadLetters: Message[],
    commit: { next: bigint; rowsRead: number | null; watermark?: number | null },
  ): Promise<OutputMessage[]> {
    const chunkEnd = commit.next;
    const committed = this.committedNext.get(`${topic}\u0000${partition}`);
    const ctx: StageContext = {
      topic,
      partition,
      store: <V>(name: string) => {
        const s = this.stores.get(name);
        if (!(s instanceof ChangelogStore)) throw new Error(`stage ${this.opts.stage} has no state store "${name}" (declare it in StageOptions.stores)`);
        return (s as ChangelogStore<V>).view(partition);
      },
      appendStore: (name: string) => {
        const s = this.stores.get(name);
        if (!(s instanceof AppendLogStore)) throw new Error(`stage ${this.opts.stage} has no append store "${name}" (declare it in StageOptions.appendStores)`);
        return s.view(partition);
      },
      deadLetter: (m, kind, reason, table, element) => {
        const source = `${m.topic}/${m.partition}@${m.offset}${element ? `#${element.index}` : ''}`;
        deadLetters.push(deadLetterMessage(element ? element.value : m.value, m.key, { kind, reason, table, source, stage: this.opts.stage }));
      },
      commitThrough: (nextOffset) => {
        const next = BigInt(nextOffset);
        if (next > chunkEnd || (committed !== undefined && next < committed)) {
          throw new Error(
            `stage ${this.opts.stage}: commitThrough(${nextOffset}) on ${topic}/${partition} is outside ${committed ?? 'start'}..${chunkEnd}`,
          );
        }
        commit.next = next;
      },
      rowsRead: (rows) => {
        commit.rowsRead = (commit.rowsRead ?? 0) + rows;
      },
      watermark: (ms) => {
        commit.watermark = ms;
      },
    };
    try {
      return await this.opts.transform(chunk, ctx);
    } catch (e) {
      throwIfEnvironment(e);
      for (const s of this.stores.values()) s.abortPending(partition);
      deadLetters.length = 0;
      commit.next = chunkEnd;
      commit.rowsRead = null;
      const outputs: OutputMessage[] = [];
      let failed = 0;
      for (const m of chunk) {
        const saved = [...this.stores.values()].map((s) => [s, s.savePending(partition)] as const);
        const dlqBefore = deadLetters.length;
        const rowsBefore: number | null = commit.rowsRead;
        try {
          outputs.push(...(await this.opts.transform([m], ctx)));
        } catch (err) {
          throwIfEnvironment(err);
          failed++;
          for (const [s, p] of saved) s.restorePending(partition, p);
          deadLetters.length = dlqBefore;
          commit.rowsRead = rowsBefore;
          ctx.deadLetter(m, 'transform-error', (err as Error).message);
        }
      }
      this.log(`[medrep ${this.opts.stage}] transform failed on ${topic}/${partition}@${chunk[0].offset}..${chunk[chunk.length - 1].offset} (${(e as Error).message}); ${failed} of ${chunk.length} messages dead-lettered`);
      return outputs;
    }
  }
}

/** A transform failed because of the machine, not the message: never dead-lettered nor skipped. */
class TransformEnvironmentError extends Error {
  constructor(readonly machineError: Error) {
    super(machineError.message);
    this.name = 'TransformEnvironmentError';
  }
}

function throwIfEnvironment(e: unknown): void {
  if (classifyError(e).exitCode === EXIT.environment) throw new TransformEnvironmentError(e instanceof Error ? e : new Error(String(e)));
}

function stageMessage(topic: string, partition: number, m: KafkaMessage): StageMessage {
  return { topic, partition, offset: m.offset, timestamp: m.timestamp, key: m.key, value: m.value, headers: m.headers ?? {} };
}

/** Starts a stage and resolves when it stops (idle, signal or stop()). */
export async function runStage(opts: StageOptions): Promise<StageSummary> {
  const worker = new StageWorker(opts);
  await worker.start();
  return worker.done;
}
