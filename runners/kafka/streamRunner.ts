// `medrep stream`: the Kafka runner. Runs the stages (canonicalizeStage.ts, trajectoryStage.ts) and the Parquet sink as
// consumer groups (all in this process by default; `--stages` picks some, and several processes
// share the partitions). While the sink runs, each durable shard gets its entry in the manifest
// log (manifest.d/, manifestLog.ts) and manifest.json is rewritten from it; once the stages stop,
// the runner writes the full manifest (shards with their offset ranges, artifact versions,
// committed offsets), the artifacts and the rejects (from the dead-letter topic) into the same
// output layout as `medrep run`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Kafka } from 'kafkajs';
import { OMOP_SCHEMA_VERSION } from '../../schemas/omop';
import { SCHEMA_VERSION } from '../../schemas/records';
import { Manifest, ManifestShard, writeManifest } from '../../sinks/manifest';
import { writeFileAtomic } from '../../sinks/parquet';
import { RejectSink } from '../../sinks/rejects';
import { ShardEntry } from '../../sinks/shards';
import { DEFAULT_MAX_EVENTS } from '../../transforms/trajectory';
import { idValue, openDuck, queryRows, queryValue, sqlString } from '../../sources/duck';
import { Id } from '../../schemas/ids';
import { parseJsonExact, stringifyJsonExact } from '../../schemas/exactJson';
import { decodeStreamValue } from './streamCodec';
import { tableSpec } from '../../schemas/omop';
import { rowValidator } from '../../schemas/rowSchemas';
import { makeProcessTempDir } from '../../common/processTempDir';
import { exportMeds } from '../../sinks/meds';
import { writeMedsLabels } from '../../sinks/medsLabels';
import { Split, splitOf } from '../../transforms/splits';
import { CONTROL_HEADER } from './omopLoad';
import { Logger, consoleLogger } from '../../common/progress';
import { createKafka, describeKafkaOptions, KafkaOptions } from './config';
import { DLQ_HEADERS } from './deadLetter';
import { consumerGroupLag } from './health';
import { readToEnd } from './readToEnd';
import { shardSinkTransform, SINK_LOADS_STORE, SinkTopic } from './shardSink';
import { ManifestLog } from './manifestLog';
import { shardBounds, ShardSizeOptions } from './shardRoll';
import { StageOptions, StageSummary, StageWorker } from './stage';
import { loadStreamArtifacts } from './streamArtifacts';
import { canonicalizeTransform } from './canonicalizeStage';
import { LOAD_TABLES, PERSON_STORE, Versions } from './streamValues';
import { trajectoryTransform } from './trajectoryStage';
import { EVENTS_STORE, PENDING_STORE, TrajectoryOptions } from './trajectoryState';
import { continuousTrajectory } from './continuousTrajectory';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_OUT_OF_ORDERNESS_MS } from './watermarks';
import { DEFAULT_CHUNK_QUIET_MS } from '../../transforms/continuousChunks';
import { streamTopic, streamTopicSpecs } from './streamTopics';
import { BATCH_TOPIC_MAX_MESSAGE_BYTES, changelogTopicSpec, ensureTopics, partitionCount, TopicNames } from './topics';
import { TaskSelection, selectTasks } from '../../sources/runTasks';
import { SkippedTask, compileTasks } from '../../sources/labelInputs';
import { CompiledTask, taskArtifact, TaskSummary } from '../../transforms/labels';
import { notInVocabularyWarning } from '../../transforms/normalize';
import { EVENT_SPECS } from '../../sources/eventSource';
import { withOutputDir } from '../../common/outputDir';

export const STREAM_STAGES = ['canonicalize', 'trajectory', 'sink'] as const;
export const CLOSE_ON = ['marker', 'watermark'] as const;
export type CloseOn = (typeof CLOSE_ON)[number];
export type StreamStage = (typeof STREAM_STAGES)[number];

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

