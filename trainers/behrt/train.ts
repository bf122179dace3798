// One training loop for MLM pretraining and for finetuning: seeded batches, dropout and masks
// drawn from (seed, step), validation at each epoch end, early stopping, and atomic checkpoints
// that carry everything needed to resume exactly where a run stopped.
import { tf } from '../tf';
import { Adam } from './adam';
import { makeBatch, disposeBatch } from './batch';
import type { BehrtConfig, TrainConfig } from './config';
import { validateConfig } from './config';
import { CheckpointMeta, LoopState, loadWeights, readCheckpointMeta, resolveCheckpoint, saveCheckpoint } from './checkpoint';
import { shardSetHash, type ManifestShard, type Sequence } from './data';
import { maskTokens } from './masking';
import { PLOS_TASK } from './prolongedStay';
import { Behrt } from './model';
import { frozenTableFor, type Representations } from './representations';
import { mixSeed, Rng } from '../random';
import { encodeSequence, Encoded, Vocabulary } from './vocab';
import { binaryMetrics, macroMetrics } from '../metrics/auc';
import { runTrainingLoop } from '../trainingLoop';

export type EmbeddingKind = 'vanilla' | 'medrep' | 'text';

export interface TrainOptions {
  /** 'pretrain' for MLM, else the name of a sample task. */
  task: string;
  train: Sequence[];
  val: Sequence[];
  vocab: Vocabulary;
  embeddings: EmbeddingKind;
  reps?: Representations;
  model: BehrtConfig;
  trainCfg: TrainConfig;
  seed: number;
  shards: ManifestShard[];
  checkpointDir?: string;
  /** Continue from checkpointDir's LATEST checkpoint (its optimizer and loop state too). */
  resume?: boolean;
  /** Continue from this checkpoint folder (weights, optimizer and loop state), e.g. the previous model version. */
  resumeFrom?: string;
  /** Start from another checkpoint's weights (a pretrained encoder, or the previous model version). */
  init?: string;
  /** Stop (with a checkpoint) once this many steps have run in total: for tests and followers. */
  maxSteps?: number;
  /** Train `epochs` more epochs from the resumed state instead of up to `epochs` in total (continuous retraining). */
  extraEpochs?: boolean;
  log?: (msg: string) => void;
  /** Called after every optimisation step (progress, benchmarks). */
  onStep?: (info: { step: number; tokens: number; seconds: number }) => void;
}

export interface TrainResult {
  model: Behrt;
  state: LoopState;
  checkpoint: string | null;
  meta: Omit<CheckpointMeta, 'format' | 'tensors' | 'weightsSha256' | 'adamStep' | 'frozenDim' | 'projection'>;
}

/** Outputs of a task's head: 1 for a binary label, K for a K-label list. */
export function outputsOf(task: string, seqs: Sequence[]): number {
  if (task === 'pretrain') return 0;
  const first = seqs.find((s) => s.labels !== undefined || s.label !== undefined);
  if (!first) throw new Error(`task ${task}: samples have neither a 'label' nor a 'labels' column`);
  return first.labels ? first.labels.length : 1;
}

export function labelMatrix(seqs: Sequence[], outputs: number): Float32Array {
  const y = new Float32Array(seqs.length * outputs);
  seqs.forEach((s, i) => {
    if (outputs === 1) {
      if (s.label === undefined) throw new Error(`sample of person ${s.personId} has no label`);
      y[i] = s.label ? 1 : 0;
    } else {
      if (!s.labels || s.labels.length !== outputs) throw new Error(`sample of person ${s.personId} has ${s.labels?.length ?? 0} labels, expected ${outputs}`);
      s.labels.forEach((v, j) => (y[i * outputs + j] = v ? 1 : 0));
    }
  });
  return y;
}

