// How long `medrep stream` takes to go on after its broker restarts: a synthetic load is produced,
// the stream (all stages, in this process, with the client settings of runners/kafka/config.ts)
// starts on it, and after a few committed transactions the broker is restarted with
// `scripts/kafka.sh restart`. It prints the seconds from the broker being ready again to the
// first committed transaction of each stage after it (the resume time), the whole gap without
// commits, and checks that the stream then finishes with the local runner's shard rows.
//
//   KAFKA_PORT=29414 scripts/kafka.sh start     # a broker of your own: this one is restarted
//   node dist/bench/kafkaRestart.js --brokers 127.0.0.1:29414 [--rows 300000] [--partitions 3] [--keep DIR]
//
// Writes bench/results/kafka-restart.json with the load average at the start and the end.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka } from 'kafkajs';
import { kafkaJsConfig, kafkaOptions } from '../runners/kafka/config';
import { produceOmop } from '../runners/kafka/omopLoad';
import { runStream } from '../runners/kafka/streamRunner';
import { runLocal } from '../runners/local/localRunner';
import { generateSynthetic, personsForRows } from '../synth';
import { silentLogger, Logger } from '../common/progress';
import { writeBenchResult } from './resultFile';
import { shardRows } from './shardRows';

function arg(name: string, fallback: string | null): string {
  const i = process.argv.indexOf(name);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1];
  if (fallback === null) throw new Error(`${name} is required`);
  return fallback;
}

const KAFKA_SH = path.join(__dirname, '..', '..', 'scripts', 'kafka.sh');

function kafkaScript(command: string, port: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(KAFKA_SH, [command], { env: { ...process.env, KAFKA_PORT: port } }, (e, _out, err) => (e ? reject(new Error(`kafka.sh ${command}: ${err || e.message}`)) : resolve()));
  });
}

/** The stage that consumes a topic (name without prefix). */
const stageOf = (topic: string) => (topic.startsWith('omop.') ? 'canonicalize' : topic === 'medrep.canonical' ? 'trajectory' : 'sink');

