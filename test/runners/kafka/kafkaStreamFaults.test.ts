// The full Kafka runner (canonicalize -> trajectory -> sink, `medrep stream` worker processes)
// under faults against the real broker at KAFKA_BROKERS: a broker restart in the middle of a run,
// and a consumer group whose members change mid-run (a third worker joins, one leaves with
// SIGTERM, one dies with SIGKILL). Each time the final shards hold exactly the rows of `runLocal`
// (DuckDB EXCEPT ALL both ways), so nothing was lost or duplicated.
//
// Faults are placed by progress, not by time: after committed transactions and partition
// assignments seen in the workers' logs (and, for the broker restart, with OMOP rows still waiting:
// consumer-group lag). The input is made to outlast the faults on any machine: the restarted
// worker's canonicalize transactions take 80 ms at least, and the group test produces a third of
// the persons after each change of the group. The end-of-load markers come only after
// the faults: until then the trajectory stage can only gather per-person state, so the state handed
// over through the changelog, and every sequence, sample and last shard, is made after the faults.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { Kafka } from 'kafkajs';
import { generateSynthetic } from '../../../synth';
import { runLocal } from '../../../runners/local/localRunner';
import { silentLogger } from '../../../common/progress';
import { consumerGroupLag } from '../../../runners/kafka/health';
import { ensureLoadTopics, produceOmop, sendEndOfLoad } from '../../../runners/kafka/omopLoad';
import { LOAD_TABLES } from '../../../runners/kafka/streamValues';
import { runStream } from '../../../runners/kafka/streamRunner';
import { streamTopic } from '../../../runners/kafka/streamTopics';
import { TopicNames } from '../../../runners/kafka/topics';
import { BROKERS, readAll, testKafka, uniquePrefix } from '../../helpers/kafka';
import { lit, sql, tempDir } from '../../helpers';
import { assertSameRows, kafkaOpts } from '../../helpers/streamCompare';

const WORKER = path.join(__dirname, '..', '..', 'fixtures', 'streamWorker.js');
const KAFKA_SH = path.join(__dirname, '..', '..', '..', '..', 'scripts', 'kafka.sh');
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

  /** The partitions of a stage in its latest periodic health line (MEDREP_HEALTH_MS), or null before the first. */
  lastHealth(stage: string): number[] | null {
    const lines = [...this.stderr.matchAll(new RegExp(`^\\[medrep ${stage}\\] .* partitions \\[([\\d,]*)\\] `, 'gm'))];
    if (!lines.length) return null;
    const last = lines[lines.length - 1][1];
    return last === '' ? [] : last.split(',').map(Number);
  }

  exitedWith(): Exit | null {
    return this.exit;
  }

  tail(): string {
    return this.stderr.split('\n').slice(-25).join('\n');
  }

  kill(): void {
    if (!this.exit) this.child.kill('SIGKILL');
  }
}