export function sinkTopics(names: TopicNames, opts: ShardSizeOptions): SinkTopic[] {
  // Each topic's writer emits one end marker per load it closes (the trajectory stage for
  // events, pretrain and samples), so one marker ends a load in every sink topic.
  return [
    { topic: streamTopic(names, 'events'), kind: 'events', dir: 'events', bounds: shardBounds('events', opts), loadTables: ['events'] },
    { topic: streamTopic(names, 'pretrain'), kind: 'pretrain', dir: 'pretrain', bounds: shardBounds('pretrain', opts), loadTables: ['pretrain'] },
    { topic: streamTopic(names, 'samples'), kind: 'samples', dir: 'samples', bounds: shardBounds('samples', opts), loadTables: ['samples'] },
  ];
}

/** The topics each stage's consumer group reads. */
export function stageInputTopics(names: TopicNames): Record<StreamStage, string[]> {
  return {
    canonicalize: LOAD_TABLES.map((t) => names.omop(t)),
    trajectory: [streamTopic(names, 'canonical')],
    sink: sinkTopics(names, {}).map((s) => s.topic),
  };
}

/** Workers of one pipeline (same brokers and topic prefix) share an output folder and continue it. */
function pipelineKey(kafka: KafkaOptions): string {
  return `kafka:${[...kafka.brokers].sort().join(',')}:${kafka.topicPrefix}`;
}

export async function runStream(opts: StreamOptions): Promise<StreamSummary> {
  const out = path.resolve(opts.out);
  return withOutputDir(out, { command: 'stream', force: opts.force, sharedKey: pipelineKey(opts.kafka), log: opts.log }, () => runStreamInto(out, opts));
}

