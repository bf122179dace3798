import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateSynthetic } from '../../../synth';
import { runLocal } from '../../../runners/local/localRunner';
import { silentLogger } from '../../../common/progress';
import { lit, sql, tempDir } from '../../helpers';
import { errorLine, medrep } from '../../helpers/cli';

describe('train ehr on small data', function () {
  this.timeout(300_000);
  let run: string;
  before(async () => {
    // The demo's hospital: 500 persons, seed 42.
    const dir = tempDir('one-class');
    await generateSynthetic({ persons: 500, seed: 42, out: path.join(dir, 'omop'), format: 'parquet', site: 'A' });
    run = (await runLocal({ omop: path.join(dir, 'omop'), out: path.join(dir, 'run'), tasks: ['mortality'], meds: false, log: silentLogger })).out;
  });

  it('a test split with one class is reported as such (metric undefined, with the counts), exit 0', async () => {
    const [t] = await sql<{ n: bigint; pos: bigint }>(
      `SELECT count(*) n, count(*) FILTER (WHERE label) pos FROM read_parquet(${lit(path.join(run, 'samples/mortality/*.parquet'))}) WHERE split = 'finetune_test'`,
    );
    const n = Number(t.n);
    const pos = Number(t.pos);
    assert.ok(n > 0 && (pos === 0 || pos === n), `the data has a one-class test split (${pos} of ${n} positive)`);
    const out = path.join(tempDir('one-class-model'), 'model');
    const r = medrep(['train', 'ehr', '--shards', run, '--task', 'mortality', '--epochs', '1', '--seeds', '1', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const why = `one class only: ${pos} positive, ${n - pos} negative of ${n}`;
    assert.ok(r.stdout.includes(`- (${why})`), r.stdout);
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    const cell = results.rows[0].tasks.mortality;
    assert.equal(cell.auroc, null);
    assert.equal(cell.undefinedBecause, why);
    assert.deepEqual([cell.perSeed[0].n, cell.perSeed[0].positives, cell.perSeed[0].negatives], [n, pos, n - pos]);
  });

  it('a wrong --init is one line, exit 2', () => {
    const r = medrep(['train', 'ehr', '--shards', run, '--task', 'mortality', '--epochs', '1', '--init', '/no/such/checkpoint', '--out', path.join(tempDir('init'), 'm')]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(errorLine(r), /^medrep: --init \/no\/such\/checkpoint: no pretraining checkpoint there/);
    assert.ok(!/^\s+at /m.test(r.stderr));
  });

  it('pretraining says where its checkpoint is, and finetuning starts from it', () => {
    const out = path.join(tempDir('pre'), 'model');
    const r = medrep(['train', 'ehr', '--shards', run, '--task', 'pretrain', '--epochs', '1', '--seeds', '1', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const m = /^pretraining checkpoint: (\S+) \(finetune from it with --init \1\)$/m.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.ok(fs.existsSync(path.join(m[1], 'BEST')));
    const ft = medrep(['train', 'ehr', '--shards', run, '--task', 'mortality', '--epochs', '1', '--seeds', '1', '--init', m[1], '--out', path.join(tempDir('ft'), 'm')]);
    assert.equal(ft.status, 0, ft.stderr);
    assert.match(ft.stdout, /initialised from /);
  });
});
