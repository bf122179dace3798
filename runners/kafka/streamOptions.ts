// The options and the summary of `medrep stream` (streamRunner.ts), apart from the runner so the
// topology (topology.ts), which builds each stage from them, and the runner share one declaration.
import { Kafka } from 'kafkajs';
import { TaskSelection } from '../../sources/runTasks';
import { SkippedTask } from '../../sources/labelInputs';
import { TaskSummary } from '../../transforms/labels';
import { Logger } from '../../common/progress';
import { KafkaOptions } from './config';
import { StageOptions, StageSummary } from './stageTypes';
import type { StreamStage } from './topology';

export const CLOSE_ON = ['marker', 'watermark'] as const;
export type CloseOn = (typeof CLOSE_ON)[number];

export interface StreamOptions extends Partial<TaskSelection> {
  kafka: KafkaOptions;
  out: string;
  vocab: string;
  /** Folder with deciles.json (e.g. OUT/artifacts of `medrep run`), or the file itself. */
  artifacts?: string;
  deciles?: string;
  /** Stop once every input is consumed and nothing came for this long; default: run until SIGTERM. */
  exitWhenIdleMs?: number;
  stages?: StreamStage[];
  maxEvents?: number;
  /** Rows per events shard (default as the local runner's, sinks/shards.ts), per sequences or samples shard. */
  eventsPerShard?: number;
  sequencesPerShard?: number;
  /** Bytes of topic messages per shard at most (default shardRoll.ts DEFAULT_SHARD_BYTES). */
  shardMaxBytes?: number;
  /** Log-time span of a shard at most, ms (default shardRoll.ts DEFAULT_SHARD_MAX_AGE_MS; 0: none). */
  shardMaxAgeMs?: number;
  /** Input messages per transaction (default 5000). */
  maxMessagesPerTransaction?: number;
  healthIntervalMs?: number;
  /** How far behind the watermark a record of a later load may be and still change a label (ms). */
  allowedLatenessMs?: number;
  /**
   * What determines chunks and labels: `marker` (default) a load closed by end-of-load markers,
   * `watermark` the event-time watermark (continuous mode, continuousTrajectory.ts).
   */
  closeOn?: CloseOn;
  /** Continuous mode: out-of-orderness and idle timeout of the watermark, quiet span of a chunk (ms). */
  outOfOrdernessMs?: number;
  idleTimeoutMs?: number;
  chunkQuietMs?: number;
  /** MEDS export (meds/data, metadata, labels) at the end (default true). */
  meds?: boolean;
  /** Write the manifest, artifacts and rejects at the end (default true). */
  finalize?: boolean;
  /** While the sink runs: manifest.json rewritten from manifest.d/ this often, ms (default 30 s; 0: only on new entries). */
  manifestIntervalMs?: number;
  handleSignals?: boolean;
  log?: Logger;
  /** Observes each stage's transactions (fault-injection tests, benchmarks). */
  onPhase?: StageOptions['onPhase'];
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** A ready client (tests pass one with logging off); default: one from `kafka`. */
  client?: Kafka;
  /** Replace a previous medrep output in `out` that is not this pipeline's (see outputDir.ts). */
  force?: boolean;
}

export interface StreamSummary {
  out: string;
  stages: Record<string, StageSummary>;
  shards: { events: number; pretrain: number; samples: number };
  rows: { events: number; pretrain: number; samples: number };
  tasks: TaskSummary[];
  /** Tasks not labelled because their concept sets resolve to nothing in this vocabulary. */
  tasksSkipped: SkippedTask[];
  /** Event rows per OMOP table whose concept the vocabulary lacks (kept as their own ids). */
  notInVocabulary: Record<string, number>;
  rejects: number;
  /** The MEDS copy written at the end (null: not written, --no-meds or no finalize): data files and their rows. */
  meds: { path: string; shards: number; rows: number; labelFiles: number } | null;
  manifest: string | null;
  /** False when a signal stopped a stage before its input's end: the manifest says so too. */
  complete: boolean;
  seconds: number;
}


export const DEFAULT_MANIFEST_INTERVAL_MS = 30_000;