async function runStreamInto(out: string, opts: StreamOptions): Promise<StreamSummary> {
  const log = opts.log ?? consoleLogger;
  const started = Date.now();
  const names = new TopicNames(opts.kafka.topicPrefix);
  const kafka = opts.client ?? createKafka(opts.kafka, log);
  log.info(`kafka: ${describeKafkaOptions(opts.kafka)}`);
  // DuckDB reads the shards back at the end (manifest, MEDS); it spills to a temp folder beyond
  // its memory cap (a 10M-row MEDS export does not fit 512 MB). A killed worker's folder is
  // removed by the next worker that starts.
  const duckTmp = makeProcessTempDir('medrep-stream-duckdb');
  const conn = await openDuck({ memoryLimit: '1GB', tempDir: duckTmp });
  try {
    const art = await loadStreamArtifacts(conn, { vocab: opts.vocab, deciles: opts.deciles, artifacts: opts.artifacts });
    const versions: Versions = { deciles: art.deciles.version, vocabulary: art.vocabularyArtifact.version };
    log.info(`artifacts: deciles ${versions.deciles.slice(0, 19)} (${art.deciles.groups.length} groups), vocabulary ${versions.vocabulary.slice(0, 19)} (${art.vocabulary.concepts.size} concepts)`);

    const admin = kafka.admin();
    await admin.connect();
    let partitions: number;
    try {
      partitions = await partitionCount(admin, names.omop('person'));
      await ensureTopics(admin, streamTopicSpecs(names, partitions));
      // The trajectory stage's changelogs: one transaction's writes go out in request slices of up
      // to 1000 states or event deltas, larger than the broker's default 1 MB batch limit. The
      // sink's (small) one is created with them, in one request.
      await ensureTopics(admin, [
        ...[PERSON_STORE, EVENTS_STORE, PENDING_STORE].map((store) => {
          const changelog = changelogTopicSpec(names.changelog('trajectory', store), partitions);
          return { ...changelog, configs: { ...changelog.configs, 'max.message.bytes': BATCH_TOPIC_MAX_MESSAGE_BYTES } };
        }),
        changelogTopicSpec(names.changelog('sink', SINK_LOADS_STORE), partitions),
      ]);
    } finally {
      await admin.disconnect();
    }
    fs.mkdirSync(out, { recursive: true });

    // In pipeline order: each stage's upstream (below) is the one before it.
    const stages = STREAM_STAGES.filter((st) => (opts.stages ?? STREAM_STAGES).includes(st));
    // Tasks: concept sets resolved against this vocabulary, exactly as the batch labeler does.
    const loaded = selectTasks({ tasks: opts.tasks ?? 'all', taskDir: opts.taskDir, taskConcepts: opts.taskConcepts }, log);
    const { compiled, skipped, warnings } = await compileTasks(conn, loaded);
    for (const sk of skipped) log.warn(`task ${sk.task} skipped: ${sk.reason}`);
    for (const w of warnings) log.warn(w);
    const sinks = sinkTopics(names, opts);
    const runningHeader = { ...manifestHeader(art, names, opts, compiled, { complete: false, growing: true }), rejects: [], counts: {} };
    const manifestLog = new ManifestLog(out, versions, runningHeader, (line) => log.warn(line));
    if (stages.includes('sink')) {
      // The artifacts the running manifest names are there from the start (rewritten at stop).
      writeStreamArtifacts(out, art, compiled);
      const n = await reconcileManifestLog(kafka, conn, names, sinks, manifestLog);
      if (n > 0) log.info(`manifest: ${n} shard(s) the committed offsets cover were not in manifest.d/ (a stop between commit and entry); listed now`);
      manifestLog.rewrite();
      manifestLog.start(opts.manifestIntervalMs ?? DEFAULT_MANIFEST_INTERVAL_MS);
    }
    const common = {
      kafka,
      names,
      exitWhenIdleMs: opts.exitWhenIdleMs,
      maxMessagesPerTransaction: opts.maxMessagesPerTransaction,
      healthIntervalMs: opts.healthIntervalMs,
      handleSignals: opts.handleSignals,
      onPhase: opts.onPhase,
      sessionTimeoutMs: opts.sessionTimeoutMs,
      rebalanceTimeoutMs: opts.rebalanceTimeoutMs,
      heartbeatIntervalMs: opts.heartbeatIntervalMs,
      log: (line: string) => log.info(line),
    };
    const inputs = stageInputTopics(names);
    const running: Array<[string, Promise<StageSummary>]> = [];
    const workers: StageWorker[] = [];
    const upstream: Array<Promise<unknown>> = [];
    for (const stage of stages) {
      let o: StageOptions;
      if (stage === 'canonicalize') {
        o = { ...common, stage, inputTopics: inputs.canonicalize, transform: canonicalizeTransform(names, streamTopic(names, 'canonical'), art) };
      } else if (stage === 'trajectory') {
        const t: TrajectoryOptions = {
          maxEvents: opts.maxEvents ?? DEFAULT_MAX_EVENTS, eventsTopic: streamTopic(names, 'events'), pretrainTopic: streamTopic(names, 'pretrain'), samplesTopic: streamTopic(names, 'samples'),
          versions, tasks: compiled, allowedLatenessMs: opts.allowedLatenessMs,
          onSetAside: (p, persons, rows) => log.warn(`trajectory: partition ${p}: ${rows} rows of ${persons} persons without a person row set aside (rejects)`),
        };
        const idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
        if (opts.closeOn === 'watermark') {
          t.continuous = continuousTrajectory(t, {
            outOfOrdernessMs: opts.outOfOrdernessMs ?? DEFAULT_OUT_OF_ORDERNESS_MS, idleTimeoutMs, chunkQuietMs: opts.chunkQuietMs ?? DEFAULT_CHUNK_QUIET_MS,
          });
        }
        o = {
          ...common, stage, inputTopics: inputs.trajectory, stores: [PERSON_STORE, PENDING_STORE], appendStores: [EVENTS_STORE],
          watermarkIdleMs: idleTimeoutMs, transform: trajectoryTransform(t),
        };
      } else {
        o = {
          ...common, stage, inputTopics: inputs.sink, stores: [SINK_LOADS_STORE], transform: shardSinkTransform(out, sinks, manifestLog),
          // A shard is listed once the transaction with its offsets committed, never before.
          onPhase: (phase, info) => {
            opts.onPhase?.(phase, info);
            if (phase === 'committed') manifestLog.committed(info.topic, info.partition);
          },
        };
      }
      // A stage stops for idleness only once the stages before it in this process began to stop:
      // until then more input may come from them, however drained its own partitions look.
      if (upstream.length > 0) o.idleAfter = Promise.allSettled([...upstream]);
      const worker = new StageWorker(o);
      workers.push(worker);
      const run = worker.start().then(() => worker.done);
      upstream.push(Promise.race([worker.stopBegan, run]));
      running.push([stage, run]);
    }
    const summaries: Record<string, StageSummary> = {};
    try {
      await Promise.all(running.map(async ([stage, done]) => (summaries[stage] = await done)));
    } catch (e) {
      // One stage failed (e.g. the sink's disk is full): the others stop too, each after its
      // transaction in flight, and the run ends with that stage's error.
      await Promise.allSettled(workers.map((w) => w.stop('stopped')));
      throw e;
    } finally {
      manifestLog.stop();
    }
    // In topology order, whichever stage finished first.
    const stoppedBy = running.map(([stage]) => stage).filter((stage) => summaries[stage]?.reason === 'signal');
    const complete = stoppedBy.length === 0;
    if (!complete) log.warn(`stream: stopped by a signal (stages ${stoppedBy.join(', ')}); the output holds what was committed and its manifest says "complete": false`);

    let manifest: string | null = null;
    let rejects = 0;
    const shardCounts = { events: 0, pretrain: 0, samples: 0 };
    const rowCounts = { events: 0, pretrain: 0, samples: 0 };
    let tasks: TaskSummary[] = [];
    let notInVocabulary: Record<string, number> = {};
    let meds: StreamSummary['meds'] = null;
    if (opts.finalize !== false) {
      const r = await finalizeStream(kafka, conn, names, out, art, stages, opts, compiled, skipped, complete, manifestLog);
      manifest = r.manifest;
      tasks = r.tasks;
      notInVocabulary = r.notInVocabulary;
      const vocabWarning = notInVocabularyWarning(notInVocabulary);
      if (vocabWarning) log.warn(vocabWarning);
      rejects = r.rejects;
      for (const s of r.shards) {
        if (s.kind !== 'events' && s.kind !== 'pretrain' && s.kind !== 'samples') continue;
        shardCounts[s.kind]++;
        rowCounts[s.kind] += s.rows;
      }
      if (opts.meds !== false) {
        const data = r.shards.filter((s) => s.path.startsWith('meds/data/'));
        meds = { path: path.join(out, 'meds'), shards: data.length, rows: data.reduce((a, s) => a + s.rows, 0), labelFiles: r.shards.filter((s) => s.kind === 'meds-labels').length };
        log.info(`stream: MEDS in ${meds.path}: ${meds.shards} data files, ${meds.rows} rows, ${meds.labelFiles} label files`);
      }
    }
    return { out, stages: summaries, shards: shardCounts, rows: rowCounts, tasks, tasksSkipped: skipped, notInVocabulary, rejects, meds, manifest, complete, seconds: (Date.now() - started) / 1000 };
  } finally {
    conn.closeSync();
    fs.rmSync(duckTmp, { recursive: true, force: true });
  }
}

