// A stage worker: consume -> transform -> produce, exactly once. Every chunk of input is turned
// into output inside one Kafka transaction that also carries the consumed offsets and the state
// store's changelog writes, so a crash at any point either commits all three or none of them.
//
// Transactional ids are per input partition (`<group>.p<N>`), as in Kafka Streams' first
// exactly-once design: whichever worker owns partition N initialises that id, which aborts a
// dead or stalled predecessor's open transaction and fences it, on restart and on rebalance alike.
// Readers of the output use read_committed. The transform is a plain callback, so the pure
// transforms of transforms/ plug in without knowing about Kafka.
//
// This module is the group's lifecycle (consumer, join and rebalance, restart, idleness, ticks,
// signals, stop); partitionTask.ts is the per-partition task (restore, seek, transaction) and
// health.ts the progress line and lag.
import { Batch, Consumer, KafkaMessage } from 'kafkajs';
import { CONSUMER_TIMEOUTS } from './config';
import { copartitionAssigner } from './copartitionAssigner';
import { groupShare, shareShortfall } from './groupShare';
import { HealthSnapshot, partitionsAtEnd, StageHealth } from './health';
import { PartitionTasks } from './partitionTask';
import { TransformEnvironmentError } from './stageTransform';
import { StageMessage, StageOptions, StageSummary } from './stageTypes';
import { changelogTopicSpec, ensureTopics, partitionCount } from './topics';
import { classifyError, EnvironmentError, EXIT } from '../../common/errors';

export type {
  OutputMessage, StageContext, StageMessage, StageOptions, StageOutputs, StagePhase, StagePhaseInfo, StageSummary, StageTick, StageTransform, TickView,
} from './stageTypes';
export { sendSlices } from './outputSender';

/** A fetched batch, as eachBatch and kafkajs' END_BATCH_PROCESS event both name it. */
const batchKey = (topic: string, partition: number, lastOffset: string) => `${topic}\u0000${partition}\u0000${lastOffset}`;

interface BatchControl {
  batch: Batch;
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

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
  private readonly tasks: PartitionTasks;
  private assigned = new Set<number>();
  /** The partitions of each input topic this worker owns (the same numbers for every topic). */
  assignment: Record<string, number[]> = {};
  private stopping: Promise<StageSummary> | null = null;
  private lastActivity = Date.now();
  /** Batches eachBatch returned from without processing them all (topic, partition, last offset). */
  private readonly unfinishedBatches = new Set<string>();
  private joined = false;
  /** Partitions of each input topic (the same count for all). */
  private partitions = 0;
  /** Batches (and ticks) being processed now: a stage is never idle while one runs (or fails and retries). */
  private busy = 0;
  private checkingIdle = false;
  private lastShortfall: string | null = null;
  private ticking = false;
  private upstreamRunning = false;
  private timers: NodeJS.Timeout[] = [];
  private signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  private readonly log: (line: string) => void;