export function buildModel(o: { model: BehrtConfig; vocab: Vocabulary; embeddings: EmbeddingKind; reps?: Representations; seed: number }): Behrt {
  validateConfig(o.model);
  if (o.embeddings !== 'vanilla' && !o.reps) throw new Error(`${o.embeddings} embeddings need a representations file`);
  const frozen = o.embeddings === 'vanilla' ? undefined : frozenTableFor(o.vocab, o.reps!);
  return new Behrt(o.model, { vocabSize: o.vocab.size, frozen, seed: o.seed });
}

/**
 * Mean MLM cross-entropy over the masked positions of one batch; with `plos` (Med-BERT's labels of
 * the batch's sequences) plus the prolonged-stay head's cross-entropy, the two trained jointly.
 */
function mlmLoss(model: Behrt, items: Encoded[], vocabSize: number, rate: number, rng: Rng, training: boolean, plos?: Float32Array): { loss: () => tf.Scalar; count: number } {
  const masked = items.map((e) => maskTokens(e.tokens, vocabSize, rate, rng));
  const L = Math.max(...items.map((e) => e.tokens.length));
  const positions: number[] = [];
  const targets: number[] = [];
  masked.forEach((m, i) => {
    m.positions.forEach((p, k) => {
      positions.push(i * L + p);
      targets.push(m.targets[k]);
    });
  });
  return {
    count: positions.length,
    loss: () => {
      const batch = makeBatch(items, masked.map((m) => m.tokens));
      const enc = model.encode(batch, training);
      const plosLoss = plos ? bceLoss(model.plosLogits(enc, training), tf.tensor2d(plos, [items.length, 1])) : null;
      if (positions.length === 0) {
        disposeBatch(batch);
        return plosLoss!;
      }
      const logits = model.mlmLogits(enc, tf.tensor1d(positions, 'int32'));
      const logp = tf.logSoftmax(logits);
      const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(targets, 'int32'), vocabSize)), 1);
      const mlm = tf.neg(tf.mean(picked)) as tf.Scalar;
      disposeBatch(batch);
      return plosLoss ? (tf.add(mlm, plosLoss) as tf.Scalar) : mlm;
    },
  };
}

function prolongedStayLabels(seqs: Sequence[]): Float32Array {
  return Float32Array.from(seqs, (s) => {
    if (s.prolongedStay === undefined) throw new Error(`Med-BERT pretraining: the sequence of person ${s.personId} has no prolonged-stay label (the site needs ${PLOS_TASK} samples)`);
    return s.prolongedStay ? 1 : 0;
  });
}

/** Mean sigmoid cross-entropy of a batch over all outputs (numerically stable form). */
function bceLoss(logits: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.mean(tf.add(tf.sub(tf.relu(logits), tf.mul(logits, y)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))))) as tf.Scalar;
}

/** Probabilities [N * outputs] of the classifier. */
export function predict(model: Behrt, data: Encoded[], batchSize: number): Float32Array {
  const out: number[] = [];
  for (let i = 0; i < data.length; i += batchSize) {
    const items = data.slice(i, i + batchSize);
    const probs = tf.tidy(() => {
      const b = makeBatch(items);
      return tf.sigmoid(model.classify(model.encode(b, false), false));
    });
    out.push(...(probs.dataSync() as Float32Array));
    probs.dispose();
  }
  return Float32Array.from(out);
}

/** MLM loss on validation data with fixed masks (the same every epoch, so epochs compare). */
export function mlmValidationLoss(model: Behrt, data: Encoded[], vocabSize: number, rate: number, seed: number, batchSize: number): number {
  const rng = Rng.fromState(mixSeed(seed, 0x7a1));
  let total = 0;
  let count = 0;
  for (let i = 0; i < data.length; i += batchSize) {
    const { loss, count: c } = mlmLoss(model, data.slice(i, i + batchSize), vocabSize, rate, rng, false);
    if (c === 0) continue;
    const l = tf.tidy(loss);
    total += l.dataSync()[0] * c;
    count += c;
    l.dispose();
  }
  return count ? total / count : NaN;
}

