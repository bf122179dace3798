// What a stage of the Kafka runner is made of, as a transform and its declaration see it: the
// input messages, the outputs (an array, or an iterable that the worker sends in bounded slices as
// it is iterated), the context of one partition's transaction, and the worker's options.
import { IHeaders, Kafka } from 'kafkajs';
import { DeadLetterKind } from './deadLetter';
import { HealthSnapshot } from './health';
import { KeyValueView } from './stateStore';
import { AppendView } from './appendStore';
import { TopicNames } from './topics';

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

/**
 * A transform's outputs: an array, or a (sync or async) iterable that the worker sends in slices
 * bounded in count and bytes as it iterates, so a large output (a load's close) is never held whole.
 */
export type StageOutputs = Iterable<OutputMessage> | AsyncIterable<OutputMessage>;

export interface StageContext {
  /** The input topic and partition of the messages being transformed. */
  topic: string;
  partition: number;
  /** A state store of this stage (named in StageOptions.stores), bound to this partition. */
  store<V>(name: string): KeyValueView<V>;
  /** An append-only store of this stage (named in StageOptions.appendStores), bound to this partition. */
  appendStore(name: string): AppendView;
  /**
   * Sets a message aside in the dead-letter topic (in the same transaction) and counts it.
   * `element`: only one row of a message that carries several (its JSON and index; the source
   * header names it as `@offset#index`).
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

/**
 * Turns a chunk of input messages of one partition into output messages. A stage with a tick
 * (StageOptions.tick) is also called with no message: what is due without new input.
 */
export type StageTransform = (messages: StageMessage[], ctx: StageContext) => StageOutputs | Promise<StageOutputs>;

/** What a tick's `due` may read: the committed state of one partition. */
export interface TickView {
  partition: number;
  store<V>(name: string): KeyValueView<V>;
}

/**
 * A periodic re-check (wall clock) of each owned partition, for output that becomes due without
 * input (an event-time watermark that moves once its sources go idle). When `due` says so, the
 * transform runs with no message, in a transaction of its own.
 */
export interface StageTick {
  everyMs: number;
  due(view: TickView): boolean;
}

export type StagePhase = 'transformed' | 'produced' | 'offsets-sent' | 'committed';

export interface StagePhaseInfo {
  /** 1-based count of transactions begun by this worker. */
  transaction: number;
  topic: string;
  partition: number;
  /** The chunk's offsets; a tick (no input) has none: ''. */
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
  /** Runs the transform with no input when due (see StageTick). */
  tick?: StageTick;
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
