// The Kafka runner against the real broker (KAFKA_BROKERS, default 127.0.0.1:9092): `produce` +
// `stream --exit-when-idle` give the same event and pretraining rows as `runLocal` with the same
// decile artifact (compared with DuckDB EXCEPT ALL both ways, ignoring shard boundaries); a poison
// message is dead-lettered and the stage goes on.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateSynthetic } from '../../../synth';
import { runLocal } from '../../../runners/local/localRunner';
import { silentLogger } from '../../../common/progress';
import { produceOmop, sendEndOfLoad } from '../../../runners/kafka/omopLoad';
import { OmopRowProducer } from '../../../runners/kafka/omopProducer';
import { prng } from '../../helpers/syntheticOmop';
import { TopicNames } from '../../../runners/kafka/topics';
import { runReplay } from '../../../runners/kafka/replay';
import { runStream } from '../../../runners/kafka/streamRunner';
import { streamTopic } from '../../../runners/kafka/streamTopics';
import { decodeStreamValue } from '../../../runners/kafka/streamCodec';
import { readAll, testKafka, uniquePrefix, runStreamWorker } from '../../helpers/kafka';
import { OMOP, lit, sql, tempDir } from '../../helpers';
import { assertSameRows, differences, differencesOf, kafkaOpts } from '../../helpers/streamCompare';
import { assertIdsExact } from '../../helpers/idChecks';
import { producedSyntheticLoad } from '../../helpers/syntheticLoad';
import { handMade } from '../../helpers/handMadeOmop';

export const PARTITIONS = 3;

export async function localThenStream(omop: string, name: string, streamExtra: Partial<Parameters<typeof runStream>[0]> = {}, meds = false, localExtra: Partial<Parameters<typeof runLocal>[0]> = {}) {
  const dir = tempDir(name);
  const local = await runLocal({ omop, out: path.join(dir, 'local'), log: silentLogger, meds, ...localExtra });
  const prefix = uniquePrefix();
  const kafka = kafkaOpts(prefix);
  const client = testKafka();
  const produced = await produceOmop({ omop, kafka, client, partitions: PARTITIONS, log: silentLogger });
  const stream = await runStream({
    kafka, out: path.join(dir, 'stream'), vocab: omop, artifacts: path.join(local.out, 'artifacts'),
    exitWhenIdleMs: 2000, healthIntervalMs: 0, handleSignals: false, log: silentLogger, client, ...streamExtra,
  });
  return { dir, local, produced, stream, prefix };
}