/** Polls until `cond` holds; fails if one of the workers exits first or it takes too long. */
async function waitFor(what: string, cond: () => boolean, workers: StreamProcess[], timeoutMs = 90_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    for (const w of workers) {
      const exit = w.exitedWith();
      if (exit) assert.fail(`worker ${w.name} exited (${JSON.stringify(exit)}) before: ${what}\n${w.tail()}`);
    }
    if (Date.now() > until) assert.fail(`no ${what} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether every worker owns some partitions and together they own each of `all` exactly once. */
function splits(all: number[], ...owned: Array<number[] | null>): boolean {
  if (owned.some((o) => o === null || o.length === 0)) return false;
  return JSON.stringify(owned.flatMap((o) => o!).sort((x, y) => x - y)) === JSON.stringify(all);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A synthetic hospital and its local run (the reference and the decile artifact), fresh topics of
 * PARTITIONS partitions, and the OMOP rows in `parts` folders by person (person_id mod parts), to be
 * produced one by one with `produce(k)`; `closeLoad()` sends the end-of-load markers. The death
 * table goes whole into the last part: its events are named by their row in the file. (Other
 * tables' origins name rows of the part files: the comparisons ignore their row part.)
 */
async function syntheticLoad(name: string, persons: number, seed: number, parts: number) {
  const dir = tempDir(name);
  const omop = path.join(dir, 'omop');
  await generateSynthetic({ persons, seed, out: omop, format: 'parquet', site: 'A' });
  const local = await runLocal({ omop, out: path.join(dir, 'local'), log: silentLogger, meds: false });
  const folders = Array.from({ length: parts }, (_, k) => path.join(dir, `omop-part${k}`));
  for (const [k, folder] of folders.entries()) {
    fs.mkdirSync(folder);
    for (const f of fs.readdirSync(omop).filter((x) => x.endsWith('.parquet'))) {
      if (f.startsWith('concept') || (f === 'death.parquet' && k === parts - 1)) fs.symlinkSync(path.join(omop, f), path.join(folder, f));
      else if (f !== 'death.parquet') await sql(`COPY (SELECT * FROM read_parquet(${lit(path.join(omop, f))}) WHERE person_id % ${parts} = ${k}) TO ${lit(path.join(folder, f))} (FORMAT parquet)`);
    }
  }
  const prefix = uniquePrefix();
  const names = new TopicNames(prefix);
  const client = testKafka();
  // The topics exist before any worker starts, as `medrep topics` would make them: a worker may start before the first rows.
  await ensureLoadTopics(client, names, PARTITIONS);
  const watermark = Date.parse(JSON.parse(fs.readFileSync(path.join(local.out, 'manifest.json'), 'utf8')).counts.label_watermark);
  const out = path.join(dir, 'stream');
  const artifacts = path.join(local.out, 'artifacts');
  const env = {
    MEDREP_TEST_PREFIX: prefix, MEDREP_OUT: out, MEDREP_VOCAB: omop, MEDREP_ARTIFACTS: artifacts,
    MEDREP_TXN_SIZE: '200', MEDREP_EVENTS_PER_SHARD: '2000', MEDREP_SEQUENCES_PER_SHARD: '50',
  };
  return {
    dir, omop, local, prefix, names, client, out, artifacts, env,
    produce: (k: number) => produceOmop({ omop: folders[k], vocab: omop, kafka: kafkaOpts(prefix), client, partitions: PARTITIONS, log: silentLogger, endOfLoad: false }),
    closeLoad: () => sendEndOfLoad(client, names, PARTITIONS, watermark),
  };
}

/** OMOP input rows the canonicalize group has not committed yet (the input topics are not transactional: exact). */
async function canonicalizeLag(client: Kafka, names: TopicNames): Promise<bigint> {
  const admin = client.admin();
  await admin.connect();
  try {
    const lag = await consumerGroupLag(admin, names.group('canonicalize'), LOAD_TABLES.map((t) => names.omop(t)));
    return lag.reduce((s, l) => s + l.lag, 0n);
  } finally {
    await admin.disconnect();
  }
}

/**
 * A last in-process pass over every stage: it must find nothing left to consume (the workers
 * finished the load by themselves); it writes the manifest from the shards on disk.
 */
async function assertDrained(s: Awaited<ReturnType<typeof syntheticLoad>>): Promise<void> {
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

/** Runs kafka.sh (start, stop, restart) for the broker the tests use; its error output goes into the error. */
function kafkaScript(command: string): void {
  const port = BROKERS.split(':').pop()!;
  execFileSync(KAFKA_SH, [command], { env: { ...process.env, KAFKA_PORT: port }, stdio: ['ignore', 'ignore', 'pipe'] });
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
    const s = await syntheticLoad('stream-broker-restart', 60, 31, 1);
    await s.produce(0);
    // 80 ms per canonicalize transaction at least: the load takes seconds even on a fast machine.
    const w = new StreamProcess('solo', { ...s.env, MEDREP_IDLE_MS: '4000', MEDREP_SLOW_MS: '80', MEDREP_TXN_SIZE: '100' });
    workers.push(w);
    await waitFor('5 committed canonicalize transactions', () => w.canonicalizeCommits(s.names).length >= 5, [w]);
    assert.ok((await canonicalizeLag(s.client, s.names)) > 0n, 'OMOP rows are still waiting for the canonicalize stage when the broker goes down');

    // The broker at KAFKA_BROKERS, restarted with scripts/kafka.sh as .ci/run started it.
    const restartBegan = Date.now();
    try {
      kafkaScript('restart');
    } finally {
      // Whatever happened, the broker answers again for the tests that follow (a no-op when it runs).
      kafkaScript('start');
    }
    const restartEnded = Date.now();
    const commitsBefore = w.canonicalizeCommits(s.names).length;
    await s.closeLoad();

    const r = await w.exited;
    assert.deepEqual(r, { code: 0, signal: null }, w.tail());
    assert.ok(w.canonicalizeCommits(s.names).length > commitsBefore, 'the worker went on committing after the restart');
    // The canonical events were written partly before the broker went down and partly after it came back.
    const events = await readAll(s.client, streamTopic(s.names, 'canonical'));
    assert.ok(events.some((m) => m.timestamp < restartBegan) && events.some((m) => m.timestamp > restartEnded), 'events on both sides of the restart');
    await assertDrained(s);
    await assertSameRows(s.local.out, s.out, true, { sameFiles: false });
  });

  it('two workers split the partitions, a third joins, one leaves (SIGTERM), one dies (SIGKILL): the shards equal runLocal', async () => {
    // A third of the persons before each change of the group: every change has input after it.
    const s = await syntheticLoad('stream-rebalance', 150, 37, 3);
    // A and B never stop for idleness (B leaves on SIGTERM, A is killed): on a loaded machine the
    // wait for C to start and join can outlast any short idle period. C, the survivor, stops idle
    // at the end, after longer than the session timeout (6 s) plus a rebalance: it must not stop
    // while the killed member's partitions are still on their way to it.
    const env = { ...s.env, MEDREP_IDLE_MS: '600000', MEDREP_HANDLE_SIGNALS: '1', MEDREP_HEALTH_MS: '300' };
    const all = Array.from({ length: PARTITIONS }, (_, i) => i);
    const a = new StreamProcess('A', env);
    const b = new StreamProcess('B', env);
    workers.push(a, b);
    // The first third only once A and B share the partitions: produced earlier, it could all be
    // transformed by whichever worker joined first, and the other would stop idle with nothing done.
    await waitFor('A and B sharing the partitions', () => splits(all, a.lastHealth('canonicalize'), b.lastHealth('canonicalize')), [a, b]);
    await s.produce(0);
    await waitFor('canonicalize transactions of both A and B', () => a.canonicalizeCommits(s.names).length > 0 && b.canonicalizeCommits(s.names).length > 0, [a, b]);

    const c = new StreamProcess('C', { ...env, MEDREP_IDLE_MS: '20000' });
    workers.push(c);
    await waitFor('A, B and C sharing the partitions', () => splits(all, a.lastHealth('canonicalize'), b.lastHealth('canonicalize'), c.lastHealth('canonicalize')), [a, b, c]);
    await s.produce(1);
    await waitFor('canonicalize transactions of C', () => c.canonicalizeCommits(s.names).length > 0, [a, b, c]);

    b.child.kill('SIGTERM');
    const rb = await b.exited;
    assert.deepEqual(rb, { code: 0, signal: null }, `B stops cleanly on SIGTERM\n${b.tail()}`);
    assert.deepEqual(b.stops().map((x) => [x.stage, x.reason]).sort(), [['canonicalize', 'signal'], ['sink', 'signal'], ['trajectory', 'signal']]);

    await s.produce(2);
    const commitsOfA = a.canonicalizeCommits(s.names).length;
    await waitFor('canonicalize transactions of A after B left', () => a.canonicalizeCommits(s.names).length > commitsOfA, [a, c]);
    a.kill();
    assert.equal((await a.exited).signal, 'SIGKILL');
    // The load closes only now: sequences, samples and the last shards all come after the faults.
    await s.closeLoad();

    const rc = await c.exited;
    assert.deepEqual(rc, { code: 0, signal: null }, c.tail());
    // C ended as the only member of every stage's group: it owned all partitions when it stopped.
    assert.deepEqual(c.stops().map((x) => [x.stage, x.reason, x.partitions]).sort(), [
      ['canonicalize', 'idle', all],
      ['sink', 'idle', all],
      ['trajectory', 'idle', all],
    ]);
    assert.deepEqual([...new Set(c.canonicalizeCommits(s.names))].sort((x, y) => x - y), all, 'C transformed input of every partition');
    const consumed = c.consumed();
    assert.ok(consumed.canonicalize > 0 && consumed.trajectory > 0 && consumed.sink > 0, JSON.stringify(consumed));

    await assertDrained(s);
    await assertSameRows(s.local.out, s.out, true, { sameFiles: false });
  });
});
