import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runLocal } from '../../runners/local/localRunner';
import { defaultMemoryLimit, parseMemorySize } from '../../sources/memoryLimit';
import { silentLogger } from '../../common/progress';
import { generateSynthetic } from '../../synth';
import { EXIT } from '../../common/errors';
import { tempDir } from '../helpers';
import { errorLine, medrep } from '../helpers/cli';

const GiB = 2 ** 30;

describe('DuckDB memory limit of a run', function () {
  let csv: string;
  let parquet: string;
  before(async () => {
    const root = tempDir('memlimit');
    csv = path.join(root, 'csv');
    parquet = path.join(root, 'parquet');
    await generateSynthetic({ persons: 300, seed: 3, out: csv, format: 'csv', site: 'A' });
    await generateSynthetic({ persons: 300, seed: 3, out: parquet, format: 'parquet', site: 'A' });
  });

  it('defaults to a sixteenth of the machine memory, within 512 MiB and 4 GiB', () => {
    assert.equal(defaultMemoryLimit(24 * GiB), '1536MiB');
    assert.equal(defaultMemoryLimit(2 * GiB), '512MiB');
    assert.equal(defaultMemoryLimit(256 * GiB), '4096MiB');
    assert.equal(parseMemorySize(defaultMemoryLimit(24 * GiB)), 1.5 * GiB);
    assert.equal(parseMemorySize('800MB'), 800e6);
    assert.equal(parseMemorySize('1.5GiB'), 1.5 * GiB);
    assert.equal(parseMemorySize('lots'), null);
  });

  it('a run without --memory-limit uses the default of this machine and says so', () => {
    const out = path.join(tempDir('memlimit-default'), 'out');
    const r = medrep(['run', '--omop', csv, '--out', out, '--tasks', 'none', '--no-meds']);
    assert.equal(r.status, EXIT.ok, r.stderr);
    assert.match(r.stderr, new RegExp(`DuckDB memory limit ${defaultMemoryLimit()}\\b`));
  });

  it('DuckDB out of memory is one line naming the limit and what to set, exit 3, nothing half-written', () => {
    const out = path.join(tempDir('memlimit-oom'), 'out');
    const r = medrep(['run', '--omop', csv, '--out', out, '--memory-limit', '1MB']);
    assert.equal(r.status, EXIT.environment, r.stderr);
    assert.match(errorLine(r), /^medrep: DuckDB ran out of memory within --memory-limit 1MB \(could not allocate .*\); rerun with a larger --memory-limit, e.g. --memory-limit \d+MiB \(this machine has \d+MiB\)$/);
    const suggested = parseMemorySize(/e\.g\. --memory-limit (\d+MiB)/.exec(errorLine(r))![1])!;
    assert.ok(suggested >= parseMemorySize(defaultMemoryLimit())!, 'the hint is at least the default');
    assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('medrep: ')).length, 1, r.stderr);
    assert.ok(!/^\s+at /m.test(r.stderr), r.stderr);
    assert.deepEqual(fs.readdirSync(out).filter((f) => f !== '.medrep-output.json'), [], 'no shard, manifest or temporary folder left');
  });

  it('a --memory-limit that is not a size is a user error (exit 2) before anything is written', () => {
    const out = path.join(tempDir('memlimit-bad'), 'out');
    const r = medrep(['run', '--omop', csv, '--out', out, '--memory-limit', 'lots']);
    assert.equal(r.status, EXIT.user, r.stderr);
    assert.equal(errorLine(r), 'medrep: --memory-limit lots: expected a size such as 800MB, 2GB or 1.5GiB');
    assert.ok(!fs.existsSync(out));
  });

  it('CSV input is staged to Parquet and sorted in person ranges: shards byte-identical to the Parquet form', async () => {
    const root = tempDir('memlimit-staged');
    const opts = { log: silentLogger, rowsPerRange: 5000, tasks: 'all' as const };
    const lines: string[] = [];
    const a = await runLocal({ ...opts, log: { info: (m) => lines.push(m), warn: () => undefined }, omop: csv, out: path.join(root, 'csv') });
    // The staged copy knows its row count: progress is out of the whole, as for Parquet.
    assert.ok(lines.some((l) => new RegExp(`^events: [\\d,]+ rows of ${(a.rowsInTotal - a.persons).toLocaleString('en-US')} \\(`).test(l)), lines.join('\n'));
    const b = await runLocal({ ...opts, omop: parquet, out: path.join(root, 'parquet') });
    const shards = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')).shards as { path: string; sha256: string }[];
    assert.ok(a.rowsInTotal > 4 * 5000, 'more than four ranges of rows');
    assert.ok(shards(a.out).length >= 5);
    assert.deepEqual(shards(a.out), shards(b.out));
    assert.equal(JSON.parse(fs.readFileSync(path.join(a.out, 'manifest.json'), 'utf8')).input.kind, 'csv');
  });

  it('a damaged CSV with hashed ids, read in many person ranges, gives the same shards and rejects as in one range', async () => {
    // The ranges read only their persons' rows of the staged copy (its typed person key): the rows
    // with an unreadable person_id, the records set aside and the row numbers must not change.
    const root = tempDir('memlimit-ranges');
    const omop = path.join(root, 'omop');
    await generateSynthetic({ persons: 300, seed: 5, out: omop, format: 'csv', site: 'A', ids: 'hashed', injectErrors: true });
    const file = path.join(omop, 'measurement.csv');
    const lines = fs.readFileSync(file, 'latin1').split('\n');
    lines[21] += ',extra,extra'; // a record with too many fields: the table is read through its checked copy
    const fields = lines[31].split(',');
    fields[1] = 'not-a-person'; // an unreadable person_id: a reject in whichever range
    lines[31] = fields.join(',');
    fs.writeFileSync(file, lines.join('\n'), 'latin1');
    const run = (name: string, rowsPerRange: number) => runLocal({ log: silentLogger, rowsPerRange, tasks: 'all', omop, out: path.join(root, name) });
    const many = await run('many', 2000);
    const one = await run('one', 1e9);
    assert.ok(many.rowsInTotal > 5 * 2000, 'more than five ranges of rows');
    const manifest = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    const shards = (out: string) => (manifest(out).shards as { path: string; sha256: string }[]).map((x) => [x.path, x.sha256]);
    assert.deepEqual(shards(many.out), shards(one.out));
    const rejects = (out: string) => Object.fromEntries(fs.readdirSync(path.join(out, 'rejects')).sort().map((f) => [f, fs.readFileSync(path.join(out, 'rejects', f), 'utf8')]));
    assert.deepEqual(rejects(many.out), rejects(one.out));
    const measurementRejects = rejects(many.out)['measurement.jsonl'] ?? '';
    assert.match(measurementRejects, /"row":31\b[^\n]*person_id/, 'the unreadable person_id is set aside');
    assert.match(measurementRejects, /"row":21\b/, 'the record with too many fields is set aside');
    assert.deepEqual(many.rejects, one.rejects);
  });
});
