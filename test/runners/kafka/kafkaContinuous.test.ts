// Continuous mode of the Kafka runner (`medrep stream --close-on watermark`) against the real
// broker (KAFKA_BROKERS, default 127.0.0.1:9092), fed as a foreign producer feeds it (no
// end-of-load markers): samples, a correction and pretraining chunks reach the shards while the
// stream runs; after SIGTERM the output is consistent; after SIGKILLs and restarts every event is
// in exactly one pretraining chunk. End to end: the growing manifest (manifest.d/, the running
// manifest.json) lists those shards and the correction with hashes that verify, `replay --verify`
// reads it, and a `train ehr --follow` process registers two versions while the stream runs.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateSynthetic } from '../../../synth';
import { runLocal } from '../../../runners/local/localRunner';
import { silentLogger } from '../../../common/progress';
import { produceOmop, sendEndOfLoad } from '../../../runners/kafka/omopLoad';
import { OmopRowProducer } from '../../../runners/kafka/omopProducer';
import { TopicNames } from '../../../runners/kafka/topics';
import { runStream } from '../../../runners/kafka/streamRunner';
import { prng } from '../../helpers/syntheticOmop';
import { BROKERS, testKafka, uniquePrefix, runStreamWorker } from '../../helpers/kafka';
import { lit, sql, tempDir } from '../../helpers';
import { medrep, medrepAsync } from '../../helpers/cli';
import { differences, kafkaOpts } from '../../helpers/streamCompare';
import { chunkCoverage, dayAfter, filesUnder, NEW_PERSON_BASE, sendNewPatients } from '../../helpers/continuousChecks';
import { EXIT } from '../../../common/errors';
import { MANIFEST_LOG_DIR, ManifestLogEntry, manifestShardOf, readManifestLog } from '../../../sinks/manifest';
import { sha256 } from '../../../transforms/hashing';
import type { Registry } from '../../../trainers/behrt/follow';
import { EVENTS_PER_ROUND, FEED_PERSONS, retentionFeed, runFeed, tokenEventsOf } from '../../helpers/retentionFeed';
import { AppendLogStore } from '../../../runners/kafka/appendStore';
import { EVENT_WIDTH, EVENTS_STORE } from '../../../runners/kafka/trajectoryState';

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

