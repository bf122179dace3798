// The full Kafka runner (canonicalize -> trajectory -> sink, `medrep stream` worker processes)
// under faults against the real broker at KAFKA_BROKERS: a broker restart in the middle of a run,
// and a consumer group whose members change mid-run (a third worker joins, one leaves with
// SIGTERM, one dies with SIGKILL). Each time the final shards hold exactly the rows of `runLocal`
// (DuckDB EXCEPT ALL both ways), so nothing was lost or duplicated.
//
// The load's end-of-load markers are sent only after the faults: until then the trajectory stage
// can only gather per-person state (no sequences or samples leave it), so the state handed over
// through the changelog and everything downstream of it is made after the faults by construction.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { Kafka } from 'kafkajs';
import { generateSynthetic } from '../pipelines/synth';
import { runLocal } from '../pipelines/localRunner';
import { silentLogger } from '../pipelines/progress';
import { consumerGroupLag } from '../pipelines/kafka/health';
import { produceOmop, sendEndOfLoad } from '../pipelines/kafka/omopLoad';
import { LOAD_TABLES } from '../pipelines/kafka/streamStages';
import { runStream } from '../pipelines/kafka/streamRunner';
import { streamTopic } from '../pipelines/kafka/streamTopics';
import { TopicNames } from '../pipelines/kafka/topics';
import { BROKERS, readAll, testKafka, uniquePrefix } from './kafkaTestUtil';
import { tempDir } from './helpers';
import { assertSameRows, kafkaOpts } from './helpers/streamCompare';

