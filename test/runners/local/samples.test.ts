import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runLocal, RunSummary } from '../../../runners/local/localRunner';
import { silentLogger } from '../../../common/progress';
import { generateSynthetic } from '../../../synth';
import { lit, sql, tempDir } from '../../helpers';

describe('labelled samples in the local runner (synthetic hospital)', function () {
  let s: RunSummary;
  let omop: string;
  before(async () => {
    omop = path.join(tempDir('samples'), 'omop');
    await generateSynthetic({ persons: 400, seed: 11, out: omop, format: 'parquet', site: 'A' });
    s = await runLocal({ omop, out: path.join(tempDir('samples-out'), 'out'), log: silentLogger, maxEvents: 16 });
  });

  it('writes one sample per determined label of each task, split by person', async () => {
    const binary = s.tasks.filter((t) => t.task !== 'phenotypes');
    assert.ok(binary.length >= 8);
    for (const t of binary) {
      const [r] = await sql<{ n: bigint; pos: bigint; bad_split: bigint }>(`SELECT count(*) n, count(*) FILTER (WHERE label) pos,
          count(*) FILTER (WHERE split NOT IN ('pretrain_train','pretrain_val','finetune_train','finetune_val','finetune_test')) bad_split
        FROM read_parquet(${lit(path.join(s.out, 'samples', t.task, '*.parquet'))})`);
      assert.equal(Number(r.n), t.positives + t.negatives, t.task);
      assert.equal(Number(r.pos), t.positives, t.task);
      assert.equal(Number(r.bad_split), 0);
      assert.ok(t.positives > 0 && t.negatives > 0, `${t.task} has both classes on synthetic data`);
    }
  });

  it('each window holds exactly the newest token events strictly before the prediction time', async () => {
    const [r] = await sql<{ samples: bigint; wrong: bigint; truncated: bigint }>(`
      WITH smp AS (SELECT person_id, prediction_time, len(concept_ids) - 2 AS n, concept_ids[3:] AS ids FROM read_parquet(${lit(path.join(s.out, 'samples/mortality/*.parquet'))})),
      ev AS (SELECT person_id, time, concept_id, origin FROM read_parquet(${lit(path.join(s.out, 'events/*.parquet'))}) WHERE domain BETWEEN 1 AND 4),
      expect AS (
        SELECT smp.person_id, smp.prediction_time, smp.n, smp.ids,
               (SELECT list(concept_id ORDER BY rn) FROM (
                  SELECT concept_id, row_number() OVER (ORDER BY time DESC, origin DESC) AS rdesc, row_number() OVER (ORDER BY time, origin) AS rn
                  FROM ev WHERE ev.person_id = smp.person_id AND ev.time < smp.prediction_time) WHERE rdesc <= 16) AS want,
               (SELECT count(*) FROM ev WHERE ev.person_id = smp.person_id AND ev.time < smp.prediction_time) AS available
        FROM smp)
      SELECT count(*) samples, count(*) FILTER (WHERE coalesce(want, []) <> ids) wrong, count(*) FILTER (WHERE available > 16) truncated FROM expect`);
    assert.ok(Number(r.samples) > 50);
    assert.equal(Number(r.wrong), 0);
    assert.ok(Number(r.truncated) > 0, 'some windows were cut to the newest 16 events');
  });

  it('writes the labels in the MEDS LabelSchema and records the tasks in the manifest', async () => {
    const t = s.tasks.find((x) => x.task === 'readmission')!;
    const [r] = await sql<{ n: bigint; pos: bigint }>(`SELECT count(*) n, count(*) FILTER (WHERE boolean_value) pos
      FROM read_parquet(${lit(path.join(s.out, 'meds/labels/readmission/*.parquet'))})`);
    assert.deepEqual([Number(r.n), Number(r.pos)], [t.positives + t.negatives, t.positives]);
    const types = await sql<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet(${lit(path.join(s.out, 'meds/labels/readmission/*.parquet'))})`);
    assert.deepEqual(types.map((x) => `${x.column_name}:${x.column_type}`), [
      'subject_id:BIGINT', 'prediction_time:TIMESTAMP', 'boolean_value:BOOLEAN',
    ]);
    const manifest = JSON.parse(fs.readFileSync(path.join(s.out, 'manifest.json'), 'utf8'));
    assert.equal(manifest.counts.tasks.length, s.tasks.length);
    assert.match(manifest.artifacts['task:readmission'].version, /^sha256:/);
  });

  it('a run with --tasks none writes no samples', async () => {
    const none = await runLocal({ omop, out: path.join(tempDir('samples-none'), 'out'), log: silentLogger, tasks: 'none' });
    assert.equal(none.shards.samples, 0);
    assert.ok(!fs.existsSync(path.join(none.out, 'samples', 'mortality')));
  });
});
