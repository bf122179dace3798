// Model and training sizes. Defaults train on two CPU cores in minutes; `paperSize()` is the
// MedRep paper's BEHRT (hidden 768, 6 layers, 12 heads, intermediate 512, 2048 tokens).

export interface BehrtConfig {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  /** Longest sequence fed to the model, [CLS] and gender token included; longer ones keep the newest events. */
  maxLen: number;
  dropout: number;
  /** Rows of the age embedding (ages 0..119). */
  ageVocab: number;
  /** Rows of the segment (visit rank within the window) and record-rank embeddings; larger ranks are clamped. */
  segmentVocab: number;
  recordRankVocab: number;
  /** BEHRT-DE: add e*domain to the embedding sum. */
  domainEmbedding: boolean;
  /** Gradient checkpointing: recompute each layer in the backward pass instead of keeping its activations. */
  recomputeLayers: boolean;
  /**
   * Attention over blocks of this many query rows with a recomputing gradient (attention.ts), so
   * that no [batch, heads, L, L] tensor is ever built; 0 = the whole sequence at once. Same values.
   */
  attentionBlock: number;
}

export interface TrainConfig {
  batchSize: number;
  learningRate: number;
  epochs: number;
  /** Early stopping: epochs without a better validation score before stopping. */
  patience: number;
  /** Fraction of non-special tokens chosen for MLM. */
  maskRate: number;
  /** Global-norm gradient clipping. */
  clipNorm: number;
  weightDecay: number;
}

export const DEFAULT_MODEL: BehrtConfig = {
  hidden: 32,
  layers: 2,
  heads: 2,
  intermediate: 64,
  maxLen: 64,
  dropout: 0.1,
  ageVocab: 120,
  segmentVocab: 64,
  recordRankVocab: 32,
  domainEmbedding: false,
  recomputeLayers: false,
  attentionBlock: 0,
};

export const PAPER_MODEL: BehrtConfig = {
  hidden: 768,
  layers: 6,
  heads: 12,
  intermediate: 512,
  maxLen: 2048,
  dropout: 0.1,
  ageVocab: 120,
  segmentVocab: 2048,
  recordRankVocab: 512,
  domainEmbedding: false,
  recomputeLayers: true,
  attentionBlock: 256,
};

export const DEFAULT_TRAIN: TrainConfig = {
  batchSize: 16,
  learningRate: 1e-3,
  epochs: 5,
  patience: 2,
  maskRate: 0.3,
  clipNorm: 1.0,
  weightDecay: 0,
};

export const PAPER_TRAIN: TrainConfig = { ...DEFAULT_TRAIN, batchSize: 8, learningRate: 5e-5, epochs: 20, patience: 3 };

export function validateConfig(c: BehrtConfig): void {
  if (c.hidden % c.heads !== 0) throw new Error(`hidden size ${c.hidden} is not divisible by ${c.heads} heads`);
  if (c.maxLen < 3) throw new Error(`maxLen ${c.maxLen} leaves no room for events after [CLS] and gender`);
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === 'number' && (!Number.isFinite(v) || v < 0)) throw new Error(`model config ${k}=${v} is not a valid size`);
  }
}
