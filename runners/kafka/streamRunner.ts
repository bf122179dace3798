// `medrep stream`: the Kafka runner. Runs the stages of the declared topology (topology.ts:
// canonicalize, trajectory, the Parquet sink) as consumer groups (all in this process by default;
// `--stages` picks some, and several processes share the partitions). While the sink runs, each
// durable shard gets its entry in the manifest log (manifest.d/, manifestLog.ts) and manifest.json
// is rewritten from it; once the stages stop, the runner writes the full manifest, the artifacts
// and the rejects into the same output layout as `medrep run` (streamFinalize.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Kafka } from 'kafkajs';
import { openDuck } from '../../sources/duck';
import { makeProcessTempDir } from '../../common/processTempDir';
import { Logger, consoleLogger } from '../../common/progress';
import { withOutputDir } from '../../common/outputDir';
import { selectTasks } from '../../sources/runTasks';
import { compileTasks } from '../../sources/labelInputs';
import { notInVocabularyWarning } from '../../transforms/normalize';
import { createKafka, describeKafkaOptions, KafkaOptions } from './config';
import { ManifestLog } from './manifestLog';
import { StageSummary, StageWorker } from './stage';
import { StageOptions } from './stageTypes';
import { loadStreamArtifacts } from './streamArtifacts';
import { Finalized, finalizeStream } from './streamFinalize';
import { manifestHeader, reconcileManifestLog, writeStreamArtifacts } from './streamManifest';
import { DEFAULT_MANIFEST_INTERVAL_MS, StreamOptions, StreamSummary } from './streamOptions';
import { Versions } from './streamValues';
import { changelogSpecs, internalTopicSpecs, sinkTopics, StageEnv, stageOptions, STREAM_STAGES, STREAM_TOPOLOGY, StreamStage } from './topology';
import { ensureTopics, partitionCount, TopicNames } from './topics';

export { CLOSE_ON, DEFAULT_MANIFEST_INTERVAL_MS } from './streamOptions';
export type { CloseOn, StreamOptions, StreamSummary } from './streamOptions';
export { sinkTopics, stageInputTopics, STREAM_STAGES } from './topology';
export type { StreamStage } from './topology';

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
    await createStreamTopics(kafka, names);
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
    const env: StageEnv = { names, out, opts, art, versions, tasks: compiled, sinks, manifestLog, log };
    if (stages.includes('sink')) {
      // The artifacts the running manifest names are there from the start (rewritten at stop).
      writeStreamArtifacts(out, art, compiled);
      const n = await reconcileManifestLog(kafka, conn, names, sinks, manifestLog);
      if (n > 0) log.info(`manifest: ${n} shard(s) the committed offsets cover were not in manifest.d/ (a stop between commit and entry); listed now`);
      manifestLog.rewrite();
      manifestLog.start(opts.manifestIntervalMs ?? DEFAULT_MANIFEST_INTERVAL_MS);
    }
    const { summaries, complete } = await runStages(stages, env, kafka, manifestLog);
    const summary: StreamSummary = {
      out, stages: summaries, shards: { events: 0, pretrain: 0, samples: 0 }, rows: { events: 0, pretrain: 0, samples: 0 },
      tasks: [], tasksSkipped: skipped, notInVocabulary: {}, rejects: 0, meds: null, manifest: null, complete, seconds: 0,
    };
    if (opts.finalize !== false) {
      const r = await finalizeStream({ kafka, conn, names, out, art, stages, opts, compiled, skipped, complete, manifestLog });
      addFinalized(summary, r, opts, log);
    }
    return { ...summary, seconds: (Date.now() - started) / 1000 };
  } finally {
    conn.closeSync();
    fs.rmSync(duckTmp, { recursive: true, force: true });
  }
}

/**
 * The topics between the stages and every state store's changelog, from the topology, with the
 * partition count of `omop.person` (a person stays in one partition through every stage).
 */
async function createStreamTopics(kafka: Kafka, names: TopicNames): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const partitions = await partitionCount(admin, names.omop('person'));
    await ensureTopics(admin, internalTopicSpecs(names, partitions));
    await ensureTopics(admin, changelogSpecs(names, partitions));
  } finally {
    await admin.disconnect();
  }
}

/** The options every stage of this process shares. */
function commonStageOptions(kafka: Kafka, names: TopicNames, opts: StreamOptions, log: Logger): Omit<StageOptions, 'stage' | 'inputTopics' | 'transform' | 'stores' | 'appendStores'> {
  return {
    kafka, names, exitWhenIdleMs: opts.exitWhenIdleMs, maxMessagesPerTransaction: opts.maxMessagesPerTransaction, healthIntervalMs: opts.healthIntervalMs,
    handleSignals: opts.handleSignals, onPhase: opts.onPhase, sessionTimeoutMs: opts.sessionTimeoutMs, rebalanceTimeoutMs: opts.rebalanceTimeoutMs,
    heartbeatIntervalMs: opts.heartbeatIntervalMs, log: (line: string) => log.info(line),
  };
}

/** Starts the chosen stages in pipeline order and waits until all stopped; a failure stops the others and goes up. */
async function runStages(stages: StreamStage[], env: StageEnv, kafka: Kafka, manifestLog: ManifestLog): Promise<{ summaries: Record<string, StageSummary>; complete: boolean }> {
  const common = commonStageOptions(kafka, env.names, env.opts, env.log);
  const running: Array<[string, Promise<StageSummary>]> = [];
  const workers: StageWorker[] = [];
  const upstream: Array<Promise<unknown>> = [];
  for (const decl of STREAM_TOPOLOGY.filter((d) => stages.includes(d.name))) {
    const o = stageOptions(decl, env, common);
    // A stage stops for idleness only once the stages before it in this process began to stop:
    // until then more input may come from them, however drained its own partitions look.
    if (upstream.length > 0) o.idleAfter = Promise.allSettled([...upstream]);
    const worker = new StageWorker(o);
    workers.push(worker);
    const run = worker.start().then(() => worker.done);
    upstream.push(Promise.race([worker.stopBegan, run]));
    running.push([decl.name, run]);
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
  if (stoppedBy.length > 0) env.log.warn(`stream: stopped by a signal (stages ${stoppedBy.join(', ')}); the output holds what was committed and its manifest says "complete": false`);
  return { summaries, complete: stoppedBy.length === 0 };
}

/** The summary's counts from what the end wrote (manifest, shards, MEDS copy). */
function addFinalized(summary: StreamSummary, r: Finalized, opts: StreamOptions, log: Logger): void {
  summary.manifest = r.manifest;
  summary.tasks = r.tasks;
  summary.notInVocabulary = r.notInVocabulary;
  const vocabWarning = notInVocabularyWarning(r.notInVocabulary);
  if (vocabWarning) log.warn(vocabWarning);
  summary.rejects = r.rejects;
  for (const s of r.shards) {
    if (s.kind !== 'events' && s.kind !== 'pretrain' && s.kind !== 'samples') continue;
    summary.shards[s.kind]++;
    summary.rows[s.kind] += s.rows;
  }
  if (opts.meds !== false) {
    const data = r.shards.filter((s) => s.path.startsWith('meds/data/'));
    summary.meds = { path: path.join(summary.out, 'meds'), shards: data.length, rows: data.reduce((a, s) => a + s.rows, 0), labelFiles: r.shards.filter((s) => s.kind === 'meds-labels').length };
    log.info(`stream: MEDS in ${summary.meds.path}: ${summary.meds.shards} data files, ${summary.meds.rows} rows, ${summary.meds.labelFiles} label files`);
  }
}

