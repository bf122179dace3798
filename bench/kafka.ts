// Benchmark of the Kafka runner (`medrep produce` + `medrep stream`) on synthetic data against the
// local runner measured in the same run, on the broker at --brokers (default 127.0.0.1:9092):
// produce rate, rows per second through all stages to shards, consumer lag over time (sampled
// every second while the stream runs; it must return to zero), peak RSS of each job (each runs in
// its own process), the ratio of the Kafka runner's end-to-end rate to the local runner's, and
// the shards each runner wrote (events, pretraining sequences, samples).
//
//   node dist/bench/kafka.js [--rows 1000000] [--partitions 3] [--rows-per-message N] [--no-pipelined] [--brokers 127.0.0.1:9092] [--keep DIR] [--result FILE]
//                            [--workers N] [--message-format json|arrow] [--stage-profile]
//
// --no-pipelined skips the second run with produce and stream at once (halves a 10M-row run).
// --workers N runs N stream processes of all stages at once in the same consumer groups (scale-out;
// the rate ends at the last worker's last commit); the shards' rows are counted from the files and
// must equal the local runner's (a rebalance that duplicated or lost output would show there).
// --message-format arrow produces the omop.<table> rows as Arrow batches instead of JSON text.
// --stage-profile adds a run of each stage alone in its own process, one after another on a fresh
// produce, for each stage's CPU seconds per million input rows beside the local runner's.
//
// Writes bench/results/kafka.json (or kafka-<rows>.json with --rows other than 1000000; --result
// names another file there), with the machine's load average at the start and the end.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { consumerGroupLag } from '../runners/kafka/health';
import { groupStatus } from '../runners/kafka/commands';
import { registerKafkaCodecs } from '../runners/kafka/kafkaCodecs';
import { TopicNames } from '../runners/kafka/topics';
import { STREAM_STAGES } from '../runners/kafka/streamRunner';
import { generateSynthetic, personsForRows } from '../synth';
import { DEFAULT_ROWS_PER_MESSAGE } from '../runners/kafka/omopLoad';
import { writeBenchResult } from './resultFile';
import { shardRows } from './shardRows';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

/** Runs one job in its own process; resolves with the JSON line it prints. */
function job(script: string, args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0) reject(new Error(`${script} ${args[0]} exited with ${code}`));
      else resolve(JSON.parse(line));
    });
  });
}

interface PipelinedRun {
  kafka: Kafka;
  omop: string;
  brokers: string;
  prefix: string;
  partitions: number;
  rowsPerMessage: string;
  messageFormat: string;
  dir: string;
  rowsIn: number;
  localRate: number;
}

/**
 * Produce and stream at once (a second prefix), end to end from the produce start to the
 * stream's last committed transaction.
 */
async function runPipelined({ kafka, omop, brokers, prefix, partitions, rowsPerMessage, messageFormat, dir, rowsIn, localRate }: PipelinedRun) {
  console.error(`${new Date().toISOString()} produce + stream at once ...`);
  const prefix2 = `${prefix.slice(0, -1)}-overlap.`;
  const t1 = Date.now();
  const produce2 = job('kafkaChild.js', ['produce', omop, brokers, prefix2, String(partitions), rowsPerMessage, messageFormat]);
  // The stream needs the topics that produce creates first.
  const admin2 = kafka.admin();
  await admin2.connect();
  while (!(await admin2.listTopics()).includes(new TopicNames(prefix2).omop('person'))) await new Promise((r) => setTimeout(r, 200));
  await admin2.disconnect();
  const streamStart = (Date.now() - t1) / 1000;
  // Produce may pause longer than the usual idle wait (DuckDB reading a table on a loaded
  // machine) while the stream has consumed all there is: that wait must not end the stream.
  const stream2 = await job('kafkaChild.js', ['stream', omop, brokers, prefix2, path.join(dir, 'local', 'artifacts'), path.join(dir, 'stream2'), '30000']);
  const p2 = await produce2;
  const overlapSeconds = streamStart + (stream2.activeSeconds as number);
  return {
    seconds: overlapSeconds, rows_per_second: rowsIn / overlapSeconds, ratio_to_local: rowsIn / overlapSeconds / localRate,
    produce_seconds: p2.seconds, produce_peak_rss_mb: p2.maxRssMb, stream_peak_rss_mb: stream2.maxRssMb, rows_out: stream2.rows,
  };
}

