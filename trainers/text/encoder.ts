// A small transformer encoder pretrained with masked language modelling on the concept
// descriptions: 30% of the word pieces are chosen, of which 80% become [MASK],
// 10% a random piece and 10% stay; a held-out validation split drives early stopping; the
// concept vector is the final hidden state at [CLS]. Pre-LayerNorm blocks, GELU feed-forward,
// output layer tied to the piece embeddings.
import { tf } from '../tf';
import { Rng } from '../random';
import { CLS, MASK, PAD, SEP, SPECIAL_TOKENS } from './tokenizer';
import { runTrainingLoop } from '../trainingLoop';

export interface TextEncoderConfig {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  maxLen: number;
}

export const SMALL_TEXT_ENCODER: TextEncoderConfig = { hidden: 64, layers: 2, heads: 4, intermediate: 128, maxLen: 48 };
/** The paper's size (one flag away: --text-size paper). */
export const PAPER_TEXT_ENCODER: TextEncoderConfig = { hidden: 768, layers: 6, heads: 12, intermediate: 512, maxLen: 128 };

export interface MlmOptions {
  maskRate: number;
  batchSize: number;
  learningRate: number;
  maxEpochs: number;
  patience: number;
  validationFraction: number;
  seed: number;
  log?: (line: string) => void;
}

/**
 * Early stopping decides when to stop: on a synthetic site's ~1,200 template descriptions the
 * validation loss falls until epoch 30-35 (4.7 -> 0.8). At 10 epochs (the earlier cap) it was still
 * 2.7, and the [CLS] vectors spanned ~1.4 effective dimensions instead of ~10.
 */
export const DEFAULT_MLM: MlmOptions = {
  maskRate: 0.3, batchSize: 32, learningRate: 1e-3, maxEpochs: 60, patience: 2, validationFraction: 0.1, seed: 11,
};

/** The MLM corruption of one sequence: inputs, and target ids at chosen positions (-1 elsewhere). */
export function maskSequence(ids: number[], vocabSize: number, rate: number, rng: Rng): { input: number[]; target: number[] } {
  const input = ids.slice();
  const target = ids.map(() => -1);
  const candidates: number[] = [];
  ids.forEach((id, i) => { if (id !== PAD && id !== CLS && id !== SEP) candidates.push(i); });
  if (candidates.length === 0) return { input, target };
  const k = Math.max(1, Math.round(candidates.length * rate));
  rng.shuffle(candidates);
  for (const pos of candidates.slice(0, k)) {
    target[pos] = ids[pos];
    const r = rng.next();
    if (r < 0.8) input[pos] = MASK;
    else if (r < 0.9) input[pos] = SPECIAL_TOKENS.length + rng.int(vocabSize - SPECIAL_TOKENS.length);
  }
  return { input, target };
}

