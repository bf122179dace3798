// Micro-benchmark of Kafka clients for medrep's produce and consume paths: kafkajs (the client
// the pipeline uses) against @platformatic/kafka (a maintained pure-JavaScript client), on the
// same rows and the same local broker. Each client runs in its own child process so its peak RSS
// is its own. @confluentinc/kafka-javascript (librdkafka) was tried first: its install downloads
// prebuilt binaries and build dependencies from outside the package registry, which fails here.
//
//   node dist/bench/kafka-clients.js [--rows 200000] [--rounds 2] [--brokers 127.0.0.1:9092]
//
// Prints rows/s for produce and consume, peak RSS and the ratio to kafkajs, and writes
// bench/results/kafka-clients.json.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Kafka, logLevel } from 'kafkajs';
import { randomBytes } from 'crypto';
import { writeBenchResult } from './resultFile';

type ClientName = 'kafkajs' | '@platformatic/kafka';
const CLIENTS: ClientName[] = ['kafkajs', '@platformatic/kafka'];
const PARTITIONS = 3;
const BATCH = 1000;
const IN_FLIGHT = 4;

interface ClientResult {
  client: ClientName;
  version: string;
  rows: number;
  produceSeconds: number;
  produceRowsPerSecond: number;
  consumeSeconds: number;
  consumeRowsPerSecond: number;
  /** Time from starting the consumer to its first message (group join, metadata). */
  consumeStartSeconds: number;
  peakRssMb: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

/** The same measurement-like rows for every client (about 170 bytes of JSON each). */
function row(i: number): { key: string; value: string } {
  const personId = (i * 7919) % 50_000;
  return {
    key: String(personId),
    value: JSON.stringify({
      measurement_id: i,
      person_id: personId,
      measurement_concept_id: 3_000_000 + (i % 997),
      measurement_date: '2101-05-06',
      measurement_datetime: '2101-05-06 10:30:00',
      value_as_number: (i % 1000) / 10,
      unit_concept_id: 8876,
      visit_occurrence_id: i >> 3,
    }),
  };
}

function packageVersion(name: string): string {
  const pkg = path.join(__dirname, '..', '..', 'node_modules', name, 'package.json');
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}

async function pipelined(total: number, send: (from: number, to: number) => Promise<unknown>): Promise<void> {
  const inFlight = new Set<Promise<unknown>>();
  for (let from = 0; from < total; from += BATCH) {
    const p: Promise<unknown> = send(from, Math.min(total, from + BATCH)).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

async function benchKafkajs(brokers: string[], topic: string, rows: number): Promise<Omit<ClientResult, 'peakRssMb' | 'version' | 'client'>> {
  const kafka = new Kafka({ brokers, clientId: 'bench-kafkajs', logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const t0 = process.hrtime.bigint();
  await pipelined(rows, (from, to) => {
    const messages = [];
    for (let i = from; i < to; i++) messages.push(row(i));
    return producer.send({ topic, messages, acks: -1 });
  });
  const produceSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}.g`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let count = 0;
  let bytes = 0;
  let first = 0n;
  const c0 = process.hrtime.bigint();
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      if (first === 0n) first = process.hrtime.bigint();
      for (const m of batch.messages) bytes += m.value?.length ?? 0;
      count += batch.messages.length;
      if (count >= rows) finish();
    },
  });
  await done;
  const end = process.hrtime.bigint();
  await consumer.disconnect();
  if (bytes === 0) throw new Error('kafkajs consumed no bytes');
  return {
    rows,
    produceSeconds,
    produceRowsPerSecond: rows / produceSeconds,
    consumeSeconds: Number(end - first) / 1e9,
    consumeRowsPerSecond: rows / (Number(end - first) / 1e9),
    consumeStartSeconds: Number(first - c0) / 1e9,
  };
}

// The package is ESM only; keep TypeScript (CommonJS output) from turning import() into require().
const importEsm = new Function('m', 'return import(m)') as (m: string) => Promise<any>; // eslint-disable-line

async function benchPlatformatic(brokers: string[], topic: string, rows: number): Promise<Omit<ClientResult, 'peakRssMb' | 'version' | 'client'>> {
  const pk = await importEsm('@platformatic/kafka');
  const producer = new pk.Producer({
    clientId: 'bench-platformatic',
    bootstrapBrokers: brokers,
    serializers: pk.stringSerializers,
    idempotent: false,
    autocreateTopics: false,
  });
  const t0 = process.hrtime.bigint();
  await pipelined(rows, (from, to) => {
    const messages = [];
    for (let i = from; i < to; i++) messages.push({ topic, ...row(i) });
    return producer.send({ messages, acks: pk.ProduceAcks.ALL });
  });
  const produceSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await producer.close();

  const consumer = new pk.Consumer({
    groupId: `${topic}.g`,
    clientId: 'bench-platformatic',
    bootstrapBrokers: brokers,
    deserializers: pk.stringDeserializers,
    maxWaitTime: 100,
  });
  const c0 = process.hrtime.bigint();
  const stream = await consumer.consume({ topics: [topic], mode: pk.MessagesStreamModes.EARLIEST, autocommit: false });
  let count = 0;
  let bytes = 0;
  let first = 0n;
  // The 'data' event is the library's fastest way to receive (no promise per message).
  await new Promise<void>((resolve, reject) => {
    stream.on('error', reject);
    stream.on('data', (m: { value: string }) => {
      if (first === 0n) first = process.hrtime.bigint();
      bytes += m.value.length;
      if (++count === rows) resolve();
    });
  });
  const end = process.hrtime.bigint();
  await consumer.close(true);
  if (bytes === 0) throw new Error('@platformatic/kafka consumed no bytes');
  return {
    rows,
    produceSeconds,
    produceRowsPerSecond: rows / produceSeconds,
    consumeSeconds: Number(end - first) / 1e9,
    consumeRowsPerSecond: rows / (Number(end - first) / 1e9),
    consumeStartSeconds: Number(first - c0) / 1e9,
  };
}

async function child(client: ClientName, brokers: string[], topic: string, rows: number): Promise<void> {
  const r = client === 'kafkajs' ? await benchKafkajs(brokers, topic, rows) : await benchPlatformatic(brokers, topic, rows);
  const result: ClientResult = { client, version: packageVersion(client), ...r, peakRssMb: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(JSON.stringify(result) + '\n');
}

async function main(): Promise<void> {
  const brokers = arg('--brokers', process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const rows = Number(arg('--rows', '200000'));
  const childClient = arg('--child', '');
  if (childClient) return child(childClient as ClientName, brokers, arg('--topic', ''), rows);

  const kafka = new Kafka({ brokers, clientId: 'bench-admin', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const prefix = `bench-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
  const rounds = Number(arg('--rounds', '2'));
  const runs: ClientResult[] = [];
  try {
    // ABBA order: the machine's load drifts, so neither client always goes first.
    for (let round = 0; round < rounds; round++) {
     for (const client of round % 2 === 0 ? CLIENTS : [...CLIENTS].reverse()) {
      const topic = `${prefix}.r${round}.${client.replace(/[^a-z]/g, '')}`;
      await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: -1 }], waitForLeaders: true });
      const r = spawnSync(process.execPath, [__filename, '--child', client, '--topic', topic, '--rows', String(rows), '--brokers', brokers.join(',')], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        timeout: 300_000,
      });
      if (r.status !== 0) throw new Error(`${client} run failed (status ${r.status}, signal ${r.signal})`);
      runs.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as ClientResult);
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
     }
    }
  } finally {
    await admin.disconnect();
  }
  // Per client: the best produce and consume rate over the rounds, the highest peak RSS.
  const results: ClientResult[] = CLIENTS.map((client) => {
    const mine = runs.filter((r) => r.client === client);
    const bestProduce = mine.reduce((a, b) => (b.produceRowsPerSecond > a.produceRowsPerSecond ? b : a));
    const bestConsume = mine.reduce((a, b) => (b.consumeRowsPerSecond > a.consumeRowsPerSecond ? b : a));
    return {
      ...bestProduce,
      consumeSeconds: bestConsume.consumeSeconds,
      consumeRowsPerSecond: bestConsume.consumeRowsPerSecond,
      consumeStartSeconds: bestConsume.consumeStartSeconds,
      peakRssMb: Math.max(...mine.map((r) => r.peakRssMb)),
    };
  });

  const base = results[0];
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`\nKafka clients, best of ${rounds} rounds (ABBA), ${fmt(rows)} rows of ~${row(1).value.length} bytes, ${PARTITIONS} partitions, batches of ${BATCH}, ${IN_FLIGHT} in flight, acks=all, no compression`);
  console.log('client                      produce rows/s   consume rows/s   peak RSS MB   produce x   consume x');
  for (const r of results) {
    console.log(
      `${(r.client + ' ' + r.version).padEnd(28)}${fmt(r.produceRowsPerSecond).padStart(14)}${fmt(r.consumeRowsPerSecond).padStart(17)}` +
        `${r.peakRssMb.toFixed(0).padStart(14)}${(r.produceRowsPerSecond / base.produceRowsPerSecond).toFixed(2).padStart(12)}` +
        `${(r.consumeRowsPerSecond / base.consumeRowsPerSecond).toFixed(2).padStart(12)}`,
    );
  }
  const out = writeBenchResult('kafka-clients.json', {
    benchmark: 'kafka-clients',
    rows,
    partitions: PARTITIONS,
    batch: BATCH,
    inFlight: IN_FLIGHT,
    rounds,
    baseline: base.client,
    runs,
    results: results.map((r) => ({
      ...r,
      produceRatioToBaseline: r.produceRowsPerSecond / base.produceRowsPerSecond,
      consumeRatioToBaseline: r.consumeRowsPerSecond / base.consumeRowsPerSecond,
    })),
    notTried: {
      '@confluentinc/kafka-javascript':
        'npm install fails here: its install step downloads librdkafka prebuilt binaries and, for the source build, zlib/OpenSSL/zstd tarballs from outside the npm registry',
    },
  });
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