/** Validation score, higher is better: -MLM loss, or the (macro) AUROC of the task. */
export function validationScore(model: Behrt, task: string, data: Encoded[], y: Float32Array, outputs: number, o: { vocabSize: number; rate: number; seed: number; batchSize: number }): { score: number; loss?: number } {
  if (task === 'pretrain') {
    const loss = mlmValidationLoss(model, data, o.vocabSize, o.rate, o.seed, o.batchSize);
    return { score: -loss, loss };
  }
  const p = predict(model, data, o.batchSize);
  try {
    return { score: outputs === 1 ? binaryMetrics(p, y).auroc : macroMetrics(p, y, outputs).auroc };
  } catch {
    // A validation set with one class has no AUROC: fall back to the cross-entropy.
    let loss = 0;
    for (let i = 0; i < p.length; i++) {
      const q = Math.min(Math.max(p[i], 1e-7), 1 - 1e-7);
      loss -= y[i] ? Math.log(q) : Math.log(1 - q);
    }
    loss /= Math.max(1, p.length);
    return { score: -loss, loss };
  }
}

export async function trainBehrt(o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? (() => undefined);
  const pretrain = o.task === 'pretrain';
  if (o.train.length === 0) throw new Error(`task ${o.task}: no training sequences`);
  const outputs = outputsOf(o.task, o.train);
  const model = buildModel(o);
  if (pretrain) model.addMlmHead(o.vocab.size, o.seed);
  else model.addClassifier(outputs, o.seed);
  const adam = new Adam(o.trainCfg.learningRate, o.trainCfg.clipNorm, o.trainCfg.weightDecay);
  const state = startingState(o, model, adam, log);
  const batches = new BatchObjectives(o, model, outputs);
  const val = o.val.map((s) => encodeSequence(s, o.vocab, o.model));
  const yVal = pretrain ? new Float32Array(0) : labelMatrix(o.val, outputs);
  const step = optimizerStep(model, adam, model.variables(pretrain ? ['encoder', 'mlm'] : ['encoder', 'classifier']));
  const B = o.trainCfg.batchSize;
  const nBatches = Math.ceil(batches.size / B);
  const meta = (): TrainResult['meta'] => checkpointMeta(o, outputs, state);
  const save = (pointers: ('LATEST' | 'BEST')[]) => (o.checkpointDir ? saveCheckpoint(o.checkpointDir, model, adam, meta(), pointers) : null);
  let lastCheckpoint: string | null = null;
  let trainLoss = NaN;
  let v: { score: number; loss?: number } = { score: NaN };

  const run = runTrainingLoop({
    maxEpochs: o.trainCfg.epochs,
    patience: o.trainCfg.patience,
    goal: { goal: 'max' },
    state,
    runEpoch: () => {
      const order = Rng.fromState(mixSeed(o.seed, state.epoch, 0x5)).shuffle(Array.from({ length: batches.size }, (_, i) => i));
      for (; state.stepInEpoch < nBatches; ) {
        if (o.maxSteps !== undefined && state.step >= o.maxSteps) return 'halt';
        const idx = order.slice(state.stepInEpoch * B, (state.stepInEpoch + 1) * B);
        const stepStart = process.hrtime.bigint();
        model.setDropoutSeed(o.seed, state.step);
        const objective = batches.objective(idx, Rng.fromState(mixSeed(o.seed, state.step, 0x3)));
        if (objective) {
          state.epochLossSum += step(objective);
          state.epochLossCount++;
        }
        state.step++;
        state.stepInEpoch++;
        o.onStep?.({ step: state.step, tokens: batches.tokens(idx), seconds: Number(process.hrtime.bigint() - stepStart) / 1e9 });
      }
      state.stepInEpoch = 0;
    },
    validate: () => {
      v = validationScore(model, o.task, val, yVal, outputs, { vocabSize: o.vocab.size, rate: o.trainCfg.maskRate, seed: o.seed, batchSize: B });
      trainLoss = state.epochLossCount ? state.epochLossSum / state.epochLossCount : NaN;
      state.epochLossSum = 0;
      state.epochLossCount = 0;
      return v.score;
    },
    progressLine: ({ better }) => `${o.task} epoch ${state.epoch} step ${state.step}: train loss ${trainLoss.toFixed(4)}, validation ${pretrain ? 'loss' : 'score'} ${(pretrain ? v.loss! : v.score).toFixed(4)}${better ? ' (best)' : ''}`,
    log,
    onEpochEnd: ({ better }) => {
      state.history.push({ epoch: state.epoch, step: state.step, trainLoss, valScore: v.score, valLoss: v.loss });
      if (better) state.bestStep = state.step;
    },
    checkpoint: ({ better }) => { lastCheckpoint = save(better ? ['LATEST', 'BEST'] : ['LATEST']); },
  });
  if (run.halted) {
    lastCheckpoint = save(['LATEST']);
    return { model, state, checkpoint: lastCheckpoint, meta: meta() };
  }
  adam.dispose();
  return { model, state, checkpoint: lastCheckpoint, meta: meta() };
}

