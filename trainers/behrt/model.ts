// BEHRT in tfjs-core (one model file, nanoGPT style). Embedding = a*concept + b*age + c*segment +
// d*record_rank (+ e*domain for BEHRT-DE) with learnable scalars a=1, b..e=0 at start, then
// LayerNorm and dropout; a post-LN transformer encoder with GELU; an MLM head for pretraining and
// a pooler (dense + tanh on [CLS]) + dropout + linear head for finetuning.
//
// The paper's three EHR models are options of this one encoder (config.ts MODEL_VARIANTS): BEHRT;
// CDM-BERT adds the domain embedding (masking replaces tokens, never domains, so a masked
// position still tells its domain); Med-BERT adds a prolonged-length-of-stay head on [CLS] that
// pretraining trains jointly with MLM.
//
// Concept embeddings are either a learnable table over the training vocabulary (vanilla) or a
// frozen table of representation vectors (MedRep / text), with learnable rows only for the
// special and gender tokens, and a learned projection when the vectors' size differs from hidden.
import { FIRST_CONCEPT_INDEX } from '../../transforms/tokens';
import { tf, Tensor } from '../tf';
import type { BehrtConfig } from './config';
import { mixSeed, Rng } from '../random';
import { attention } from './attention';

export interface Batch {
  tokens: tf.Tensor2D; // int32 [B, L]
  ages: tf.Tensor2D;
  segments: tf.Tensor2D;
  recordRanks: tf.Tensor2D;
  domains: tf.Tensor2D;
  /** 1 for real tokens, 0 for padding: float32 [B, L]. */
  mask: tf.Tensor2D;
  /** False when no sequence is padded (the attention mask can be skipped). */
  padded?: boolean;
}

export interface FrozenTable {
  /** Row i is the vector of model index FIRST_CONCEPT_INDEX + i. */
  vectors: Float32Array;
  dim: number;
}

export type ParamGroup = 'encoder' | 'mlm' | 'classifier';

/** Rows gathered with a scatter-add gradient (ScatterNd exists on every backend; UnsortedSegmentSum does not on WASM). */
export function gatherRows(table: Tensor, indices: tf.Tensor1D): Tensor {
  const rows = table.shape[0];
  // The indices are saved with the forward pass: a closure alone would see them disposed.
  const f = tf.customGrad(((t: Tensor, save: (ts: Tensor[]) => void) => {
    save([indices]);
    return {
      value: tf.gather(t, indices),
      gradFunc: (dy: Tensor, saved: Tensor[]) => tf.scatterND(tf.expandDims(saved[0], 1), dy, [rows, ...t.shape.slice(1)] as number[]),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (f as (t: Tensor) => Tensor)(table);
}

export function gelu(x: Tensor): Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2)))));
}

/** Mean Euclidean norm of a frozen table's rows. */
export function meanRowNorm(t: FrozenTable): number {
  const rows = t.vectors.length / t.dim;
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let j = 0; j < t.dim; j++) sq += t.vectors[r * t.dim + j] ** 2;
    sum += Math.sqrt(sq);
  }
  return rows ? sum / rows : 0;
}

/**
 * Parameters with one entry per model index (the learned concept rows, the MLM output): when the
 * vocabulary grows, a checkpoint of the smaller one fills their leading part (checkpoint.loadWeights).
 */
export const VOCABULARY_INDEXED = new Set(['emb.concept', 'mlm.out.w', 'mlm.out.b']);

let modelCounter = 0;

export class Behrt {
  /** tfjs variable names are global: each model gets its own suffix. */
  private readonly uid = ++modelCounter;
  /** Trainable parameters, in a fixed order (checkpoints and optimizer state follow it). */
  readonly params = new Map<string, tf.Variable>();
  private readonly groups = new Map<string, ParamGroup>();
  private frozenTensor: tf.Tensor2D | null = null;
  private frozenDim = 0;
  readonly embeddings: 'learned' | 'frozen';
  private dropoutCalls = 0;
  private dropoutBase = 0;