const WORKER = path.join(__dirname, 'fixtures', 'streamWorker.js');
const KAFKA_SH = path.join(__dirname, '..', '..', 'scripts', 'kafka.sh');
/** Enough partitions for three workers to own two each. */
const PARTITIONS = 6;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A `medrep stream` worker process (all stages, no manifest) whose log lines the test watches. */
class StreamProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  stderr = '';
  stdout = '';
  private exit: Exit | null = null;

  constructor(
    readonly name: string,
    env: Record<string, string>,
  ) {
    // MEDREP_LOG: the fixture prints a line per committed transaction and each stage's health line when it stops.
    this.child = spawn(process.execPath, [WORKER], { env: { ...process.env, ...env, MEDREP_LOG: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d) => (this.stderr += d.toString()));
    this.child.stdout!.on('data', (d) => (this.stdout += d.toString()));
    this.exited = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('exit', (code, signal) => resolve((this.exit = { code, signal })));
    });
  }

  /** Input partitions of the canonicalize stage (the `omop.*` topics) in each committed transaction, in order. */
  canonicalizeCommits(names: TopicNames): number[] {
    const re = new RegExp(`^txn \\d+ ${escape(names.omop(''))}\\w+/(\\d+) `, 'gm');
    return [...this.stderr.matchAll(re)].map((m) => Number(m[1]));
  }

  /** Each stage's health line at its end: why it stopped and the partitions it owned then. */
  stops(): Array<{ stage: string; reason: string; partitions: number[] }> {
    return [...this.stderr.matchAll(/^\[medrep (\w+)\] .* partitions \[([\d,]*)\] .* stopped \((\w+)\)$/gm)].map((m) => ({
      stage: m[1],
      reason: m[3],
      partitions: m[2] === '' ? [] : m[2].split(',').map(Number),
    }));
  }

  /** Messages each stage consumed (the fixture's last stdout line). */
  consumed(): Record<string, number> {
    return JSON.parse(this.stdout.trim().split('\n').pop()!) as Record<string, number>;
  }

  async waitFor(what: string, cond: () => boolean, timeoutMs = 90_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!cond()) {
      if (this.exit) assert.fail(`worker ${this.name} exited (${JSON.stringify(this.exit)}) before: ${what}\n${this.tail()}`);
      if (Date.now() > until) assert.fail(`worker ${this.name}: no ${what} within ${timeoutMs / 1000} s\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  tail(): string {
    return this.stderr.split('\n').slice(-25).join('\n');
  }

  kill(): void {
    if (!this.exit) this.child.kill('SIGKILL');
  }
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A synthetic hospital, its local run (the reference and the decile artifact), and its rows on
 * fresh topics of PARTITIONS partitions, without the end-of-load markers (sent by `closeLoad`).
 */
async function loadWithoutEnd(name: string, persons: number, seed: number) {
  const dir = tempDir(name);
  const omop = path.join(dir, 'omop');
  await generateSynthetic({ persons, seed, out: omop, format: 'parquet', site: 'A' });
  const local = await runLocal({ omop, out: path.join(dir, 'local'), log: silentLogger, meds: false });
  const prefix = uniquePrefix();
  const names = new TopicNames(prefix);
  const client = testKafka();
  await produceOmop({ omop, kafka: kafkaOpts(prefix), client, partitions: PARTITIONS, log: silentLogger, endOfLoad: false });
  const watermark = Date.parse(JSON.parse(fs.readFileSync(path.join(local.out, 'manifest.json'), 'utf8')).counts.label_watermark);
  const out = path.join(dir, 'stream');
  const artifacts = path.join(local.out, 'artifacts');
  // Small transactions and shards: many steps, so faults land between them.
  const env = {
    MEDREP_TEST_PREFIX: prefix, MEDREP_OUT: out, MEDREP_VOCAB: omop, MEDREP_ARTIFACTS: artifacts,
    MEDREP_TXN_SIZE: '200', MEDREP_EVENTS_PER_SHARD: '2000', MEDREP_SEQUENCES_PER_SHARD: '50',
  };
  return {
    dir, omop, local, prefix, names, client, out, artifacts, env,
    closeLoad: () => sendEndOfLoad(client, names, PARTITIONS, watermark),
  };
}

/** OMOP input rows the canonicalize group has not committed yet (the input topics are not transactional: exact). */
async function canonicalizeLag(client: Kafka, names: TopicNames): Promise<bigint> {
  const admin = client.admin();
  await admin.connect();
  try {
    const lag = await consumerGroupLag(admin, names.group('canonicalize'), LOAD_TABLES.map((t) => names.omop(t)));
    // A partition the group has not committed yet counts from its start.
    return lag.reduce((s, l) => s + l.lag, 0n);
  } finally {
    await admin.disconnect();
  }
}

/**
 * A last in-process pass over every stage: it must find nothing left to consume (the workers
 * finished the load by themselves); it writes the manifest from the shards on disk.
 */
async function assertDrained(s: Awaited<ReturnType<typeof loadWithoutEnd>>): Promise<void> {
  const last = await runStream({
    kafka: kafkaOpts(s.prefix), client: s.client, out: s.out, vocab: s.omop, artifacts: s.artifacts, exitWhenIdleMs: 1500,
    healthIntervalMs: 0, handleSignals: false, log: silentLogger, meds: false,
  });
  assert.deepEqual(
    Object.fromEntries(Object.entries(last.stages).map(([k, v]) => [k, v.consumed])),
    { canonicalize: 0, trajectory: 0, sink: 0 },
    'the workers consumed every input of every stage',
  );
}

describe('kafka runner (all stages) under broker and membership faults (real broker)', function () {
  this.timeout(240_000);
  const workers: StreamProcess[] = [];
  afterEach(function () {
    // A failed test shows its workers' last log lines and leaves no worker behind to disturb the next one.
    for (const w of workers.splice(0)) {
      if (this.currentTest?.state === 'failed') process.stderr.write(`--- worker ${w.name}, last lines:\n${w.tail()}\n`);
      w.kill();
    }
  });

  it('resumes by itself when the broker restarts mid-run; the shards equal runLocal', async () => {
    // The broker the tests use (KAFKA_BROKERS), restarted with scripts/kafka.sh as .ci/run started it.
    const port = BROKERS.split(':').pop()!;
    const s = await loadWithoutEnd('stream-broker-restart', 200, 31);
    const w = new StreamProcess('solo', { ...s.env, MEDREP_IDLE_MS: '5000' });
    workers.push(w);
    await w.waitFor('5 committed canonicalize transactions', () => w.canonicalizeCommits(s.names).length >= 5);
    const lagBefore = await canonicalizeLag(s.client, s.names);
    assert.ok(lagBefore > 0n, 'OMOP rows are still waiting for the canonicalize stage when the broker goes down');

    const restartBegan = Date.now();
    try {
      execFileSync(KAFKA_SH, ['restart'], { env: { ...process.env, KAFKA_PORT: port }, stdio: 'ignore' });
    } finally {
      // Whatever happened, the broker answers again before the tests that follow (start is a no-op if it runs).
      execFileSync(KAFKA_SH, ['start'], { env: { ...process.env, KAFKA_PORT: port }, stdio: 'ignore' });
    }
    const restartEnded = Date.now();
    const commitsBefore = w.canonicalizeCommits(s.names).length;
    await s.closeLoad();

    const r = await w.exited;
    assert.deepEqual(r, { code: 0, signal: null }, w.tail());
    assert.ok(w.canonicalizeCommits(s.names).length > commitsBefore, 'the worker went on committing after the restart');
    // The canonical events were written partly before the broker went down and partly after it came back.
    const events = await readAll(s.client, streamTopic(s.names, 'events'));
    assert.ok(events.some((m) => m.timestamp < restartBegan) && events.some((m) => m.timestamp > restartEnded), 'events on both sides of the restart');
    await assertDrained(s);
    await assertSameRows(s.local.out, s.out);
  });

  it('two workers split the partitions, a third joins, one leaves (SIGTERM), one dies (SIGKILL): the shards equal runLocal', async () => {
    const s = await loadWithoutEnd('stream-rebalance', 200, 37);
    // Idle longer than the session timeout (6 s) plus a rebalance: the survivor must not stop
    // while the killed member's partitions are still on their way to it.
    const env = { ...s.env, MEDREP_IDLE_MS: '12000', MEDREP_HANDLE_SIGNALS: '1' };
    const a = new StreamProcess('A', env);
    const b = new StreamProcess('B', env);
    workers.push(a, b);
    await a.waitFor('canonicalize transactions of A and B', () => a.canonicalizeCommits(s.names).length >= 2 && b.canonicalizeCommits(s.names).length >= 2);
    const partitionsAB = [new Set(a.canonicalizeCommits(s.names)), new Set(b.canonicalizeCommits(s.names))];
    assert.deepEqual([...partitionsAB[0]].filter((p) => partitionsAB[1].has(p)), [], 'A and B worked on different partitions');

    assert.ok((await canonicalizeLag(s.client, s.names)) > 0n, 'OMOP rows still in flight when C joins');
    const c = new StreamProcess('C', env);
    workers.push(c);
    await c.waitFor('canonicalize transactions of the worker that joined', () => c.canonicalizeCommits(s.names).length >= 2);

    assert.ok((await canonicalizeLag(s.client, s.names)) > 0n, 'OMOP rows still in flight when B leaves');
    b.child.kill('SIGTERM');
    const rb = await b.exited;
    assert.deepEqual(rb, { code: 0, signal: null }, `B stops cleanly on SIGTERM\n${b.tail()}`);
    assert.deepEqual(b.stops().map((x) => [x.stage, x.reason]).sort(), [['canonicalize', 'signal'], ['sink', 'signal'], ['trajectory', 'signal']]);

    assert.ok((await canonicalizeLag(s.client, s.names)) > 0n, 'OMOP rows still in flight when A dies');
    a.kill();
    assert.equal((await a.exited).signal, 'SIGKILL');
    // The load closes only now: sequences, samples and the last shards all come after the faults.
    await s.closeLoad();

    const rc = await c.exited;
    assert.deepEqual(rc, { code: 0, signal: null }, c.tail());
    // C ended as the group's only member of every stage: it owned all partitions when it stopped.
    const all = Array.from({ length: PARTITIONS }, (_, i) => i);
    assert.deepEqual(c.stops().map((x) => [x.stage, x.reason, x.partitions]).sort(), [
      ['canonicalize', 'idle', all],
      ['sink', 'idle', all],
      ['trajectory', 'idle', all],
    ]);
    assert.deepEqual([...new Set(c.canonicalizeCommits(s.names))].sort(), all, 'C transformed input of every partition');
    const consumed = c.consumed();
    assert.ok(consumed.canonicalize > 0 && consumed.trajectory > 0 && consumed.sink > 0, JSON.stringify(consumed));

    await assertDrained(s);
    await assertSameRows(s.local.out, s.out);
  });
});
