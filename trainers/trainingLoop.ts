// The trainers' one early-stopping loop: epochs run until the epoch budget is spent or the
// validation value has not improved for `patience` epochs in a row. The loop owns the epoch
// counter and the early-stopping record (a state object that a trainer may checkpoint and hand
// back to resume); a trainer supplies the epoch's work, the validation value, and optionally a
// way to keep the best weights in memory, a checkpoint hook and a progress line.

/** The part of a trainer's loop state that early stopping reads and writes. */
export interface EarlyStoppingState {
  /** Epochs completed. */
  epoch: number;
  /** Best validation value so far (null before the first validation). */
  bestScore: number | null;
  /** Epochs in a row without improvement. */
  badEpochs: number;
  stopped: boolean;
}

export function freshEarlyStopping(): EarlyStoppingState {
  return { epoch: 0, bestScore: null, badEpochs: 0, stopped: false };
}

/**
 * Which validation values improve on the best: 'min' (a loss) must fall below the best by more than
 * minDelta (the best before any epoch is +Infinity, so a NaN never improves); 'max' (a score) must
 * rise above it (the first epoch is always the best so far).
 */
export type Goal = { goal: 'min'; minDelta: number } | { goal: 'max' };

export function improves(value: number, best: number | null, g: Goal): boolean {
  if (g.goal === 'min') return value < (best ?? Infinity) - g.minDelta;
  return best === null || value > best;
}

/** What the loop tells the hooks after each validated epoch. */
export interface EpochEnd {
  /** Index of the epoch just run, from 0. */
  epoch: number;
  value: number;
  better: boolean;
}

/** Weights kept in memory: a deep copy of the best epoch's, put back when the loop ends. */
export interface KeepsBestWeights<W extends Map<string, { dispose(): void }>> {
  snapshot(): W;
  restore(weights: W): void;
}

export interface TrainingLoop<W extends Map<string, { dispose(): void }>> {
  maxEpochs: number;
  patience: number;
  goal: Goal;
  /** A resumed run's state (mutated in place); default: a fresh one. */
  state?: EarlyStoppingState;
  /** Trains one epoch; 'halt' stops the loop at once, before this epoch is validated. */
  runEpoch(epoch: number): void | 'halt';
  /** The validation value of the weights after `epoch`. */
  validate(epoch: number): number;
  bestWeights?: KeepsBestWeights<W>;
  /** The epoch's progress line, logged first. */
  progressLine?(end: EpochEnd): string;
  log?(line: string): void;
  /** Records the epoch (history, best step, learning curves) after its progress line. */
  onEpochEnd?(end: EpochEnd): void;
  /** Saves a checkpoint last, so that it holds the epoch's record. */
  checkpoint?(end: EpochEnd): void;
}

export interface LoopResult {
  /** Epochs completed, resumed ones included. */
  epochs: number;
  /** Index (from 0) of the best epoch of this call, -1 if none improved. */
  bestEpoch: number;
  /** True when runEpoch halted the loop. */
  halted: boolean;
}

export function runTrainingLoop<W extends Map<string, { dispose(): void }>>(loop: TrainingLoop<W>): LoopResult {
  const state = loop.state ?? freshEarlyStopping();
  let best: W | null = null;
  let bestEpoch = -1;
  let halted = false;
  try {
    while (!state.stopped && state.epoch < loop.maxEpochs) {
      const epoch = state.epoch;
      if (loop.runEpoch(epoch) === 'halt') { halted = true; break; }
      state.epoch++;
      const value = loop.validate(epoch);
      const better = improves(value, state.bestScore, loop.goal);
      if (better) {
        state.bestScore = value;
        state.badEpochs = 0;
        bestEpoch = epoch;
        if (loop.bestWeights) { disposeWeights(best); best = loop.bestWeights.snapshot(); }
      } else if (++state.badEpochs >= loop.patience) state.stopped = true;
      const end: EpochEnd = { epoch, value, better };
      if (loop.progressLine) loop.log?.(loop.progressLine(end));
      loop.onEpochEnd?.(end);
      loop.checkpoint?.(end);
    }
    if (best && loop.bestWeights && !halted) loop.bestWeights.restore(best);
  } finally {
    disposeWeights(best);
  }
  return { epochs: state.epoch, bestEpoch, halted };
}

function disposeWeights(w: Map<string, { dispose(): void }> | null): void {
  w?.forEach((t) => t.dispose());
}