export class TextEncoder {
  readonly vars: Record<string, tf.Variable> = {};
  constructor(readonly cfg: TextEncoderConfig, readonly vocabSize: number, seed: number) {
    if (cfg.hidden % cfg.heads !== 0) throw new Error(`hidden ${cfg.hidden} is not a multiple of heads ${cfg.heads}`);
    const rng = Rng.seeded(seed);
    const normal = (n: number, std: number) => Float32Array.from({ length: n }, () => rng.normal() * std);
    const add = (name: string, vals: Float32Array, shape: number[]) => {
      const init = tf.tensor(vals, shape);
      this.vars[name] = tf.variable(init, true, `text/${name}`);
      init.dispose(); // the variable holds its own copy
    };
    const H = cfg.hidden;
    add('tok', normal(vocabSize * H, 0.02), [vocabSize, H]);
    add('pos', normal(cfg.maxLen * H, 0.02), [cfg.maxLen, H]);
    for (let l = 0; l < cfg.layers; l++) {
      add(`l${l}.ln1g`, new Float32Array(H).fill(1), [H]); add(`l${l}.ln1b`, new Float32Array(H), [H]);
      add(`l${l}.qkv`, normal(H * 3 * H, 0.02), [H, 3 * H]); add(`l${l}.qkvb`, new Float32Array(3 * H), [3 * H]);
      add(`l${l}.o`, normal(H * H, 0.02 / Math.sqrt(2 * cfg.layers)), [H, H]); add(`l${l}.ob`, new Float32Array(H), [H]);
      add(`l${l}.ln2g`, new Float32Array(H).fill(1), [H]); add(`l${l}.ln2b`, new Float32Array(H), [H]);
      add(`l${l}.f1`, normal(H * cfg.intermediate, 0.02), [H, cfg.intermediate]); add(`l${l}.f1b`, new Float32Array(cfg.intermediate), [cfg.intermediate]);
      add(`l${l}.f2`, normal(cfg.intermediate * H, 0.02 / Math.sqrt(2 * cfg.layers)), [cfg.intermediate, H]); add(`l${l}.f2b`, new Float32Array(H), [H]);
    }
    add('lnfg', new Float32Array(H).fill(1), [H]); add('lnfb', new Float32Array(H), [H]);
    add('mlmb', new Float32Array(vocabSize), [vocabSize]);
  }

  get parameterCount(): number { return Object.values(this.vars).reduce((s, v) => s + v.size, 0); }

  /** Final hidden states [batch, len, hidden] of padded id rows [batch, len]. */
  hidden(ids: tf.Tensor2D): tf.Tensor3D {
    const [B, L] = ids.shape;
    const { hidden: H, heads, layers } = this.cfg;
    const dh = H / heads;
    const v = this.vars;
    const keyMask = tf.reshape(tf.mul(tf.sub(1, tf.cast(tf.notEqual(ids, PAD), 'float32')), -1e9), [B, 1, 1, L]);
    let x = tf.add(tf.gather(v.tok, ids), tf.slice(v.pos, [0, 0], [L, H])) as tf.Tensor3D;
    for (let l = 0; l < layers; l++) {
      const h = layerNorm(x, v[`l${l}.ln1g`], v[`l${l}.ln1b`]);
      const qkv = tf.add(tf.matMul(tf.reshape(h, [B * L, H]), v[`l${l}.qkv`] as tf.Tensor2D), v[`l${l}.qkvb`]);
      const split = (i: number) => tf.transpose(tf.reshape(tf.slice(qkv, [0, i * H], [B * L, H]), [B, L, heads, dh]), [0, 2, 1, 3]) as tf.Tensor4D;
      const q = split(0), k = split(1), val = split(2);
      const att = tf.softmax(tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(dh)), keyMask));
      const ctx = tf.reshape(tf.transpose(tf.matMul(att, val), [0, 2, 1, 3]), [B * L, H]);
      const o = tf.add(tf.matMul(ctx, v[`l${l}.o`] as tf.Tensor2D), v[`l${l}.ob`]);
      x = tf.add(x, tf.reshape(o, [B, L, H])) as tf.Tensor3D;
      const h2 = tf.reshape(layerNorm(x, v[`l${l}.ln2g`], v[`l${l}.ln2b`]), [B * L, H]);
      const f = tf.add(tf.matMul(gelu(tf.add(tf.matMul(h2, v[`l${l}.f1`] as tf.Tensor2D), v[`l${l}.f1b`])), v[`l${l}.f2`] as tf.Tensor2D), v[`l${l}.f2b`]);
      x = tf.add(x, tf.reshape(f, [B, L, H])) as tf.Tensor3D;
    }
    return layerNorm(x, v.lnfg, v.lnfb) as tf.Tensor3D;
  }

  /** Mean cross-entropy over the masked positions (flat indexes into batch*len). */
  mlmLoss(ids: tf.Tensor2D, positions: tf.Tensor1D, targets: tf.Tensor1D): tf.Scalar {
    const [B, L] = ids.shape;
    const H = this.cfg.hidden;
    const h = tf.gather(tf.reshape(this.hidden(ids), [B * L, H]), positions);
    const logits = tf.add(tf.matMul(h, this.vars.tok as tf.Tensor2D, false, true), this.vars.mlmb);
    const logp = tf.logSoftmax(logits);
    const picked = tf.sum(tf.mul(logp, tf.oneHot(targets, this.vocabSize)), 1);
    return tf.neg(tf.mean(picked)) as tf.Scalar;
  }

  snapshot(): Map<string, tf.Tensor> { return new Map(Object.entries(this.vars).map(([k, t]) => [k, tf.clone(t)])); }
  restore(s: Map<string, tf.Tensor>): void { for (const [k, t] of s) this.vars[k].assign(t); }
  dispose(): void { for (const t of Object.values(this.vars)) t.dispose(); }
}

