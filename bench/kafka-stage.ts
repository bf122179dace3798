// Benchmark of the exactly-once stage runner (runners/kafka/stage.ts) on the local broker:
// an identity stage, with and without a changelog-backed state store, against a baseline
// measured in the same run: a plain kafkajs consume-and-produce loop without transactions.
// The ratio is the price of exactly-once. Each variant runs in its own child process (own RSS).
//
//   node dist/bench/kafka-stage.js [--rows 200000] [--partitions 3] [--brokers 127.0.0.1:9092]
//
// Writes bench/results/kafka-stage.json.
import { spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as path from 'path';
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { StageWorker } from '../runners/kafka/stage';
import { ensureTopics, TopicNames } from '../runners/kafka/topics';
import { writeBenchResult } from './resultFile';

type Variant = 'plain-loop' | 'stage' | 'stage+store';
const VARIANTS: Variant[] = ['plain-loop', 'stage', 'stage+store'];

interface VariantResult {
  variant: Variant;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  transactions: number;
  peakRssMb: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

function kafkaOf(brokers: string[]): Kafka {
  return new Kafka({ brokers, clientId: 'bench-stage', logLevel: logLevel.NOTHING });
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 600_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function plainLoop(kafka: Kafka, input: string, output: string, rows: number, group: string): Promise<Omit<VariantResult, 'variant' | 'peakRssMb'>> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const consumer = kafka.consumer({ groupId: group });
  await consumer.connect();
  await consumer.subscribe({ topics: [input], fromBeginning: true });
  let count = 0;
  const t0 = process.hrtime.bigint();
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (let i = 0; i < batch.messages.length; i += 1000) {
        const messages = batch.messages.slice(i, i + 1000).map((m) => ({ key: m.key, value: m.value }));
        await producer.send({ topic: output, messages, acks: -1 });
      }
      count += batch.messages.length;
    },
  });
  await waitFor(() => count >= rows, 'the plain loop');
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await consumer.disconnect();
  await producer.disconnect();
  return { rows: count, seconds, rowsPerSecond: count / seconds, transactions: 0 };
}

async function stage(kafka: Kafka, names: TopicNames, input: string, output: string, rows: number, withStore: boolean): Promise<Omit<VariantResult, 'variant' | 'peakRssMb'>> {
  const worker = new StageWorker({
    kafka,
    names,
    stage: withStore ? 'bench-store' : 'bench',
    inputTopics: [input],
    stores: withStore ? ['counts'] : [],
    healthIntervalMs: 0,
    handleSignals: false,
    log: () => undefined,
    transform: (messages, ctx) => {
      const counts = withStore ? ctx.store<number>('counts') : null;
      return messages.map((m) => {
        if (counts) {
          const k = m.key!.toString();
          counts.set(k, (counts.get(k) ?? 0) + 1);
        }
        return { topic: output, key: m.key, value: m.value };
      });
    },
  });
  const t0 = process.hrtime.bigint();
  await worker.start();
  await waitFor(() => worker.snapshot().consumed >= rows, 'the stage');
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const s = await worker.stop();
  return { rows: s.consumed, seconds, rowsPerSecond: s.consumed / seconds, transactions: s.transactions };
}

async function child(variant: Variant, brokers: string[], prefix: string, rows: number): Promise<void> {
  const kafka = kafkaOf(brokers);
  const names = new TopicNames(prefix);
  const input = names.omop('bench_in');
  const output = names.omop(`bench_out_${VARIANTS.indexOf(variant)}`);
  const r =
    variant === 'plain-loop'
      ? await plainLoop(kafka, input, output, rows, names.group('plain'))
      : await stage(kafka, names, input, output, rows, variant === 'stage+store');
  const result: VariantResult = { variant, ...r, peakRssMb: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(JSON.stringify(result) + '\n');
}

async function main(): Promise<void> {
  const brokers = arg('--brokers', process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const rows = Number(arg('--rows', '200000'));
  const partitions = Number(arg('--partitions', '3'));
  const childVariant = arg('--child', '');
  if (childVariant) return child(childVariant as Variant, brokers, arg('--prefix', ''), rows);

  const prefix = `bench-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}.`;
  const names = new TopicNames(prefix);
  const kafka = kafkaOf(brokers);
  const admin = kafka.admin();
  await admin.connect();
  const topics = [names.omop('bench_in'), ...VARIANTS.map((_, i) => names.omop(`bench_out_${i}`)), names.dlq];
  await ensureTopics(admin, topics.map((topic) => ({ topic, numPartitions: partitions, configs: {} })));
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < rows; i += 2000) {
    const messages = [];
    for (let j = i; j < Math.min(rows, i + 2000); j++) {
      const personId = (j * 7919) % 50_000;
      messages.push({
        key: String(personId),
        value: JSON.stringify({ measurement_id: j, person_id: personId, measurement_concept_id: 3_000_000 + (j % 997), measurement_date: '2101-05-06', value_as_number: (j % 1000) / 10, unit_concept_id: 8876 }),
      });
    }
    await producer.send({ topic: names.omop('bench_in'), messages, acks: -1, compression: CompressionTypes.GZIP });
  }
  await producer.disconnect();

  const results: VariantResult[] = [];
  try {
    for (const variant of VARIANTS) {
      const r = spawnSync(process.execPath, [__filename, '--child', variant, '--prefix', prefix, '--rows', String(rows), '--brokers', brokers.join(',')], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        timeout: 600_000,
      });
      if (r.status !== 0) throw new Error(`${variant} failed (status ${r.status}, signal ${r.signal})`);
      results.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as VariantResult);
    }
  } finally {
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
  }

  const base = results[0];
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`\nKafka stage runner, ${fmt(rows)} rows, ${partitions} partitions, identity transform`);
  console.log('variant          rows/s   transactions   peak RSS MB   x plain loop');
  for (const r of results) {
    console.log(
      `${r.variant.padEnd(14)}${fmt(r.rowsPerSecond).padStart(9)}${String(r.transactions).padStart(15)}${r.peakRssMb.toFixed(0).padStart(14)}` +
        `${(r.rowsPerSecond / base.rowsPerSecond).toFixed(2).padStart(15)}`,
    );
  }
  const out = writeBenchResult('kafka-stage.json', {
    benchmark: 'kafka-stage',
    rows,
    partitions,
    baseline: base.variant,
    results: results.map((r) => ({ ...r, ratioToBaseline: r.rowsPerSecond / base.rowsPerSecond })),
  });
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
