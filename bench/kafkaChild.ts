// One job of the Kafka benchmark in its own process (own peak RSS):
//   node dist/bench/kafkaChild.js produce <omop> <brokers> <prefix> <partitions> <rows per message>
//   node dist/bench/kafkaChild.js stream <omop> <brokers> <prefix> <artifacts> <out> [idle ms, default 3000]
// Prints one JSON line. `activeSeconds` of stream ends at its last committed transaction (the
// idle wait that lets it exit is not work).
import { Kafka, logLevel } from 'kafkajs';
import { kafkaJsConfig, kafkaOptions } from '../runners/kafka/config';
import { produceOmop } from '../runners/kafka/omopLoad';
import { runStream } from '../runners/kafka/streamRunner';
import { silentLogger } from '../common/progress';

async function main(): Promise<void> {
  const [what, omop, brokers, prefix, a, b, idle] = process.argv.slice(2);
  const kafka = kafkaOptions({ brokers, topicPrefix: prefix, clientId: `bench-${what}` }, {});
  const client = new Kafka({ ...kafkaJsConfig(kafka), logLevel: logLevel.NOTHING });
  const started = process.hrtime.bigint();
  const secs = () => Number(process.hrtime.bigint() - started) / 1e9;
  let result: Record<string, unknown>;
  if (what === 'produce') {
    const r = await produceOmop({ omop, kafka, client, partitions: Number(a), rowsPerMessage: b === undefined ? undefined : Number(b), log: silentLogger });
    result = { seconds: secs(), rows: r.rows, deadLettered: r.deadLettered };
  } else if (what === 'stream') {
    let lastCommit = 0;
    const r = await runStream({
      kafka, client, out: b, vocab: omop, artifacts: a, exitWhenIdleMs: idle === undefined ? 3000 : Number(idle), healthIntervalMs: 0, handleSignals: false, force: true,
      log: silentLogger, onPhase: (phase) => {
        if (phase === 'committed') lastCommit = secs();
      },
    });
    result = { seconds: secs(), activeSeconds: lastCommit, shards: r.shards, rows: r.rows };
  } else throw new Error(`unknown job ${what}`);
  process.stdout.write(JSON.stringify({ job: what, ...result, maxRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