export const DEFAULT_MANIFEST_INTERVAL_MS = 30_000;

/** The artifacts of a stream's output (decile boundaries, vocabulary, tasks) as the manifest names them. */
function streamArtifactEntries(art: Awaited<ReturnType<typeof loadStreamArtifacts>>, compiled: CompiledTask[]): Manifest['artifacts'] {
  return {
    vocabulary: { path: 'artifacts/vocabulary.json', version: art.vocabularyArtifact.version },
    deciles: { path: 'artifacts/deciles.json', version: art.deciles.version },
    ...Object.fromEntries(compiled.map((t) => [`task:${t.name}`, { path: `artifacts/tasks/${t.name}.json`, version: taskArtifact(t).hash }])),
  };
}

function writeStreamArtifacts(out: string, art: Awaited<ReturnType<typeof loadStreamArtifacts>>, compiled: CompiledTask[]): void {
  const writeJson = (rel: string, value: unknown) => writeFileAtomic(path.join(out, rel), new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n'));
  writeJson('artifacts/deciles.json', art.deciles);
  writeJson('artifacts/vocabulary.json', art.vocabularyArtifact);
  for (const t of compiled) writeJson(`artifacts/tasks/${t.name}.json`, taskArtifact(t));
}

/** The manifest's fields before its shards, of the running stream (`growing`) or of the stopped one. */
function manifestHeader(
  art: Awaited<ReturnType<typeof loadStreamArtifacts>>, names: TopicNames, opts: StreamOptions, compiled: CompiledTask[], state: { complete: boolean; growing?: true },
): Pick<Manifest, 'kind' | 'schema_version' | 'omop_schema' | 'runner' | 'complete' | 'growing' | 'input' | 'artifacts' | 'settings'> {
  return {
    kind: 'medrep.manifest', schema_version: SCHEMA_VERSION, omop_schema: OMOP_SCHEMA_VERSION, runner: 'kafka', ...state,
    input: { brokers: opts.kafka.brokers, topic_prefix: names.prefix, topics: LOAD_TABLES.map((t) => names.omop(t)) },
    artifacts: streamArtifactEntries(art, compiled),
    settings: shardSettings(opts),
  };
}

/** Lists in manifest.d/ the shards on disk that the sink group's committed offsets cover and the log lacks. */
async function reconcileManifestLog(kafka: Kafka, conn: Awaited<ReturnType<typeof openDuck>>, names: TopicNames, sinks: SinkTopic[], manifestLog: ManifestLog): Promise<number> {
  // A new output has no shard to list (and its group may have no coordinator yet).
  if (!manifestLog.hasUnlistedShards(sinks)) return 0;
  const admin = kafka.admin();
  await admin.connect();
  const committed = new Map<string, bigint>();
  try {
    const groupId = names.group('sink');
    const topics = sinks.map((s) => s.topic);
    for (const t of await retriable(() => admin.fetchOffsets({ groupId, topics }))) {
      for (const p of t.partitions) if (BigInt(p.offset) >= 0n) committed.set(`${t.topic}/${p.partition}`, BigInt(p.offset));
    }
  } finally {
    await admin.disconnect();
  }
  return manifestLog.reconcile(sinks, committed, async (file) => Number(await queryValue<bigint | number>(conn, `SELECT count(*) FROM read_parquet(${sqlString(file)})`)));
}

/** `call`, again after a pause while it fails with an error Kafka calls retriable (a group coordinator still moving or loading). */
async function retriable<T>(call: () => Promise<T>, attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (e) {
      if (i >= attempts || (e as { retriable?: boolean }).retriable !== true) throw e;
      await new Promise((r) => setTimeout(r, Math.min(300 * 2 ** i, 5000)));
    }
  }
}

