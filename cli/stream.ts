// `medrep stream`: the Kafka runner, stages between topics, the same output as `medrep run`.
import { EXIT, UserError } from '../common/errors';
import { consoleLogger } from '../common/progress';
import { CLOSE_ON, runStream, STREAM_STAGES, StreamStage } from '../runners/kafka/streamRunner';
import { reportAfterRun } from '../report';
import { defineCommand } from './command';
import { OUTPUT_OPTIONS, SHARD_OPTIONS, shardSizes } from './pipelineOptions';
import { KAFKA_OPTIONS, kafkaOf } from './kafka';
import { TASK_OPTIONS, taskSelection } from './tasks';

const isStage = (s: string): s is StreamStage => (STREAM_STAGES as readonly string[]).includes(s);
const seconds = (s: number | undefined) => (s === undefined ? undefined : s * 1000);

export const streamCommand = defineCommand({
  name: 'stream',
  synopsis: '--brokers HOST:PORT --out DIR --vocab DIR --artifacts DIR|--deciles FILE [--exit-when-idle S] [--close-on marker|watermark]',
  summary: 'the Kafka runner: stages between topics, same output as run',
  options: {
    ...KAFKA_OPTIONS,
    ...OUTPUT_OPTIONS,
    vocab: { type: 'string', value: 'DIR', required: true, help: 'OMOP vocabulary folder' },
    artifacts: { type: 'string', value: 'DIR', help: 'folder with deciles.json (e.g. OUT/artifacts of medrep run), or the file itself' },
    deciles: { type: 'string', value: 'FILE', help: 'the decile artifact file (deciles.json) instead of --artifacts' },
    'exit-when-idle': { type: 'number', value: 'S', help: 'stop once every input is consumed and nothing came for S seconds (default: run until SIGTERM)' },
    stages: { type: 'list', value: STREAM_STAGES.join(','), help: 'the stages this worker runs (default all)' },
    ...SHARD_OPTIONS,
    'shard-max-mb': { type: 'number', above: 0, help: 'close a shard at this size in MiB' },
    'shard-max-age': { type: 'number', value: 'S', atLeast: 0, help: 'log-time span of a shard at most, seconds (0: none)' },
    'transaction-size': { type: 'number', help: 'input messages per transaction (default 5000)' },
    'health-interval': { type: 'number', value: 'S', default: 10, help: 'seconds between the progress lines of each stage' },
    'manifest-interval': { type: 'number', value: 'S', atLeast: 0, help: 'seconds between rewrites of manifest.json from the manifest log while running (default 30; 0: only on new entries)' },
    'allowed-lateness-days': { type: 'number', help: 'how far behind the watermark a record of a later load may be and still change a label' },
    'close-on': { type: 'enum', values: CLOSE_ON, default: 'marker', help: 'what closes a load: producer end-of-load markers (batch loads, equal to medrep run) or the event-time watermark (continuous mode)' },
    'out-of-orderness': { type: 'number', value: 'DAYS', atLeast: 0, help: 'watermark = latest event time seen minus this (default 1)' },
    'idle-timeout': { type: 'number', value: 'S', above: 0, help: 'a source table silent this long stops holding the watermark back (default 30)' },
    'chunk-quiet': { type: 'number', value: 'DAYS', atLeast: 0, help: 'continuous mode: a person quiet this long behind the watermark gets their open chunk emitted (default 30)' },
    ...TASK_OPTIONS,
  },
  async run(o) {
    const stages = o.stages?.filter(isStage);
    for (const s of o.stages ?? []) if (!isStage(s)) throw new UserError(`medrep stream: --stages: unknown stage "${s}" (stages: ${STREAM_STAGES.join(', ')})`);
    const summary = await runStream({
      kafka: kafkaOf(o),
      out: o.out,
      vocab: o.vocab,
      artifacts: o.artifacts,
      deciles: o.deciles,
      exitWhenIdleMs: seconds(o.exitWhenIdle),
      stages,
      ...shardSizes(o),
      shardMaxBytes: o.shardMaxMb === undefined ? undefined : Math.round(o.shardMaxMb * 1024 * 1024),
      shardMaxAgeMs: seconds(o.shardMaxAge),
      maxMessagesPerTransaction: o.transactionSize,
      healthIntervalMs: o.healthInterval * 1000,
      manifestIntervalMs: seconds(o.manifestInterval),
      closeOn: o.closeOn,
      outOfOrdernessMs: o.outOfOrderness === undefined ? undefined : o.outOfOrderness * 86_400_000,
      idleTimeoutMs: seconds(o.idleTimeout),
      chunkQuietMs: o.chunkQuiet === undefined ? undefined : o.chunkQuiet * 86_400_000,
      allowedLatenessMs: o.allowedLatenessDays === undefined ? undefined : o.allowedLatenessDays * 86_400_000,
      ...taskSelection(o),
      force: o.force,
      log: consoleLogger,
    });
    const meds = summary.meds && { path: summary.meds.path, shards: summary.meds.shards, rows: summary.meds.rows, label_files: summary.meds.labelFiles };
    process.stdout.write(`${JSON.stringify({ out: summary.out, shards: summary.shards, rows: summary.rows, meds, rejects: summary.rejects, manifest: summary.manifest, complete: summary.complete, seconds: summary.seconds })}\n`);
    // Only the worker that wrote the manifest (the sink's) reports on the folder.
    if (summary.manifest) await reportAfterRun(summary.out, consoleLogger);
    if (!summary.complete) process.exitCode = EXIT.stopped;
  },
});
