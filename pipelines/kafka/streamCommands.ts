// Command-line entries of the Kafka runner: `medrep produce`, `medrep stream`, `medrep replay`.
// Connection flags (--brokers, --sasl-*, --tls, --tls-ca, --topic-prefix, --client-id) are read by
// kafkaOptionsFromArgs, with the environment as fallback.
import { parseArgs, requireFlag, FlagSpec } from '../../common/args';
import { EXIT, UserError } from '../../common/errors';
import { consoleLogger } from '../../common/progress';
import { KAFKA_SPEC, kafkaOptionsFromArgs } from './config';
import { produceOmop } from './omopLoad';
import { runReplay } from './replay';
import { CLOSE_ON, CloseOn, runStream, STREAM_STAGES, StreamStage } from './streamRunner';
import { reportAfterRun } from '../report';


export const PRODUCE_SPEC: FlagSpec = { ...KAFKA_SPEC, omop: 'string', vocab: 'string', partitions: 'number', 'batch-rows': 'number', 'rows-per-message': 'number', markers: 'string' };
/** `--markers`: end a load with medrep's end-of-load markers, or send rows only (as a foreign producer). */
const MARKER_MODES = ['end-of-load', 'none'] as const;
export const STREAM_SPEC: FlagSpec = {
  ...KAFKA_SPEC, out: 'string', vocab: 'string', artifacts: 'string', deciles: 'string', 'exit-when-idle': 'number', stages: 'string',
  'max-events': 'number', 'events-per-shard': 'number', 'sequences-per-shard': 'number', 'shard-max-mb': 'number', 'shard-max-age': 'number',
  'transaction-size': 'number', 'health-interval': 'number',
  'allowed-lateness-days': 'number', 'close-on': 'string', 'out-of-orderness': 'number', 'idle-timeout': 'number', 'chunk-quiet': 'number', tasks: 'string', 'task-dir': 'string', 'task-concepts': 'string', force: 'boolean',
};
export const REPLAY_SPEC: FlagSpec = { ...KAFKA_SPEC, 'from-offsets': 'string', 'from-time': 'string', out: 'string', verify: 'string', force: 'boolean' };

export async function runProduceCommand(argv: string[]): Promise<void> {
  const p = parseArgs(argv, PRODUCE_SPEC, 'medrep produce');
  const markers = (p.flags.markers as string | undefined) ?? 'end-of-load';
  if (!(MARKER_MODES as readonly string[]).includes(markers)) throw new UserError(`medrep produce: --markers must be ${MARKER_MODES.join(' or ')}, got "${markers}"`);
  const r = await produceOmop({
    omop: requireFlag(p, 'omop', 'medrep produce'),
    vocab: p.flags.vocab as string | undefined,
    kafka: kafkaOptionsFromArgs(argv),
    partitions: p.flags.partitions as number | undefined,
    batchRows: p.flags['batch-rows'] as number | undefined,
    rowsPerMessage: p.flags['rows-per-message'] as number | undefined,
    endOfLoad: markers === 'end-of-load',
    log: consoleLogger,
  });
  process.stdout.write(`${JSON.stringify({ rows: r.rows, dead_lettered: r.deadLettered, by_table: r.byTable, dead_lettered_by_kind: r.deadLetteredByKind, rows_per_second: Math.round(r.rowsPerSecond), markers: r.markers })}\n`);
}