  constructor(
    readonly cfg: BehrtConfig,
    opts: { vocabSize: number; frozen?: FrozenTable; seed: number },
  ) {
    const rng = Rng.fromState(mixSeed(opts.seed, 0xbe));
    const H = cfg.hidden;
    this.embeddings = opts.frozen ? 'frozen' : 'learned';
    if (opts.frozen) {
      this.setFrozenTable(opts.frozen);
      const D = opts.frozen.dim;
      // The special and gender rows ([PAD], [MASK], [UNK], [CLS], [SEP], male, female, unknown)
      // start at the frozen vectors' own scale (norms of 3 to 10 are common), not at N(0, 0.02):
      // rows ~100 times smaller than the concept vectors are, after the projection, swamped by its
      // learned bias, and [CLS], [SEP], [MASK] and both genders then reach the encoder as one token.
      this.add('emb.special', 'encoder', [FIRST_CONCEPT_INDEX, D], rng, 'normal', meanRowNorm(opts.frozen) / Math.sqrt(D) || 0.02);
      if (D !== H) {
        this.add('emb.proj.w', 'encoder', [D, H], rng, 'normal');
        this.add('emb.proj.b', 'encoder', [H], rng, 'zeros');
      }
    } else {
      this.add('emb.concept', 'encoder', [opts.vocabSize, H], rng, 'normal');
    }
    this.add('emb.age', 'encoder', [cfg.ageVocab, H], rng, 'normal');
    this.add('emb.segment', 'encoder', [cfg.segmentVocab, H], rng, 'normal');
    this.add('emb.rank', 'encoder', [cfg.recordRankVocab, H], rng, 'normal');
    if (cfg.domainEmbedding) this.add('emb.domain', 'encoder', [5, H], rng, 'normal');
    this.addScalar('emb.a', 1);
    this.addScalar('emb.b', 0);
    this.addScalar('emb.c', 0);
    this.addScalar('emb.d', 0);
    if (cfg.domainEmbedding) this.addScalar('emb.e', 0);
    this.add('emb.ln.g', 'encoder', [H], rng, 'ones');
    this.add('emb.ln.b', 'encoder', [H], rng, 'zeros');
    for (let l = 0; l < cfg.layers; l++) {
      for (const m of ['q', 'k', 'v', 'o']) {
        this.add(`l${l}.${m}.w`, 'encoder', [H, H], rng, 'normal');
        this.add(`l${l}.${m}.b`, 'encoder', [H], rng, 'zeros');
      }
      this.add(`l${l}.ln1.g`, 'encoder', [H], rng, 'ones');
      this.add(`l${l}.ln1.b`, 'encoder', [H], rng, 'zeros');
      this.add(`l${l}.ff1.w`, 'encoder', [H, cfg.intermediate], rng, 'normal');
      this.add(`l${l}.ff1.b`, 'encoder', [cfg.intermediate], rng, 'zeros');
      this.add(`l${l}.ff2.w`, 'encoder', [cfg.intermediate, H], rng, 'normal');
      this.add(`l${l}.ff2.b`, 'encoder', [H], rng, 'zeros');
      this.add(`l${l}.ln2.g`, 'encoder', [H], rng, 'ones');
      this.add(`l${l}.ln2.b`, 'encoder', [H], rng, 'zeros');
    }
  }

  /** The MLM head over a vocabulary of `vocabSize` model indices. */
  addMlmHead(vocabSize: number, seed: number): void {
    if (this.params.has('mlm.out.w')) return;
    const rng = Rng.fromState(mixSeed(seed, 0x11));
    const H = this.cfg.hidden;
    this.add('mlm.dense.w', 'mlm', [H, H], rng, 'normal');
    this.add('mlm.dense.b', 'mlm', [H], rng, 'zeros');
    this.add('mlm.ln.g', 'mlm', [H], rng, 'ones');
    this.add('mlm.ln.b', 'mlm', [H], rng, 'zeros');
    this.add('mlm.out.w', 'mlm', [H, vocabSize], rng, 'normal');
    this.add('mlm.out.b', 'mlm', [vocabSize], rng, 'zeros');
    if (this.cfg.plosHead) {
      // Under 'mlm.': a pretraining head, left out when a finetuned model starts from the encoder.
      this.add('mlm.plos.pool.w', 'mlm', [H, H], rng, 'normal');
      this.add('mlm.plos.pool.b', 'mlm', [H], rng, 'zeros');
      this.add('mlm.plos.head.w', 'mlm', [H, 1], rng, 'normal');
      this.add('mlm.plos.head.b', 'mlm', [1], rng, 'zeros');
    }
  }