async function finalizeStream(
  kafka: Kafka,
  conn: Awaited<ReturnType<typeof openDuck>>,
  names: TopicNames,
  out: string,
  art: Awaited<ReturnType<typeof loadStreamArtifacts>>,
  stages: StreamStage[],
  opts: StreamOptions,
  compiled: CompiledTask[],
  skipped: SkippedTask[],
  complete: boolean,
  manifestLog: ManifestLog,
): Promise<{ manifest: string; rejects: number; shards: ShardEntry[]; tasks: TaskSummary[]; notInVocabulary: Record<string, number> }> {
  const log = opts.log ?? consoleLogger;
  writeStreamArtifacts(out, art, compiled);
  // Table-1 counts: the labeler's summary of every partition, from the samples topic's end markers.
  const tasks = new Map<string, TaskSummary>();
  // Over every load closed so far (each end marker counts its own load's late records).
  const late = { applied: 0, dropped: { visit: 0, death: 0, condition: 0 }, corrections: 0 };
  const lastByPartition = new Map<number, TaskSummary[]>();
  await readToEnd(kafka, streamTopic(names, 'samples'), { timeoutMs: 60_000 }, (partition, m) => {
    const v = decodeStreamValue({ topic: streamTopic(names, 'samples'), value: m.value, headers: m.headers });
    if (v.k !== 'end' || !v.tasks) return;
    // Each load's counts cover the whole partition at its watermark: the last one counts.
    lastByPartition.set(partition, v.tasks);
    if (v.late) {
      late.applied += v.late.applied;
      late.corrections += v.late.corrections;
      for (const k of ['visit', 'death', 'condition'] as const) late.dropped[k] += v.late.dropped[k];
    }
  });
  for (const list of lastByPartition.values()) for (const s of list) tasks.set(s.task, addSummaries(tasks.get(s.task), s));

  // Rejects: every dead letter (producer and stages), with file and row where the row says them.
  fs.rmSync(path.join(out, 'rejects'), { recursive: true, force: true });
  const rejects = new RejectSink(path.join(out, 'rejects'));
  await readToEnd(kafka, names.dlq, { timeoutMs: 60_000 }, (_p, m) => {
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.headers ?? {})) if (v !== undefined) h[k] = v.toString();
    const text = m.value?.toString() ?? '';
    let values: unknown = text;
    try {
      values = parseJsonExact(text);
    } catch {
      /* kept as text */
    }
    const header = h[DLQ_HEADERS.reason] ?? 'dead-lettered';
    // "<kind>: column <c>: <reason>[; column ...]": the first column and its reason, as the local
    // runner's reject names them (the header keeps every problem and the kind).
    const first = /^([a-z-]+): column (\S+?): (.*?)(?:; column \S+?: .*)?$/.exec(header);
    const col = first?.[2] ?? '(row)';
    const reason = first?.[3] ?? header;
    const source = h[DLQ_HEADERS.source] ?? '';
    const row = typeof values === 'object' && values !== null && typeof (values as { __row?: unknown }).__row === 'number'
      ? (values as { __row: number }).__row
      : Number(/:(\d+)$/.exec(source)?.[1] ?? 0);
    // The physical line only where the producer read the file (medrep produce: records it could not read).
    const line = h[DLQ_HEADERS.line] !== undefined && /^\d+$/.test(h[DLQ_HEADERS.line]) ? Number(h[DLQ_HEADERS.line]) : undefined;
    rejects.add({ file: source, table: h[DLQ_HEADERS.table] || 'unknown', row, ...(line !== undefined ? { line } : {}), column: col, reason, ...(first ? { kind: first[1] } : {}), values });
  });
  const rejectFiles = rejects.close();

  // The sink's shards: its manifest log, with every shard the committed offsets cover.
  const sinks = sinkTopics(names, opts);
  const recovered = await reconcileManifestLog(kafka, conn, names, sinks, manifestLog);
  if (recovered > 0) log.info(`manifest: ${recovered} shard(s) the committed offsets cover were not in manifest.d/; listed now`);
  const shards: ManifestShard[] = manifestLog.shards();
  const notInVocabulary = await countNotInVocabulary(conn, out, shards, art.vocabulary.index.known);
  if (opts.meds !== false) shards.push(...(await exportStreamMeds(kafka, conn, names, out, shards, compiled)));
  const admin = kafka.admin();
  await admin.connect();
  const offsets: Record<string, unknown> = {};
  try {
    for (const s of stages) offsets[names.group(s)] = (await consumerGroupLag(admin, names.group(s))).map((l) => ({ topic: l.topic, partition: l.partition, committed: l.committed.toString(), high: l.high.toString(), lag: l.lag.toString() }));
  } finally {
    await admin.disconnect();
  }
  const manifest: Manifest = {
    ...manifestHeader(art, names, opts, compiled, { complete }),
    shards,
    rejects: rejectFiles.map((r) => ({ path: path.relative(out, r.path), rows: r.rows })),
    counts: { rejects: rejects.summary(), not_in_vocabulary: notInVocabulary, offsets, tasks: [...tasks.values()], tasks_skipped: skipped, late_records: late },
  };
  return { manifest: writeManifest(out, manifest), rejects: rejects.total, shards, tasks: [...tasks.values()], notInVocabulary };
}