function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const m = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, m.mean), tf.sqrt(tf.add(m.variance, 1e-5))), g), b);
}

/** GELU, tanh approximation. */
function gelu(x: tf.Tensor): tf.Tensor {
  const c = Math.sqrt(2 / Math.PI);
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(c, tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))));
}

/** A batch of padded rows with masked positions flattened. */
interface MlmBatch { ids: tf.Tensor2D; positions: tf.Tensor1D; targets: tf.Tensor1D; tokens: number }

function makeBatch(rows: Array<{ input: number[]; target: number[] }>, maxLen: number): MlmBatch {
  const L = Math.min(maxLen, Math.max(...rows.map((r) => r.input.length)));
  const ids = new Int32Array(rows.length * L);
  const pos: number[] = [];
  const tgt: number[] = [];
  let tokens = 0;
  rows.forEach((r, b) => {
    for (let i = 0; i < Math.min(L, r.input.length); i++) {
      ids[b * L + i] = r.input[i];
      tokens++;
      if (r.target[i] >= 0) { pos.push(b * L + i); tgt.push(r.target[i]); }
    }
  });
  return { ids: tf.tensor2d(ids, [rows.length, L], 'int32'), positions: tf.tensor1d(pos, 'int32'), targets: tf.tensor1d(tgt, 'int32'), tokens };
}

function disposeBatch(b: MlmBatch): void { b.ids.dispose(); b.positions.dispose(); b.targets.dispose(); }

export interface MlmResult {
  epochs: number;
  bestEpoch: number;
  history: Array<{ epoch: number; train: number; validation: number }>;
  tokensProcessed: number;
  seconds: number;
}

/**
 * Pretrains the encoder on tokenised descriptions. The validation split is every sequence whose
 * index hashes into the last validationFraction; its masks are drawn once so its loss is comparable
 * across epochs. Restores the weights of the best validation epoch.
 */