/**
 * `n` stream processes at once with the same groups and output folder: seconds from `t0` to the
 * last commit of any of them, the largest peak RSS, CPU summed, shards and rows summed.
 */
async function streamWorkers(n: number, args: string[], t0: number) {
  const runs = await Promise.all(Array.from({ length: n }, () => job('kafkaChild.js', args)));
  const sum = (k: 'shards' | 'rows') => {
    const out: Record<string, number> = {};
    for (const r of runs) for (const [x, v] of Object.entries(r[k] as Record<string, number>)) out[x] = (out[x] ?? 0) + v;
    return out;
  };
  const lastCommit = Math.max(...runs.map((r) => r.lastCommitEpochMs as number));
  return {
    activeSeconds: n === 1 ? (runs[0].activeSeconds as number) : (lastCommit - t0) / 1000,
    seconds: Math.max(...runs.map((r) => r.seconds as number)),
    maxRssMb: Math.max(...runs.map((r) => r.maxRssMb as number)),
    cpuSeconds: runs.reduce((a, r) => a + (r.cpuSeconds as number), 0),
    shards: sum('shards'),
    rows: sum('rows'),
    perWorker: runs.map((r) => ({
      active_seconds: r.activeSeconds, cpu_seconds: r.cpuSeconds, peak_rss_mb: r.maxRssMb, consumed: r.consumed, rows_consumed: r.rowsConsumed,
      canonicalize_rows_per_second: ((r.rowsConsumed as Record<string, number>).canonicalize ?? 0) / (r.activeSeconds as number),
    })),
  };
}

interface StageProfileRun {
  omop: string; brokers: string; prefix: string; partitions: number; rowsPerMessage: string; messageFormat: string; dir: string; rowsIn: number;
}

/**
 * Each stage alone in its own process, one after another (canonicalize drains omop.<table>, then
 * trajectory drains medrep.canonical, then the sink), on a fresh produce: each process's CPU
 * seconds up to its last commit (its startup included: artifacts, vocabulary) per million input rows.
 */
async function runStageProfile({ omop, brokers, prefix, partitions, rowsPerMessage, messageFormat, dir, rowsIn }: StageProfileRun) {
  console.error(`${new Date().toISOString()} stage profile: produce, then each stage alone ...`);
  await job('kafkaChild.js', ['produce', omop, brokers, prefix, String(partitions), rowsPerMessage, messageFormat]);
  const stages: Record<string, { cpu_seconds: number; cpu_seconds_per_million_rows: number; cpu_seconds_with_finalize: number; active_seconds: number; peak_rss_mb: number }> = {};
  for (const stage of STREAM_STAGES) {
    const r = await job('kafkaChild.js', ['stream', omop, brokers, prefix, path.join(dir, 'local', 'artifacts'), path.join(dir, 'stream-stages'), '5000', stage]);
    const cpu = r.cpuSecondsAtLastCommit as number;
    stages[stage] = { cpu_seconds: cpu, cpu_seconds_per_million_rows: (cpu / rowsIn) * 1e6, cpu_seconds_with_finalize: r.cpuSeconds as number, active_seconds: r.activeSeconds as number, peak_rss_mb: r.maxRssMb as number };
  }
  return { stages };
}

