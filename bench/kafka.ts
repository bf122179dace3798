// Benchmark of the Kafka runner (`medrep produce` + `medrep stream`) on synthetic data against the
// local runner measured in the same run, on the broker at --brokers (default 127.0.0.1:9092):
// produce rate, rows per second through all stages to shards, consumer lag over time (sampled
// every second while the stream runs; it must return to zero), peak RSS of each job (each runs in
// its own process), the ratio of the Kafka runner's end-to-end rate to the local runner's, and
// the shards each runner wrote (events, pretraining sequences, samples).
//
//   node dist/bench/kafka.js [--rows 1000000] [--partitions 3] [--rows-per-message N] [--no-pipelined] [--brokers 127.0.0.1:9092] [--keep DIR] [--result FILE]
//
// --no-pipelined skips the second run with produce and stream at once (halves a 10M-row run).
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
import { TopicNames } from '../runners/kafka/topics';
import { STREAM_STAGES } from '../runners/kafka/streamRunner';
import { generateSynthetic, personsForRows } from '../synth';
import { DEFAULT_ROWS_PER_MESSAGE } from '../runners/kafka/omopLoad';
import { writeBenchResult } from './resultFile';

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
  dir: string;
  rowsIn: number;
  localRate: number;
}

/**
 * Produce and stream at once (a second prefix), end to end from the produce start to the
 * stream's last committed transaction.
 */
async function runPipelined({ kafka, omop, brokers, prefix, partitions, rowsPerMessage, dir, rowsIn, localRate }: PipelinedRun) {
  console.error(`${new Date().toISOString()} produce + stream at once ...`);
  const prefix2 = `${prefix.slice(0, -1)}-overlap.`;
  const t1 = Date.now();
  const produce2 = job('kafkaChild.js', ['produce', omop, brokers, prefix2, String(partitions), rowsPerMessage]);
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

async function main(): Promise<void> {
  const rows = Number(arg('--rows', '1000000'));
  const partitions = Number(arg('--partitions', '3'));
  const rowsPerMessage = arg('--rows-per-message', String(DEFAULT_ROWS_PER_MESSAGE));
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
  const produce = await job('kafkaChild.js', ['produce', omop, brokers, prefix, String(partitions), rowsPerMessage]);

  console.error(`${new Date().toISOString()} stream ...`);
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
  const stream = await job('kafkaChild.js', ['stream', omop, brokers, prefix, path.join(dir, 'local', 'artifacts'), path.join(dir, 'stream')]);
  sampling = false;
  await sampler;
  const finalLag: Record<string, number> = {};
  for (const s of STREAM_STAGES) {
    const l = await consumerGroupLag(admin, names.group(s));
    // A drained transactional input still shows its trailing commit markers (1 per partition at most).
    finalLag[s] = Number(l.reduce((a, x) => a + x.lag, 0n));
  }
  await admin.disconnect();

  const pipelined = process.argv.includes('--no-pipelined')
    ? null
    : await runPipelined({ kafka, omop, brokers, prefix, partitions, rowsPerMessage, dir, rowsIn, localRate });
  // A rate is only a result when the run wrote what the first one wrote.
  if (pipelined && JSON.stringify(pipelined.rows_out) !== JSON.stringify(stream.rows)) {
    throw new Error(`produce + stream at once wrote ${JSON.stringify(pipelined.rows_out)}, the stream after produce ${JSON.stringify(stream.rows)}`);
  }

  const produceSeconds = produce.seconds as number;
  const streamSeconds = stream.activeSeconds as number;
  const endToEndSeconds = produceSeconds + streamSeconds;
  const result = {
    benchmark: 'kafka-runner',
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, load_average_start: loadAtStart, load_average_end: os.loadavg() },
    rows_in: rowsIn,
    persons,
    partitions,
    rows_per_message: Number(rowsPerMessage),
    local: { seconds: local.seconds, rows_per_second: localRate, peak_rss_mb: local.maxRssMb, shards: local.shards },
    produce: { seconds: produceSeconds, rows: produce.rows, rows_per_second: (produce.rows as number) / produceSeconds, peak_rss_mb: produce.maxRssMb },
    stream: {
      active_seconds: streamSeconds,
      wall_seconds: stream.seconds,
      rows_per_second: rowsIn / streamSeconds,
      peak_rss_mb: stream.maxRssMb,
      shards: stream.shards,
      rows_out: stream.rows,
    },
    end_to_end: { seconds: endToEndSeconds, rows_per_second: rowsIn / endToEndSeconds, ratio_to_local: rowsIn / endToEndSeconds / localRate },
    end_to_end_pipelined: pipelined,
    lag_over_time: lag,
    final_lag: finalLag,
    target_rows_per_second: 300_000,
  };
  const file = writeBenchResult(arg('--result', rows === 1_000_000 ? 'kafka.json' : `kafka-${rows}.json`), result);
  const f = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`rows in                ${f(rowsIn)} (${persons} persons, ${partitions} partitions, up to ${rowsPerMessage} rows per input message)`);
  console.log(`local runner           ${f(localRate)} rows/s  (${(local.seconds as number).toFixed(1)} s, peak RSS ${f(local.maxRssMb as number)} MB)`);
  console.log(`produce                ${f(result.produce.rows_per_second)} rows/s  (${produceSeconds.toFixed(1)} s, peak RSS ${f(produce.maxRssMb as number)} MB)`);
  console.log(`stream (all stages)    ${f(result.stream.rows_per_second)} rows/s  (${streamSeconds.toFixed(1)} s active, peak RSS ${f(stream.maxRssMb as number)} MB)`);
  console.log(`end to end             ${f(result.end_to_end.rows_per_second)} rows/s  ratio to local ${result.end_to_end.ratio_to_local.toFixed(3)} (target 300,000 rows/s)`);
  if (pipelined) console.log(`end to end, pipelined ${f(pipelined.rows_per_second)} rows/s  ratio to local ${pipelined.ratio_to_local.toFixed(3)} (produce and stream at once, ${pipelined.seconds.toFixed(1)} s)`);
  const shardCounts = (x: unknown) => x as { events: number; pretrain: number; samples: number };
  console.log(`events shards          stream ${shardCounts(stream.shards).events} (${partitions} partitions), local ${shardCounts(local.shards).events}; pretrain ${shardCounts(stream.shards).pretrain} vs ${shardCounts(local.shards).pretrain}, samples ${shardCounts(stream.shards).samples} vs ${shardCounts(local.shards).samples}`);
  console.log(`final lag              ${JSON.stringify(finalLag)}  (max lag seen ${Math.max(0, ...lag.map((p) => Math.max(...Object.values(p.lag))))})`);
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