  /** Pooler and a linear head with `outputs` logits (1 for binary tasks, 24 for phenotypes). */
  addClassifier(outputs: number, seed: number): void {
    const rng = Rng.fromState(mixSeed(seed, 0xc1));
    const H = this.cfg.hidden;
    for (const name of ['cls.pool.w', 'cls.pool.b', 'cls.head.w', 'cls.head.b']) this.remove(name);
    this.add('cls.pool.w', 'classifier', [H, H], rng, 'normal');
    this.add('cls.pool.b', 'classifier', [H], rng, 'zeros');
    this.add('cls.head.w', 'classifier', [H, outputs], rng, 'normal');
    this.add('cls.head.b', 'classifier', [outputs], rng, 'zeros');
  }

  /** Replaces the frozen vectors (e.g. with another site's vocabulary); never trained. */
  setFrozenTable(t: FrozenTable): void {
    if (this.frozenTensor && t.dim !== this.frozenDim) throw new Error(`frozen vectors have size ${t.dim}, the model was built for ${this.frozenDim}`);
    if (t.vectors.length % t.dim !== 0) throw new Error(`frozen table of ${t.vectors.length} floats is not a multiple of size ${t.dim}`);
    this.frozenTensor?.dispose();
    this.frozenTensor = tf.keep(tf.tensor2d(t.vectors, [t.vectors.length / t.dim, t.dim]));
    this.frozenDim = t.dim;
  }

  get frozenTable(): tf.Tensor2D | null {
    return this.frozenTensor;
  }

  get projected(): boolean {
    return this.params.has('emb.proj.w');
  }

  variables(groups: ParamGroup[]): tf.Variable[] {
    return [...this.params.entries()].filter(([n]) => groups.includes(this.groups.get(n)!)).map(([, v]) => v);
  }

  groupOf(name: string): ParamGroup {
    return this.groups.get(name)!;
  }

  /** Dropout masks are seeded from (seed, step): the same step always drops the same units. */
  setDropoutSeed(seed: number, step: number): void {
    this.dropoutBase = mixSeed(seed, step, 0xd0);
    this.dropoutCalls = 0;
  }

  private dropout(x: Tensor, training: boolean): Tensor {
    if (!training || this.cfg.dropout === 0) return x;
    return tf.dropout(x, this.cfg.dropout, undefined, mixSeed(this.dropoutBase, this.dropoutCalls++));
  }

