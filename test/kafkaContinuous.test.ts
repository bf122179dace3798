// Continuous mode of the Kafka runner (`medrep stream --close-on watermark`) against the real
// broker (KAFKA_BROKERS, default 127.0.0.1:9092), fed as a foreign producer feeds it (no
// end-of-load markers): samples, a correction and pretraining chunks reach the shards while the
// stream runs; after SIGTERM the output is consistent; after SIGKILLs and restarts every event is
// in exactly one pretraining chunk.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { generateSynthetic } from '../pipelines/synth';
import { runLocal } from '../pipelines/localRunner';
import { silentLogger } from '../common/progress';
import { produceOmop, sendEndOfLoad } from '../pipelines/kafka/omopLoad';
import { OmopRowProducer } from '../pipelines/kafka/omopProducer';
import { TopicNames } from '../pipelines/kafka/topics';
import { runStream } from '../pipelines/kafka/streamRunner';
import { prng } from './helpers/syntheticOmop';
import { BROKERS, testKafka, uniquePrefix } from './kafkaTestUtil';
import { lit, sql, tempDir } from './helpers';
import { medrep, medrepAsync } from './helpers/cli';
import { differences, kafkaOpts } from './helpers/streamCompare';
import { chunkCoverage, dayAfter, filesUnder, NEW_PERSON_BASE, sendNewPatients } from './helpers/continuousChecks';

const PARTITIONS = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (a safety bound, not a timed assertion) until `ready` holds; else fails naming `what`. */
async function until(what: string, ready: () => boolean | Promise<boolean>, detail: () => string = () => '', boundMs = 120_000): Promise<void> {
  const end = Date.now() + boundMs;
  while (!(await ready())) {
    if (Date.now() > end) assert.fail(`${what}: not reached. ${detail()}`);
    await sleep(500);
  }
}

async function rowsOf(glob: string, where = 'true'): Promise<number> {
  const [r] = await sql<{ n: bigint }>(`SELECT count(*) AS n FROM read_parquet(${lit(glob)}) WHERE ${where}`);
  return Number(r.n);
}

/** The synthetic hospital, its local run (deciles artifact, data end) and a person who died in the index stay. */
async function hospital(name: string, persons: number, seed: number) {
  const dir = tempDir(name);
  const omop = path.join(dir, 'omop');
  await generateSynthetic({ persons, seed, out: omop, format: 'parquet', site: 'A' });
  const local = await runLocal({ omop, out: path.join(dir, 'local'), log: silentLogger, meds: false });
  const dataEnd = Date.parse(JSON.parse(fs.readFileSync(path.join(local.out, 'manifest.json'), 'utf8')).counts.label_watermark);
  return { dir, omop, local, artifacts: path.join(local.out, 'artifacts'), dataEnd };
}