/**
 * The loop state a run starts from: a resumed checkpoint's (its weights and optimizer loaded), or a
 * fresh one, after weights initialised from another checkpoint where asked.
 */
function startingState(o: TrainOptions, model: Behrt, adam: Adam, log: (msg: string) => void): LoopState {
  const pretrain = o.task === 'pretrain';
  let state: LoopState = { step: 0, epoch: 0, stepInEpoch: 0, bestScore: null, bestStep: null, badEpochs: 0, stopped: false, epochLossSum: 0, epochLossCount: 0, history: [] };
  const resumeFrom = o.resumeFrom ?? (o.resume && o.checkpointDir ? resolveCheckpoint(o.checkpointDir) : null);
  if (resumeFrom) {
    const meta = readCheckpointMeta(resumeFrom);
    // New data may bring new concepts: a vocabulary that starts with the checkpoint's grows the model.
    const vocabHash = o.vocab.hash();
    const grows = meta.vocabHash !== vocabHash && o.vocab.extends(meta.vocab);
    if (meta.vocabHash !== vocabHash && !grows) {
      throw new Error(`${resumeFrom}: checkpoint vocabulary ${meta.vocabHash} is neither this run's ${vocabHash} nor its beginning`);
    }
    loadWeights(resumeFrom, model, adam, { growVocabulary: grows });
    if (grows) log(`vocabulary grows from ${meta.vocab.length} to ${o.vocab.tokens.length} concept tokens`);
    state = structuredClone(meta.state);
    log(`resumed from ${resumeFrom} at step ${state.step}, epoch ${state.epoch}`);
  } else if (o.init) {
    const from = resolveCheckpoint(o.init, 'BEST') ?? resolveCheckpoint(o.init);
    if (!from) throw new Error(`${o.init}: no checkpoint to start from`);
    const meta = readCheckpointMeta(from);
    if (meta.vocabHash !== o.vocab.hash()) throw new Error(`${from}: its vocabulary differs from this run's (build the run's vocabulary from the checkpoint)`);
    // Heads of another task are left out; the encoder (and a same-task head) carry over.
    loadWeights(from, model, null, { skipPrefixes: pretrain ? ['cls.'] : meta.task === o.task ? ['mlm.'] : ['mlm.', 'cls.'] });
    log(`initialised from ${from}`);
  }
  if (o.extraEpochs) {
    // New data: a fresh epoch count and early-stopping record; the step (and so the seeds) runs on.
    state = { ...state, epoch: 0, stepInEpoch: 0, badEpochs: 0, stopped: false, bestScore: null, bestStep: null, epochLossSum: 0, epochLossCount: 0 };
  }
  return state;
}

