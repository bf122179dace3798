// Benchmark of the Kafka runner in continuous mode (`medrep stream --close-on watermark`) on
// synthetic data, on the broker at --brokers (default 127.0.0.1:9092): `medrep produce --markers
// none` feeds a stream that is already running (both as CLI processes); once every stage has
// drained, the stream is stopped with SIGTERM. Measures rows per second (produce start to the
// last shard on disk), the end-to-end latency of each event row from its produce time (the
// Kafka timestamp of its omop.<table> message) to its events shard on disk (file time), median
// and p99, and over time (every 2 s) the stream process's resident memory, its state changelog
// records (person store and events store) per person produced so far, and the state size per
// person: the events the trajectory stage's events store keeps (mean, max, MB) beside the events
// appended so far (what the store would hold without retention pruning), from a consumer of the
// store's changelog (changelogState.ts).
//
//   node dist/bench/kafkaContinuous.js [--rows 1000000] [--partitions 3] [--brokers 127.0.0.1:9092] [--max-events N] [--keep DIR]
//
// --max-events is the stream's (default 2048): a person keeps at least that many events, so the
// retention pruning shows only for histories longer than it.
//
// Writes bench/results/kafka-continuous.json (kafka-continuous-<rows>.json for other sizes), with
// the machine's load average at the start and the end.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { consumerGroupLag } from '../runners/kafka/health';
import { TopicNames } from '../runners/kafka/topics';
import { STREAM_STAGES } from '../runners/kafka/streamRunner';
import { readTopicsToEnd } from '../runners/kafka/readToEnd';
import { EVENT_SPECS } from '../sources/eventSource';
import { generateSynthetic, personsForRows } from '../synth';
import { openDuck, queryRows, sqlString } from '../sources/duck';
import { writeBenchResult } from './resultFile';
import { EventsStoreWatcher, StateSample } from './changelogState';
import { EVENTS_STORE } from '../runners/kafka/trajectoryState';

const MEDREP = path.join(__dirname, '..', '..', 'bin', 'medrep.js');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

async function records(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, o) => n + Number(o.high), 0);
  } catch {
    return 0;
  } finally {
    await admin.disconnect();
  }
}