describe('kafka runner: produce + stream = local runner (real broker)', function () {
  this.timeout(240_000);

  it('synthetic hospital (Parquet): same events, pretraining sequences, labelled samples and MEDS as runLocal; replay verifies every shard', async () => {
    const omop = path.join(tempDir('synth-stream'), 'omop');
    await generateSynthetic({ persons: 120, seed: 5, out: omop, format: 'parquet', site: 'A' });
    // Several events shards per partition, so that a mid-stream replay has earlier ones to skip.
    const r = await localThenStream(omop, 'synth-eq', { eventsPerShard: 2000 }, true);
    await assertSameRows(r.local.out, r.stream.out);
    // MEDS: data rows, subject splits and every label file hold the same rows as the local runner's.
    for (const rel of ['meds/data', 'meds/metadata/subject_splits', 'meds/metadata/codes']) {
      const glob = rel === 'meds/data' ? rel : rel.replace(/\/[^/]+$/, '');
      const d = rel === 'meds/data' ? await differences(r.local.out, r.stream.out, glob) : await differencesOf(path.join(r.local.out, rel + '.parquet'), path.join(r.stream.out, rel + '.parquet'));
      assert.ok(d.rowsA > 0, rel);
      assert.deepEqual(d, { onlyA: 0, onlyB: 0, rowsA: d.rowsA, rowsB: d.rowsA }, `${rel}: same rows`);
    }
    const labelFiles = (out: string) => (fs.readdirSync(path.join(out, 'meds/labels'), { recursive: true }) as string[]).filter((f) => f.endsWith('.parquet')).sort();
    assert.deepEqual(labelFiles(r.stream.out), labelFiles(r.local.out));
    for (const f of labelFiles(r.local.out)) {
      const d = await differencesOf(path.join(r.local.out, 'meds/labels', f), path.join(r.stream.out, 'meds/labels', f));
      assert.deepEqual(d, { onlyA: 0, onlyB: 0, rowsA: d.rowsA, rowsB: d.rowsA }, `meds/labels/${f}: same rows`);
    }
    assert.equal(r.produced.rows, r.local.rowsInTotal - r.local.rejectsTotal + (r.produced.byTable.observation_period ?? 0));
    // Shards are named after topic, partition and offset range, and listed with offsets.
    const manifest = JSON.parse(fs.readFileSync(path.join(r.stream.out, 'manifest.json'), 'utf8'));
    assert.equal(manifest.runner, 'kafka');
    assert.equal(manifest.artifacts.deciles.version, JSON.parse(fs.readFileSync(path.join(r.local.out, 'artifacts/deciles.json'), 'utf8')).version);
    const kafkaShards = manifest.shards.filter((x: { kind: string }) => ['events', 'pretrain', 'samples'].includes(x.kind));
    assert.ok(kafkaShards.length >= 3);
    for (const s of kafkaShards) assert.match(path.basename(s.path), new RegExp(`^${r.prefix.replace(/\./g, '\\.')}medrep\\.(events|pretrain|samples)-p\\d-\\d{20}-\\d{20}\\.parquet$`));

    // Table-1 counts (cohort, positives, negatives, censored) summed over partitions equal the batch labeler's.
    const pick = (ts: { task: string; cohort: number; positives: number; negatives: number; censored: number }[]) =>
      ts.map((t) => ({ task: t.task, cohort: t.cohort, positives: t.positives, negatives: t.negatives, censored: t.censored })).sort((a, b) => (a.task < b.task ? -1 : 1));
    const localManifest = JSON.parse(fs.readFileSync(path.join(r.local.out, 'manifest.json'), 'utf8'));
    assert.ok(localManifest.counts.tasks.length >= 9);
    assert.deepEqual(pick(manifest.counts.tasks), pick(localManifest.counts.tasks));

    // Replay from time zero rebuilds every shard with the manifest's hash.
    const client = testKafka();
    const verify = path.join(r.stream.out, 'manifest.json');
    const all = await runReplay({ kafka: kafkaOpts(r.prefix), client, out: path.join(r.dir, 'replay0'), verify, fromTime: '1970-01-01T00:00:00Z', log: silentLogger });
    assert.equal(all.shards.length, kafkaShards.length);
    assert.deepEqual(all.shards.filter((x) => !x.match), [], 'every shard matches its hash');
    // From a mid-stream timestamp (when a later events shard's first message was written): per
    // topic partition the replay starts at the first message written at or after it, and rebuilds
    // exactly the shards that start there or later. Stages write in bursts, so shards before it
    // may share its timestamp: which ones are before is read from the topics' timestamps.
    const events = manifest.shards.filter((x: { kind: string }) => x.kind === 'events');
    const later = events.reduce((a: { from_offset: string }, b: { from_offset: string }) => (BigInt(b.from_offset) > BigInt(a.from_offset) ? b : a));
    const topics = [...new Set(kafkaShards.map((x: { topic: string }) => x.topic))] as string[];
    const written = new Map<string, { offset: bigint; ts: number }[]>();
    for (const t of topics) for (const m of await readAll(client, t)) {
      const k = `${t}/${m.partition}`;
      if (!written.has(k)) written.set(k, []);
      written.get(k)!.push({ offset: BigInt(m.offset), ts: Number(m.timestamp) });
    }
    const midTs = written.get(`${later.topic}/${later.partition}`)!.find((m) => m.offset === BigInt(later.from_offset))!.ts;
    const startOf = (k: string) => written.get(k)?.find((m) => m.ts >= midTs)?.offset ?? null;
    const expected = kafkaShards.filter((x: { topic: string; partition: number; from_offset: string }) => {
      const first = startOf(`${x.topic}/${x.partition}`);
      return first !== null && BigInt(x.from_offset) >= first;
    }).map((x: { path: string }) => x.path).sort();
    assert.ok(expected.includes(later.path));
    const mid = await runReplay({ kafka: kafkaOpts(r.prefix), client, out: path.join(r.dir, 'replay1'), verify, fromTime: new Date(midTs).toISOString(), log: silentLogger });
    assert.deepEqual(mid.shards.map((x) => x.path).sort(), expected, 'the shards written at or after the time');
    assert.equal(mid.skipped, kafkaShards.length - expected.length);
    assert.ok(mid.shards.every((x) => x.match));
    // A shard changed on disk after the run is not what the manifest says; replay reports it.
    const tampered = path.join(r.dir, 'tampered.json');
    const m2 = { ...manifest, shards: manifest.shards.map((x: { path: string; sha256: string }) => (x.path === later.path ? { ...x, sha256: '0'.repeat(64) } : x)) };
    fs.writeFileSync(tampered, JSON.stringify(m2));
    const bad = await runReplay({ kafka: kafkaOpts(r.prefix), client, out: path.join(r.dir, 'replay2'), verify: tampered, fromTime: '1970-01-01T00:00:00Z', log: silentLogger });
    assert.deepEqual(bad.shards.filter((x) => !x.match).map((x) => x.path), [later.path]);
  });

  it('synthetic hospital with hashed 64-bit ids (Parquet): same rows and MEDS as runLocal, every id exact, none rejected', async () => {
    const omop = path.join(tempDir('hashed-stream'), 'omop');
    await generateSynthetic({ persons: 100, seed: 17, out: omop, format: 'parquet', site: 'A', ids: 'hashed' });
    const r = await localThenStream(omop, 'hashed-eq', {}, true);
    assert.equal(r.local.rejectsTotal, 0, JSON.stringify(r.local.rejects));
    assert.equal(r.stream.rejects, 0);
    await assertSameRows(r.local.out, r.stream.out);
    for (const rel of ['meds/data', 'meds/labels']) {
      const d = await differences(r.local.out, r.stream.out, rel === 'meds/labels' ? 'meds/labels/mortality' : rel);
      assert.ok(d.rowsA > 0, rel);
      assert.deepEqual(d, { onlyA: 0, onlyB: 0, rowsA: d.rowsA, rowsB: d.rowsA }, `${rel}: same rows`);
    }
    const ids = await assertIdsExact(omop, r.stream.out);
    assert.ok(ids.beyondSafe > 90, `persons beyond 2^53: ${ids.beyondSafe}`);
  });

  it('GiBleed (CSV): same events, pretraining sequences and samples as runLocal; both skip the phenotype task; events shards within 2x of its count at the same bound', async () => {
    const bound = 25_000;
    const r = await localThenStream(OMOP.gibleed, 'gibleed-eq', { eventsPerShard: bound }, false, { eventsPerShard: bound });
    await assertSameRows(r.local.out, r.stream.out);
    // A load rolls shards by size and closes the last one at its end: per partition, every events
    // shard but the last holds the bound, and the last ends at the partition's last message.
    assert.ok(r.local.shards.events >= 8, `local events shards: ${r.local.shards.events}`);
    assert.ok(r.stream.shards.events >= r.local.shards.events && r.stream.shards.events <= 2 * r.local.shards.events, `events shards: stream ${r.stream.shards.events}, local ${r.local.shards.events}`);
    const manifest = JSON.parse(fs.readFileSync(path.join(r.stream.out, 'manifest.json'), 'utf8'));
    const topic = streamTopic(new TopicNames(r.prefix), 'events');
    // The last message holding rows (a load-close marker may follow it).
    const last = new Map<number, string>();
    for (const m of await readAll(testKafka(), topic)) if (decodeStreamValue({ topic, value: m.bytes, headers: m.headers }).k !== 'end') last.set(m.partition, m.offset);
    for (let p = 0; p < PARTITIONS; p++) {
      const mine = manifest.shards.filter((x: { kind: string; partition: number }) => x.kind === 'events' && x.partition === p);
      assert.ok(mine.length >= 2, `partition ${p}: ${mine.length} events shards`);
      for (const x of mine.slice(0, -1)) assert.ok(x.rows >= bound && x.rows < bound + 2000, `${x.path}: ${x.rows} rows`);
      assert.ok(BigInt(mine[mine.length - 1].to_offset) >= BigInt(last.get(p)!), `partition ${p}: the last shard holds the load's last rows`);
    }
    assert.deepEqual(r.stream.tasksSkipped, r.local.tasksSkipped);
    assert.deepEqual(r.stream.tasksSkipped.map((t) => t.task), ['phenotypes'], 'no ICD9CM concepts in the vocabulary');
    assert.ok(!fs.existsSync(path.join(r.stream.out, 'samples/phenotypes')));
  });

  it('Synthea27Nj (CSV): same events, pretraining sequences and samples as runLocal; at the default bounds one events shard per partition', async () => {
    const r = await localThenStream(OMOP.synthea, 'synthea-eq');
    await assertSameRows(r.local.out, r.stream.out);
    // The load's end closes each partition's shard once, after every table's marker (not once per table).
    assert.equal(r.local.shards.events, 1);
    assert.equal(r.stream.shards.events, PARTITIONS);
  });

  it('a hand-made hospital whose rows name concepts its vocabulary lacks, with date-only admission-day facts: same rows as runLocal', async () => {
    // Persons 1-3 each have an inpatient stay (admitted 08:00, 5 days) and a later visit. Concept
    // 81902 (urinary tract infection, the UTI task's list) and 4112343 are not in the vocabulary.
    const person = (id: number) => [id, 8507, 1960, 1, 1, null];
    const visits: (string | number | null)[][] = [];
    const conds: (string | number | null)[][] = [];
    for (const p of [1, 2, 3]) {
      visits.push([p * 10, p, 9201, '2020-03-10', '2020-03-10 08:00:00', '2020-03-15', '2020-03-15 12:00:00']);
      visits.push([p * 10 + 1, p, 9201, '2020-06-01', '2020-06-01 08:00:00', '2020-06-02', '2020-06-02 12:00:00']);
      conds.push([p * 100, p, 201826, '2020-03-10', null, 0, p * 10]); // date-only, admission day
      conds.push([p * 100 + 1, p, 4112343, '2020-03-10', '2020-03-10 06:00:00', 0, null]); // before the admission, not in the vocabulary
      conds.push([p * 100 + 2, p, 316866, '2020-06-01', null, 0, p * 10 + 1]);
    }
    conds.push([900, 1, 81902, '2020-03-12', '2020-03-12 10:00:00', 0, 10]); // UTI on day 3 of person 1's stay
    const omop = handMade('stream-hand', {
      person: [['person_id', 'gender_concept_id', 'year_of_birth', 'month_of_birth', 'day_of_birth', 'birth_datetime'], [person(1), person(2), person(3)]],
      visit_occurrence: [['visit_occurrence_id', 'person_id', 'visit_concept_id', 'visit_start_date', 'visit_start_datetime', 'visit_end_date', 'visit_end_datetime'], visits],
      condition_occurrence: [['condition_occurrence_id', 'person_id', 'condition_concept_id', 'condition_start_date', 'condition_start_datetime', 'condition_source_concept_id', 'visit_occurrence_id'], conds],
    });
    const r = await localThenStream(omop, 'hand-eq');
    await assertSameRows(r.local.out, r.stream.out);
    assert.deepEqual(r.local.notInVocabulary, { condition_occurrence: 4 });
    assert.deepEqual(r.stream.notInVocabulary, r.local.notInVocabulary, 'both runners count them');
    assert.equal(JSON.parse(fs.readFileSync(path.join(r.stream.out, 'manifest.json'), 'utf8')).counts.not_in_vocabulary.condition_occurrence, 4);
    assert.equal(r.stream.rejects, 0, 'nothing dead-lettered');
    // The labeler saw the UTI row the vocabulary lacks, in both runners (samples are compared above).
    assert.equal(r.local.tasks.find((t) => t.task === 'uti')!.positives, 1);
    const [seq] = await sql<{ s: number[] }>(`SELECT segments s FROM read_parquet(${lit(path.join(r.stream.out, 'pretrain/*.parquet'))}) WHERE person_id = 2`);
    // [CLS], gender, Mar 10 00:00 (date-only: the stay), Mar 10 06:00 (before it), Jun 1 (date-only: the later visit).
    assert.deepEqual(Array.from(seq.s), [0, 0, 1, 0, 2]);
  });
});




