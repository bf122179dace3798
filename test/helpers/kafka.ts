// Shared helpers of the Kafka tests. They run against the real broker at KAFKA_BROKERS (default
// 127.0.0.1:9092; .ci/run starts one with scripts/kafka.sh) and give every run its own topic
// prefix so reruns never see each other's data.
import { randomBytes } from 'crypto';
import * as path from 'path';
import { spawn } from 'child_process';
import { Kafka, KafkaMessage, logLevel } from 'kafkajs';
import { kafkaJsConfig, kafkaOptions } from '../../runners/kafka/config';
import { readToEnd } from '../../runners/kafka/readToEnd';

export const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';

export function testKafka(clientId = 'medrep-test'): Kafka {
  const opts = kafkaOptions({ brokers: BROKERS, clientId }, {});
  return new Kafka({ ...kafkaJsConfig(opts), logLevel: logLevel.NOTHING });
}

/** A prefix unique to this test run, e.g. `t1795733-a1b2c3.` */
export function uniquePrefix(): string {
  return `t${Date.now().toString(36)}-${randomBytes(3).toString('hex')}.`;
}

export interface ReadMessage {
  partition: number;
  offset: string;
  timestamp: number;
  key: string | null;
  value: string | null;
  /** The value's bytes (stream topics carry Arrow record batches, not text). */
  bytes: Buffer | null;
  headers: Record<string, string>;
}

export async function readAll(kafka: Kafka, topic: string, readUncommitted = false): Promise<ReadMessage[]> {
  const out: ReadMessage[] = [];
  await readToEnd(kafka, topic, { readUncommitted, timeoutMs: 60_000 }, (partition, m: KafkaMessage) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.headers ?? {})) if (v !== undefined) headers[k] = v.toString();
    out.push({ partition, offset: m.offset, timestamp: Number(m.timestamp), key: m.key?.toString() ?? null, value: m.value?.toString() ?? null, bytes: m.value, headers });
  });
  return out;
}

/** The test stream worker (test/fixtures/streamWorker.ts), configured by MEDREP_* variables. */
const STREAM_WORKER = path.join(__dirname, '..', 'fixtures', 'streamWorker.js');

export interface StreamWorkerRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stdout: string;
}

/** Runs the stream worker as its own process until it exits (SIGKILLed after `timeoutMs`). */
export function runStreamWorker(env: Record<string, string>, timeoutMs = 120_000): Promise<StreamWorkerRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [STREAM_WORKER], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => (stderr += d.toString()));
    child.stdout.on('data', (d) => (stdout += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, stdout });
    });
  });
}