async function main(): Promise<void> {
  const rows = Number(arg('--rows', '1000000'));
  const partitions = Number(arg('--partitions', '3'));
  const brokers = arg('--brokers', process.env.KAFKA_BROKERS ?? '127.0.0.1:9092');
  const maxEvents = arg('--max-events', '');
  const dir = arg('--keep', fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-bench-continuous-')));
  const loadAtStart = os.loadavg();
  const omop = path.join(dir, 'omop');
  const persons = personsForRows(rows);
  const prefix = `benchc${Date.now().toString(36)}-${randomBytes(2).toString('hex')}.`;
  const names = new TopicNames(prefix);
  const kafkaArgs = ['--brokers', brokers, '--topic-prefix', prefix];
  console.error(`synthetic data: ${persons} persons for about ${rows} rows in ${omop}`);
  if (!fs.existsSync(path.join(omop, 'person.parquet'))) await generateSynthetic({ persons, seed: 42, out: omop, format: 'parquet', site: 'A' });
  // The decile artifact the stream needs, from the local runner.
  const local = spawnSync(process.execPath, [MEDREP, 'run', '--omop', omop, '--out', path.join(dir, 'local'), '--no-meds', '--tasks', 'none'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (local.status !== 0) throw new Error(`medrep run exited with ${local.status}`);
  if (spawnSync(process.execPath, [MEDREP, 'topics', ...kafkaArgs, '--partitions', String(partitions)], { stdio: 'ignore' }).status !== 0) throw new Error('medrep topics failed');

  const out = path.join(dir, 'stream');
  const stream = spawn(process.execPath, [
    MEDREP, 'stream', ...kafkaArgs, '--out', out, '--vocab', omop, '--artifacts', path.join(dir, 'local', 'artifacts'),
    '--close-on', 'watermark', '--health-interval', '0', '--force', ...(maxEvents ? ['--max-events', maxEvents] : []),
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
  const streamExit = new Promise<number | null>((resolve) => stream.on('exit', (code) => resolve(code)));
  await sleep(3000);

  const kafka = new Kafka({ brokers: brokers.split(','), clientId: 'bench-continuous', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const t0 = Date.now();
  const produce = spawn(process.execPath, [MEDREP, 'produce', '--omop', omop, ...kafkaArgs, '--partitions', String(partitions), '--markers', 'none'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let produceOut = '';
  produce.stdout.on('data', (d) => (produceOut += d));
  let produced = false;
  const produceEnd = new Promise<number>((resolve) => produce.on('exit', () => {
    produced = true;
    resolve((Date.now() - t0) / 1000);
  }));
  const over: { t: number; rss_mb: number | null; persons_produced: number; person_changelog_per_person: number; events_changelog_per_person: number; events_per_person: StateSample; lag: Record<string, number> }[] = [];
  const watcher = new EventsStoreWatcher(kafka, names.changelog('trajectory', EVENTS_STORE));
  await watcher.start();
  const db = await openDuck();
  const eventRowsOnDisk = async () => {
    if (!fs.existsSync(path.join(out, 'events')) || !fs.readdirSync(path.join(out, 'events')).some((f) => f.endsWith('.parquet'))) return 0;
    const [r] = await queryRows<{ n: number }>(db, `SELECT count(*)::DOUBLE AS n FROM read_parquet(${sqlString(path.join(out, 'events/*.parquet'))})`);
    return r.n;
  };
  let expectedEvents: number | null = null;
  for (;;) {
    const lag: Record<string, number> = {};
    for (const s of STREAM_STAGES) lag[s] = Number((await consumerGroupLag(admin, names.group(s)).catch(() => [])).reduce((a, x) => a + x.lag, 0n));
    const personsSoFar = Math.max(1, await records(kafka, names.omop('person')));
    over.push({
      t: (Date.now() - t0) / 1000, rss_mb: rssMb(stream.pid!), persons_produced: personsSoFar,
      person_changelog_per_person: (await records(kafka, names.changelog('trajectory', 'person'))) / personsSoFar,
      events_changelog_per_person: (await records(kafka, names.changelog('trajectory', 'events'))) / personsSoFar,
      events_per_person: watcher.sample(),
      lag,
    });
    // Drained: every event row of the input is in an events shard.
    if (produced && expectedEvents === null) {
      const byTable = (JSON.parse(produceOut.trim().split('\n').pop() ?? '{}') as { rows: number; by_table: Record<string, number> });
      expectedEvents = byTable.rows - (byTable.by_table.person ?? 0) - (byTable.by_table.observation_period ?? 0);
    }
    if (expectedEvents !== null && (await eventRowsOnDisk()) >= expectedEvents) break;
    await sleep(2000);
  }
  const produceSeconds = await produceEnd;
  await sleep(3000);
  const finalState = watcher.sample();
  await watcher.stop();
  stream.kill('SIGTERM');
  const code = await streamExit;
  const produceResult = JSON.parse(produceOut.trim().split('\n').pop() ?? '{}');

  // Produce time of every row: its message's Kafka timestamp, by table and source row.
  const stamps = path.join(dir, 'produce-times.csv');
  const fd = fs.openSync(stamps, 'w');
  fs.writeSync(fd, 'tbl,row,ts\n');
  const tables = EVENT_SPECS.map((s) => s.table);
  await readTopicsToEnd(kafka, tables.map((t) => ({ topic: names.omop(t) })), { timeoutMs: 600_000 }, (topic, _p, m) => {
    const table = names.tableOf(topic)!;
    const v = JSON.parse(m.value!.toString()) as { __row?: number } | { __row?: number }[];
    const lines = (Array.isArray(v) ? v : [v]).map((r) => `${table},${r.__row},${m.timestamp}`);
    fs.writeSync(fd, lines.join('\n') + '\n');
  });
  fs.closeSync(fd);
  await admin.disconnect();
  const shardFiles = (d: string) => (fs.existsSync(d) ? (fs.readdirSync(d, { recursive: true }) as string[]).filter((f) => f.endsWith('.parquet')).map((f) => path.join(d, f)) : []);
  const times = path.join(dir, 'shard-times.csv');
  const events = shardFiles(path.join(out, 'events'));
  fs.writeFileSync(times, 'file,ms\n' + events.map((f) => `${f},${fs.statSync(f).mtimeMs}`).join('\n') + '\n');
  const lastShard = Math.max(...['events', 'pretrain', 'samples'].flatMap((k) => shardFiles(path.join(out, k))).map((f) => fs.statSync(f).mtimeMs));
  const [lat] = await queryRows<{ n: number; p50: number; p99: number; max: number }>(db, `
    WITH ev AS (SELECT filename, split_part(origin, ':', 1) AS tbl, CAST(split_part(origin, ':', 2) AS BIGINT) AS row FROM read_parquet(${sqlString(path.join(out, 'events/*.parquet'))}, filename = true)),
    st AS (SELECT * FROM read_csv(${sqlString(stamps)}, header = true, columns = {'tbl': 'VARCHAR', 'row': 'BIGINT', 'ts': 'DOUBLE'})),
    sh AS (SELECT * FROM read_csv(${sqlString(times)}, header = true, columns = {'file': 'VARCHAR', 'ms': 'DOUBLE'}))
    SELECT count(*)::DOUBLE AS n, quantile_cont((sh.ms - st.ts) / 1000, 0.5) AS p50, quantile_cont((sh.ms - st.ts) / 1000, 0.99) AS p99, max((sh.ms - st.ts) / 1000) AS max
    FROM ev JOIN st USING (tbl, row) JOIN sh ON sh.file = ev.filename`);
  const [counts] = await queryRows<{ events: number; chunks: number }>(db, `SELECT
    (SELECT count(*)::DOUBLE FROM read_parquet(${sqlString(path.join(out, 'events/*.parquet'))})) AS events,
    (SELECT count(*)::DOUBLE FROM read_parquet(${sqlString(path.join(out, 'pretrain/*.parquet'))})) AS chunks`);
  const rowsIn = produceResult.rows as number;
  const seconds = (lastShard - t0) / 1000;
  const result = {
    benchmark: 'kafka-continuous',
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, load_average_start: loadAtStart, load_average_end: os.loadavg() },
    rows_in: rowsIn,
    persons,
    partitions,
    max_events: maxEvents ? Number(maxEvents) : 2048,
    produce_seconds: produceSeconds,
    seconds_to_last_shard: seconds,
    rows_per_second: rowsIn / seconds,
    event_rows_in_shards: counts.events,
    pretrain_chunks: counts.chunks,
    shards: { events: events.length, pretrain: shardFiles(path.join(out, 'pretrain')).length, samples: shardFiles(path.join(out, 'samples')).length },
    latency_seconds: { rows: lat.n, median: lat.p50, p99: lat.p99, max: lat.max },
    stream_exit_code: code,
    events_per_person_at_end: finalState,
    over_time: over,
  };
  const file = writeBenchResult(rows === 1_000_000 ? 'kafka-continuous.json' : `kafka-continuous-${rows}.json`, result);
  const f = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`rows in          ${f(rowsIn)} (${persons} persons, ${partitions} partitions)`);
  console.log(`rows/s           ${f(result.rows_per_second)} (produce start to the last shard, ${seconds.toFixed(1)} s; produce ${produceSeconds.toFixed(1)} s)`);
  console.log(`latency          median ${lat.p50.toFixed(1)} s, p99 ${lat.p99.toFixed(1)} s (${f(lat.n)} event rows, produce time to events shard on disk)`);
  const last = over[over.length - 1];
  console.log(`state            RSS ${last.rss_mb?.toFixed(0)} MB; changelog records per person: person ${last.person_changelog_per_person.toFixed(1)}, events ${last.events_changelog_per_person.toFixed(1)}`);
  console.log('state per person over time (events kept in the events store; appended: what it holds without pruning)');
  console.log('  t(s)   persons  kept mean   kept max  appended mean  appended max  kept MB');
  for (const o of over) {
    const e = o.events_per_person;
    console.log(`  ${o.t.toFixed(0).padStart(4)} ${String(e.persons).padStart(9)} ${e.kept_mean.toFixed(1).padStart(10)} ${String(e.kept_max).padStart(10)} ${e.appended_mean.toFixed(1).padStart(14)} ${String(e.appended_max).padStart(13)} ${e.kept_mb.toFixed(1).padStart(8)}`);
  }
  console.log(`at the end       kept ${finalState.kept_mean.toFixed(1)} events per person (max ${finalState.kept_max}), appended ${finalState.appended_mean.toFixed(1)} (max ${finalState.appended_max})`);
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