describe('kafka runner under faults (real broker)', function () {
  this.timeout(300_000);
  const seed = Number(process.env.MEDREP_FAULT_SEED ?? Date.now() % 100_000);

  it(`SIGKILLed at 5 random points (seed ${seed}) and poison messages: final shards equal runLocal, poison in the dead-letter topic`, async () => {
    const { omop, local, prefix, kafka, client, out, workerEnv } = await producedSyntheticLoad('stream-kill', 150, 9, PARTITIONS, { endOfLoad: false });
    const names = new TopicNames(prefix);
    // Poison: not JSON, a person_id of the wrong type, an unreadable date, a value that is no row.
    // (A concept the vocabulary lacks is no poison: it is kept as its own id, as by runLocal.)
    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const poison = [
      '{not json',
      JSON.stringify({ person_id: 'abc', measurement_id: 1, measurement_concept_id: 3000963, measurement_date: '2020-01-01', measurement_type_concept_id: 0 }),
      JSON.stringify({ person_id: 1, measurement_id: 2, measurement_concept_id: 3000963, measurement_date: 'yesterday', measurement_type_concept_id: 0 }),
      'null',
    ];
    // A multi-row message of person 1 (the producer's batched form) whose rows are all unusable: each
    // is dead-lettered alone, named by its index; a row of another person under this key included.
    const elements = [
      42,
      { person_id: 2, measurement_id: 4, measurement_concept_id: 3000963, measurement_date: '2020-01-01', measurement_type_concept_id: 0 },
      { person_id: 1, measurement_id: 5, measurement_concept_id: 3000963, measurement_date: 'yesterday', measurement_type_concept_id: 0 },
    ];
    await producer.send({
      topic: names.omop('measurement'),
      messages: [...poison.map((value) => ({ partition: 0, key: '1', value })), { partition: 0, key: '1', value: JSON.stringify(elements) }],
    });
    await producer.disconnect();
    await sendEndOfLoad(client, names, PARTITIONS, Date.parse(JSON.parse(fs.readFileSync(path.join(local.out, 'manifest.json'), 'utf8')).counts.label_watermark));

    const env = { ...workerEnv, MEDREP_TXN_SIZE: '50' };
    const rand = prng(seed);
    const phases = ['transformed', 'produced', 'offsets-sent', 'committed'];
    let kills = 0;
    for (let k = 0; k < 5; k++) {
      const phase = phases[Math.floor(rand() * phases.length)];
      const at = 1 + Math.floor(rand() * 8);
      const r = await runStreamWorker({ ...env, MEDREP_KILL_PHASE: phase, MEDREP_KILL_AT: String(at) });
      assert.equal(r.signal, 'SIGKILL', `worker ${k} should die at ${phase} #${at}; exit ${r.code}; stderr: ${r.stderr}`);
      kills++;
      // The killed member stays in the group until its session (6 s) expires; a worker that joined
      // before that would get only part of the partitions and could go idle on them.
      await new Promise((r) => setTimeout(r, 7000));
    }
    assert.equal(kills, 5);
    // Restarted without a fault, it finishes the load; the manifest is written from what is on disk.
    await runStream({
      kafka, client, out, vocab: omop, artifacts: path.join(local.out, 'artifacts'), exitWhenIdleMs: 2000, maxMessagesPerTransaction: 100,
      eventsPerShard: 2000, sequencesPerShard: 50, sessionTimeoutMs: 6000, rebalanceTimeoutMs: 10000, heartbeatIntervalMs: 500,
      healthIntervalMs: 0, handleSignals: false, log: silentLogger,
    });
    await assertSameRows(local.out, out);

    const dlq = await readAll(client, names.dlq);
    const fromStage = dlq.filter((m) => m.headers.stage === 'canonicalize');
    const elementValues = elements.map((e) => JSON.stringify(e));
    assert.deepEqual(fromStage.map((m) => m.value).sort(), [...poison, ...elementValues].sort(), 'each poison message (or row of one) dead-lettered once, unchanged');
    const ofElements = fromStage.filter((m) => elementValues.includes(m.value!));
    assert.deepEqual(ofElements.map((m) => m.headers.source.replace(/^.*#/, '')).sort(), ['0', '1', '2'], 'the source names the row inside the message');
    assert.match(ofElements.find((m) => m.value === elementValues[1])!.headers.reason, /person_id: 2 differs from the message key/);
    const reasons = fromStage.map((m) => m.headers.reason).sort();
    assert.ok(reasons.some((x) => x.startsWith('not-json')) || reasons.some((x) => /JSON/.test(x)), reasons.join(' | '));
    assert.ok(reasons.some((x) => /column person_id/.test(x)), reasons.join(' | '));
    assert.ok(reasons.some((x) => /column measurement_date/.test(x)), reasons.join(' | '));
    assert.ok(reasons.some((x) => /a row must be a JSON object/.test(x)), reasons.join(' | '));
    const rejects = fs.readFileSync(path.join(out, 'rejects', 'measurement.jsonl'), 'utf8').trim().split('\n');
    assert.equal(rejects.length, 7, 'the rejects folder holds the dead letters');
  });
});

describe('kafka runner with two worker processes (real broker)', function () {
  this.timeout(300_000);

  it('two stream processes share the partitions; the shards equal runLocal', async () => {
    const { omop, local, kafka, client, out, workerEnv } = await producedSyntheticLoad('stream-two', 100, 13, PARTITIONS);
    const env = { ...workerEnv, MEDREP_TXN_SIZE: '50', MEDREP_IDLE_MS: '4000' };
    const [a, b] = await Promise.all([runStreamWorker(env), runStreamWorker(env)]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const consumed = [a, b].map((r) => JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>);
    assert.ok(consumed.every((c) => c.canonicalize > 0), `both workers transformed rows: ${JSON.stringify(consumed)}`);
    // A last pass finds every group drained, then writes the manifest from the shards on disk.
    const s = await runStream({
      kafka, client, out, vocab: omop, artifacts: path.join(local.out, 'artifacts'), exitWhenIdleMs: 1500, healthIntervalMs: 0,
      handleSignals: false, log: silentLogger, meds: false,
    });
    assert.equal(s.stages.canonicalize.consumed, 0, 'the two workers consumed everything');
    await assertSameRows(local.out, out);
  });
});

describe('kafka runner: a later load with a late death (real broker)', function () {
  this.timeout(300_000);

  /** Loads the data without one person's death, closes the load, then sends the death as a second load. */
  async function twoLoads(omop: string, dir: string, person: number, watermark: number, allowedLatenessMs: number, artifacts: string) {
    const prefix = uniquePrefix();
    const kafka = kafkaOpts(prefix);
    const client = testKafka();
    const names = new TopicNames(prefix);
    const without = path.join(dir, `omop-${allowedLatenessMs}`);
    fs.mkdirSync(without);
    for (const f of fs.readdirSync(omop)) if (f !== 'death.parquet') fs.symlinkSync(path.join(omop, f), path.join(without, f));
    await sql(`COPY (SELECT * FROM read_parquet(${lit(path.join(omop, 'death.parquet'))}) WHERE person_id <> ${person}) TO ${lit(path.join(without, 'death.parquet'))} (FORMAT parquet)`);
    await produceOmop({ omop: without, kafka, client, partitions: PARTITIONS, log: silentLogger, endOfLoad: false });
    await sendEndOfLoad(client, names, PARTITIONS, watermark);
    const out = path.join(dir, `stream-${allowedLatenessMs}`);
    const stream = () => runStream({ kafka, client, out, vocab: omop, artifacts, exitWhenIdleMs: 2000, healthIntervalMs: 0, handleSignals: false, log: silentLogger, meds: false, allowedLatenessMs });
    await stream();
    // Later, a second load brings the death.
    const [death] = await sql<{ j: string }>(`SELECT CAST(to_json(d) AS VARCHAR) AS j FROM read_parquet(${lit(path.join(omop, 'death.parquet'))}) d WHERE person_id = ${person}`);
    const producer = await OmopRowProducer.connect(client, { names });
    await producer.send('death', death.j, 'late-death.json:1');
    await producer.close();
    await sendEndOfLoad(client, names, PARTITIONS, watermark);
    await stream();
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    const dirOf = path.join(out, 'samples/mortality/corrections');
    const corrections = fs.existsSync(dirOf) ? fs.readdirSync(dirOf).flatMap((f) => JSON.parse(fs.readFileSync(path.join(dirOf, f), 'utf8'))) : [];
    const [sample] = await sql<{ label: boolean }>(`SELECT label FROM read_parquet(${lit(path.join(out, 'samples/mortality/*.parquet'))}) WHERE person_id = ${person}`);
    return { manifest, corrections, sample };
  }

  it('inside the allowed lateness it emits a correction (version 2); outside it is counted, not applied', async () => {
    const dir = tempDir('stream-late');
    const omop = path.join(dir, 'omop');
    await generateSynthetic({ persons: 150, seed: 5, out: omop, format: 'parquet', site: 'A' });
    const local = await runLocal({ omop, out: path.join(dir, 'local'), log: silentLogger, meds: false });
    const watermark = Date.parse(JSON.parse(fs.readFileSync(path.join(local.out, 'manifest.json'), 'utf8')).counts.label_watermark);
    // A person who died in the index stay: mortality label 1 in the local run.
    const [dead] = await sql<{ p: number; d: number }>(`SELECT CAST(s.person_id AS DOUBLE) AS p, CAST(epoch_ms(CAST(min(d.death_date) AS TIMESTAMP)) AS DOUBLE) AS d
      FROM read_parquet(${lit(path.join(local.out, 'samples/mortality/*.parquet'))}) s JOIN read_parquet(${lit(path.join(omop, 'death.parquet'))}) d ON d.person_id = s.person_id
      WHERE s.label GROUP BY 1 ORDER BY 1 LIMIT 1`);
    assert.ok(dead, 'the synthetic data have an in-hospital death');
    const artifacts = path.join(local.out, 'artifacts');

    const within = await twoLoads(omop, dir, dead.p, watermark, watermark - dead.d + 86_400_000, artifacts);
    assert.equal(within.sample.label, false, 'load 1 (no death yet) labels the stay negative');
    const fix = within.corrections.filter((c: { person_id: number }) => c.person_id === dead.p);
    assert.equal(fix.length, 1);
    assert.deepEqual({ version: fix[0].version, label: fix[0].label, retracted: fix[0].retracted }, { version: 2, label: 1, retracted: false });
    assert.ok(within.manifest.counts.late_records.corrections >= 1);
    assert.equal(within.manifest.counts.late_records.dropped.death, 0);

    const outside = await twoLoads(omop, dir, dead.p, watermark, 0, artifacts);
    assert.equal(outside.sample.label, false);
    assert.deepEqual(outside.corrections.filter((c: { person_id: number }) => c.person_id === dead.p), []);
    assert.equal(outside.manifest.counts.late_records.dropped.death, 1, 'the late death is counted, not applied');
  });
});
