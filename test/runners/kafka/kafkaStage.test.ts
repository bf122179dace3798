// The transactional stage against the real broker: a worker process SIGKILLed at several steps of
// a transaction and restarted loses and duplicates nothing in the read_committed output; its
// per-key state comes back from the changelog; a poison message is dead-lettered and the stage
// goes on; two workers in one group split the partitions; a stage fed from the same process does
// not stop as idle while its upstream stalls.
import { strict as assert } from 'assert';
import { execFileSync, spawn } from 'child_process';
import * as path from 'path';
import { Kafka } from 'kafkajs';
import { runStatusCommand } from '../../../runners/kafka/commands';
import { kafkaOptions } from '../../../runners/kafka/config';
import { DLQ_HEADERS } from '../../../runners/kafka/deadLetter';
import { consumerGroupLag } from '../../../runners/kafka/health';
import { OutputMessage, StageMessage, StageWorker } from '../../../runners/kafka/stage';
import { ensureTopics, TopicNames, TopicSpec } from '../../../runners/kafka/topics';
import { BROKERS, readAll, ReadMessage, testKafka, uniquePrefix } from '../../helpers/kafka';

const WORKER = path.join(__dirname, '..', '..', 'fixtures', 'identityCountWorker.js');

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runWorker(prefix: string, env: Record<string, string> = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER], {
      env: { ...process.env, KAFKA_BROKERS: BROKERS, MEDREP_TEST_PREFIX: prefix, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, 90_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`worker did not finish within 90 s; stderr: ${stderr}`));
      else resolve({ code, signal, stdout, stderr });
    });
  });
}

async function createTopics(kafka: Kafka, specs: TopicSpec[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, specs);
  } finally {
    await admin.disconnect();
  }
}

async function produce(kafka: Kafka, topic: string, messages: Array<{ key: string; value: string }>): Promise<void> {
  // Idempotent: a retried request must not write the test's input twice.
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({ topic, messages, acks: -1 });
  } finally {
    await producer.disconnect();
  }
}

const plain = (topic: string, partitions: number): TopicSpec => ({ topic, numPartitions: partitions, configs: {} });

/** Per key, the output in offset order: the counts must run 1, 2, 3, ... and the seqs ascend. */
function checkCounts(out: ReadMessage[], expectedPerKey: Map<string, number[]>): void {
  const byKey = new Map<string, Array<{ seq: number; count: number }>>();
  for (const m of out.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))) {
    const v = JSON.parse(m.value!);
    let list = byKey.get(m.key!);
    if (!list) byKey.set(m.key!, (list = []));
    list.push({ seq: v.seq, count: v.count });
  }
  assert.deepEqual([...byKey.keys()].sort(), [...expectedPerKey.keys()].sort());
  for (const [key, seqs] of expectedPerKey) {
    const got = byKey.get(key)!;
    assert.deepEqual(got.map((g) => g.seq), seqs, `key ${key}: every input exactly once, in order`);
    assert.deepEqual(got.map((g) => g.count), seqs.map((_, i) => i + 1), `key ${key}: state counted each input once`);
  }
}

/**
 * Fresh identity-stage topics (input, output, dead letters) with `count` messages {seq} keyed
 * `<keyPrefix><seq % keys>` already in the input; `expected` holds each key's seqs in order.
 */
async function identityRun(kafka: Kafka, count: number, partitions: number, keyPrefix: string, keys: number) {
  const prefix = uniquePrefix();
  const names = new TopicNames(prefix);
  const input = names.omop('identity_in');
  const output = names.omop('identity_out');
  await createTopics(kafka, [plain(input, partitions), plain(output, partitions), plain(names.dlq, 1)]);
  const expected = new Map<string, number[]>();
  const msgs = Array.from({ length: count }, (_, seq) => {
    const key = `${keyPrefix}${seq % keys}`;
    if (!expected.has(key)) expected.set(key, []);
    expected.get(key)!.push(seq);
    return { key, value: JSON.stringify({ seq }) };
  });
  await produce(kafka, input, msgs);
  return { prefix, names, input, output, expected };
}

