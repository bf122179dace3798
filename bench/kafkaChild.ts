// One job of the Kafka benchmark in its own process (own peak RSS):
//   node dist/bench/kafkaChild.js produce <omop> <brokers> <prefix> <partitions> <rows per message> [json|arrow] [lz4|gzip|none]
//   node dist/bench/kafkaChild.js stream <omop> <brokers> <prefix> <artifacts> <out> [idle ms, default 3000] [stages, default all: canonicalize,trajectory,sink]
// Prints one JSON line. `activeSeconds` of stream ends at its last committed transaction (the
// idle wait that lets it exit is not work); `lastCommitEpochMs` is that moment on the wall clock
// (several worker processes: the last of theirs ends the run). `cpuSeconds`: the process's user +
// system CPU (startup included), `cpuSecondsAtLastCommit` the same up to the last commit (startup
// included, the idle wait and the manifest and rejects written at the end not).
// MEDREP_BENCH_LOG=1: the stages' lines (partitions assigned, idle decisions) to stderr, each with the process id.
import { Kafka, logLevel } from 'kafkajs';
import { kafkaJsConfig, kafkaOptions } from '../runners/kafka/config';
import { produceOmop } from '../runners/kafka/omopLoad';
import { runStream, STREAM_STAGES, StreamStage } from '../runners/kafka/streamRunner';
import { InputCompression, OmopMessageFormat } from '../runners/kafka/omopProducer';
import { silentLogger } from '../common/progress';

const stageLog = { info: (l: string) => process.stderr.write(`[${process.pid}] ${l}\n`), warn: (l: string) => process.stderr.write(`[${process.pid}] ${l}\n`) };

async function main(): Promise<void> {
  const [what, omop, brokers, prefix, a, b, idle, stageList] = process.argv.slice(2);
  const kafka = kafkaOptions({ brokers, topicPrefix: prefix, clientId: `bench-${what}` }, {});
  const client = new Kafka({ ...kafkaJsConfig(kafka), logLevel: logLevel.NOTHING });
  const started = process.hrtime.bigint();
  const secs = () => Number(process.hrtime.bigint() - started) / 1e9;
  let result: Record<string, unknown>;
  if (what === 'produce') {
    const messageFormat = (idle ?? 'json') as OmopMessageFormat;
    const compression = (stageList ?? 'lz4') as InputCompression;
    const r = await produceOmop({ omop, kafka, client, partitions: Number(a), rowsPerMessage: b === undefined ? undefined : Number(b), messageFormat, compression, log: silentLogger });
    result = { seconds: secs(), rows: r.rows, deadLettered: r.deadLettered };
  } else if (what === 'stream') {
    let lastCommit = 0;
    let lastCommitEpochMs = 0;
    let cpuAtLastCommit = 0;
    const stages = stageList === undefined ? [...STREAM_STAGES] : (stageList.split(',') as StreamStage[]);
    const r = await runStream({
      kafka, client, out: b, vocab: omop, artifacts: a, exitWhenIdleMs: idle === undefined ? 3000 : Number(idle), healthIntervalMs: 0, handleSignals: false, force: true,
      // As the local runner it is compared with (local-no-meds); several workers would also race on one meds/ folder.
      meds: false,
      stages, log: process.env.MEDREP_BENCH_LOG === '1' ? stageLog : silentLogger, onPhase: (phase) => {
        if (phase === 'committed') {
          lastCommit = secs();
          lastCommitEpochMs = Date.now();
          const c = process.cpuUsage();
          cpuAtLastCommit = (c.user + c.system) / 1e6;
        }
      },
    });
    const consumed = Object.fromEntries(Object.entries(r.stages).map(([k, v]) => [k, v.consumed]));
    const rowsConsumed = Object.fromEntries(Object.entries(r.stages).map(([k, v]) => [k, v.rowsConsumed]));
    result = { seconds: secs(), activeSeconds: lastCommit, lastCommitEpochMs, cpuSecondsAtLastCommit: cpuAtLastCommit, shards: r.shards, rows: r.rows, consumed, rowsConsumed };
  } else throw new Error(`unknown job ${what}`);
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ job: what, ...result, cpuSeconds: (cpu.user + cpu.system) / 1e6, maxRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
