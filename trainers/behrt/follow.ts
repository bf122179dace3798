// Continuous retraining: watch a pipeline output's manifest (manifest.json, and the manifest.d/ log
// a running stream adds a shard to as soon as it is durable); when shards of the task land,
// continue from the last model version's checkpoint on them, score the new version and the
// promoted one on the same validation set, and register the version with its metrics and the
// shards it has seen. A version that scores worse is recorded but not promoted.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import type { BehrtConfig, TrainConfig } from './config';
import { readCheckpointMeta, resolveCheckpoint, loadWeights } from './checkpoint';
import { hasManifest, manifestShards, readSequences, shardMatches, shardSetHash, type ManifestShard, type Sequence } from './data';
import { modelVocabulary } from './evaluate';
import type { Representations } from './representations';
import { buildModel, EmbeddingKind, labelMatrix, outputsOf, trainBehrt, validationScore } from './train';
import { encodeSequence, Vocabulary } from './vocab';

export interface ModelVersion {
  version: number;
  createdAt: string;
  checkpoint: string;
  /** Every shard this version has been trained on (its own and its ancestors'), and the new ones. */
  shards: { path: string; sha256: string }[];
  newShards: { path: string; sha256: string }[];
  shardSetHash: string;
  trainSequences: number;
  /** Concept tokens of this version's vocabulary, and how many it added to the previous version's. */
  vocabulary: { tokens: number; added: number };
  validation: { sequences: number; score: number; promotedScore: number | null; metric: string };
  promoted: boolean;
}

export interface Registry {
  task: string;
  embeddings: EmbeddingKind;
  promoted: number | null;
  versions: ModelVersion[];
}

export interface FollowOptions {
  /** Pipeline output folder with manifest.json or manifest.d/. */
  shardsDir: string;
  task: string;
  embeddings: EmbeddingKind;
  reps?: Representations;
  model: BehrtConfig;
  train: TrainConfig;
  seed: number;
  /** Where versions, checkpoints and registry.json live. */
  modelDir: string;
  trainSplits: string[];
  valSplits: string[];
  pollMs?: number;
  /** Stop after this many versions exist (tests; a one-shot catch-up run). */
  maxVersions?: number;
  signal?: AbortSignal;
  log?: (m: string) => void;
  onVersion?: (v: ModelVersion) => void;
}

const registryFile = (dir: string) => join(dir, 'registry.json');

export function readRegistry(dir: string): Registry | null {
  const f = registryFile(dir);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Registry) : null;
}

