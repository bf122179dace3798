// The trainers' shared early-stopping loop: when it stops, which epoch it keeps, what it restores,
// and in which order it calls a trainer's hooks.
import { strict as assert } from 'node:assert';
import { runTrainingLoop, type Goal, type EarlyStoppingState } from '../../trainers/trainingLoop';

/** Weights that are just the epoch they were taken after; disposals are counted. */
function fakeModel() {
  let epoch = -1;
  let live = 0;
  const restored: number[] = [];
  return {
    setEpoch: (e: number) => { epoch = e; },
    bestWeights: {
      snapshot: () => { live++; return new Map([['w', { epoch, dispose: () => { live--; } }]]); },
      restore: (w: Map<string, { epoch: number; dispose(): void }>) => { restored.push(w.get('w')!.epoch); },
    },
    live: () => live,
    restored,
  };
}

function run(values: number[], goal: Goal, patience: number, state?: EarlyStoppingState) {
  const model = fakeModel();
  const calls: string[] = [];
  const validated: number[] = [];
  const result = runTrainingLoop({
    maxEpochs: values.length, patience, goal, state,
    runEpoch: (e) => { model.setEpoch(e); },
    validate: (e) => { validated.push(e); return values[e]; },
    bestWeights: model.bestWeights,
    progressLine: ({ epoch, value, better }) => `epoch ${epoch}: ${value}${better ? ' (best)' : ''}`,
    log: (line) => calls.push(`log ${line}`),
    onEpochEnd: ({ epoch }) => calls.push(`record ${epoch}`),
    checkpoint: ({ epoch, better }) => calls.push(`checkpoint ${epoch}${better ? ' best' : ''}`),
  });
  return { result, model, calls, validated };
}

describe('training loop', () => {
  it('stops after `patience` epochs without a lower loss and restores the best epoch\'s weights', () => {
    const { result, model, validated } = run([5, 4, 4.5, 4.2, 3], { goal: 'min', minDelta: 1e-6 }, 2);
    assert.deepEqual(validated, [0, 1, 2, 3]);
    assert.deepEqual(result, { epochs: 4, bestEpoch: 1, halted: false });
    assert.deepEqual(model.restored, [1]);
    assert.equal(model.live(), 0, 'every snapshot is disposed');
  });

  it('counts a loss that falls by no more than minDelta as no improvement', () => {
    const { result } = run([5, 5 - 1e-7, 5 - 2e-7, 1], { goal: 'min', minDelta: 1e-6 }, 2);
    assert.deepEqual(result, { epochs: 3, bestEpoch: 0, halted: false });
  });

  it('a score must rise; the first epoch is the best so far even when its score is NaN', () => {
    const first = run([NaN, 0.5], { goal: 'max' }, 1);
    assert.deepEqual(first.result, { epochs: 2, bestEpoch: 0, halted: false });
    const loss = run([NaN, 0.5], { goal: 'min', minDelta: 0 }, 1);
    assert.deepEqual(loss.result, { epochs: 1, bestEpoch: -1, halted: false }, 'a NaN loss never improves');
  });

  it('logs, records and checkpoints each epoch in that order', () => {
    const { calls } = run([3, 2, 2.5], { goal: 'min', minDelta: 0 }, 5);
    assert.deepEqual(calls, [
      'log epoch 0: 3 (best)', 'record 0', 'checkpoint 0 best',
      'log epoch 1: 2 (best)', 'record 1', 'checkpoint 1 best',
      'log epoch 2: 2.5', 'record 2', 'checkpoint 2',
    ]);
  });

  it('continues a resumed state: its epoch count, best score and bad epochs carry on', () => {
    const state: EarlyStoppingState = { epoch: 2, bestScore: 0.8, badEpochs: 1, stopped: false };
    const { result, validated } = run([0, 0, 0.7, 0.9], { goal: 'max' }, 2, state);
    assert.deepEqual(validated, [2]);
    assert.deepEqual(result, { epochs: 3, bestEpoch: -1, halted: false });
    assert.deepEqual(state, { epoch: 3, bestScore: 0.8, badEpochs: 2, stopped: true });
    const stopped = run([1, 2], { goal: 'max' }, 2, { epoch: 1, bestScore: 1, badEpochs: 2, stopped: true });
    assert.deepEqual(stopped.validated, [], 'a stopped run trains no more');
  });

  it('halts at once when an epoch says so: no validation, no restore', () => {
    const model = fakeModel();
    const validated: number[] = [];
    const result = runTrainingLoop({
      maxEpochs: 5, patience: 5, goal: { goal: 'min', minDelta: 0 },
      runEpoch: (e) => { model.setEpoch(e); return e === 1 ? 'halt' : undefined; },
      validate: (e) => { validated.push(e); return 1; },
      bestWeights: model.bestWeights,
    });
    assert.deepEqual(result, { epochs: 1, bestEpoch: 0, halted: true });
    assert.deepEqual(validated, [0]);
    assert.deepEqual(model.restored, []);
    assert.equal(model.live(), 0);
  });
});