/** What a checkpoint records about the run besides its tensors. */
function checkpointMeta(o: TrainOptions, outputs: number, state: LoopState): TrainResult['meta'] {
  const pretrain = o.task === 'pretrain';
  return {
    kind: pretrain ? 'pretrain' : 'finetune',
    task: o.task,
    model: o.model,
    train: o.trainCfg,
    seed: o.seed,
    embeddings: o.embeddings,
    vocab: o.vocab.tokens,
    vocabHash: o.vocab.hash(),
    mlmVocabSize: pretrain ? o.vocab.size : null,
    outputs: pretrain ? null : outputs,
    representationsHash: o.reps?.hash ?? null,
    shardManifestHash: shardSetHash(o.shards),
    shards: o.shards.map((s) => ({ path: s.path, sha256: s.sha256 })),
    state,
  };
}

/** The training sequences, encoded once, and the loss of a batch of them (MLM, or the task's labels). */
class BatchObjectives {
  private readonly train: Encoded[];
  private readonly yTrain: Float32Array;
  /** Med-BERT: the prolonged-stay labels of the training sequences (validation stays MLM alone, so no label of a held-out person steers pretraining). */
  private readonly yPlos: Float32Array | null;
  private readonly pretrain: boolean;

  constructor(private readonly o: TrainOptions, private readonly model: Behrt, private readonly outputs: number) {
    this.pretrain = o.task === 'pretrain';
    this.train = o.train.map((s) => encodeSequence(s, o.vocab, o.model));
    this.yTrain = this.pretrain ? new Float32Array(0) : labelMatrix(o.train, outputs);
    this.yPlos = this.pretrain && o.model.plosHead ? prolongedStayLabels(o.train) : null;
  }

  get size(): number { return this.train.length; }

  tokens(idx: number[]): number { return idx.reduce((a, i) => a + this.train[i].tokens.length, 0); }

  /** The loss of the sequences `idx` (null: an MLM batch with nothing masked and no prolonged-stay head). */
  objective(idx: number[], rng: Rng): (() => tf.Scalar) | null {
    const { o, model, outputs } = this;
    const items = idx.map((i) => this.train[i]);
    if (this.pretrain) {
      const yPlos = this.yPlos;
      const m = mlmLoss(model, items, o.vocab.size, o.trainCfg.maskRate, rng, true, yPlos ? Float32Array.from(idx, (i) => yPlos[i]) : undefined);
      return m.count > 0 || yPlos ? m.loss : null;
    }
    const y = new Float32Array(idx.length * outputs);
    idx.forEach((i, r) => y.set(this.yTrain.subarray(i * outputs, (i + 1) * outputs), r * outputs));
    return () => {
      const b = makeBatch(items);
      const logits = model.classify(model.encode(b, true), true);
      return bceLoss(logits, tf.tensor2d(y, [idx.length, outputs]));
    };
  }
}

/** One Adam step on `vars` for an objective; returns the objective's value. */
function optimizerStep(model: Behrt, adam: Adam, vars: tf.Variable[]): (objective: () => tf.Scalar) => number {
  const byVarName = new Map<string, string>();
  for (const [n, v] of model.params) byVarName.set(v.name, n);
  const varMap = new Map([...model.params].filter(([, v]) => vars.includes(v)));
  return (objective) => {
    const { value, grads } = tf.variableGrads(objective, vars);
    const loss = value.dataSync()[0];
    const named = new Map<string, tf.Tensor>();
    for (const [vn, g] of Object.entries(grads)) named.set(byVarName.get(vn)!, g);
    adam.apply(varMap, named);
    value.dispose();
    for (const g of named.values()) g.dispose();
    return loss;
  };
}

/** Loads the BEST (or given) checkpoint's weights into `model` (after training, before testing). */
export function restoreBest(checkpointDir: string, model: Behrt): void {
  const best = resolveCheckpoint(checkpointDir, 'BEST');
  if (best) loadWeights(best, model, null);
}
