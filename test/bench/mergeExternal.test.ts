import { strict as assert } from 'assert';
import { mergeRows } from '../../bench/mergeExternal';
import type { ResultRow } from '../../trainers/behrt/experiment';

const row = (arm: string, setting: 'internal' | 'external', task: string, seed: number, auroc: number): ResultRow => ({
  embeddings: arm, setting, average: { auroc, auprc: auroc / 2 },
  tasks: { [task]: { auroc, auprc: auroc / 2, aurocSd: 0, auprcSd: 0, ci95: [auroc - 0.1, auroc + 0.1], perSeed: [{ seed, auroc, auprc: auroc / 2, ci95: [auroc - 0.1, auroc + 0.1], n: 10, positives: 2, unknownTokenShare: 0 }] } },
});

describe('merging external-experiment runs', () => {
  it('averages each task over the seeds of every run and the tasks of every group', () => {
    const { rows, tasks } = mergeRows([
      { tasks: ['mortality'], rows: [row('vanilla', 'external', 'mortality', 1, 0.6)] },
      { tasks: ['mortality'], rows: [row('vanilla', 'external', 'mortality', 2, 0.8)] },
      { tasks: ['uti'], rows: [row('vanilla', 'external', 'uti', 1, 0.5)] },
    ]);
    assert.deepEqual(tasks, ['mortality', 'uti']);
    assert.equal(rows.length, 1);
    assert.ok(Math.abs(rows[0].tasks.mortality.auroc - 0.7) < 1e-12);
    assert.ok(Math.abs(rows[0].tasks.mortality.aurocSd - Math.SQRT2 * 0.1) < 1e-12);
    assert.deepEqual(rows[0].tasks.mortality.perSeed.map((p) => p.seed), [1, 2]);
    assert.ok(Math.abs(rows[0].average.auroc - 0.6) < 1e-12);
  });

  it('refuses a merge where an arm lacks a task', () => {
    assert.throws(() => mergeRows([
      { tasks: ['mortality'], rows: [row('vanilla', 'external', 'mortality', 1, 0.6)] },
      { tasks: ['uti'], rows: [row('MedRep', 'external', 'uti', 1, 0.5)] },
    ]), /no vanilla external result for task uti/);
  });
});
