// Model and training sizes. Defaults train on two CPU cores in minutes; `paperSize()` is the
// MedRep paper's BEHRT (hidden 768, 6 layers, 12 heads, intermediate 512, 2048 tokens).
import { UserError } from '../../common/errors';

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
  /** BEHRT-DE / CDM-BERT: add e*domain to the embedding sum (a masked token keeps its domain). */
  domainEmbedding: boolean;
  /**
   * Med-BERT: a prolonged-length-of-stay head on [CLS] trained jointly with MLM during pretraining
   * (not used when finetuning). Checkpoints written before it existed read as false.
   */
  plosHead?: boolean;
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

/** The EHR models of the MedRep paper, one encoder with options (nanoGPT-style config). */
export const EHR_MODELS = ['behrt', 'cdm-bert', 'med-bert'] as const;
export type EhrModelName = (typeof EHR_MODELS)[number];

/** What each model changes in the shared config: CDM-BERT the domain embedding, Med-BERT the PLOS head. */
export const MODEL_VARIANTS: Record<EhrModelName, Pick<BehrtConfig, 'domainEmbedding' | 'plosHead'>> = {
  behrt: { domainEmbedding: false, plosHead: false },
  'cdm-bert': { domainEmbedding: true, plosHead: false },
  'med-bert': { domainEmbedding: false, plosHead: true },
};

export function isEhrModel(name: string): name is EhrModelName {
  return (EHR_MODELS as readonly string[]).includes(name);
}

/** Model names from a flag's list; an unknown name is a user error. */
export function parseEhrModels(names: string[], flag = '--models'): EhrModelName[] {
  return names.map((m) => {
    if (!isEhrModel(m)) throw new UserError(`${flag} takes ${EHR_MODELS.join(', ')}, got '${m}'`);
    return m;
  });
}

/** The config of a named model on top of a size (DEFAULT_MODEL, PAPER_MODEL, or flags). */
export function modelConfig(name: EhrModelName, size: BehrtConfig): BehrtConfig {
  return { ...size, ...MODEL_VARIANTS[name] };
}

export function validateConfig(c: BehrtConfig): void {
  if (c.hidden % c.heads !== 0) throw new Error(`hidden size ${c.hidden} is not divisible by ${c.heads} heads`);
  if (c.maxLen < 3) throw new Error(`maxLen ${c.maxLen} leaves no room for events after [CLS] and gender`);
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === 'number' && (!Number.isFinite(v) || v < 0)) throw new Error(`model config ${k}=${v} is not a valid size`);
  }
}
