// Finetuning and evaluation of one task: pretrain (optionally), finetune on the training split,
// keep the epoch that scores best on validation, and score held-out sequences — of the same site
// or of another one, whose concepts reach a frozen model through their representation vectors.
import { join } from 'node:path';
import type { BehrtConfig, TrainConfig } from './config';
import type { ManifestShard, Sequence } from './data';
import { Behrt } from './model';
import { frozenTableFor, hasVector, type Representations } from './representations';
import { EmbeddingKind, labelMatrix, outputsOf, predict, restoreBest, trainBehrt } from './train';
import { encodeSequence, Vocabulary } from './vocab';
import { binaryMetrics, macroMetrics, prCurve, rocCurve, type Curve } from '../metrics/auc';

export interface EvalMetrics {
  auroc: number;
  auprc: number;
  /** DeLong 95% interval of the AUROC (for multi-label tasks, of the macro average: macroAurocVariance). */
  ci95: [number, number];
  n: number;
  positives: number;
  negatives?: number;
  /**
   * Why AUROC and AUPRC are undefined (NaN here, null in results.json): the evaluated set holds one
   * class only (of every label, for multi-label tasks), e.g. a small site's test split.
   */
  undefinedBecause?: string;
  /** Multi-label tasks: labels averaged and skipped (one class only). */
  labelsAveraged?: number;
  labelsSkipped?: number[];
}

export interface Evaluation {
  metrics: EvalMetrics;
  /** Curves of a binary task (of the first averaged label for multi-label tasks). */
  roc: Curve;
  pr: Curve;
  /** Tokens of the evaluated sequences that the model could not represent ([UNK]). */
  unknownTokenShare: number;
}

/** The model vocabulary: pairs of the training sequences (with a vector, for frozen embeddings). */
export function modelVocabulary(train: Sequence[], embeddings: EmbeddingKind, reps?: Representations): Vocabulary {
  if (embeddings === 'vanilla') return Vocabulary.fromSequences(train);
  if (!reps) throw new Error(`${embeddings} embeddings need a representations file`);
  return Vocabulary.fromSequences(train, hasVector(reps.lookup));
}

export function evaluate(model: Behrt, vocab: Vocabulary, embeddings: EmbeddingKind, reps: Representations | undefined, seqs: Sequence[], cfg: BehrtConfig, batchSize: number): Evaluation {
  if (seqs.length === 0) throw new Error('no sequences to evaluate');
  let v = vocab;
  if (embeddings !== 'vanilla') {
    // Another site's concepts get their vectors; the trained vocabulary keeps its indices.
    v = vocab.extendedWith(Vocabulary.fromSequences(seqs, hasVector(reps!.lookup)));
    model.setFrozenTable(frozenTableFor(v, reps!));
  }
  const encoded = seqs.map((s) => encodeSequence(s, v, cfg));
  let unk = 0;
  let events = 0;
  for (const e of encoded) for (let i = 2; i < e.tokens.length; i++, events++) if (e.tokens[i] === 2) unk++;
  const outputs = outputsOf('task', seqs);
  const y = labelMatrix(seqs, outputs);
  const p = predict(model, encoded, batchSize);
  if (embeddings !== 'vanilla') model.setFrozenTable(frozenTableFor(vocab, reps!));
  let metrics: EvalMetrics;
  let curveLabel = 0;
  const oneClass = oneClassReason(y, outputs, seqs.length);
  if (oneClass) {
    const positives = y.reduce((a, b) => a + b, 0);
    metrics = { auroc: NaN, auprc: NaN, ci95: [NaN, NaN], n: seqs.length, positives, negatives: seqs.length * outputs - positives, undefinedBecause: oneClass };
    return { metrics, roc: { x: [], y: [] }, pr: { x: [], y: [] }, unknownTokenShare: events ? unk / events : 0 };
  }
  if (outputs === 1) {
    const m = binaryMetrics(p, y);
    metrics = { auroc: m.auroc, auprc: m.auprc, ci95: m.ci95, n: seqs.length, positives: m.positives };
  } else {
    const m = macroMetrics(p, y, outputs);
    curveLabel = m.perLabel.findIndex((x) => x !== null);
    metrics = { auroc: m.auroc, auprc: m.auprc, ci95: m.ci95, n: seqs.length, positives: y.reduce((a, b) => a + b, 0), labelsAveraged: m.averaged, labelsSkipped: m.skipped };
  }
  const col = (a: Float32Array) => Array.from({ length: seqs.length }, (_, i) => a[i * outputs + curveLabel]);
  return { metrics, roc: rocCurve(col(p), col(y)), pr: prCurve(col(p), col(y)), unknownTokenShare: events ? unk / events : 0 };
}

/** Null when some label has both classes among the n rows of y ([n, outputs]); else why no AUROC exists. */
export function oneClassReason(y: Float32Array, outputs: number, n: number): string | null {
  for (let j = 0; j < outputs; j++) {
    let pos = 0;
    for (let i = 0; i < n; i++) pos += y[i * outputs + j] ? 1 : 0;
    if (pos > 0 && pos < n) return null;
  }
  if (outputs > 1) return `no label has both classes among ${n} sequences`;
  const pos = y.reduce((a, b) => a + b, 0);
  return `one class only: ${pos} positive, ${n - pos} negative of ${n}`;
}

export interface FinetuneOptions {
  task: string;
  embeddings: EmbeddingKind;
  reps?: Representations;
  vocab: Vocabulary;
  model: BehrtConfig;
  trainCfg: TrainConfig;
  seed: number;
  train: Sequence[];
  val: Sequence[];
  shards: ManifestShard[];
  checkpointDir: string;
  /** Pretrained checkpoint folder to start the encoder from. */
  init?: string;
  /** Continue from checkpointDir's LATEST checkpoint (a finished one is only read). */
  resume?: boolean;
  log?: (m: string) => void;
}

/** Finetunes and returns the model restored to its best validation epoch. */
export async function finetune(o: FinetuneOptions): Promise<{ model: Behrt; history: unknown[] }> {
  const res = await trainBehrt({ ...o, checkpointDir: o.checkpointDir });
  restoreBest(o.checkpointDir, res.model);
  return { model: res.model, history: res.state.history };
}

/** Pretrains with MLM; returns the checkpoint folder (its BEST names the best validation epoch) and says where it is. */
export async function pretrain(o: Omit<FinetuneOptions, 'task' | 'init'>): Promise<string> {
  const res = await trainBehrt({ ...o, task: 'pretrain' });
  res.model.dispose();
  o.log?.(`pretraining checkpoint: ${o.checkpointDir} (finetune from it with --init ${o.checkpointDir})`);
  return o.checkpointDir;
}

export const checkpointPath = (root: string, ...parts: (string | number)[]) => join(root, 'checkpoints', ...parts.map(String));