  constructor(private readonly opts: StageOptions) {
    this.health = new StageHealth(opts.stage, opts.watermarkIdleMs);
    this.groupId = opts.names.group(opts.stage);
    this.log = opts.log ?? ((line) => console.error(line));
    this.tasks = new PartitionTasks(opts, this.health, this.log, { assigned: () => this.assigned, consumer: () => this.consumer });
    this.done = new Promise<StageSummary>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A failure is reported through done; keep an unobserved rejection from killing the process.
    this.done.catch(() => undefined);
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
      this.partitions = counts[0];
      await ensureTopics(
        admin,
        [...this.tasks.stores.values()].map((s) => changelogTopicSpec(s.changelogTopic, counts[0])),
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
    if (this.opts.tick) this.timers.push(setInterval(() => void this.tickAll(), Math.max(10, this.opts.tick.everyMs)));
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
      eachBatch: (control) => this.onBatch(control),
    });
  }

  /** A fetched batch: made ready if needed, then cut into chunks of one transaction each. */
  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: BatchControl): Promise<void> {
    const unfinished = batchKey(batch.topic, batch.partition, batch.lastOffset());
    if (this.stopping) {
      this.unfinishedBatches.add(unfinished);
      return;
    }
    this.busy++;
    let skipped = true;
    // The group must hear from this member while it works on a batch: a restore reads whole
    // changelogs, and a transaction waits on the broker while the other stages of the process take
    // the thread (one took 184 s at 10M rows). Without heartbeats for the session (10 s) the group
    // drops the member, the transaction fails and is redone after a restore, and so on.
    const beatMs = this.opts.heartbeatIntervalMs ?? CONSUMER_TIMEOUTS.heartbeatIntervalMs;
    try {
      await whileHeartbeating(heartbeat, beatMs, () => this.tasks.serialized(batch.partition, async () => {
        const { topic, partition, highWatermark } = batch;
        await this.tasks.ensureReady(partition);
        // ensureReady may have moved this partition to its committed offsets: this batch is stale.
        if (isStale()) return;
        this.health.onProgress(topic, partition, BigInt(batch.messages[0].offset), highWatermark);
        const max = this.opts.maxMessagesPerTransaction ?? 5000;
        for (let i = 0; i < batch.messages.length; i += max) {
          if (this.stopping || !isRunning() || isStale()) return;
          const chunk = batch.messages.slice(i, i + max).map((m) => stageMessage(topic, partition, m));
          await this.tasks.run(topic, partition, chunk, heartbeat);
          const last = chunk[chunk.length - 1].offset;
          resolveOffset(last);
          this.health.onProgress(topic, partition, BigInt(last) + 1n, highWatermark);
          this.lastActivity = Date.now();
          await heartbeat();
        }
        skipped = false;
      }));
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
      if (skipped) {
        this.unfinishedBatches.add(unfinished);
        // A batch left (stale after a seek) says nothing of where the partition is, and one
        // consumed through its end fetches no batch that would say: the idle check asks the broker.
        this.health.forget(batch.topic, batch.partition);
      }
      this.busy--;
      this.lastActivity = Date.now();
    }
  }

  /**
   * Every owned partition's tick, one after another (a partition's tick waits for its
   * batch in flight). A tick that produced output counts as activity: its output is new input
   * downstream. A failed tick is retried at the next one, after the partition is made ready again.
   */
  private async tickAll(): Promise<void> {
    if (this.stopping || this.ticking || !this.joined) return;
    this.ticking = true;
    this.busy++;
    try {
      for (const p of [...this.assigned].sort((a, b) => a - b)) {
        if (this.stopping) break;
        if (await this.tasks.tick(p)) this.lastActivity = Date.now();
      }
    } catch (e) {
      if (e instanceof TransformEnvironmentError) this.fail(e.machineError);
      else this.log(`[medrep ${this.opts.stage}] tick failed: ${(e as Error).message}`);
    } finally {
      this.busy--;
      this.ticking = false;
    }
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
    this.tasks.forgetAll();
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

  /** Finishes the transaction in flight, leaves the group and disconnects. Idempotent. */
  stop(reason: StageSummary['reason'] = 'stopped'): Promise<StageSummary> {
    if (this.stopping) return this.stopping;
    this.resolveStopBegan();
    this.stopping = (async () => {
      for (const t of this.timers) clearInterval(t);
      this.timers = [];
      // kafkajs waits for the eachBatches in progress, which end after their current transactions.
      if (this.consumer) await this.consumer.disconnect();
      await this.tasks.disconnectAll();
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
    this.idleVerdict(unknown)
      .then((verdict) => {
        if (verdict === 'rejoin') this.rejoin();
        else if (verdict === 'idle' && !this.stopping && this.busy === 0 && Date.now() - this.lastActivity >= idleMs) void this.stop('idle');
      })
      .catch((e: Error) => this.log(`[medrep ${this.opts.stage}] idle check failed: ${e.message}`))
      .finally(() => (this.checkingIdle = false));
  }

  /**
   * Whether this worker, its own partitions consumed, may leave: not while the group rebalances
   * (it may be given partitions), and not while it holds less than its share (it is rejoined).
   */
  private async idleVerdict(unknown: Array<{ topic: string; partition: number }>): Promise<'idle' | 'busy' | 'rejoin'> {
    const admin = this.opts.kafka.admin();
    await admin.connect();
    try {
      if (!(await partitionsAtEnd(admin, this.groupId, unknown))) return 'busy';
      const shortfall = shareShortfall(await groupShare(admin, this.groupId, this.partitions), this.assigned.size);
      if (shortfall === null) return 'idle';
      const why = 'wait' in shortfall ? shortfall.wait : shortfall.rejoin;
      if (why !== this.lastShortfall) this.log(`[medrep ${this.opts.stage}] not idle: ${why}`);
      this.lastShortfall = why;
      return 'wait' in shortfall ? 'busy' : 'rejoin';
    } finally {
      await admin.disconnect();
    }
  }

  /** A new consumer joins the group again, which rebalances it: the assigner then counts this member. */
  private rejoin(): void {
    if (this.stopping || !this.joined) return;
    this.log(`[medrep ${this.opts.stage}] rejoining the group for a share of its partitions`);
    this.relaunch(1);
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const now = new Set<number>();
    for (const t of this.opts.inputTopics) for (const p of assignment[t] ?? []) now.add(p);
    for (const p of this.assigned) if (!now.has(p)) this.tasks.revoke(p);
    this.assigned = now;
    this.assignment = Object.fromEntries(this.opts.inputTopics.map((t) => [t, [...(assignment[t] ?? [])].sort((a, b) => a - b)]));
    this.health.assigned = [...now].sort((a, b) => a - b);
    this.health.retain(now);
    this.log(`[medrep ${this.opts.stage}] assigned partitions [${this.health.assigned.join(',')}] of ${this.partitions}`);
    this.joined = true;
    this.lastActivity = Date.now();
  }
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

/**
 * Runs `work`, calling `heartbeat` every `intervalMs` until it ends. A heartbeat that fails (a
 * rebalance under way) is left to the consumer: it rejoins once the batch returns.
 */
export async function whileHeartbeating<T>(heartbeat: () => Promise<void>, intervalMs: number, work: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => void heartbeat().catch(() => undefined), intervalMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
