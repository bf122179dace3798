// Signed 64-bit ids, as the OHDSI MIMIC-IV ETL writes them (most beyond 2^53, half negative):
// the synthetic generator's `--ids hashed`, and the local runner carrying every id exactly to
// events, pretraining sequences, samples, MEDS, labels and the BEHRT data loader.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateSynthetic } from '../../synth';
import { runCommandLine } from '../../cli';
import { runLocal } from '../../runners/local/localRunner';
import { silentLogger } from '../../common/progress';
import { readSequences } from '../../trainers/behrt/data';
import { splitOf } from '../../transforms/splits';
import { lit, sql, tempDir } from '../helpers';
import { assertIdsExact, inputTable } from '../helpers/idChecks';

describe('64-bit ids: synthetic --ids hashed through the local runner', function () {
  this.timeout(180_000);
  let omop: string;

  before(async () => {
    omop = path.join(tempDir('hashed'), 'omop');
    await generateSynthetic({ persons: 80, seed: 11, out: omop, format: 'csv', site: 'A', ids: 'hashed' });
  });

  it('synth writes signed 64-bit ids for persons, visits and rows: most beyond 2^53, about half negative, unique, the same for the same seed', async () => {
    for (const [table, column] of [['person', 'person_id'], ['visit_occurrence', 'visit_occurrence_id'], ['measurement', 'measurement_id'], ['condition_occurrence', 'condition_occurrence_id']]) {
      const [r] = await sql<{ n: bigint; uniq: bigint; big: bigint; neg: bigint }>(`SELECT count(*) AS n, count(DISTINCT v) AS uniq,
          count(*) FILTER (WHERE abs(CAST(v AS HUGEINT)) > 9007199254740991) AS big, count(*) FILTER (WHERE v < 0) AS neg
        FROM (SELECT CAST(${column} AS BIGINT) AS v FROM ${inputTable(omop, table)})`);
      const n = Number(r.n);
      assert.ok(n >= 50, `${table}: rows`);
      assert.equal(Number(r.uniq), n, `${table}.${column} is unique`);
      assert.ok(Number(r.big) >= 0.95 * n, `${table}.${column}: most beyond 2^53 (${r.big} of ${n})`);
      assert.ok(Number(r.neg) > 0.3 * n && Number(r.neg) < 0.7 * n, `${table}.${column}: about half negative (${r.neg} of ${n})`);
    }
    // The rows' person and visit ids are those of the person and visit tables.
    const [orphans] = await sql<{ n: bigint }>(`SELECT count(*) AS n FROM ${inputTable(omop, 'measurement')} m
      WHERE CAST(m.visit_occurrence_id AS BIGINT) NOT IN (SELECT CAST(visit_occurrence_id AS BIGINT) FROM ${inputTable(omop, 'visit_occurrence')})
         OR CAST(m.person_id AS BIGINT) NOT IN (SELECT CAST(person_id AS BIGINT) FROM ${inputTable(omop, 'person')})`);
    assert.equal(Number(orphans.n), 0);
    const again = path.join(tempDir('hashed-again'), 'omop');
    await generateSynthetic({ persons: 80, seed: 11, out: again, format: 'csv', site: 'A', ids: 'hashed' });
    const meta = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'synth_meta.json'), 'utf8'));
    assert.deepEqual(meta(again).files, meta(omop).files, 'same seed, same bytes');
    assert.equal(meta(omop).ids, 'hashed');
  });

  it('medrep synth --ids hashed is the CLI form; a wrong value is one error line', async () => {
    const dir = path.join(tempDir('hashed-cli'), 'omop');
    const out = process.stdout.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      await runCommandLine(['synth', '--persons', '80', '--seed', '11', '--out', dir, '--ids', 'hashed']);
    } finally {
      process.stdout.write = out;
    }
    const meta = (d: string) => JSON.parse(fs.readFileSync(path.join(d, 'synth_meta.json'), 'utf8'));
    assert.deepEqual(meta(dir).files, meta(omop).files);
    await assert.rejects(runCommandLine(['synth', '--persons', '5', '--out', path.join(dir, 'x'), '--ids', 'random']), /^UserError: medrep synth: --ids must be sequential or hashed, got "random"$/);
  });

  it('runLocal rejects nothing and every id in every output is the input id, exactly (compared as BIGINT)', async () => {
    const out = path.join(tempDir('hashed-run'), 'out');
    const r = await runLocal({ omop, out, log: silentLogger });
    assert.equal(r.rejectsTotal, 0, JSON.stringify(r.rejects));
    assert.equal(r.persons, 80);
    assert.ok(r.tasks.some((t) => t.cohort > 0), 'labels were computed over hashed ids');
    const ids = await assertIdsExact(omop, out);
    assert.ok(ids.beyondSafe >= 70, `the persons lie beyond 2^53 (${ids.beyondSafe})`);
    // Splits hash the 64-bit value: MEDS subject_splits says what splitOf says of the exact id.
    const splits = await sql<{ id: bigint; split: string }>(`SELECT subject_id AS id, split FROM read_parquet(${lit(path.join(out, 'meds/metadata/subject_splits.parquet'))})`);
    const meds = { pretrain_train: 'train', finetune_train: 'train', pretrain_val: 'tuning', finetune_val: 'tuning', finetune_test: 'held_out' } as const;
    assert.deepEqual(splits.map((s) => s.split), splits.map((s) => meds[splitOf(s.id)]));
    // The BEHRT data loader reads the same exact ids.
    const seqs = await readSequences([path.join(out, 'pretrain', fs.readdirSync(path.join(out, 'pretrain'))[0])]);
    const pids = await sql<{ id: bigint }>(`SELECT DISTINCT CAST(person_id AS BIGINT) AS id FROM ${inputTable(omop, 'person')}`);
    const input = new Set(pids.map((p) => p.id.toString()));
    assert.ok(seqs.length > 0 && seqs.every((s) => input.has(s.personId.toString())), 'loader person ids are input person ids');
    assert.ok(seqs.some((s) => typeof s.personId === 'bigint'), 'ids beyond 2^53 come back as bigints');
  });

  it('an id beyond signed 64 bits is a reject naming the column; ids inside the range are not', async () => {
    const dir = path.join(tempDir('hashed-range'), 'omop');
    fs.mkdirSync(dir);
    for (const f of fs.readdirSync(omop)) if (f.endsWith('.csv')) fs.copyFileSync(path.join(omop, f), path.join(dir, f));
    const [row] = await sql<{ p: string }>(`SELECT person_id AS p FROM ${inputTable(omop, 'person')} LIMIT 1`);
    const visitLine = (id: string) => `${id},${row.p},9202,2020-01-01,2020-01-01 09:00:00,2020-01-01,2020-01-01 10:00:00,32817,OP,0\n`;
    fs.appendFileSync(path.join(dir, 'visit_occurrence.csv'), visitLine('9223372036854775808') + visitLine('-9223372036854775808'));
    const out = path.join(tempDir('hashed-range-run'), 'out');
    const r = await runLocal({ omop: dir, out, log: silentLogger, tasks: 'none' });
    assert.equal(r.rejectsTotal, 1);
    const [reject] = fs.readFileSync(path.join(out, 'rejects', 'visit_occurrence.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual({ column: reject.column, reason: reject.reason }, { column: 'visit_occurrence_id', reason: 'out of range (must be a signed 64-bit integer)' });
    assert.equal(reject.values.visit_occurrence_id, '9223372036854775808', 'the value as read');
    const [kept] = await sql<{ n: bigint }>(`SELECT count(*) AS n FROM read_parquet(${lit(path.join(out, 'events', '*.parquet'))}) WHERE visit_occurrence_id = -9223372036854775808`);
    assert.equal(Number(kept.n), 1, 'INT64_MIN is an id like any other');
  });
});