async function main(): Promise<void> {
  const rows = Number(arg('--rows', '1000000'));
  const partitions = Number(arg('--partitions', '3'));
  const rowsPerMessage = arg('--rows-per-message', String(DEFAULT_ROWS_PER_MESSAGE));
  const workers = Number(arg('--workers', '1'));
  const messageFormat = arg('--message-format', 'json');
  const brokers = arg('--brokers', process.env.KAFKA_BROKERS ?? '127.0.0.1:9092');
  const dir = arg('--keep', fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-bench-kafka-')));
  const loadAtStart = os.loadavg();
  const omop = path.join(dir, 'omop');
  const persons = personsForRows(rows);
  const prefix = `bench${Date.now().toString(36)}-${randomBytes(2).toString('hex')}.`;
  console.error(`synthetic data: ${persons} persons for about ${rows} rows in ${omop}`);
  if (!fs.existsSync(path.join(omop, 'person.parquet'))) await generateSynthetic({ persons, seed: 42, out: omop, format: 'parquet', site: 'A' });

  console.error(`${new Date().toISOString()} local runner ...`);
  const local = await job('child.js', ['local-no-meds', omop, path.join(dir, 'local')]);
  const rowsIn = local.rowsIn as number;
  const localRate = rowsIn / (local.seconds as number);

  console.error(`${new Date().toISOString()} produce ...`);
  const produce = await job('kafkaChild.js', ['produce', omop, brokers, prefix, String(partitions), rowsPerMessage, messageFormat]);

  console.error(`${new Date().toISOString()} stream ...`);
  registerKafkaCodecs();
  const kafka = new Kafka({ brokers: brokers.split(','), clientId: 'bench-kafka-lag', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const names = new TopicNames(prefix);
  const lag: { t: number; lag: Record<string, number> }[] = [];
  const t0 = Date.now();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const point: Record<string, number> = {};
      for (const s of STREAM_STAGES) {
        const l = await consumerGroupLag(admin, names.group(s)).catch(() => []);
        point[s] = Number(l.reduce((a, x) => a + x.lag, 0n));
      }
      lag.push({ t: (Date.now() - t0) / 1000, lag: point });
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  const streamOut = path.join(dir, 'stream');
  const stream = await streamWorkers(workers, ['stream', omop, brokers, prefix, path.join(dir, 'local', 'artifacts'), streamOut, workers > 1 ? '10000' : '3000'], t0);
  sampling = false;
  await sampler;
  const finalLag: Record<string, number> = {};
  const messagesLeft: Record<string, number> = {};
  for (const s of STREAM_STAGES) {
    const l = await groupStatus(kafka, admin, names.group(s), undefined);
    // A drained transactional input still shows its trailing commit markers (1 per partition at
    // most) in the offsets; the messages left are read (read_committed) and counted apart.
    finalLag[s] = Number(l.reduce((a, x) => a + x.lag, 0n));
    messagesLeft[s] = Number(l.reduce((a, x) => a + (x.messages ?? x.lag), 0n));
  }
  await admin.disconnect();

  // Rows in the shards on disk, each runner's: a worker that wrote a partition's output twice (or
  // lost one) after a rebalance shows here, whatever the workers report.
  const rowsOnDisk = { local: await shardRows(path.join(dir, 'local')), stream: await shardRows(streamOut) };
  if (JSON.stringify(rowsOnDisk.local) !== JSON.stringify(rowsOnDisk.stream)) {
    throw new Error(`the stream's shards hold ${JSON.stringify(rowsOnDisk.stream)} rows, the local runner's ${JSON.stringify(rowsOnDisk.local)}`);
  }
  const pipelined = process.argv.includes('--no-pipelined')
    ? null
    : await runPipelined({ kafka, omop, brokers, prefix, partitions, rowsPerMessage, messageFormat, dir, rowsIn, localRate });
  // A rate is only a result when the run wrote what the first one wrote.
  // (Against the files: several workers each report the rows of the whole output.)
  if (pipelined && JSON.stringify(pipelined.rows_out) !== JSON.stringify(rowsOnDisk.stream)) {
    throw new Error(`produce + stream at once wrote ${JSON.stringify(pipelined.rows_out)}, the stream after produce ${JSON.stringify(rowsOnDisk.stream)}`);
  }

  const stageProfile = process.argv.includes('--stage-profile')
    ? await runStageProfile({ omop, brokers, prefix: `${prefix.slice(0, -1)}-stages.`, partitions, rowsPerMessage, messageFormat, dir, rowsIn })
    : null;

  const produceSeconds = produce.seconds as number;
  const streamSeconds = stream.activeSeconds as number;
  const endToEndSeconds = produceSeconds + streamSeconds;
  const result = {
    benchmark: 'kafka-runner',
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, load_average_start: loadAtStart, load_average_end: os.loadavg() },
    rows_in: rowsIn,
    persons,
    partitions,
    workers,
    message_format: messageFormat,
    rows_per_message: Number(rowsPerMessage),
    local: {
      seconds: local.seconds, rows_per_second: localRate, peak_rss_mb: local.maxRssMb, shards: local.shards,
      cpu_seconds: local.cpuSeconds, cpu_seconds_per_million_rows: ((local.cpuSeconds as number) / rowsIn) * 1e6, phases: local.phases,
    },
    produce: { seconds: produceSeconds, rows: produce.rows, rows_per_second: (produce.rows as number) / produceSeconds, peak_rss_mb: produce.maxRssMb },
    stream: {
      active_seconds: streamSeconds,
      wall_seconds: stream.seconds,
      rows_per_second: rowsIn / streamSeconds,
      peak_rss_mb: stream.maxRssMb,
      shards: stream.shards,
      rows_out: rowsOnDisk.stream,
      cpu_seconds: stream.cpuSeconds,
      per_worker: stream.perWorker,
    },
    shard_rows_on_disk: rowsOnDisk,
    stage_profile: stageProfile,
    end_to_end: { seconds: endToEndSeconds, rows_per_second: rowsIn / endToEndSeconds, ratio_to_local: rowsIn / endToEndSeconds / localRate },
    end_to_end_pipelined: pipelined,
    lag_over_time: lag,
    final_lag: finalLag,
    final_messages_left: messagesLeft,
    target_rows_per_second: 300_000,
  };
  const file = writeBenchResult(arg('--result', rows === 1_000_000 ? 'kafka.json' : `kafka-${rows}.json`), result);
  const f = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`rows in                ${f(rowsIn)} (${persons} persons, ${partitions} partitions, up to ${rowsPerMessage} rows per input message)`);
  console.log(`local runner           ${f(localRate)} rows/s  (${(local.seconds as number).toFixed(1)} s, peak RSS ${f(local.maxRssMb as number)} MB)`);
  console.log(`produce                ${f(result.produce.rows_per_second)} rows/s  (${produceSeconds.toFixed(1)} s, peak RSS ${f(produce.maxRssMb as number)} MB)`);
  console.log(`stream (all stages)    ${f(result.stream.rows_per_second)} rows/s  (${workers} worker process${workers > 1 ? 'es' : ''}, ${streamSeconds.toFixed(1)} s active, peak RSS ${f(stream.maxRssMb as number)} MB${workers > 1 ? ' the largest worker' : ''})`);
  console.log(`end to end             ${f(result.end_to_end.rows_per_second)} rows/s  ratio to local ${result.end_to_end.ratio_to_local.toFixed(3)} (target 300,000 rows/s)`);
  if (pipelined) console.log(`end to end, pipelined ${f(pipelined.rows_per_second)} rows/s  ratio to local ${pipelined.ratio_to_local.toFixed(3)} (produce and stream at once, ${pipelined.seconds.toFixed(1)} s)`);
  const shardCounts = (x: unknown) => x as { events: number; pretrain: number; samples: number };
  console.log(`events shards          stream ${shardCounts(stream.shards).events} (${partitions} partitions), local ${shardCounts(local.shards).events}; pretrain ${shardCounts(stream.shards).pretrain} vs ${shardCounts(local.shards).pretrain}, samples ${shardCounts(stream.shards).samples} vs ${shardCounts(local.shards).samples}`);
  console.log(`shard rows on disk     ${JSON.stringify(rowsOnDisk.stream)} (local ${JSON.stringify(rowsOnDisk.local)})`);
  if (stageProfile) {
    for (const [stage, p] of Object.entries(stageProfile.stages)) console.log(`CPU ${stage.padEnd(19)}${p.cpu_seconds_per_million_rows.toFixed(1)} s per million rows (${p.cpu_seconds.toFixed(1)} s CPU, ${p.active_seconds.toFixed(1)} s active)`);
    console.log(`CPU local runner       ${result.local.cpu_seconds_per_million_rows.toFixed(1)} s per million rows (all of it, one process)`);
  }
  console.log(`final lag              ${JSON.stringify(finalLag)} offsets, ${JSON.stringify(messagesLeft)} messages (the rest transaction markers; max lag seen ${Math.max(0, ...lag.map((p) => Math.max(...Object.values(p.lag))))})`);
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