function writeRegistry(dir: string, r: Registry): void {
  const tmp = `${registryFile(dir)}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(r, null, 1));
  renameSync(tmp, registryFile(dir));
}

const shardKey = (s: { path: string; sha256: string }) => `${s.path}\t${s.sha256}`;
// A poll's wait ends at the timeout or the abort; either way its listener goes, so a long follow
// does not pile up one abort listener per poll.
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => { clearTimeout(t); resolve(); };
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** One poll: trains and registers a version when new shards are listed; returns it, or null. */
export async function followOnce(o: FollowOptions): Promise<ModelVersion | null> {
  const log = o.log ?? (() => undefined);
  mkdirSync(o.modelDir, { recursive: true });
  const registry: Registry = readRegistry(o.modelDir) ?? { task: o.task, embeddings: o.embeddings, promoted: null, versions: [] };
  const last = registry.versions.at(-1);
  const seen = new Set((last?.shards ?? []).map(shardKey));
  const listed = manifestShards(o.shardsDir).filter((s) => shardMatches(s, o.task));
  const fresh = listed.filter((s) => !seen.has(shardKey(s)));
  if (fresh.length === 0) return null;
  const all: ManifestShard[] = [...listed.filter((s) => seen.has(shardKey(s))), ...fresh];
  log(`follow ${o.task}: ${fresh.length} new shard(s): ${fresh.map((s) => s.path).join(', ')}`);
  const newSeqs = await readSequences(fresh.map((s) => resolvePath(o.shardsDir, s.path)));
  const allSeqs = await readSequences(all.map((s) => resolvePath(o.shardsDir, s.path)));
  const pretrain = o.task === 'pretrain';
  const trainSplits = pretrain ? ['pretrain_train'] : o.trainSplits;
  const valSplits = pretrain ? ['pretrain_val'] : o.valSplits;
  const train = newSeqs.filter((s) => trainSplits.includes(s.split));
  const val = allSeqs.filter((s) => valSplits.includes(s.split));
  if (train.length === 0 || val.length === 0) {
    log(`follow ${o.task}: the new shards hold ${train.length} training and the seen ones ${val.length} validation sequences; waiting for more`);
    return null;
  }
  const prevCkpt = last ? resolveCheckpoint(last.checkpoint) : null;
  // The first version's vocabulary, grown by the concepts each later version's shards bring (old
  // indices keep their rows; the new ones start fresh), so a new code is learned, not read as [UNK].
  const seenVocab = prevCkpt ? new Vocabulary(readCheckpointMeta(prevCkpt).vocab) : null;
  const vocab = seenVocab ? seenVocab.extendedWith(modelVocabulary(train, o.embeddings, o.reps)) : modelVocabulary(train, o.embeddings, o.reps);
  const version = (last?.version ?? 0) + 1;
  const dir = join(o.modelDir, 'versions', `v${String(version).padStart(4, '0')}`);
  const res = await trainBehrt({
    task: o.task, train, val, vocab, embeddings: o.embeddings, reps: o.reps, model: o.model, trainCfg: o.train, seed: o.seed,
    shards: all, checkpointDir: dir, resumeFrom: prevCkpt ?? undefined, extraEpochs: prevCkpt !== null, log,
  });
  // Score the new version and the promoted one on the same validation sequences.
  const enc = val.map((s) => encodeSequence(s, vocab, o.model));
  const outputs = outputsOf(o.task, val);
  const y = pretrain ? new Float32Array(0) : labelMatrix(val, outputs);
  const scoreOpts = { vocabSize: vocab.size, rate: o.train.maskRate, seed: o.seed, batchSize: o.train.batchSize };
  const best = resolveCheckpoint(dir, 'BEST')!;
  loadWeights(best, res.model, null);
  const score = validationScore(res.model, o.task, enc, y, outputs, scoreOpts).score;
  let promotedScore: number | null = null;
  if (registry.promoted !== null) {
    // The promoted version reads the validation set with its own vocabulary (codes it never saw are [UNK] to it).
    const cur = registry.versions.find((v) => v.version === registry.promoted)!;
    const curBest = resolveCheckpoint(cur.checkpoint, 'BEST')!;
    const curVocab = new Vocabulary(readCheckpointMeta(curBest).vocab);
    const m = buildModel({ model: o.model, vocab: curVocab, embeddings: o.embeddings, reps: o.reps, seed: o.seed });
    if (pretrain) m.addMlmHead(curVocab.size, o.seed);
    else m.addClassifier(outputs, o.seed);
    loadWeights(curBest, m, null);
    const curEnc = val.map((s) => encodeSequence(s, curVocab, o.model));
    promotedScore = validationScore(m, o.task, curEnc, y, outputs, { ...scoreOpts, vocabSize: curVocab.size }).score;
    m.dispose();
  }
  res.model.dispose();
  const promoted = promotedScore === null || score > promotedScore;
  const entry: ModelVersion = {
    version,
    createdAt: new Date().toISOString(),
    checkpoint: dir,
    shards: all.map((s) => ({ path: s.path, sha256: s.sha256 })),
    newShards: fresh.map((s) => ({ path: s.path, sha256: s.sha256 })),
    shardSetHash: shardSetHash(all),
    trainSequences: train.length,
    vocabulary: { tokens: vocab.tokens.length, added: vocab.tokens.length - (seenVocab?.tokens.length ?? 0) },
    validation: { sequences: val.length, score, promotedScore, metric: pretrain ? '-MLM loss' : outputs === 1 ? 'AUROC' : 'macro AUROC' },
    promoted,
  };
  registry.versions.push(entry);
  if (promoted) registry.promoted = version;
  writeRegistry(o.modelDir, registry);
  log(`follow ${o.task}: version ${version} validation ${score.toFixed(4)}${promotedScore === null ? '' : ` vs promoted ${promotedScore.toFixed(4)}`}: ${promoted ? 'promoted' : 'recorded, not promoted'}`);
  o.onVersion?.(entry);
  return entry;
}

/** Polls the manifest until aborted (or until maxVersions versions exist). */
export async function followManifest(o: FollowOptions): Promise<Registry> {
  const pollMs = o.pollMs ?? 5000;
  for (;;) {
    if (o.signal?.aborted) break;
    if (hasManifest(o.shardsDir)) await followOnce(o);
    const n = readRegistry(o.modelDir)?.versions.length ?? 0;
    if (o.maxVersions !== undefined && n >= o.maxVersions) break;
    await sleep(pollMs, o.signal);
  }
  return readRegistry(o.modelDir) ?? { task: o.task, embeddings: o.embeddings, promoted: null, versions: [] };
}

export type { Sequence };