export async function runStreamCommand(argv: string[]): Promise<void> {
  const p = parseArgs(argv, STREAM_SPEC, 'medrep stream');
  const stages = p.flags.stages === undefined ? undefined : String(p.flags.stages).split(',').map((s) => s.trim());
  for (const s of stages ?? []) if (!(STREAM_STAGES as readonly string[]).includes(s)) throw new UserError(`medrep stream: --stages: unknown stage "${s}" (stages: ${STREAM_STAGES.join(', ')})`);
  const idle = p.flags['exit-when-idle'] as number | undefined;
  const positive = (flag: string, zeroAllowed = false): number | undefined => {
    const v = p.flags[flag] as number | undefined;
    if (v !== undefined && !(v > 0 || (zeroAllowed && v === 0))) throw new UserError(`medrep stream: --${flag} must be ${zeroAllowed ? 'at least 0' : 'above 0'}, got ${v}`);
    return v;
  };
  const closeOn = (p.flags['close-on'] as string | undefined) ?? 'marker';
  if (!(CLOSE_ON as readonly string[]).includes(closeOn)) throw new UserError(`medrep stream: --close-on must be ${CLOSE_ON.join(' or ')}, got "${closeOn}"`);
  const days = (flag: string, zeroAllowed: boolean) => {
    const v = positive(flag, zeroAllowed);
    return v === undefined ? undefined : v * 86_400_000;
  };
  const idleTimeout = positive('idle-timeout');
  const shardMb = positive('shard-max-mb');
  const shardAge = positive('shard-max-age', true);
  const summary = await runStream({
    kafka: kafkaOptionsFromArgs(argv),
    out: requireFlag(p, 'out', 'medrep stream'),
    vocab: requireFlag(p, 'vocab', 'medrep stream'),
    artifacts: p.flags.artifacts as string | undefined,
    deciles: p.flags.deciles as string | undefined,
    exitWhenIdleMs: idle === undefined ? undefined : idle * 1000,
    stages: stages as StreamStage[] | undefined,
    maxEvents: p.flags['max-events'] as number | undefined,
    eventsPerShard: positive('events-per-shard'),
    sequencesPerShard: positive('sequences-per-shard'),
    shardMaxBytes: shardMb === undefined ? undefined : Math.round(shardMb * 1024 * 1024),
    shardMaxAgeMs: shardAge === undefined ? undefined : shardAge * 1000,
    maxMessagesPerTransaction: p.flags['transaction-size'] as number | undefined,
    // A progress line per stage every 10 s by default (counts, rates, lag), not only at the end.
    healthIntervalMs: ((p.flags['health-interval'] as number | undefined) ?? 10) * 1000,
    closeOn: closeOn as CloseOn,
    outOfOrdernessMs: days('out-of-orderness', true),
    idleTimeoutMs: idleTimeout === undefined ? undefined : idleTimeout * 1000,
    chunkQuietMs: days('chunk-quiet', true),
    allowedLatenessMs: p.flags['allowed-lateness-days'] === undefined ? undefined : (p.flags['allowed-lateness-days'] as number) * 86_400_000,
    tasks: p.flags.tasks === undefined || p.flags.tasks === 'all' ? 'all' : p.flags.tasks === 'none' ? 'none' : String(p.flags.tasks).split(','),
    taskDir: p.flags['task-dir'] as string | undefined,
    taskConcepts: p.flags['task-concepts'] as string | undefined,
    force: p.flags.force === true,
    log: consoleLogger,
  });
  const meds = summary.meds && { path: summary.meds.path, shards: summary.meds.shards, rows: summary.meds.rows, label_files: summary.meds.labelFiles };
  process.stdout.write(`${JSON.stringify({ out: summary.out, shards: summary.shards, rows: summary.rows, meds, rejects: summary.rejects, manifest: summary.manifest, complete: summary.complete, seconds: summary.seconds })}\n`);
  // Only the worker that wrote the manifest (the sink's) reports on the folder.
  if (summary.manifest) await reportAfterRun(summary.out, consoleLogger);
  if (!summary.complete) process.exitCode = EXIT.stopped;
}

export async function runReplayCommand(argv: string[]): Promise<void> {
  const p = parseArgs(argv, REPLAY_SPEC, 'medrep replay');
  const fromOffsets = p.flags['from-offsets'] as string | undefined;
  const fromTime = p.flags['from-time'] as string | undefined;
  if ((fromOffsets === undefined) === (fromTime === undefined)) throw new UserError('medrep replay: give exactly one of --from-offsets FILE and --from-time ISO');
  const r = await runReplay({
    kafka: kafkaOptionsFromArgs(argv),
    out: requireFlag(p, 'out', 'medrep replay'),
    verify: requireFlag(p, 'verify', 'medrep replay'),
    fromOffsets,
    fromTime,
    force: p.flags.force === true,
    log: consoleLogger,
  });
  for (const s of r.shards) process.stdout.write(`${s.match ? 'OK      ' : 'MISMATCH'} ${s.path} (${s.rows} rows)\n`);
  process.stdout.write(`${r.matched} of ${r.shards.length} shards match the manifest; ${r.skipped} before the replay start not rebuilt\n`);
  if (r.matched !== r.shards.length) process.exitCode = EXIT.mismatch;
}