/** Whether `medrep status` shows the canonicalize and trajectory groups of `prefix` without lag. */
function drained(status: string, prefix: string): boolean {
  const group = (stage: string) => new RegExp(`^group ${prefix.replace(/\./g, '\\.')}medrep\\.${stage} \\S+ members=\\d+ lag=0\\b`, 'm');
  return group('canonicalize').test(status) && group('trajectory').test(status);
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

/**
 * A person who died in the index stay, and the hospital's tables without that death (OMOP folder
 * `first`): the feed sends the death later, within the allowed lateness.
 */
async function firstFeedWithoutADeath(h: Awaited<ReturnType<typeof hospital>>): Promise<{ dead: { p: number }; first: string }> {
  const [dead] = await sql<{ p: number }>(`SELECT CAST(s.person_id AS DOUBLE) AS p
    FROM read_parquet(${lit(path.join(h.local.out, 'samples/mortality/*.parquet'))}) s JOIN read_parquet(${lit(path.join(h.omop, 'death.parquet'))}) d ON d.person_id = s.person_id
    WHERE s.label GROUP BY 1 ORDER BY 1 LIMIT 1`);
  assert.ok(dead, 'the synthetic data have an in-hospital death');
  const first = path.join(h.dir, 'omop-first');
  fs.mkdirSync(first);
  for (const f of fs.readdirSync(h.omop)) if (f !== 'death.parquet') fs.symlinkSync(path.join(h.omop, f), path.join(first, f));
  await sql(`COPY (SELECT * FROM read_parquet(${lit(path.join(h.omop, 'death.parquet'))}) WHERE person_id <> ${dead.p}) TO ${lit(path.join(first, 'death.parquet'))} (FORMAT parquet)`);
  return { dead, first };
}

/** Topics of a new prefix, created by `medrep topics`; the Kafka flags of the commands. */
function newTopics(): { prefix: string; kafkaArgs: string[] } {
  const prefix = uniquePrefix();
  const kafkaArgs = ['--brokers', BROKERS, '--topic-prefix', prefix];
  assert.equal(medrep(['topics', ...kafkaArgs, '--partitions', String(PARTITIONS)]).status, 0);
  return { prefix, kafkaArgs };
}

describe('kafka runner, continuous mode: a stream that keeps running (real broker)', function () {
  this.timeout(420_000);

  it('rows without markers: samples, a correction and pretraining chunks reach the shards while it runs; watermarks in status and health; SIGTERM leaves consistent shards', async () => {
    const h = await hospital('continuous-run', 150, 5);
    const { dead, first } = await firstFeedWithoutADeath(h);
    const { prefix, kafkaArgs } = newTopics();
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
      let status = '';
      await until('canonicalize and trajectory drained', () => drained((status = medrep(['status', ...kafkaArgs]).stdout), prefix), tail);
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
    const onDisk = [...['events', 'pretrain', 'samples'].flatMap((d) => filesUnder(path.join(out, d), '.parquet')), ...filesUnder(path.join(out, 'samples'), '.json')]
      .map((f) => path.relative(out, f)).sort();
    assert.deepEqual(listed.map((s) => s.path).sort(), onDisk, 'shards and corrections files');
    for (const s of listed) if (s.path.endsWith('.parquet')) assert.equal(await rowsOf(path.join(out, s.path)), s.rows, s.path);
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

describe('continuous mode retention: the state a person keeps is pruned, the output is the same', () => {
  const DAY = 86_400_000;
  const MAX_EVENTS = 32;
  const feed = retentionFeed(10);
  const opts = { maxEvents: MAX_EVENTS, allowedLatenessMs: 10 * DAY };
  const pruned = runFeed(feed, { ...opts, retainAll: false });
  const all = runFeed(feed, { ...opts, retainAll: true });

  it('the same samples (windows included), corrections and chunks with and without pruning', () => {
    assert.ok(pruned.samples.length > 50, `samples: ${pruned.samples.length}`);
    assert.ok(pruned.samples.some((r) => r.kind === 'correction' && !r.retracted), 'corrections with a window (late stays, a late death)');
    assert.ok(pruned.samples.filter((r) => r.conceptIds.length === MAX_EVENTS + 2).length > 20, 'windows of max-events events: they reach into pruned history');
    assert.ok(pruned.chunks.length > 10);
    assert.deepEqual(pruned.samples, all.samples);
    assert.deepEqual(pruned.chunks, all.chunks, 'the same chunks, numbered alike');
  });

  it('what a person keeps stays within the bound the rule gives; without pruning it grows with the history', () => {
    // The rule: the open chunk (< max-events events), the max-events events before the horizon,
    // and the events after the horizon and in the visit segment the window starts in. The
    // horizon lies at the watermark less the lateness, within the round before the watermark's;
    // the window's first segment is one round's stay: two rounds of events. Person 2's stay of
    // round 5 lasts until day 45 and stays open to corrections a round longer: one round more.
    const bound = (p: number) => MAX_EVENTS - 1 + MAX_EVENTS + (p === 2 ? 3 : 2) * EVENTS_PER_ROUND;
    for (const p of FEED_PERSONS) {
      const series = pruned.kept.map((k) => k.get(p) ?? 0);
      const over = series.findIndex((n) => n > bound(p));
      assert.equal(over, -1, `person ${p}: ${series[over]} events kept after transaction ${over}, bound ${bound(p)}`);
      const total = tokenEventsOf(feed, p);
      assert.ok(total > bound(p), `the history (${total} events) outgrows the bound`);
      assert.equal(all.kept[all.kept.length - 1].get(p), total, `person ${p}: without pruning every event is kept`);
      const size = pruned.events.sizes(0).get(String(p))!;
      assert.equal(size.kept + size.base, total * EVENT_WIDTH, `person ${p}: kept and dropped are every event appended`);
    }
  });
});

describe('kafka runner, continuous mode: bounded state per person (real broker)', function () {
  this.timeout(420_000);

  it('a long history fed in rounds into a running stream: the events store keeps each person within the bound the retention rule gives, while the events shards hold the whole history', async () => {
    const h = await hospital('continuous-bounded', 30, 7);
    const { prefix, kafkaArgs } = newTopics();
    const out = path.join(h.dir, 'stream');
    const maxEvents = 32;
    const stream = medrepAsync([
      'stream', ...kafkaArgs, '--out', out, '--vocab', h.omop, '--artifacts', h.artifacts, '--close-on', 'watermark',
      '--idle-timeout', '1', '--allowed-lateness-days', '5', '--max-events', String(maxEvents), '--health-interval', '0',
    ]);
    const tail = () => `stream ${stream.child.exitCode === null ? 'running' : 'exited'}; its stderr ends: ${stream.stderr().slice(-1500)}`;
    const client = testKafka();
    const names = new TopicNames(prefix);
    const row = async (table: string) => JSON.parse((await sql<{ j: string }>(`SELECT CAST(to_json(t) AS VARCHAR) AS j FROM read_parquet(${lit(path.join(h.omop, `${table}.parquet`))}) t LIMIT 1`))[0].j);
    const [personRow, visitRow, conditionRow] = [await row('person'), await row('visit_occurrence'), await row('condition_occurrence')];
    const persons = [1, 2, 3].map((i) => NEW_PERSON_BASE + i);
    const rounds = 8;
    const perRound = 21; // 20 conditions in the round's stay, one follow-up
    const ymd = (day: number) => dayAfter(h.dataEnd, day);
    const kept: number[][] = [];
    const producer = await OmopRowProducer.connect(client, { names });
    let n = 0;
    const send = async (table: string, r: Record<string, unknown>) => producer.send(table, JSON.stringify(r), `rounds.json:${++n}`);
    try {
      for (const p of persons) await send('person', { ...personRow, person_id: p, year_of_birth: 1960, birth_datetime: '1960-06-01 00:00:00' });
      for (let r = 0; r < rounds; r++) {
        const base = 30 + 60 * r;
        for (const p of persons) {
          const visit = p * 100 + r;
          await send('visit_occurrence', { ...visitRow, person_id: p, visit_occurrence_id: visit, visit_concept_id: 9201, visit_start_date: ymd(base + 10), visit_start_datetime: `${ymd(base + 10)} 08:00:00`, visit_end_date: ymd(base + 14), visit_end_datetime: `${ymd(base + 14)} 12:00:00` });
          for (let k = 0; k < 20; k++) {
            const day = ymd(base + 10 + Math.floor(k / 5));
            await send('condition_occurrence', { ...conditionRow, person_id: p, condition_occurrence_id: visit * 100 + k, visit_occurrence_id: visit, condition_start_date: day, condition_start_datetime: `${day} ${String(9 + (k % 5)).padStart(2, '0')}:00:00`, condition_end_date: null, condition_end_datetime: null });
          }
        }
        await producer.flush();
        await until(`round ${r} drained`, () => drained(medrep(['status', ...kafkaArgs]).stdout, prefix), tail);
        // Once the sources are idle, a follow-up moves the watermark past the round's stays.
        await sleep(1500);
        for (const p of persons) {
          const day = ymd(base + 50);
          await send('condition_occurrence', { ...conditionRow, person_id: p, condition_occurrence_id: p * 100_000 + r, visit_occurrence_id: null, condition_start_date: day, condition_start_datetime: `${day} 09:00:00`, condition_end_date: null, condition_end_datetime: null });
        }
        await producer.flush();
        await until(`round ${r}'s follow-up drained`, () => drained(medrep(['status', ...kafkaArgs]).stdout, prefix), tail);
        // What the trajectory stage keeps: its events store, rebuilt from the committed changelog.
        const store = new AppendLogStore(EVENTS_STORE, names.changelog('trajectory', EVENTS_STORE));
        await store.restore(client, [0, 1, 2]);
        const sizes = new Map([0, 1, 2].flatMap((q) => [...store.sizes(q)]));
        kept.push(persons.map((p) => {
          const s = sizes.get(String(p));
          assert.ok(s, `person ${p} in the events store`);
          assert.equal((s.kept + s.base) / EVENT_WIDTH, (r + 1) * perRound, `person ${p}: kept and dropped are every event of ${r + 1} rounds`);
          return s.kept / EVENT_WIDTH;
        }));
      }
    } finally {
      await producer.close().catch(() => undefined);
      stream.child.kill('SIGTERM');
    }
    const done = await stream.done;
    assert.equal(done.status, EXIT.stopped, done.stderr.slice(-1500));
    // The rule: the open chunk (< max-events), the max-events events before the horizon (the
    // watermark less the lateness, inside the last round), the events after it, and the visit
    // segment the window starts in kept whole: the window of 32 reaches into the round before,
    // so two rounds of events at most besides the open chunk and the window.
    const bound = maxEvents - 1 + maxEvents + 2 * perRound;
    const all = kept.flat();
    assert.ok(all.every((k) => k <= bound), `kept per person after each round: ${JSON.stringify(kept)}; bound ${bound}`);
    assert.ok(rounds * perRound > bound, 'the history outgrows the bound');
    assert.ok(kept[rounds - 1].every((k) => k < rounds * perRound), 'the last round keeps less than the history');
    const [ev] = await sql<{ n: bigint }>(`SELECT count(*) AS n FROM read_parquet(${lit(path.join(out, 'events/*.parquet'))}) WHERE person_id >= ${NEW_PERSON_BASE} AND domain BETWEEN 1 AND 4`);
    assert.equal(Number(ev.n), persons.length * rounds * perRound, 'the events shards hold the whole history');
    const c = await chunkCoverage(out, `person_id >= ${NEW_PERSON_BASE}`);
    assert.deepEqual({ extra: c.extra, duplicateChunks: c.duplicateChunks, gaps: c.gaps }, { extra: 0, duplicateChunks: 0, gaps: 0 }, 'no event in two chunks, chunks numbered 0..k-1');
    assert.ok(c.lost > 0 && c.lost < persons.length * maxEvents, `only each person's open chunk (it holds the last follow-up) not emitted: ${c.lost}`);
  });
});



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
      const r = await runStreamWorker({ ...env, MEDREP_KILL_PHASE: phase, MEDREP_KILL_AT: String(at) });
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

const registryOf = (dir: string): Registry | null => (fs.existsSync(path.join(dir, 'registry.json')) ? JSON.parse(fs.readFileSync(path.join(dir, 'registry.json'), 'utf8')) : null);
const versionsOf = (dir: string) => registryOf(dir)?.versions.length ?? 0;

/** Every manifest log entry names its file's hash, size and rows. */
async function assertEntriesMatchFiles(out: string, entries: ManifestLogEntry[]): Promise<void> {
  for (const e of entries) {
    const bytes = fs.readFileSync(path.join(out, e.path));
    assert.equal(e.sha256, sha256(bytes), e.path);
    assert.equal(e.bytes, bytes.length, e.path);
    if (e.path.endsWith('.parquet')) assert.equal(await rowsOf(path.join(out, e.path)), e.rows, e.path);
  }
}

describe('kafka runner, continuous mode end to end: a growing manifest and a trainer that follows the running stream (real broker)', function () {
  this.timeout(900_000);

  it('rows without markers into a running stream: samples, a correction and chunks in manifest.d with verifying hashes, train ehr --follow registers versions while it runs; after SIGTERM manifest.json lists exactly manifest.d', async () => {
    const h = await hospital('continuous-follow', 120, 5);
    const { dead, first } = await firstFeedWithoutADeath(h);
    const { prefix, kafkaArgs } = newTopics();
    const out = path.join(h.dir, 'stream');
    const models = path.join(h.dir, 'models');
    const stream = medrepAsync([
      'stream', ...kafkaArgs, '--out', out, '--vocab', h.omop, '--artifacts', h.artifacts, '--close-on', 'watermark',
      '--idle-timeout', '1', '--allowed-lateness-days', '100000', '--manifest-interval', '1', '--health-interval', '0',
    ]);
    let follow: ReturnType<typeof medrepAsync> | undefined;
    const tail = () => `stream ${stream.child.exitCode === null ? 'running' : 'exited'}; its stderr ends: ${stream.stderr().slice(-1500)}${follow ? `\nfollower stderr ends: ${follow.stderr().slice(-1500)}` : ''}`;
    const running = () => assert.equal(stream.child.exitCode, null, `the stream still runs. ${tail()}`);
    const client = testKafka();
    const names = new TopicNames(prefix);
    try {
      const produced = medrep(['produce', '--omop', first, ...kafkaArgs, '--partitions', String(PARTITIONS), '--markers', 'none']);
      assert.equal(produced.status, 0, produced.stderr);
      assert.equal(JSON.parse(produced.stdout.trim().split('\n').pop()!).markers, 0, 'no end-of-load marker sent');
      await until('the first feed drained', () => drained(medrep(['status', ...kafkaArgs]).stdout, prefix), tail, 240_000);
      // Once its sources are idle, new patients a quarter later move the watermark: every patient
      // of the first feed is quiet.
      await sleep(1500);
      await sendNewPatients(client, names, h.omop, 30, dayAfter(h.dataEnd, 90));
      await until('every patient of the first feed in closed chunks', async () => {
        if (filesUnder(path.join(out, 'pretrain'), '.parquet').length === 0) return false;
        const c = await chunkCoverage(out, `person_id < ${NEW_PERSON_BASE}`);
        return c.events > 0 && c.lost === 0;
      }, tail, 240_000);
      await until('the mortality sample of the person whose death has not come', async () => filesUnder(path.join(out, 'samples/mortality'), '.parquet').length > 0
        && (await rowsOf(path.join(out, 'samples/mortality/*.parquet'), `person_id = ${dead.p}`)) === 1, tail);

      // The growing manifest lists the chunks and samples on disk, with hashes that verify.
      const onDisk = (dir: string) => filesUnder(path.join(out, dir), '.parquet').map((f) => path.relative(out, f)).sort();
      await until('manifest.d lists every pretraining and sample shard on disk', () => {
        const listed = new Set(readManifestLog(out).map((e) => e.path));
        return [...onDisk('pretrain'), ...onDisk('samples')].every((p) => listed.has(p));
      }, tail, 30_000);
      const feed1 = readManifestLog(out);
      assert.ok(feed1.some((e) => e.kind === 'pretrain') && feed1.some((e) => e.kind === 'samples' && e.task === 'mortality'), feed1.map((e) => e.path).join(' '));
      await assertEntriesMatchFiles(out, feed1);
      await until('the running manifest.json lists the entries', () => {
        const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
        const listed = new Set((m.shards as { path: string }[]).map((s) => s.path));
        return m.growing === true && feed1.every((e) => listed.has(e.path));
      }, tail, 30_000);
      running();

      // A follower registers a version from the chunks of the running stream.
      follow = medrepAsync(['train', 'ehr', '--shards', out, '--task', 'pretrain', '--follow', '--poll-ms', '300', '--max-versions', '2', '--out', models,
        '--backend', 'cpu', '--hidden', '8', '--layers', '1', '--heads', '2', '--intermediate', '16', '--max-len', '32', '--epochs', '1', '--batch-size', '16']);
      await until('version 1', () => versionsOf(models) >= 1, tail, 240_000);
      const v1 = registryOf(models)!.versions[0];
      const logged = new Map(readManifestLog(out).map((e) => [e.path, e.sha256]));
      assert.ok(v1.newShards.length > 0 && v1.newShards.every((s) => s.path.startsWith('pretrain/') && logged.get(s.path) === s.sha256), 'version 1: chunks the manifest log lists, with their hashes');
      running();

      // The death comes late, within the allowed lateness: a correction of that label.
      const [death] = await sql<{ j: string }>(`SELECT CAST(to_json(d) AS VARCHAR) AS j FROM read_parquet(${lit(path.join(h.omop, 'death.parquet'))}) d WHERE person_id = ${dead.p}`);
      const producer = await OmopRowProducer.connect(client, { names });
      await producer.send('death', death.j, 'late-death.json:1');
      await producer.close();
      const corrections = () => filesUnder(path.join(out, 'samples/mortality/corrections'), '.json');
      const correctionsOf = () => corrections()
        .flatMap((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as { person_id: number; version: number; label: number; retracted: boolean }[])
        .filter((c) => Number(c.person_id) === dead.p);
      await until('the correction of the late death', () => correctionsOf().length > 0, tail);
      assert.deepEqual(correctionsOf().map((c) => ({ version: c.version, label: c.label, retracted: c.retracted })), [{ version: 2, label: 1, retracted: false }]);
      await until('manifest.d lists the correction', () => {
        const listed = new Set(readManifestLog(out).map((e) => e.path));
        return corrections().every((f) => listed.has(path.relative(out, f)));
      }, tail, 30_000);

      // A second feed, a quarter later again: the first new patients are quiet, their chunks are emitted.
      await sendNewPatients(client, names, h.omop, 30, dayAfter(h.dataEnd, 180), NEW_PERSON_BASE + 1000);
      await until('version 2', () => versionsOf(models) >= 2, tail, 300_000);
      running();
      const registry = registryOf(models)!;
      const v2 = registry.versions[1];
      const v1Paths = new Set(v1.shards.map((s) => s.path));
      assert.ok(v2.newShards.length > 0 && v2.newShards.every((s) => !v1Paths.has(s.path)), 'version 2: chunks of the second feed only');
      assert.equal(registry.promoted, v2.promoted ? 2 : 1, 'promoted by the validation rule');
      const followed = await follow.done;
      assert.equal(followed.status, 0, followed.stderr);

      // replay --verify reads the growing log of the running stream.
      const entries = readManifestLog(out);
      await assertEntriesMatchFiles(out, entries);
      const verified = medrep(['replay', ...kafkaArgs, '--out', path.join(h.dir, 'replay-running'), '--verify', path.join(out, MANIFEST_LOG_DIR), '--from-time', '1970-01-01T00:00:00Z']);
      assert.equal(verified.status, 0, verified.stderr);
      assert.match(verified.stdout, /^(\d+) of \1 shards match the manifest/m);
      running();
    } finally {
      if (follow && follow.child.exitCode === null) follow.child.kill('SIGKILL');
      stream.child.kill('SIGTERM');
    }
    const r = await stream.done;
    assert.equal(r.status, EXIT.stopped, `SIGTERM: exit 5 (stopped); stderr: ${r.stderr.slice(-1500)}`);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    assert.equal(manifest.growing, undefined, 'the final manifest is not the running one');
    assert.deepEqual(filesUnder(out, '.tmp'), []);
    const log = readManifestLog(out);
    await assertEntriesMatchFiles(out, log);
    const sinkShards = (manifest.shards as { kind: string; path: string }[]).filter((s) => ['events', 'pretrain', 'samples', 'corrections'].includes(s.kind));
    assert.deepEqual(sinkShards, log.map(manifestShardOf).sort((a, b) => (a.path < b.path ? -1 : 1)), 'manifest.json lists exactly the manifest.d entries');
    const written = ['events', 'pretrain', 'samples'].flatMap((d) => [...filesUnder(path.join(out, d), '.parquet'), ...filesUnder(path.join(out, d), '.json')]).map((f) => path.relative(out, f)).sort();
    assert.deepEqual(sinkShards.map((s) => s.path).sort(), written, 'every shard on disk is listed');
    const all = await chunkCoverage(out);
    assert.deepEqual({ extra: all.extra, duplicateChunks: all.duplicateChunks, gaps: all.gaps }, { extra: 0, duplicateChunks: 0, gaps: 0 });
  });
});
