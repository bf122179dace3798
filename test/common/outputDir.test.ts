import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateSynthetic } from '../../synth';
import { claimOutputDir, OUTPUT_MARKER } from '../../common/outputDir';
import { sha256 } from '../../transforms/hashing';
import { tempDir } from '../helpers';
import { errorLine, medrep, medrepAsync } from '../helpers/cli';

/** Every shard of the manifest is on disk with its bytes and hash. */
function assertManifestMatchesFiles(out: string): number {
  const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { shards: { path: string; bytes: number; sha256: string }[] };
  for (const s of m.shards) {
    const bytes = fs.readFileSync(path.join(out, s.path));
    assert.equal(sha256(bytes), s.sha256, `${s.path}: the manifest's hash is that of the file`);
  }
  return m.shards.length;
}

const locks = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith('.medrep-lock.'));

describe('output folder: medrep writes only where it may', function () {
  let omop: string;
  before(async () => {
    omop = path.join(tempDir('guard-omop'), 'omop');
    await generateSynthetic({ persons: 120, seed: 7, out: omop, format: 'parquet', site: 'A' });
  });
  const run = (out: string, ...extra: string[]) => medrep(['run', '--omop', omop, '--out', out, '--tasks', 'none', '--no-meds', ...extra]);

  it('refuses a folder with files medrep did not write, and keeps them (exit 2, one line)', () => {
    const out = tempDir('guard-foreign');
    fs.writeFileSync(path.join(out, 'notes.txt'), 'my notes\n');
    fs.mkdirSync(path.join(out, 'events'));
    fs.writeFileSync(path.join(out, 'events', 'mine.csv'), 'a,b\n1,2\n');
    for (const flags of [[], ['--force']]) {
      const r = run(out, ...flags);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.match(errorLine(r), new RegExp(`^medrep: ${out}: not empty and not a medrep output folder \\(holds events, notes\\.txt`));
    }
    assert.equal(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'my notes\n');
    assert.equal(fs.readFileSync(path.join(out, 'events', 'mine.csv'), 'utf8'), 'a,b\n1,2\n');
    assert.deepEqual(fs.readdirSync(out).sort(), ['events', 'notes.txt'], 'no marker, no lock, no shard written');
  });

  it('replaces a previous medrep output only with --force, keeping a file of the user beside it', () => {
    const out = path.join(tempDir('guard-force'), 'out');
    assert.equal(run(out, '--events-per-shard', '1000').status, 0);
    const firstShards = fs.readdirSync(path.join(out, 'events')).length;
    fs.writeFileSync(path.join(out, 'README.txt'), 'what this run was for\n');
    const again = run(out);
    assert.equal(again.status, 2, again.stderr);
    assert.match(errorLine(again), /holds the output of an earlier medrep run \(manifest\.json\); pass --force to replace it/);
    const forced = run(out, '--force');
    assert.equal(forced.status, 0, forced.stderr);
    assert.equal(fs.readFileSync(path.join(out, 'README.txt'), 'utf8'), 'what this run was for\n', 'the user file is kept');
    const shards = assertManifestMatchesFiles(out);
    const onDisk = fs.readdirSync(path.join(out, 'events')).length;
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    assert.equal(onDisk, manifest.shards.filter((s: { kind: string }) => s.kind === 'events').length, 'no event shard of the first run is left');
    assert.ok(firstShards > 1 && onDisk === 1 && shards >= 1, `${firstShards} shards, then ${onDisk}`);
    assert.deepEqual(locks(out), [], 'the lock is released');
  });

  it('keeps a second run out while one writes (exit 2, one line naming the holder)', () => {
    const out = path.join(tempDir('guard-lock'), 'out');
    const held = claimOutputDir(out, { command: 'run' });
    try {
      const r = run(out);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(errorLine(r), `medrep: ${out}: medrep run (pid ${process.pid}) is writing to this folder; wait for it to end or choose another --out`);
      assert.deepEqual(locks(out), [`.medrep-lock.${process.pid}`], "the refused run left no lock of its own");
    } finally {
      held.release();
    }
    assert.equal(run(out).status, 0, 'once released, the folder can be written');
  });

  it('two runs started together into one --out: one writes, the other is refused, the manifest matches every shard', async () => {
    const out = path.join(tempDir('guard-two'), 'out');
    const a = medrepAsync(['run', '--omop', omop, '--out', out, '--tasks', 'none', '--events-per-shard', '500']);
    const b = medrepAsync(['run', '--omop', omop, '--out', out, '--tasks', 'none', '--events-per-shard', '700']);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    const codes = [ra.status, rb.status].sort();
    // Started at the same instant both may be refused (never both admitted); then neither wrote.
    assert.ok(codes[1] === 2, `at least one is refused: ${ra.stderr}\n${rb.stderr}`);
    for (const r of [ra, rb].filter((x) => x.status === 2)) assert.match(errorLine(r), /is writing to this folder|holds the output of an earlier medrep run|not empty and not a medrep output/);
    if (codes[0] === 0) assert.ok(assertManifestMatchesFiles(out) > 0);
    assert.deepEqual(locks(out), []);
  });

  it('takes over the lock of a process that no longer runs', () => {
    const out = path.join(tempDir('guard-stale'), 'out');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, OUTPUT_MARKER), JSON.stringify({ kind: 'medrep.output', command: 'run' }));
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(dead.stdout);
    fs.writeFileSync(path.join(out, `.medrep-lock.${pid}`), JSON.stringify({ pid, host: require('node:os').hostname(), start: null, command: 'run' }));
    const r = run(out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`took over the lock of medrep run \\(pid ${pid}\\), which no longer runs`));
    assert.deepEqual(locks(out), []);
    assertManifestMatchesFiles(out);
  });

  it('synth refuses to write its tables into a folder it did not write', () => {
    const dir = tempDir('guard-synth');
    fs.writeFileSync(path.join(dir, 'person.csv'), 'person_id\n1\n');
    const r = medrep(['synth', '--persons', '5', '--out', dir]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(errorLine(r), /is not empty and holds no synth_meta\.json/);
    assert.equal(fs.readFileSync(path.join(dir, 'person.csv'), 'utf8'), 'person_id\n1\n');
  });
});
