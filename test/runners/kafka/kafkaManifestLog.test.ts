// The growing manifest of a running stream (OUT/manifest.d/, one entry per durable shard) and a
// trainer following it, against the real broker at KAFKA_BROKERS: a stream that keeps running
// gets two loads; `medrep train ehr --follow` registers a version from each while the stream runs;
// every entry's hash and rows are those of its file; after SIGTERM the final manifest.json lists
// exactly the entries and `medrep replay --verify` rebuilds them. A stop between a commit and the
// entry's write is reconciled by the next start; a temp file or an uncommitted shard is never listed.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateSynthetic } from '../../../synth';
import { runLocal } from '../../../runners/local/localRunner';
import { runStream } from '../../../runners/kafka/streamRunner';
import { produceOmop } from '../../../runners/kafka/omopLoad';
import { silentLogger, Logger } from '../../../common/progress';
import { EXIT } from '../../../common/errors';
import { MANIFEST_LOG_DIR, ManifestLogEntry, manifestShardOf, readManifestLog } from '../../../sinks/manifest';
import { sha256 } from '../../../transforms/hashing';
import type { Registry } from '../../../trainers/behrt/follow';
import { BROKERS, testKafka, uniquePrefix } from '../../helpers/kafka';
import { lit, sql, tempDir } from '../../helpers';
import { medrep, medrepAsync } from '../../helpers/cli';
import { kafkaOpts } from '../../helpers/streamCompare';

const PARTITIONS = 2;

/** Waits until `ready()` holds (checked every 250 ms); fails naming `what` after `ms`. */
async function waitFor(what: string, ready: () => boolean | Promise<boolean>, ms: number, detail: () => string = () => ''): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ready())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A synthetic hospital split into two loads by person (even and odd ids), and its local run. */
async function twoLoadHospital(name: string, persons: number) {
  const dir = tempDir(name);
  const omop = path.join(dir, 'omop');
  await generateSynthetic({ persons, seed: 17, out: omop, format: 'parquet', site: 'A' });
  const local = await runLocal({ omop, out: path.join(dir, 'local'), tasks: 'none', log: silentLogger, meds: false });
  const loads = [0, 1].map((k) => path.join(dir, `load${k}`));
  for (const [k, folder] of loads.entries()) {
    fs.mkdirSync(folder);
    for (const f of fs.readdirSync(omop).filter((x) => x.endsWith('.parquet'))) {
      if (f.startsWith('concept')) fs.symlinkSync(path.join(omop, f), path.join(folder, f));
      else await sql(`COPY (SELECT * FROM read_parquet(${lit(path.join(omop, f))}) WHERE person_id % 2 = ${k}) TO ${lit(path.join(folder, f))} (FORMAT parquet)`);
    }
  }
  // Pretraining chunks are per person: each load's rows, from the local run of all of them.
  const pretrainRows = await Promise.all([0, 1].map(async (k) => {
    const [r] = await sql<{ n: bigint }>(`SELECT count(*) AS n FROM read_parquet(${lit(path.join(local.out, 'pretrain', '*.parquet'))}) WHERE person_id % 2 = ${k}`);
    return Number(r.n);
  }));
  return { dir, omop, local, loads, pretrainRows, artifacts: path.join(local.out, 'artifacts') };
}

const pretrainEntries = (out: string) => readManifestLog(out).filter((e) => e.kind === 'pretrain');
const rowsOf = (entries: ManifestLogEntry[]) => entries.reduce((a, e) => a + e.rows, 0);
const readRegistryFile = (dir: string): Registry | null => (fs.existsSync(path.join(dir, 'registry.json')) ? JSON.parse(fs.readFileSync(path.join(dir, 'registry.json'), 'utf8')) : null);