export function pretrainMlm(model: TextEncoder, sequences: number[][], options: Partial<MlmOptions> = {}): MlmResult {
  const o: MlmOptions = { ...DEFAULT_MLM, ...options };
  const log = o.log ?? (() => {});
  const rng = Rng.seeded(o.seed);
  const split = Rng.seeded(o.seed + 1);
  const train: number[][] = [];
  const valid: number[][] = [];
  for (const s of sequences) (split.next() < o.validationFraction ? valid : train).push(s);
  if (valid.length === 0 && train.length > 1) valid.push(train.pop()!);
  const validMasked = valid.map((s) => maskSequence(s, model.vocabSize, o.maskRate, split));
  const optimizer = tf.train.adam(o.learningRate);
  const history: MlmResult['history'] = [];
  let tokensProcessed = 0;
  const start = Date.now();
  let trainLoss = { sum: 0, n: 0 };
  const run = runTrainingLoop({
    maxEpochs: o.maxEpochs,
    patience: o.patience,
    goal: { goal: 'min', minDelta: 1e-6 },
    runEpoch: () => {
      const order = Int32Array.from({ length: train.length }, (_, i) => i);
      rng.shuffle(order);
      trainLoss = { sum: 0, n: 0 };
      for (let s = 0; s < order.length; s += o.batchSize) {
        const rows = Array.from(order.subarray(s, s + o.batchSize), (i) => maskSequence(train[i], model.vocabSize, o.maskRate, rng));
        const batch = makeBatch(rows, model.cfg.maxLen);
        if (batch.positions.size > 0) {
          const loss = optimizer.minimize(() => model.mlmLoss(batch.ids, batch.positions, batch.targets), true, Object.values(model.vars))!;
          trainLoss.sum += loss.dataSync()[0];
          trainLoss.n++;
          loss.dispose();
          tokensProcessed += batch.tokens;
        }
        disposeBatch(batch);
      }
    },
    validate: () => evaluate(model, validMasked, o.batchSize),
    bestWeights: model,
    progressLine: ({ epoch, value }) => `[text-mlm] epoch ${epoch}: train ${(trainLoss.sum / Math.max(trainLoss.n, 1)).toFixed(4)} validation ${value.toFixed(4)}`,
    log,
    onEpochEnd: ({ epoch, value }) => { history.push({ epoch, train: trainLoss.n ? trainLoss.sum / trainLoss.n : NaN, validation: value }); },
  });
  optimizer.dispose();
  return { epochs: run.epochs, bestEpoch: run.bestEpoch, history, tokensProcessed, seconds: (Date.now() - start) / 1000 };
}

function evaluate(model: TextEncoder, rows: Array<{ input: number[]; target: number[] }>, batchSize: number): number {
  let sum = 0;
  let count = 0;
  for (let s = 0; s < rows.length; s += batchSize) {
    const batch = makeBatch(rows.slice(s, s + batchSize), model.cfg.maxLen);
    const m = batch.positions.size;
    if (m > 0) {
      sum += tf.tidy(() => model.mlmLoss(batch.ids, batch.positions, batch.targets).dataSync()[0]) * m;
      count += m;
    }
    disposeBatch(batch);
  }
  return count ? sum / count : NaN;
}

/**
 * One vector per sequence (rows x hidden), in input order: the final [CLS] state, or the mean of
 * the final states over the sequence's tokens (padding left out).
 */
function pooledVectors(model: TextEncoder, sequences: number[][], pooling: 'cls' | 'mean', batchSize: number): Float32Array {
  const H = model.cfg.hidden;
  const out = new Float32Array(sequences.length * H);
  for (let s = 0; s < sequences.length; s += batchSize) {
    const rows = sequences.slice(s, s + batchSize);
    const L = Math.min(model.cfg.maxLen, Math.max(...rows.map((r) => r.length)));
    const ids = new Int32Array(rows.length * L);
    const mask = new Float32Array(rows.length * L);
    rows.forEach((r, b) => r.slice(0, L).forEach((id, i) => { ids[b * L + i] = id; mask[b * L + i] = id === PAD ? 0 : 1; }));
    const pooled = tf.tidy(() => {
      const hidden = model.hidden(tf.tensor2d(ids, [rows.length, L], 'int32'));
      if (pooling === 'cls') return tf.reshape(tf.slice(hidden, [0, 0, 0], [rows.length, 1, H]), [rows.length, H]);
      const m = tf.tensor3d(mask, [rows.length, L, 1]);
      return tf.div(tf.sum(tf.mul(hidden, m), 1), tf.maximum(tf.sum(m, 1), 1));
    });
    out.set(pooled.dataSync() as Float32Array, s * H);
    pooled.dispose();
  }
  return out;
}

/** [CLS] vectors of every sequence (rows x hidden), in input order. */
export function clsVectors(model: TextEncoder, sequences: number[][], batchSize = 64): Float32Array {
  return pooledVectors(model, sequences, 'cls', batchSize);
}

/** Mean of the final hidden states over each sequence's tokens (padding left out), rows x hidden. */
export function meanVectors(model: TextEncoder, sequences: number[][], batchSize = 64): Float32Array {
  return pooledVectors(model, sequences, 'mean', batchSize);
}
