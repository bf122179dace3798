// The one manifest reader (sinks/manifest.ts): manifest.json and the manifest log beside it read
// together, one shard per path and hash; a temp file of an interrupted write is no entry; a bad
// entry or a folder without either is one error naming the file.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MANIFEST_LOG_DIR, ManifestLogEntry, manifestLogName, readManifest, writeManifestLogEntry } from '../../sinks/manifest';
import { shardMatches } from '../../trainers/behrt/data';
import { tempDir } from '../helpers';

const VERSIONS = { deciles: 'sha256:d', vocabulary: 'sha256:v' };

function entry(file: string, hash: string, from: number): ManifestLogEntry {
  return { kind: 'pretrain', path: `pretrain/${file}`, rows: 3, bytes: 10, sha256: hash, topic: 'x.medrep.pretrain', partition: 1, from_offset: String(from), to_offset: String(from + 4), versions: VERSIONS };
}

describe('manifest reader: manifest.json and manifest.d/', () => {
  it('takes the union, one shard per path and hash, in path order; a temp file is no entry', () => {
    const out = tempDir('manifest-union');
    const a = { kind: 'events', path: 'events/a.parquet', rows: 1, bytes: 5, sha256: 'sha256:a' };
    const b = entry('b.parquet', 'sha256:b', 0);
    fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify({ kind: 'medrep.manifest', runner: 'kafka', shards: [a, { kind: b.kind, path: b.path, rows: 3, bytes: 10, sha256: b.sha256 }] }));
    assert.equal(writeManifestLogEntry(out, b), true);
    assert.equal(writeManifestLogEntry(out, b), false, 'an entry already there is kept');
    const c = entry('c.parquet', 'sha256:c', 5);
    writeManifestLogEntry(out, c);
    fs.writeFileSync(path.join(out, MANIFEST_LOG_DIR, `${manifestLogName(entry('d.parquet', 'sha256:d', 10))}.tmp-42`), '{"path": "pretrain/d');
    const m = readManifest(out);
    assert.deepEqual(m.shards.map((s) => [s.path, s.sha256]), [['events/a.parquet', 'sha256:a'], ['pretrain/b.parquet', 'sha256:b'], ['pretrain/c.parquet', 'sha256:c']]);
    assert.deepEqual(m.shards[2], { kind: 'pretrain', path: 'pretrain/c.parquet', rows: 3, bytes: 10, sha256: 'sha256:c', topic: c.topic, partition: 1, from_offset: '5', to_offset: '9' });
    // The same manifest through manifest.json's path and through the log's folder.
    assert.deepEqual(readManifest(path.join(out, 'manifest.json')), m);
    assert.deepEqual(readManifest(path.join(out, MANIFEST_LOG_DIR)), m);
  });

  it('a folder with only manifest.d/ reads as a growing Kafka manifest; log names sort by topic, partition and offset', () => {
    const out = tempDir('manifest-log-only');
    for (const [file, from] of [['late.parquet', 100], ['early.parquet', 9]] as const) writeManifestLogEntry(out, entry(file, `sha256:${file}`, from));
    const m = readManifest(out);
    assert.equal(m.runner, 'kafka');
    assert.equal(m.growing, true);
    assert.equal(m.complete, false);
    assert.deepEqual(m.shards.map((s) => s.path), ['pretrain/early.parquet', 'pretrain/late.parquet']);
    assert.deepEqual(fs.readdirSync(path.join(out, MANIFEST_LOG_DIR)).sort(), [
      'x.medrep.pretrain.p00001.00000000000000000009.00000000000000000013.pretrain.json',
      'x.medrep.pretrain.p00001.00000000000000000100.00000000000000000104.pretrain.json',
    ]);
  });

  it('a broken entry, a manifest of another kind or no manifest at all: one error naming the file', () => {
    const out = tempDir('manifest-bad');
    assert.throws(() => readManifest(out), { message: `${path.join(out, 'manifest.json')}: no manifest (is ${out} a pipeline output folder?)` });
    fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify({ kind: 'other', shards: [] }));
    assert.throws(() => readManifest(out), { message: `${path.join(out, 'manifest.json')}: not a medrep manifest (kind "other")` });
    assert.equal(readManifest(out, { lenient: true }).shards.length, 0, 'lenient: only the shards are needed');
    const name = manifestLogName(entry('b.parquet', 'sha256:b', 0));
    fs.mkdirSync(path.join(out, MANIFEST_LOG_DIR));
    fs.writeFileSync(path.join(out, MANIFEST_LOG_DIR, name), '{"path": 1}');
    assert.throws(() => readManifest(out, { lenient: true }), { message: `${path.join(out, MANIFEST_LOG_DIR, name)}: a manifest log entry needs string 'kind', 'path' and 'sha256'` });
  });

  it('a range\'s samples shard and corrections file of one task are two entries; a trainer of the task reads the shard, not the corrections', () => {
    const out = tempDir('manifest-corrections');
    const range = { topic: 'x.medrep.samples', partition: 0, from_offset: '7', to_offset: '9', versions: VERSIONS };
    const samples: ManifestLogEntry = { kind: 'samples', task: 'mortality', path: 'samples/mortality/r.parquet', rows: 2, bytes: 10, sha256: 'sha256:s', ...range };
    const corrections: ManifestLogEntry = { kind: 'corrections', task: 'mortality', path: 'samples/mortality/corrections/r.json', rows: 1, bytes: 4, sha256: 'sha256:c', ...range };
    assert.equal(writeManifestLogEntry(out, samples), true);
    assert.equal(writeManifestLogEntry(out, corrections), true, 'not taken for the samples shard already there');
    const m = readManifest(out);
    assert.deepEqual(m.shards.map((s) => [s.kind, s.path]), [['corrections', corrections.path], ['samples', samples.path]]);
    assert.deepEqual(m.shards.filter((s) => shardMatches(s, 'mortality')).map((s) => s.path), [samples.path]);
  });
});