async function main(): Promise<void> {
  // Restarting a broker others use would break their runs: the broker must be named.
  const brokers = arg('--brokers', null);
  const port = brokers.split(':').pop()!;
  const rows = Number(arg('--rows', '300000'));
  const partitions = Number(arg('--partitions', '3'));
  const dir = arg('--keep', fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-bench-restart-')));
  const loadAtStart = os.loadavg();
  const omop = path.join(dir, 'omop');
  const persons = personsForRows(rows);
  if (!fs.existsSync(path.join(omop, 'person.parquet'))) await generateSynthetic({ persons, seed: 42, out: omop, format: 'parquet', site: 'A' });
  const local = await runLocal({ omop, out: path.join(dir, 'local'), log: silentLogger, meds: false, force: true });

  const prefix = `restart${Date.now().toString(36)}-${randomBytes(2).toString('hex')}.`;
  const kafka = kafkaOptions({ brokers, topicPrefix: prefix, clientId: 'bench-restart' }, {});
  // The client lines (reconnects, retries) with their time: what the stream did while the broker was away.
  const lines: { t: number; line: string }[] = [];
  const note = (m: string) => {
    lines.push({ t: Date.now(), line: m });
    // The stream's own lines (not the client's reconnect churn) as they come.
    if (!m.startsWith('kafka ')) console.error(`${new Date().toISOString()} ${m}`);
  };
  const log: Logger = { info: note, warn: note };
  const client = new Kafka(kafkaJsConfig(kafka, log));
  console.error(`${new Date().toISOString()} produce ${rows} rows ...`);
  await produceOmop({ omop, kafka, client, partitions, log: silentLogger });

  const commits: { t: number; stage: string }[] = [];
  let restart: Promise<{ began: number; ready: number }> | null = null;
  console.error(`${new Date().toISOString()} stream; the broker restarts after 5 committed transactions ...`);
  const streamStarted = Date.now();
  const stream = await runStream({
    kafka, client, out: path.join(dir, 'stream'), vocab: omop, artifacts: path.join(local.out, 'artifacts'), exitWhenIdleMs: 5000,
    healthIntervalMs: 0, handleSignals: false, log, meds: false, force: true, maxMessagesPerTransaction: 500,
    onPhase: (phase, info) => {
      if (phase !== 'committed') return;
      commits.push({ t: Date.now(), stage: stageOf(info.topic.slice(prefix.length)) });
      if (commits.length === 5 && restart === null) {
        const began = Date.now();
        restart = kafkaScript('restart', port).then(() => ({ began, ready: Date.now() }));
      }
    },
  });
  if (restart === null) throw new Error('the stream finished before its fifth commit: give more --rows');
  const { began, ready } = await (restart as Promise<{ began: number; ready: number }>);
  const before = commits.filter((c) => c.t < began);
  const after = commits.filter((c) => c.t >= ready);
  if (after.length === 0) throw new Error('no transaction committed after the restart: give more --rows');
  const firstAfter: Record<string, number> = {};
  for (const c of after) firstAfter[c.stage] ??= (c.t - ready) / 1000;
  const rowsOnDisk = { local: await shardRows(local.out), stream: await shardRows(stream.out) };
  if (JSON.stringify(rowsOnDisk.local) !== JSON.stringify(rowsOnDisk.stream)) {
    throw new Error(`after the restart the stream's shards hold ${JSON.stringify(rowsOnDisk.stream)} rows, the local runner's ${JSON.stringify(rowsOnDisk.local)}`);
  }
  const config = kafkaJsConfig(kafka, silentLogger);
  const relaunches = lines.filter((l) => /restarting the consumer/.test(l.line)).length;
  const result = {
    benchmark: 'kafka-broker-restart',
    machine: { cpus: os.cpus().length, load_average_start: loadAtStart, load_average_end: os.loadavg() },
    rows_in: local.rowsInTotal,
    partitions,
    client: { retry: config.retry, connectionTimeout: config.connectionTimeout ?? null, requestTimeout: config.requestTimeout ?? null },
    broker_restart_seconds: (ready - began) / 1000,
    resume_seconds: Math.min(...Object.values(firstAfter)),
    first_commit_after_ready_seconds: firstAfter,
    gap_without_commits_seconds: (after[0].t - before[before.length - 1].t) / 1000,
    consumer_relaunches: relaunches,
    stream_seconds: (Date.now() - streamStarted) / 1000,
    commits_before_by_stage: Object.fromEntries(['canonicalize', 'trajectory', 'sink'].map((st) => [st, before.filter((c) => c.stage === st).length])),
    commits: { before: before.length, during: commits.length - before.length - after.length, after: after.length },
    shard_rows_on_disk: rowsOnDisk,
    // What the clients logged from the restart to the last stage's first commit after it (seconds after `ready`).
    client_lines: lines.filter((l) => l.t >= began && l.t <= after[after.length - 1].t && l.t <= ready + 1000 * Math.max(...Object.values(firstAfter)))
      .map((l) => `${((l.t - ready) / 1000).toFixed(1)} ${l.line}`),
  };
  const file = writeBenchResult(arg('--result', 'kafka-restart.json'), result);
  console.log(`broker restart          ${result.broker_restart_seconds.toFixed(1)} s (kafka.sh restart: stop, then start until ready)`);
  console.log(`resume after ready      ${result.resume_seconds.toFixed(1)} s to the first commit; per stage ${JSON.stringify(firstAfter)}`);
  console.log(`gap without commits     ${result.gap_without_commits_seconds.toFixed(1)} s; consumer relaunches ${relaunches}`);
  console.log(`shard rows on disk      ${JSON.stringify(rowsOnDisk.stream)} (local ${JSON.stringify(rowsOnDisk.local)})`);
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