  private p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`model has no parameter ${name}`);
    return v;
  }

  private dense(x: Tensor, name: string): Tensor {
    return tf.add(tf.matMul(x as tf.Tensor2D, this.p(`${name}.w`) as tf.Tensor2D), this.p(`${name}.b`));
  }

  private layerNorm(x: Tensor, name: string): Tensor {
    const { mean, variance } = tf.moments(x, -1, true);
    const norm = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-6)));
    return tf.add(tf.mul(norm, this.p(`${name}.g`)), this.p(`${name}.b`));
  }

  /** Concept vectors of the tokens, [N, H]. */
  private conceptEmbedding(flatTokens: tf.Tensor1D): Tensor {
    if (this.embeddings === 'learned') return gatherRows(this.p('emb.concept'), flatTokens);
    const table = tf.concat([this.p('emb.special'), this.frozenTensor!], 0);
    const rows = gatherRows(table, flatTokens);
    return this.projected ? this.dense(rows, 'emb.proj') : rows;
  }

  /** The embedding sum before LayerNorm, [B*L, H] (exposed for tests). */
  embeddingSum(b: Batch): Tensor {
    const flat = (t: tf.Tensor2D) => tf.reshape(t, [-1]) as tf.Tensor1D;
    let sum = tf.mul(this.p('emb.a'), this.conceptEmbedding(flat(b.tokens)));
    sum = tf.add(sum, tf.mul(this.p('emb.b'), gatherRows(this.p('emb.age'), flat(b.ages))));
    sum = tf.add(sum, tf.mul(this.p('emb.c'), gatherRows(this.p('emb.segment'), flat(b.segments))));
    sum = tf.add(sum, tf.mul(this.p('emb.d'), gatherRows(this.p('emb.rank'), flat(b.recordRanks))));
    if (this.cfg.domainEmbedding) sum = tf.add(sum, tf.mul(this.p('emb.e'), gatherRows(this.p('emb.domain'), flat(b.domains))));
    return sum;
  }

  /** Encoder output [B, L, H]. */
  encode(b: Batch, training: boolean): Tensor {
    const [B, L] = b.tokens.shape;
    let x = this.dropout(this.layerNorm(this.embeddingSum(b), 'emb.ln'), training); // [B*L, H]
    // Padding keys get -1e9 before the softmax (no bias tensor when nothing is padded: at 2048
    // tokens each [B, heads, L, L] tensor saved is hundreds of MB).
    const bias = b.padded === false ? null : tf.reshape(tf.mul(tf.sub(1, b.mask), -1e9), [B, 1, 1, L]);
    for (let l = 0; l < this.cfg.layers; l++) {
      x = training && this.cfg.recomputeLayers ? this.recomputedLayer(x, l, B, L, bias) : this.layer(x, l, B, L, bias, training);
    }
    return tf.reshape(x, [B, L, this.cfg.hidden]);
  }

  /** One post-LN transformer layer on [B*L, H]. */
  private layer(x: Tensor, l: number, B: number, L: number, bias: Tensor | null, training: boolean): Tensor {
    const H = this.cfg.hidden;
    const nh = this.cfg.heads;
    const dh = H / nh;
    const heads = (t: Tensor) => tf.transpose(tf.reshape(t, [B, L, nh, dh]), [0, 2, 1, 3]);
    // The 1/sqrt(dh) scale goes on q ([B*L, H]) rather than on the [B, nh, L, L] scores.
    const q = heads(tf.mul(this.dense(x, `l${l}.q`), 1 / Math.sqrt(dh)));
    const k = heads(this.dense(x, `l${l}.k`));
    const v = heads(this.dense(x, `l${l}.v`));
    const drop = training && this.cfg.dropout > 0 ? { seed: mixSeed(this.dropoutBase, this.dropoutCalls++), rate: this.cfg.dropout } : null;
    // Checkpoints written before attentionBlock existed read as 0 (the whole sequence at once).
    const ctx = tf.reshape(tf.transpose(attention(q, k, v, bias, drop, this.cfg.attentionBlock ?? 0), [0, 2, 1, 3]), [B * L, H]);
    const h = this.layerNorm(tf.add(x, this.dropout(this.dense(ctx, `l${l}.o`), training)), `l${l}.ln1`);
    const ff = this.dense(gelu(this.dense(h, `l${l}.ff1`)), `l${l}.ff2`);
    return this.layerNorm(tf.add(h, this.dropout(ff, training)), `l${l}.ln2`);
  }

  /**
   * Gradient checkpointing: the layer keeps only its input during the forward pass and runs
   * again (same dropout masks) when its gradient is needed, so one layer's activations are alive
   * at a time. With blocked attention (attention.ts) it keeps the paper's size at 2048 tokens well
   * inside the 4 GB WASM heap (bench/results/behrt.json).
   */
  private recomputedLayer(x: Tensor, l: number, B: number, L: number, bias: Tensor | null): Tensor {
    const params = [...this.params.entries()].filter(([n]) => n.startsWith(`l${l}.`)).map(([, v]) => v);
    const firstDropout = this.dropoutCalls;
    const run = (input: Tensor) => {
      this.dropoutCalls = firstDropout;
      return this.layer(input, l, B, L, bias, true);
    };
    const extra = bias ? [bias] : [];
    const f = tf.customGrad(((...args: unknown[]) => {
      const save = args.pop() as (ts: Tensor[]) => void;
      const inputs = args as Tensor[];
      save([inputs[0], ...extra]);
      const value = tf.tidy(() => run(inputs[0]));
      return {
        value,
        gradFunc: (dy: Tensor, saved: Tensor[]) => {
          // A nested tf.grads at gradient depth 0 replaces the engine's active tape; put the outer one back.
          const engine = tf.engine() as unknown as { state: { activeTape: unknown } };
          const outerTape = engine.state.activeTape;
          const after = this.dropoutCalls;
          const grads = tf.grads((input: Tensor) => run(input))([saved[0], ...params], dy as Tensor);
          this.dropoutCalls = after;
          engine.state.activeTape = outerTape;
          return [...grads, ...extra.map((t) => tf.zerosLike(t))];
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    return (f as unknown as (...t: Tensor[]) => Tensor)(x, ...params, ...extra);
  }

  /**
   * Attention probabilities of [CLS] (query row 0) over the keys in the last layer, averaged over
   * heads, without dropout: [B, L]; padding keys get 0.
   */
  clsAttention(b: Batch): Tensor {
    return tf.tidy(() => {
      const [B, L] = b.tokens.shape;
      const nh = this.cfg.heads;
      const dh = this.cfg.hidden / nh;
      const last = this.cfg.layers - 1;
      const bias = b.padded === false ? null : tf.reshape(tf.mul(tf.sub(1, b.mask), -1e9), [B, 1, 1, L]);
      let x = this.layerNorm(this.embeddingSum(b), 'emb.ln');
      for (let l = 0; l < last; l++) x = this.layer(x, l, B, L, bias, false);
      const heads = (t: Tensor) => tf.transpose(tf.reshape(t, [B, L, nh, dh]), [0, 2, 1, 3]);
      const q = tf.slice(heads(tf.mul(this.dense(x, `l${last}.q`), 1 / Math.sqrt(dh))), [0, 0, 0, 0], [B, nh, 1, dh]);
      const raw = tf.matMul(q as tf.Tensor4D, heads(this.dense(x, `l${last}.k`)) as tf.Tensor4D, false, true);
      const probs = tf.softmax(bias ? tf.add(raw, bias) : raw);
      return tf.mean(tf.reshape(probs, [B, nh, L]), 1);
    });
  }

  /** MLM logits at the given flat positions of the encoder output, [M, V]. */
  mlmLogits(encoded: Tensor, positions: tf.Tensor1D): Tensor {
    const H = this.cfg.hidden;
    const rows = gatherRows(tf.reshape(encoded, [-1, H]), positions);
    const h = this.layerNorm(gelu(this.dense(rows, 'mlm.dense')), 'mlm.ln');
    return this.dense(h, 'mlm.out');
  }

  /** Med-BERT's prolonged-length-of-stay logit from [CLS]: [B, 1]. */
  plosLogits(encoded: Tensor, training: boolean): Tensor {
    const [B, , H] = encoded.shape;
    const cls = tf.reshape(tf.slice(encoded, [0, 0, 0], [B, 1, H]), [B, H]);
    return this.dense(this.dropout(tf.tanh(this.dense(cls, 'mlm.plos.pool')), training), 'mlm.plos.head');
  }

  /** Classifier logits from [CLS]: [B, outputs]. */
  classify(encoded: Tensor, training: boolean): Tensor {
    const [B, , H] = encoded.shape;
    const cls = tf.reshape(tf.slice(encoded, [0, 0, 0], [B, 1, H]), [B, H]);
    const pooled = tf.tanh(this.dense(cls, 'cls.pool'));
    return this.dense(this.dropout(pooled, training), 'cls.head');
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    this.frozenTensor?.dispose();
    this.frozenTensor = null;
  }

  private add(name: string, group: ParamGroup, shape: number[], rng: Rng, init: 'normal' | 'zeros' | 'ones', std = 0.02): void {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (init === 'ones') data.fill(1);
    else if (init === 'normal') for (let i = 0; i < n; i++) data[i] = std * rng.normal();
    this.params.set(name, tf.variable(tf.tensor(data, shape), true, `${name}#${this.uid}`));
    this.groups.set(name, group);
  }

  private addScalar(name: string, value: number): void {
    this.params.set(name, tf.variable(tf.scalar(value), true, `${name}#${this.uid}`));
    this.groups.set(name, 'encoder');
  }

  private remove(name: string): void {
    this.params.get(name)?.dispose();
    this.params.delete(name);
    this.groups.delete(name);
  }
}