describe('kafka runner, continuous mode: a stream that keeps running (real broker)', function () {
  this.timeout(420_000);

  it('rows without markers: samples, a correction and pretraining chunks reach the shards while it runs; watermarks in status and health; SIGTERM leaves consistent shards', async () => {
    const h = await hospital('continuous-run', 150, 5);
    const [dead] = await sql<{ p: number }>(`SELECT CAST(s.person_id AS DOUBLE) AS p
      FROM read_parquet(${lit(path.join(h.local.out, 'samples/mortality/*.parquet'))}) s JOIN read_parquet(${lit(path.join(h.omop, 'death.parquet'))}) d ON d.person_id = s.person_id
      WHERE s.label GROUP BY 1 ORDER BY 1 LIMIT 1`);
    assert.ok(dead, 'the synthetic data have an in-hospital death');
    // The feed first sends everything but that death.
    const first = path.join(h.dir, 'omop-first');
    fs.mkdirSync(first);
    for (const f of fs.readdirSync(h.omop)) if (f !== 'death.parquet') fs.symlinkSync(path.join(h.omop, f), path.join(first, f));
    await sql(`COPY (SELECT * FROM read_parquet(${lit(path.join(h.omop, 'death.parquet'))}) WHERE person_id <> ${dead.p}) TO ${lit(path.join(first, 'death.parquet'))} (FORMAT parquet)`);

    const prefix = uniquePrefix();
    const kafkaArgs = ['--brokers', BROKERS, '--topic-prefix', prefix];
    assert.equal(medrep(['topics', ...kafkaArgs, '--partitions', String(PARTITIONS)]).status, 0);
    const out = path.join(h.dir, 'stream');
    const original = `person_id < ${NEW_PERSON_BASE}`;
    const stream = medrepAsync([
      'stream', ...kafkaArgs, '--out', out, '--vocab', h.omop, '--artifacts', h.artifacts, '--close-on', 'watermark',
      '--idle-timeout', '1', '--allowed-lateness-days', '100000', '--health-interval', '1',
    ]);
    let exited = false;
    void stream.done.then(() => (exited = true));
    const tail = () => `stream ${exited ? 'exited' : 'running'}; its stderr ends: ${stream.stderr().slice(-1500)}`;
    try {
      const produced = medrep(['produce', '--omop', first, ...kafkaArgs, '--partitions', String(PARTITIONS), '--markers', 'none']);
      assert.equal(produced.status, 0, produced.stderr);
      assert.equal(JSON.parse(produced.stdout.trim().split('\n').pop()!).markers, 0, 'no end-of-load marker sent');
      const group = (stage: string) => new RegExp(`^group ${prefix.replace(/\./g, '\\.')}medrep\\.${stage} \\S+ members=\\d+ lag=0\\b`, 'm');
      let status = '';
      await until('canonicalize and trajectory drained', () => {
        status = medrep(['status', ...kafkaArgs]).stdout;
        return group('canonicalize').test(status) && group('trajectory').test(status);
      }, tail);
      assert.ok(!exited, 'the stream keeps running without --exit-when-idle');
      // Every partition of the trajectory stage's input shows its event-time watermark.
      const canonical = status.split('\n').find((l) => l.includes(`${prefix}medrep.canonical:`))!;
      assert.equal(canonical.match(/watermark \d{4}-\d\d-\d\dT/g)?.length, PARTITIONS, canonical);

      // Later (the sources have been idle past --idle-timeout) new patients come: the watermark
      // moves to their day, so every earlier patient is quiet and their labels are decided.
      await sleep(1500);
      const client = testKafka();
      const names = new TopicNames(prefix);
      await sendNewPatients(client, names, h.omop, 30, dayAfter(h.dataEnd, 90));
      await until('every patient of the first feed in closed chunks', async () => {
        if (filesUnder(path.join(out, 'pretrain'), '.parquet').length === 0) return false;
        const c = await chunkCoverage(out, original);
        return c.events > 0 && c.lost === 0;
      }, tail);
      await until('the mortality sample of the person whose death has not come', async () => filesUnder(path.join(out, 'samples/mortality'), '.parquet').length > 0
        && (await rowsOf(path.join(out, 'samples/mortality/*.parquet'), `person_id = ${dead.p}`)) === 1, tail);
      const [sample] = await sql<{ label: boolean }>(`SELECT label FROM read_parquet(${lit(path.join(out, 'samples/mortality/*.parquet'))}) WHERE person_id = ${dead.p}`);
      assert.equal(sample.label, false, 'no death known at decision time: negative');
      assert.ok(!exited);

      // The death comes late, within the allowed lateness: a correction of that label.
      const [death] = await sql<{ j: string }>(`SELECT CAST(to_json(d) AS VARCHAR) AS j FROM read_parquet(${lit(path.join(h.omop, 'death.parquet'))}) d WHERE person_id = ${dead.p}`);
      const producer = await OmopRowProducer.connect(client, { names });
      await producer.send('death', death.j, 'late-death.json:1');
      await producer.close();
      const correctionsOf = () => filesUnder(path.join(out, 'samples/mortality/corrections'), '.json')
        .flatMap((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as { person_id: number; version: number; label: number; retracted: boolean }[])
        .filter((c) => Number(c.person_id) === dead.p);
      await until('the correction of the late death', () => correctionsOf().length > 0, tail);
      assert.deepEqual(correctionsOf().map((c) => ({ version: c.version, label: c.label, retracted: c.retracted })), [{ version: 2, label: 1, retracted: false }]);
      assert.ok(!exited, 'all of it while the stream runs');
    } finally {
      stream.child.kill('SIGTERM');
    }
    const r = await stream.done;
    assert.equal(r.status, 5, `SIGTERM: exit 5 (stopped); stderr: ${r.stderr.slice(-1500)}`);
    const summary = JSON.parse(r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()!);
    assert.equal(summary.complete, false);
    assert.match(r.stdout + r.stderr, /\[medrep trajectory\] .* watermarks \[0:\d{4}-\S+ 1:\S+ 2:\S+\] stage \d{4}-/, 'the health lines show each partition\'s watermark');

    // Consistent: the manifest lists every shard on disk with its rows, nothing half-written.
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    assert.equal(manifest.complete, false);
    assert.deepEqual(filesUnder(out, '.tmp'), []);
    const listed = (manifest.shards as { path: string; rows: number }[]).filter((s) => /^(events|pretrain|samples)\//.test(s.path));
    const onDisk = ['events', 'pretrain', 'samples'].flatMap((d) => filesUnder(path.join(out, d), '.parquet')).map((f) => path.relative(out, f)).sort();
    assert.deepEqual(listed.map((s) => s.path).sort(), onDisk);
    for (const s of listed) assert.equal(await rowsOf(path.join(out, s.path)), s.rows, s.path);
    // Every event of the first feed in exactly one chunk; the new patients' open chunks not emitted twice.
    const covered = await chunkCoverage(out, original);
    assert.deepEqual(covered, { events: covered.events, lost: 0, extra: 0, duplicateChunks: 0, gaps: 0 });
    const all = await chunkCoverage(out);
    assert.deepEqual({ extra: all.extra, duplicateChunks: all.duplicateChunks, gaps: all.gaps }, { extra: 0, duplicateChunks: 0, gaps: 0 });
  });
});

describe('kafka runner, continuous mode with end-of-load markers (real broker)', function () {
  this.timeout(300_000);

  it('a marker still closes the load: rows without a person row are set aside, and the data end it declares closes every chunk (--chunk-quiet 0)', async () => {
    const h = await hospital('continuous-markers', 60, 3);
    const prefix = uniquePrefix();
    const kafka = kafkaOpts(prefix);
    const client = testKafka();
    const names = new TopicNames(prefix);
    await produceOmop({ omop: h.omop, kafka, client, partitions: PARTITIONS, log: silentLogger, endOfLoad: false });
    const [c] = await sql<{ j: string }>(`SELECT CAST(to_json(c) AS VARCHAR) AS j FROM read_parquet(${lit(path.join(h.omop, 'condition_occurrence.parquet'))}) c LIMIT 1`);
    const producer = await OmopRowProducer.connect(client, { names });
    await producer.send('condition_occurrence', JSON.stringify({ ...JSON.parse(c.j), person_id: NEW_PERSON_BASE, condition_occurrence_id: NEW_PERSON_BASE }), 'orphan.json:1');
    await producer.close();
    await sendEndOfLoad(client, names, PARTITIONS, h.dataEnd);
    const out = path.join(h.dir, 'stream');
    const r = await runStream({
      kafka, client, out, vocab: h.omop, artifacts: h.artifacts, exitWhenIdleMs: 2000, closeOn: 'watermark', chunkQuietMs: 0,
      healthIntervalMs: 0, handleSignals: false, log: silentLogger, meds: false,
    });
    assert.equal(r.complete, true);
    const rejects = fs.readFileSync(path.join(out, 'rejects', 'condition_occurrence.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { reason: string });
    assert.deepEqual(rejects.map((x) => x.reason), ['person_id not in the person table']);
    const ev = await differences(h.local.out, out, 'events');
    assert.deepEqual(ev, { onlyA: 0, onlyB: 0, rowsA: ev.rowsA, rowsB: ev.rowsA }, 'the same events as runLocal');
    const covered = await chunkCoverage(out);
    assert.ok(covered.events > 0);
    assert.deepEqual(covered, { events: covered.events, lost: 0, extra: 0, duplicateChunks: 0, gaps: 0 }, 'every event in exactly one chunk');
  });
});

const WORKER = path.join(__dirname, 'fixtures', 'streamWorker.js');

function runWorker(env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

describe('kafka runner, continuous mode under faults (real broker)', function () {
  this.timeout(420_000);
  const seed = Number(process.env.MEDREP_FAULT_SEED ?? Date.now() % 100_000);

  it(`SIGKILLed at 3 random points (seed ${seed}) and restarted: every event in exactly one pretraining chunk`, async () => {
    const h = await hospital('continuous-kill', 150, 9);
    const prefix = uniquePrefix();
    const kafka = kafkaOpts(prefix);
    const client = testKafka();
    const names = new TopicNames(prefix);
    await produceOmop({ omop: h.omop, kafka, client, partitions: PARTITIONS, log: silentLogger, endOfLoad: false });
    const out = path.join(h.dir, 'stream');
    // Small transactions and chunks of 16 events: chunks close full and quiet all along the run.
    const env = {
      MEDREP_TEST_PREFIX: prefix, MEDREP_OUT: out, MEDREP_VOCAB: h.omop, MEDREP_ARTIFACTS: h.artifacts, MEDREP_TXN_SIZE: '20',
      MEDREP_CLOSE_ON: 'watermark', MEDREP_IDLE_TIMEOUT_MS: '1000', MEDREP_MAX_EVENTS: '16',
    };
    const rand = prng(seed);
    const phases = ['transformed', 'produced', 'offsets-sent', 'committed'];
    for (let k = 0; k < 3; k++) {
      const phase = phases[Math.floor(rand() * phases.length)];
      const at = 2 + Math.floor(rand() * 10);
      const r = await runWorker({ ...env, MEDREP_KILL_PHASE: phase, MEDREP_KILL_AT: String(at) });
      assert.equal(r.signal, 'SIGKILL', `worker ${k} should die at ${phase} #${at}; exit ${r.code}; stderr: ${r.stderr}`);
      // The killed member stays in the group until its session (6 s) expires.
      await sleep(7000);
    }
    const restart = () => runStream({
      kafka, client, out, vocab: h.omop, artifacts: h.artifacts, exitWhenIdleMs: 2000, maxMessagesPerTransaction: 20, maxEvents: 16,
      closeOn: 'watermark', idleTimeoutMs: 1000, sessionTimeoutMs: 6000, rebalanceTimeoutMs: 10000, heartbeatIntervalMs: 500,
      healthIntervalMs: 0, handleSignals: false, log: silentLogger, meds: false,
    });
    await restart();
    // New patients a quarter later move every partition's watermark past the hospital's data:
    // each of its patients is quiet, so no chunk of theirs stays open.
    await sleep(1500);
    await sendNewPatients(client, names, h.omop, 30, dayAfter(h.dataEnd, 90));
    await restart();

    const ev = await differences(h.local.out, out, 'events');
    assert.deepEqual(ev, { onlyA: 0, onlyB: 30, rowsA: ev.rowsA, rowsB: ev.rowsA + 30 }, 'the events shards hold each input row once, and the new patients\' conditions');
    const c = await chunkCoverage(out, `person_id < ${NEW_PERSON_BASE}`);
    assert.ok(c.events > 1000, `a hospital of events (${c.events})`);
    assert.deepEqual(c, { events: c.events, lost: 0, extra: 0, duplicateChunks: 0, gaps: 0 }, 'each event in exactly one chunk, none lost');
    const [chunks] = await sql<{ n: bigint; full: bigint }>(`SELECT count(*) AS n, count(*) FILTER (WHERE len(concept_ids) = 18) AS full FROM read_parquet(${lit(path.join(out, 'pretrain/*.parquet'))})`);
    assert.ok(Number(chunks.full) > 0 && Number(chunks.full) < Number(chunks.n), 'both full and quiet chunks were closed');
  });
});