describe('kafka transactional stage (real broker)', function () {
  this.timeout(180_000);
  const kafka = testKafka();

  it('survives SIGKILL at each step of a transaction with nothing lost or duplicated, and restores its state', async () => {
    const prefix = uniquePrefix();
    const names = new TopicNames(prefix);
    const input = names.omop('identity_in');
    const output = names.omop('identity_out');
    await createTopics(kafka, [plain(input, 3), plain(output, 3), plain(names.dlq, 1)]);

    const expected = new Map<string, number[]>();
    const batch = (from: number, to: number) => {
      const msgs: Array<{ key: string; value: string }> = [];
      for (let seq = from; seq < to; seq++) {
        const key = `k${seq % 17}`;
        msgs.push({ key, value: JSON.stringify({ seq }) });
        if (!expected.has(key)) expected.set(key, []);
        expected.get(key)!.push(seq);
      }
      return msgs;
    };
    const first = batch(0, 300);
    // A poison message in the middle of partition traffic: the stage dead-letters it and goes on.
    first.splice(150, 0, { key: 'k3', value: 'not json {' });
    await produce(kafka, input, first);

    for (const [phase, at] of [
      ['produced', 2],
      ['offsets-sent', 2],
      ['committed', 3],
      ['transformed', 1],
    ] as const) {
      const r = await runWorker(prefix, { MEDREP_KILL_PHASE: phase, MEDREP_KILL_AT: String(at), MEDREP_TXN_SIZE: '20' });
      assert.equal(r.signal, 'SIGKILL', `worker killed at ${phase} #${at}; stderr: ${r.stderr}`);
    }
    // SIGTERM while transaction 2 is in flight: it still commits, then the worker stops cleanly.
    const beforeTerm = (await readAll(kafka, output)).length;
    // One partition at a time, so that "transaction 2" is the only one in flight at the signal.
    const term = await runWorker(prefix, { MEDREP_TERM_AT: '2', MEDREP_TXN_SIZE: '20', MEDREP_LOG: '1', MEDREP_CONCURRENCY: '1' });
    assert.equal(term.code, 0, term.stderr);
    const termSummary = JSON.parse(term.stdout);
    assert.equal(termSummary.reason, 'signal');
    assert.equal(termSummary.aborted, 0);
    assert.equal(termSummary.transactions, 2, 'the transaction in flight finished, no new one began');
    assert.ok(termSummary.consumed > 0);
    assert.equal((await readAll(kafka, output)).length - beforeTerm, termSummary.produced, 'what it reported is committed');
    assert.match(term.stderr, /\[medrep identity\] rows in \d+ \(\d+\/s\) out \d+ .* messages consumed \d+ produced \d+, .* lag \d+ messages .*identity_in\[/, 'SIGUSR1 printed a health line');

    const done = await runWorker(prefix, { MEDREP_TXN_SIZE: '20' });
    assert.equal(done.code, 0, done.stderr);

    const committedOut = await readAll(kafka, output);
    assert.equal(committedOut.length, 300, 'read_committed output holds every input once');
    checkCounts(committedOut, expected);
    const rawOut = await readAll(kafka, output, true);
    assert.ok(rawOut.length > 300, 'the kills left aborted writes behind that read_committed hides');

    const dlq = await readAll(kafka, names.dlq);
    assert.equal(dlq.length, 1);
    assert.equal(dlq[0].value, 'not json {');
    assert.match(dlq[0].headers[DLQ_HEADERS.reason], /^transform-error: /);
    assert.match(dlq[0].headers[DLQ_HEADERS.source], new RegExp(`^${input.replace(/\./g, '\\.')}/\\d@\\d+$`));

    // Restart on new input: the counts go on from the state rebuilt from the changelog.
    await produce(kafka, input, batch(300, 340));
    const again = await runWorker(prefix, { MEDREP_TXN_SIZE: '20' });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).consumed, 40);
    const all = await readAll(kafka, output);
    assert.equal(all.length, 340);
    checkCounts(all, expected);

    const changelog = await readAll(kafka, names.changelog('identity', 'counts'));
    const latest = new Map<string, number>();
    for (const m of changelog) latest.set(m.key!, JSON.parse(m.value!));
    assert.deepEqual(new Map([...latest].sort()), new Map([...expected].map(([k, v]) => [k, v.length] as [string, number]).sort()));

    const admin = kafka.admin();
    await admin.connect();
    try {
      const lag = await consumerGroupLag(admin, names.group('identity'), [input]);
      assert.deepEqual(lag.map((l) => l.lag), [0n, 0n, 0n], 'the group committed every input offset');
    } finally {
      await admin.disconnect();
    }
    const status: string[] = [];
    assert.equal(await runStatusCommand({ kafka: kafkaOptions({ brokers: BROKERS, topicPrefix: prefix }, {}), groups: [] }, (l) => status.push(l)), 0n);
    assert.deepEqual(status, [`group ${names.group('identity')} Empty members=0 lag=0`, `  ${input}: p0 lag 0, p1 lag 0, p2 lag 0`]);
  });

  it('splits co-partitioned inputs between two workers of one group, and one takes over when the other leaves', async () => {
    const prefix = uniquePrefix();
    const names = new TopicNames(prefix);
    const inputA = names.omop('split_a');
    const inputB = names.omop('split_b');
    const output = names.omop('split_out');
    await createTopics(kafka, [plain(inputA, 4), plain(inputB, 4), plain(output, 4), plain(names.dlq, 1)]);
    const worker = (tag: string) =>
      new StageWorker({
        kafka: testKafka(`split-${tag}`),
        names,
        stage: 'split',
        inputTopics: [inputA, inputB],
        sessionTimeoutMs: 6000,
        rebalanceTimeoutMs: 10000,
        heartbeatIntervalMs: 300,
        healthIntervalMs: 0,
        handleSignals: false,
        log: () => undefined,
        transform: (messages, ctx) => messages.map((m) => ({ topic: output, key: m.key, value: `${ctx.topic}|${m.value}|${tag}` })),
      });
    const a = worker('a');
    const b = worker('b');
    await a.start();
    await b.start();
    const deadline = Date.now() + 60_000;
    while (a.health.assigned.length !== 2 || b.health.assigned.length !== 2) {
      assert.ok(Date.now() < deadline, `both workers got partitions (a ${a.health.assigned}, b ${b.health.assigned})`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual([...a.health.assigned, ...b.health.assigned].sort(), [0, 1, 2, 3], 'each partition has exactly one owner');
    for (const w of [a, b]) assert.deepEqual(w.assignment[inputA], w.assignment[inputB], 'partition N of both inputs goes to one worker');

    const msgs = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ key: `p${(from + i) % 23}`, value: String(from + i) }));
    await produce(kafka, inputA, msgs(0, 100));
    await produce(kafka, inputB, msgs(100, 200));
    const until = Date.now() + 60_000;
    while (a.snapshot().consumed + b.snapshot().consumed < 200) {
      assert.ok(Date.now() < until, 'the workers consumed all input');
      await new Promise((r) => setTimeout(r, 100));
    }
    const aFirst = a.snapshot().consumed;
    assert.ok(aFirst > 0 && b.snapshot().consumed > 0, 'both workers did part of the work');

    await b.stop();
    await produce(kafka, inputA, msgs(200, 250));
    await produce(kafka, inputB, msgs(250, 300));
    const until2 = Date.now() + 60_000;
    while (a.snapshot().consumed - aFirst < 100) {
      assert.ok(Date.now() < until2, 'the remaining worker took over all partitions');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(a.health.assigned, [0, 1, 2, 3]);
    await a.stop();

    const out = await readAll(kafka, output);
    const values = out.map((m) => Number(m.value!.split('|')[1])).sort((x, y) => x - y);
    assert.deepEqual(values, Array.from({ length: 300 }, (_, i) => i), 'every input exactly once across both workers');
    for (const m of out) {
      const [topic, value] = m.value!.split('|');
      const v = Number(value);
      assert.equal(topic, v < 100 || (v >= 200 && v < 250) ? inputA : inputB);
    }
  });

  it('hands per-key state over when a third worker joins mid-run: nothing lost, duplicated or miscounted', async () => {
    const { prefix, output, expected } = await identityRun(kafka, 900, 6, 'j', 29);

    const env = { MEDREP_TXN_SIZE: '5', MEDREP_SLOW_MS: '100', MEDREP_IDLE_MS: '3000' };
    const first = [runWorker(prefix, env), runWorker(prefix, env)];
    const until = Date.now() + 60_000;
    while ((await readAll(kafka, output)).length === 0) {
      assert.ok(Date.now() < until, 'the first workers started producing');
      await new Promise((r) => setTimeout(r, 200));
    }
    const third = await runWorker(prefix, env);
    const results = [...(await Promise.all(first)), third];
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.ok(JSON.parse(third.stdout).consumed > 0, 'the worker that joined took over partitions and did work');

    const out = await readAll(kafka, output);
    assert.equal(out.length, 900);
    checkCounts(out, expected);
  });

  it('lets a sink commit offsets only through what it has made durable, and re-reads the rest after a restart', async () => {
    const prefix = uniquePrefix();
    const names = new TopicNames(prefix);
    const input = names.omop('sink_in');
    const shards = names.omop('sink_shards');
    await createTopics(kafka, [plain(input, 2), plain(shards, 1), plain(names.dlq, 1)]);
    const SHARD = 10;
    // A sink that writes a "shard" (here: one output message) per 10 inputs of a partition and
    // holds the remainder in memory, which a restart loses, as a crash would.
    const sink = () => {
      const held = new Map<number, StageMessage[]>();
      return new StageWorker({
        kafka: testKafka('sink'),
        names,
        stage: 'sink',
        inputTopics: [input],
        maxMessagesPerTransaction: 7,
        exitWhenIdleMs: 1500,
        sessionTimeoutMs: 6000,
        healthIntervalMs: 0,
        handleSignals: false,
        log: () => undefined,
        transform: (messages, ctx) => {
          const buf = held.get(ctx.partition) ?? [];
          held.set(ctx.partition, buf);
          buf.push(...messages);
          const out: OutputMessage[] = [];
          while (buf.length >= SHARD) {
            const shard = buf.splice(0, SHARD);
            out.push({ topic: shards, key: `${ctx.partition}`, value: JSON.stringify(shard.map((m) => Number(m.value!.toString()))) });
          }
          ctx.commitThrough(buf.length > 0 ? buf[0].offset : (BigInt(messages[messages.length - 1].offset) + 1n).toString());
          return out;
        },
      });
    };
    const runSink = async () => {
      const w = sink();
      await w.start();
      return w.done;
    };
    await produce(kafka, input, Array.from({ length: 95 }, (_, i) => ({ key: `s${i % 13}`, value: String(i) })));
    await runSink();
    await produce(kafka, input, Array.from({ length: 40 }, (_, i) => ({ key: `s${i % 13}`, value: String(95 + i) })));
    await runSink();

    const inputs = await readAll(kafka, input);
    const written = (await readAll(kafka, shards)).map((m) => ({ partition: Number(m.key), seqs: JSON.parse(m.value!) as number[] }));
    const admin = kafka.admin();
    await admin.connect();
    const committed = await admin.fetchOffsets({ groupId: names.group('sink'), topics: [input] });
    await admin.disconnect();
    for (const p of [0, 1]) {
      const all = inputs.filter((m) => m.partition === p).sort((a, b) => Number(a.offset) - Number(b.offset));
      const durable = Math.floor(all.length / SHARD) * SHARD;
      const got = written.filter((w) => w.partition === p).flatMap((w) => w.seqs);
      assert.deepEqual(got, all.slice(0, durable).map((m) => Number(m.value)), `partition ${p}: every shard once, in offset order`);
      const offset = committed[0].partitions.find((x) => x.partition === p)!.offset;
      assert.equal(offset, all[durable]?.offset ?? String(Number(all[all.length - 1].offset) + 1), `partition ${p}: committed through the last durable input`);
    }
  });

  it('keeps a stage fed from the same process running while its upstream stalls, and stops it after the upstream', async () => {
    const prefix = uniquePrefix();
    const names = new TopicNames(prefix);
    const input = names.omop('chain_in');
    const middle = names.omop('chain_mid');
    const output = names.omop('chain_out');
    await createTopics(kafka, [plain(input, 2), plain(middle, 2), plain(output, 2), plain(names.dlq, 1)]);
    await produce(kafka, input, Array.from({ length: 40 }, (_, i) => ({ key: `c${i % 7}`, value: String(i) })));
    const common = { names, exitWhenIdleMs: 1000, maxMessagesPerTransaction: 5, sessionTimeoutMs: 6000, healthIntervalMs: 0, handleSignals: false, log: () => undefined };
    let chunks = 0;
    const upstream = new StageWorker({
      ...common, kafka: testKafka('chain-up'), stage: 'up', inputTopics: [input],
      transform: async (messages) => {
        // Its second chunk takes four idle periods, as a rejoin after a broker restart can; its
        // downstream has drained everything so far and must not take that for the end.
        if (++chunks === 2) await new Promise((r) => setTimeout(r, 4000));
        return messages.map((m) => ({ topic: middle, key: m.key, value: m.value }));
      },
    });
    const downstream = new StageWorker({
      ...common, kafka: testKafka('chain-down'), stage: 'down', inputTopics: [middle], idleAfter: upstream.stopBegan,
      transform: (messages) => messages.map((m) => ({ topic: output, key: m.key, value: m.value })),
    });
    await upstream.start();
    await downstream.start();
    const [up, down] = await Promise.all([upstream.done, downstream.done]);
    assert.deepEqual([up.reason, up.consumed, down.reason, down.consumed], ['idle', 40, 'idle', 40], 'both stopped idle after all 40 messages');
    const values = (await readAll(kafka, output)).map((m) => Number(m.value)).sort((a, b) => a - b);
    assert.deepEqual(values, Array.from({ length: 40 }, (_, i) => i));
  });

  it('resumes by itself when the broker restarts in the middle of a run', async function () {
    // Restarts the broker at KAFKA_BROKERS with scripts/kafka.sh (as .ci/run and developers start it).
    const port = BROKERS.split(':').pop()!;
    const { prefix, output, expected } = await identityRun(kafka, 300, 3, 'r', 11);

    const worker = runWorker(prefix, { MEDREP_TXN_SIZE: '5', MEDREP_SLOW_MS: '200', MEDREP_IDLE_MS: '3000' });
    const until = Date.now() + 60_000;
    while ((await readAll(kafka, output)).length === 0) {
      assert.ok(Date.now() < until, 'the worker started producing');
      await new Promise((r) => setTimeout(r, 200));
    }
    const script = path.join(__dirname, '..', '..', '..', '..', 'scripts', 'kafka.sh');
    const restartBegan = Date.now();
    execFileSync(script, ['restart'], { env: { ...process.env, KAFKA_PORT: port }, stdio: 'ignore' });
    const restartEnded = Date.now();
    const r = await worker;
    assert.equal(r.code, 0, r.stderr);

    const out = await readAll(kafka, output);
    assert.equal(out.length, 300);
    checkCounts(out, expected);
    assert.ok(out.some((m) => m.timestamp < restartBegan) && out.some((m) => m.timestamp > restartEnded), 'the worker was writing before and after the restart');
  });
});