/** The manifest's settings: window length and the sink's shard bounds. */
function shardSettings(opts: StreamOptions): Record<string, number> {
  const events = shardBounds('events', opts);
  return {
    max_events: opts.maxEvents ?? DEFAULT_MAX_EVENTS,
    events_per_shard: events.rows,
    sequences_per_shard: shardBounds('pretrain', opts).rows,
    shard_max_bytes: events.bytes,
    shard_max_age_ms: events.maxAgeMs,
  };
}

/**
 * Event rows per OMOP table whose concept the vocabulary lacks, read from the event shards (exact
 * whichever workers canonicalized them): such a row keeps its own id, which no vocabulary concept
 * has, while a standard, mapped or unmapped row's concept is in the vocabulary (or 0).
 */
async function countNotInVocabulary(conn: Awaited<ReturnType<typeof openDuck>>, out: string, shards: ShardEntry[], known: ReadonlySet<number>): Promise<Record<string, number>> {
  const events = shards.filter((s) => s.kind === 'events');
  if (!events.length) return {};
  const files = events.map((s) => sqlString(path.join(out, s.path))).join(', ');
  const rows = await queryRows<{ table: string; concept_id: number; n: number }>(
    conn,
    `SELECT "table", CAST(concept_id AS DOUBLE) AS concept_id, CAST(count(*) AS DOUBLE) AS n FROM read_parquet([${files}]) WHERE concept_id <> 0 GROUP BY ALL`,
  );
  const omopTable = new Map(EVENT_SPECS.map((sp) => [sp.events!.eventTable as string, sp.table as string]));
  const counts: Record<string, number> = {};
  for (const r of rows) if (!known.has(r.concept_id)) counts[omopTable.get(r.table)!] = (counts[omopTable.get(r.table)!] ?? 0) + r.n;
  return Object.fromEntries(Object.entries(counts).sort());
}