describe('the manifest log of a running stream and a trainer that follows it (real broker)', function () {
  this.timeout(600_000);
  const children: Array<ReturnType<typeof medrepAsync>> = [];
  afterEach(function () {
    for (const c of children.splice(0)) {
      if (this.currentTest?.state === 'failed') process.stderr.write(`--- child, last lines:\n${c.stderr().slice(-3000)}\n`);
      if (c.child.exitCode === null) c.child.kill('SIGKILL');
    }
  });

  it('train ehr --follow registers a version per load while the stream runs; after SIGTERM manifest.json lists exactly manifest.d and replay --verify passes', async () => {
    const h = await twoLoadHospital('manifest-follow', 120);
    const prefix = uniquePrefix();
    const kafka = ['--brokers', BROKERS, '--topic-prefix', prefix];
    const out = path.join(h.dir, 'stream');
    const models = path.join(h.dir, 'models');
    const produce = (k: number) => {
      const r = medrep(['produce', '--omop', h.loads[k], ...kafka, '--partitions', String(PARTITIONS)]);
      assert.equal(r.status, 0, r.stderr);
    };

    // Load 1, with end-of-load markers; the stream keeps running (no --exit-when-idle).
    produce(0);
    const stream = medrepAsync(['stream', ...kafka, '--out', out, '--vocab', h.omop, '--artifacts', h.artifacts, '--tasks', 'none',
      '--sequences-per-shard', '15', '--transaction-size', '300', '--manifest-interval', '1', '--health-interval', '0']);
    children.push(stream);
    await waitFor('load 1 in manifest.d', () => rowsOf(pretrainEntries(out)) === h.pretrainRows[0], 180_000, () => stream.stderr());
    const load1 = pretrainEntries(out);
    assert.ok(load1.length >= 2, `several pretraining shards in load 1 (${load1.length})`);
    // manifest.json follows the log while the stream runs.
    await waitFor('manifest.json with load 1', () => {
      const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
      return m.growing === true && m.shards.filter((s: { kind: string }) => s.kind === 'pretrain').length === load1.length;
    }, 30_000);

    const follow = medrepAsync(['train', 'ehr', '--shards', out, '--task', 'pretrain', '--follow', '--poll-ms', '300', '--max-versions', '2', '--out', models,
      '--backend', 'cpu', '--hidden', '8', '--layers', '1', '--heads', '2', '--intermediate', '16', '--max-len', '32', '--epochs', '1', '--batch-size', '16']);
    children.push(follow);
    await waitFor('version 1', () => (readRegistryFile(models)?.versions.length ?? 0) >= 1, 240_000, () => follow.stderr());
    const v1 = readRegistryFile(models)!.versions[0];
    assert.deepEqual(v1.newShards.map((s) => s.path).sort(), load1.map((e) => e.path).sort(), 'version 1: the shards of load 1');
    assert.equal(v1.promoted, true);

    // Load 2 while the stream and the follower run.
    produce(1);
    await waitFor('version 2', () => (readRegistryFile(models)?.versions.length ?? 0) >= 2, 300_000, () => `${stream.stderr().slice(-2000)}\n${follow.stderr()}`);
    assert.equal(stream.child.exitCode, null, 'the stream still runs');
    const registry = readRegistryFile(models)!;
    const v2 = registry.versions[1];
    const load1Paths = new Set(load1.map((e) => e.path));
    assert.ok(v2.newShards.length > 0 && v2.newShards.every((s) => !load1Paths.has(s.path)), 'version 2: shards of load 2 only');
    assert.deepEqual(v2.shards.map((s) => s.path).sort(), [...v1.shards, ...v2.newShards].map((s) => s.path).sort());
    assert.equal(registry.promoted, v2.promoted ? 2 : 1, 'promoted by the validation rule');
    const followed = await follow.done;
    assert.equal(followed.status, 0, followed.stderr);
    await waitFor('load 2 in manifest.d', () => rowsOf(pretrainEntries(out)) === h.pretrainRows[0] + h.pretrainRows[1], 120_000, () => stream.stderr());

    // Every entry names its file's hash, size and rows.
    const entries = readManifestLog(out);
    for (const e of entries) {
      const bytes = fs.readFileSync(path.join(out, e.path));
      assert.equal(e.sha256, sha256(bytes), e.path);
      assert.equal(e.bytes, bytes.length, e.path);
      const [r] = await sql<{ n: bigint }>(`SELECT count(*) AS n FROM read_parquet(${lit(path.join(out, e.path))})`);
      assert.equal(e.rows, Number(r.n), e.path);
    }
    assert.ok(entries.some((e) => e.kind === 'events'));
    // replay --verify reads the growing log of the running stream as it reads a finished manifest.
    const running = medrep(['replay', ...kafka, '--out', path.join(h.dir, 'replay-running'), '--verify', path.join(out, MANIFEST_LOG_DIR), '--from-time', '1970-01-01T00:00:00Z']);
    assert.equal(running.status, 0, running.stderr);
    assert.match(running.stdout, new RegExp(`^${entries.length} of ${entries.length} shards match the manifest`, 'm'));

    stream.child.kill('SIGTERM');
    const stopped = await stream.done;
    assert.equal(stopped.status, EXIT.stopped, stopped.stderr);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    assert.equal(manifest.growing, undefined, 'the final manifest is not the running one');
    const sinkShards = manifest.shards.filter((s: { kind: string }) => ['events', 'pretrain', 'samples'].includes(s.kind));
    assert.deepEqual(sinkShards, readManifestLog(out).map(manifestShardOf).sort((a, b) => (a.path < b.path ? -1 : 1)));
    const replay = medrep(['replay', ...kafka, '--out', path.join(h.dir, 'replay'), '--verify', path.join(out, 'manifest.json'), '--from-time', '1970-01-01T00:00:00Z']);
    assert.equal(replay.status, 0, replay.stderr);
    assert.match(replay.stdout, new RegExp(`^${sinkShards.length} of ${sinkShards.length} shards match the manifest`, 'm'));
  });

  it('a stop between a commit and its entry: the next start lists the shard; a temp file and an uncommitted shard are never listed', async () => {
    const h = await twoLoadHospital('manifest-reconcile', 40);
    const prefix = uniquePrefix();
    const client = testKafka();
    const out = path.join(h.dir, 'stream');
    const lines: string[] = [];
    const log: Logger = { ...silentLogger, info: (l: string) => lines.push(l) };
    const run = () => runStream({
      kafka: kafkaOpts(prefix), client, out, vocab: h.omop, artifacts: h.artifacts, tasks: 'none', sequencesPerShard: 10,
      exitWhenIdleMs: 1500, healthIntervalMs: 0, handleSignals: false, log, meds: false,
    });
    await produceOmop({ omop: h.omop, kafka: kafkaOpts(prefix), client, partitions: PARTITIONS, log: silentLogger });
    await run();
    const before = fs.readdirSync(path.join(out, MANIFEST_LOG_DIR)).sort();
    assert.ok(before.length >= 3, `entries: ${before.join(' ')}`);
    // The state a stop right after a commit leaves: a durable shard without its entry, and a temp
    // file of an entry's interrupted write. Also a shard file past every committed offset.
    const lost = before.find((n) => n.includes('.pretrain.'))!;
    const lostText = fs.readFileSync(path.join(out, MANIFEST_LOG_DIR, lost), 'utf8');
    fs.rmSync(path.join(out, MANIFEST_LOG_DIR, lost));
    fs.writeFileSync(path.join(out, MANIFEST_LOG_DIR, `${lost}.tmp-999`), '{"path": "half');
    const entry = JSON.parse(lostText) as ManifestLogEntry;
    const uncommitted = path.posix.join('pretrain', `${entry.topic}-p0-${'9'.repeat(19)}0-${'9'.repeat(20)}.parquet`);
    fs.copyFileSync(path.join(out, entry.path), path.join(out, uncommitted));

    lines.length = 0;
    const again = await run();
    assert.equal(again.stages.sink.consumed, 0, 'nothing left to consume: the entry comes from the file on disk');
    assert.ok(lines.some((l) => /^manifest: 1 shard\(s\) the committed offsets cover were not in manifest\.d\//.test(l)), lines.join('\n'));
    assert.equal(fs.readFileSync(path.join(out, MANIFEST_LOG_DIR, lost), 'utf8'), lostText, 'the same entry as the lost one');
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    const paths = manifest.shards.map((s: { path: string }) => s.path);
    assert.ok(paths.includes(entry.path));
    assert.ok(!paths.includes(uncommitted), 'a shard the committed offsets do not cover is not listed');
    assert.deepEqual(readManifestLog(out).map((e) => e.path).sort(), paths.slice().sort(), 'manifest.json lists the log, not the temp file');
  });
});
