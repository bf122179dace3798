import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runExternalExperiment } from '../../../trainers/behrt/external';
import { parseArms } from '../../../trainers/behrt/arms';
import { parseEhrModels } from '../../../trainers/behrt/config';
import { cellPath, type ResultRow } from '../../../trainers/behrt/experiment';
import { writeRepresentations, writeSite } from '../../helpers/ehrFixtures';
import { sha256 } from '../../../transforms/hashing';
import { tempDir } from '../../helpers';

const tinyModel = { hidden: 8, layers: 1, heads: 2, intermediate: 16, maxLen: 16, segmentVocab: 8, recordRankVocab: 8 };

describe('experiment grid: arms x models x tasks x seeds, resumable, Tables 2 and 3', function () {
  this.timeout(300_000);
  let root: string;

  before(async () => {
    root = tempDir('grid');
    // Site A has long_stay samples too (Med-BERT's prolonged-stay labels); B codes concepts shifted by 50000.
    await writeSite(join(root, 'A'), { persons: 120, seed: 1, maxEvents: 12 }, ['risk', 'long_stay']);
    await writeSite(join(root, 'B'), { persons: 60, seed: 2, maxEvents: 12, conceptOffset: 50000 }, ['risk', 'long_stay']);
    await writeRepresentations(join(root, 'medrep.parquet'), 8, [0, 50000], 3);
    await writeRepresentations(join(root, 'text.parquet'), 8, [0, 50000], 4);
  });

  const common = (out: string, logs: string[]) => ({
    siteA: join(root, 'A'), siteB: join(root, 'B'), out, seeds: [1], model: tinyModel, pretrainEpochs: 1,
    representations: join(root, 'medrep.parquet'), textRepresentations: join(root, 'text.parquet'),
    train: { epochs: 2, batchSize: 16, patience: 2 }, valSplits: ['pretrain_val'], testSplits: ['finetune_val', 'finetune_test'],
    log: (m: string) => logs.push(m),
  });

  it('runs every model on every arm, stores each cell, resumes after a crash without recomputing finished cells', async () => {
    const out = join(root, 'out');
    const tables = [join(root, 'medrep.parquet'), join(root, 'text.parquet')].map((f) => sha256(readFileSync(f)));
    const first: string[] = [];
    const o = { ...common(out, first), arms: ['vanilla', 'medrep+text'] as const, models: ['behrt', 'cdm-bert', 'med-bert'] as const, tasks: ['risk', 'mi'] };
    // A crash after the first cell: the run stops there.
    await assert.rejects(runExternalExperiment({ ...o, arms: [...o.arms], models: [...o.models], onCell: (c) => { if (c.index === 1) throw new Error('simulated crash'); } }), /simulated crash/);
    const cellLines = (logs: string[]) => logs.filter((l) => l.startsWith('cell '));
    assert.equal(cellLines(first).length, 1);
    assert.match(cellLines(first)[0], /^cell 1\/6 arm vanilla model behrt task risk seed 1: AUROC internal \d\.\d{3}, external \d\.\d{3}$/);
    const cell1 = cellPath(out, { arm: 'vanilla', model: 'behrt', task: 'risk', seed: 1 });
    const mtime = statSync(cell1).mtimeMs;

    const second: string[] = [];
    const res = await runExternalExperiment({ ...o, arms: [...o.arms], models: [...o.models], log: (m) => second.push(m) });
    const lines = cellLines(second);
    assert.equal(lines.length, 6);
    assert.match(lines[0], /^cell 1\/6 arm vanilla model behrt task risk seed 1: .*\(stored, not recomputed\)$/);
    for (const l of lines.slice(1)) assert.doesNotMatch(l, /stored/);
    assert.deepEqual(lines.map((l) => l.split(':')[0]), [
      'cell 1/6 arm vanilla model behrt task risk seed 1', 'cell 2/6 arm vanilla model cdm-bert task risk seed 1', 'cell 3/6 arm vanilla model med-bert task risk seed 1',
      'cell 4/6 arm medrep+text model behrt task risk seed 1', 'cell 5/6 arm medrep+text model cdm-bert task risk seed 1', 'cell 6/6 arm medrep+text model med-bert task risk seed 1',
    ]);
    assert.equal(statSync(cell1).mtimeMs, mtime, 'the finished cell was written again');
    // Only the pretraining of the cells computed in this run: not vanilla/behrt's again.
    assert.equal(second.filter((l) => / pretraining on A/.test(l)).length, 5);

    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    const rows = results.rows as ResultRow[];
    assert.deepEqual(rows.map((r) => `${r.embeddings}/${r.model}/${r.setting}`), [
      'vanilla/behrt/internal', 'vanilla/behrt/external', 'vanilla/cdm-bert/internal', 'vanilla/cdm-bert/external', 'vanilla/med-bert/internal', 'vanilla/med-bert/external',
      'medrep+text/behrt/internal', 'medrep+text/behrt/external', 'medrep+text/cdm-bert/internal', 'medrep+text/cdm-bert/external', 'medrep+text/med-bert/internal', 'medrep+text/med-bert/external',
    ]);
    for (const r of rows) assert.ok(r.tasks.risk.auroc >= 0 && r.tasks.risk.auroc <= 1, `${r.embeddings} ${r.model} ${r.setting}: AUROC ${r.tasks.risk.auroc}`);
    assert.equal(results.models['cdm-bert'].domainEmbedding, true);
    assert.equal(results.models['med-bert'].plosHead, true);
    // One Figure 3/5 bar chart per model, its PNG beside its SVG; curves of other models carry the model's name.
    assert.deepEqual(Object.fromEntries(Object.entries(results.bars as Record<string, { png: string }>).map(([m, f]) => [m, f.png])),
      { behrt: 'auroc-bars.png', 'cdm-bert': 'auroc-bars-cdm-bert.png', 'med-bert': 'auroc-bars-med-bert.png' });
    for (const m of ['cdm-bert', 'med-bert']) {
      assert.ok(readFileSync(join(out, `auroc-bars-${m}.svg`), 'utf8').includes(`>AUROC per task (${m})</text>`));
      assert.ok(readFileSync(join(out, 'curves', `risk-external-${m}-roc.svg`), 'utf8').includes(`>ROC: risk, external, ${m}</text>`));
    }
    // A group without samples is reported, not dropped.
    assert.deepEqual(results.unresolved, [{ task: 'mi', reason: 'site A: no samples/mi shards; site B: no samples/mi shards' }]);
    assert.match(res.table, /not resolved: mi/);
    // Frozen tables were only read.
    assert.deepEqual([join(root, 'medrep.parquet'), join(root, 'text.parquet')].map((f) => sha256(readFileSync(f))), tables);
    assert.ok(!JSON.stringify(results).includes(root), 'results.json names no folder of this machine');

    const t2 = readFileSync(join(out, 'table2.md'), 'utf8');
    for (const m of ['behrt', 'cdm-bert', 'med-bert']) for (const metric of ['AUROC', 'AUPRC']) assert.ok(t2.includes(`## ${m}, ${metric}`), `table2.md lacks ${m} ${metric}`);
    assert.match(t2, /\| arm \| setting \| risk \| MI \| average \|/);
    assert.match(t2, /\| medrep\+text \| external \| [+-]\d\.\d{3} \| not resolved \| [+-]\d\.\d{3} \|/);
    assert.match(t2, /Not resolved on this data .*MI \(mi\): site A: no samples\/mi shards/);
    const csv2 = readFileSync(join(out, 'table2.csv'), 'utf8').trim().split('\n');
    assert.equal(csv2[0], 'model,arm,setting,metric,task_group,task,value,vanilla,improvement,note');
    // 3 models x 2 arms x 2 settings x 2 metrics x 2 tasks
    assert.equal(csv2.length - 1, 48);
    const medBertExt = csv2.find((l) => l.startsWith('med-bert,medrep+text,external,AUROC,risk,risk,'))!.split(',');
    assert.ok(Math.abs(Number(medBertExt[8]) - (Number(medBertExt[6]) - Number(medBertExt[7]))) < 1e-9, 'improvement = arm - vanilla');
    const t3 = readFileSync(join(out, 'table3.md'), 'utf8');
    assert.match(t3, /\| vanilla \| internal \| \d\.\d{3} \| not resolved \| \d\.\d{3} \|/);
    assert.equal(readFileSync(join(out, 'table3.csv'), 'utf8').trim().split('\n').length - 1, 48);

    // A third run finds every cell stored, and writes the same results.json from them.
    const before = readFileSync(join(out, 'results.json'));
    const third: string[] = [];
    await runExternalExperiment({ ...o, arms: [...o.arms], models: [...o.models], log: (m) => third.push(m) });
    assert.equal(cellLines(third).filter((l) => l.endsWith('(stored, not recomputed)')).length, 6);
    assert.equal(third.filter((l) => / pretraining on A/.test(l)).length, 0);
    assert.ok(readFileSync(join(out, 'results.json')).equals(before), 'results.json from stored cells differs');
  });

  it('recomputes a stored cell whose inputs changed (another table under the same arm)', async () => {
    const out = join(root, 'out-changed');
    const logs: string[] = [];
    await runExternalExperiment({ ...common(out, logs), arms: ['medrep'], tasks: ['risk'] });
    await writeRepresentations(join(root, 'medrep-2.parquet'), 8, [0, 50000], 9);
    const again: string[] = [];
    await runExternalExperiment({ ...common(out, again), representations: join(root, 'medrep-2.parquet'), arms: ['medrep'], tasks: ['risk'] });
    const line = again.find((l) => l.startsWith('cell 1/1'))!;
    assert.doesNotMatch(line, /stored/);
    assert.equal(again.filter((l) => / pretraining on A/.test(l)).length, 1);
  });

  it('runs seed by seed: a rerun with one more seed reads the first seed\'s cells and adds the second\'s', async () => {
    const out = join(root, 'out-seeds');
    const first: string[] = [];
    await runExternalExperiment({ ...common(out, first), arms: ['vanilla', 'medrep'], tasks: ['risk'] });
    const again: string[] = [];
    await runExternalExperiment({ ...common(out, again), seeds: [1, 2], arms: ['vanilla', 'medrep'], tasks: ['risk'] });
    assert.deepEqual(again.filter((l) => l.startsWith('cell ')).map((l) => `${l.split(':')[0]}${l.endsWith('(stored, not recomputed)') ? ' stored' : ''}`), [
      'cell 1/4 arm vanilla model behrt task risk seed 1 stored', 'cell 2/4 arm medrep model behrt task risk seed 1 stored',
      'cell 3/4 arm vanilla model behrt task risk seed 2', 'cell 4/4 arm medrep model behrt task risk seed 2',
    ]);
    const rows = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).rows as ResultRow[];
    for (const r of rows) assert.deepEqual(r.tasks.risk.perSeed.map((s) => s.seed), [1, 2], `${r.embeddings} ${r.setting}`);
  });

  it('names the missing table of an arm, an unknown arm or model, in one line', async () => {
    const bad = { ...common(join(root, 'out-bad'), []), representations: undefined, textRepresentations: undefined };
    await assert.rejects(runExternalExperiment({ ...bad, arms: ['vanilla', 'medtok'] }), /^UserError: arm medtok needs a MedTok table \(--medtok-representations\)$/m);
    await assert.rejects(runExternalExperiment({ ...bad, arms: ['no-lwf'] }), /arm no-lwf needs MedRep vectors trained without KD/);
    assert.throws(() => parseArms(['vanilla', 'graph']), /unknown arm 'graph' \(arms: vanilla, medtok, text-only, no-lwf, medrep, medrep\+text\)/);
    assert.throws(() => parseEhrModels(['behrt', 'gpt']), /--models takes behrt, cdm-bert, med-bert, got 'gpt'/);
    await assert.rejects(runExternalExperiment({ ...bad, tasks: ['mi', 'sepsis'] }), /no requested task has samples at both/);
    assert.ok(!existsSync(join(root, 'out-bad', 'results.json')));
  });
});