/**
 * meds/ as the local runner writes it: the person table read back from `omop.person` (the MEDS
 * birth and gender rows), one MEDS data file per events shard, codes, splits and the labels of
 * the sample shards in the LabelSchema.
 */
async function exportStreamMeds(
  kafka: Kafka,
  conn: Awaited<ReturnType<typeof openDuck>>,
  names: TopicNames,
  out: string,
  shards: ShardEntry[],
  compiled: CompiledTask[],
): Promise<ShardEntry[]> {
  fs.rmSync(path.join(out, 'meds'), { recursive: true, force: true });
  const tmp = path.join(out, '.tmp');
  fs.mkdirSync(tmp, { recursive: true });
  const personsFile = path.join(tmp, 'person.ndjson');
  const personCheck = rowValidator(tableSpec('person'));
  const fd = fs.openSync(personsFile, 'w');
  try {
    await readToEnd(kafka, names.omop('person'), { timeoutMs: 60_000 }, (_p, m) => {
      if (m.headers?.[CONTROL_HEADER] !== undefined || !m.value) return;
      // A message holds one row or an array of rows (one person's); a line per row either way.
      let value: unknown;
      try {
        value = parseJsonExact(m.value.toString());
      } catch {
        return; // not JSON: canonicalize dead-lettered it
      }
      // Only the person rows canonicalize took (the same check); duplicates are dropped below.
      for (const row of Array.isArray(value) ? value : [value]) {
        if (row === null || typeof row !== 'object' || personCheck.check(row as Record<string, unknown>).length) continue;
        fs.writeSync(fd, stringifyJsonExact(row) + '\n');
      }
    });
  } finally {
    fs.closeSync(fd);
  }
  await conn.run('DROP VIEW IF EXISTS person');
  // A person_id seen twice keeps its first source row, as the local runner's person view does.
  await conn.run(`CREATE OR REPLACE TABLE person AS SELECT
      TRY_CAST(person_id AS BIGINT) AS person_id, TRY_CAST(gender_concept_id AS BIGINT) AS gender_concept_id,
      TRY_CAST(year_of_birth AS BIGINT) AS year_of_birth, TRY_CAST(month_of_birth AS BIGINT) AS month_of_birth,
      TRY_CAST(day_of_birth AS BIGINT) AS day_of_birth, TRY_CAST(birth_datetime AS TIMESTAMP) AS birth_datetime
    FROM read_json(${sqlString(personsFile)}, format='newline_delimited', columns={person_id: 'VARCHAR', gender_concept_id: 'VARCHAR',
      year_of_birth: 'VARCHAR', month_of_birth: 'VARCHAR', day_of_birth: 'VARCHAR', birth_datetime: 'VARCHAR', __row: 'VARCHAR'})
    QUALIFY row_number() OVER (PARTITION BY TRY_CAST(person_id AS BIGINT) ORDER BY TRY_CAST(__row AS BIGINT) NULLS LAST) = 1`);
  const eventShards = shards.filter((s) => s.kind === 'events');
  const sampleShards = shards.filter((s) => s.kind === 'samples');
  const files = (list: ShardEntry[]) => `read_parquet([${list.map((s) => sqlString(path.join(out, s.path))).join(', ')}])`;
  // Splits of every person with events or samples (the persons the local runner assigns one).
  const splits = new Map<Id, Split>();
  for (const list of [eventShards, sampleShards]) {
    if (!list.length) continue;
    for (const r of await queryRows<{ p: bigint }>(conn, `SELECT DISTINCT person_id AS p FROM ${files(list)}`)) splits.set(idValue(r.p), splitOf(r.p));
  }
  // MEDS wants a subject in one data file: one file per partition (a person's rows share one),
  // from that partition's event shards.
  const byPartition = new Map<string, ShardEntry[]>();
  for (const s of eventShards) {
    const key = path.basename(s.path).replace(/-\d{20}-\d{20}\.parquet$/, '');
    byPartition.set(key, [...(byPartition.get(key) ?? []), s]);
  }
  const merged: ShardEntry[] = [];
  for (const [key, list] of [...byPartition.entries()].sort()) {
    const rel = path.posix.join('.tmp', `${key}.parquet`);
    await conn.run(`COPY (SELECT * FROM ${files(list)}) TO ${sqlString(path.join(out, rel))} (FORMAT parquet)`);
    merged.push({ kind: 'events', path: rel, rows: list.reduce((a, s) => a + s.rows, 0), bytes: 0, sha256: '' });
  }
  const entries = await exportMeds(conn, out, merged, splits);
  const samples = new Map<string, { multi: boolean; meds: { subjectId: Id; predictionMs: number; labels: number[] }[] }>();
  for (const t of compiled) {
    const list = sampleShards.filter((s) => s.path.startsWith(`samples/${t.name}/`));
    if (!list.length) continue;
    const rows = await queryRows<{ p: bigint; t: number; l: number[] }>(
      conn,
      `SELECT person_id AS p, CAST(epoch_ms(prediction_time) AS DOUBLE) AS t,
              ${t.multiLabel ? 'list_transform(labels, x -> CAST(x AS INTEGER))' : '[CAST(label AS INTEGER)]'} AS l
         FROM ${files(list)} ORDER BY p, t`,
    );
    samples.set(t.name, { multi: t.multiLabel, meds: rows.map((r) => ({ subjectId: idValue(r.p), predictionMs: r.t, labels: Array.from(r.l, Number) })) });
  }
  entries.push(...writeMedsLabels(out, compiled, samples));
  fs.rmSync(tmp, { recursive: true, force: true });
  return entries;
}

/** Sum of two partitions' Table-1 counts of one task. */
function addSummaries(a: TaskSummary | undefined, b: TaskSummary): TaskSummary {
  if (!a) return JSON.parse(JSON.stringify(b)) as TaskSummary;
  const excluded = { ...a.excluded };
  for (const [rule, n] of Object.entries(b.excluded)) excluded[rule as keyof typeof excluded] = (excluded[rule as keyof typeof excluded] ?? 0) + (n ?? 0);
  return {
    ...a,
    candidates: a.candidates + b.candidates, excluded, eligible: a.eligible + b.eligible, cohort: a.cohort + b.cohort,
    positives: a.positives + b.positives, negatives: a.negatives + b.negatives, censored: a.censored + b.censored,
    ...(a.positivesPerLabel && b.positivesPerLabel ? { positivesPerLabel: a.positivesPerLabel.map((x, i) => x + b.positivesPerLabel![i]) } : {}),
  };
}
