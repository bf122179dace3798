// Checkpoints: one folder per step (weights.bin + checkpoint.json), written under a temporary name
// and renamed into place, then named by LATEST / BEST pointer files replaced atomically. A crash
// at any moment leaves the previous checkpoint readable.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../tf';
import type { BehrtConfig, TrainConfig } from './config';
import { Behrt, VOCABULARY_INDEXED } from './model';
import type { Adam } from './adam';
import type { Token } from './vocab';
import { sha256 } from '../../transforms/hashing';

export const CHECKPOINT_FORMAT = 'medrep-behrt-checkpoint/1';

export interface LoopState {
  step: number;
  epoch: number;
  stepInEpoch: number;
  bestScore: number | null;
  bestStep: number | null;
  badEpochs: number;
  stopped: boolean;
  /** Running train-loss sum and count of the current epoch (so a resumed epoch reports the same mean). */
  epochLossSum: number;
  epochLossCount: number;
  history: { epoch: number; step: number; trainLoss: number; valScore: number; valLoss?: number }[];
}

export interface CheckpointMeta {
  format: string;
  kind: 'pretrain' | 'finetune';
  task: string;
  model: BehrtConfig;
  train: TrainConfig;
  seed: number;
  embeddings: 'vanilla' | 'medrep' | 'text';
  frozenDim: number | null;
  projection: boolean;
  vocab: Token[];
  vocabHash: string;
  mlmVocabSize: number | null;
  outputs: number | null;
  representationsHash: string | null;
  shardManifestHash: string;
  shards: { path: string; sha256: string }[];
  state: LoopState;
  adamStep: number;
  tensors: { name: string; role: 'param' | 'm' | 'v'; shape: number[]; offset: number }[];
  weightsSha256: string;
}

function writeFileDurable(path: string, data: string | Uint8Array): void {
  writeFileSync(path, data);
  const fd = openSync(path, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

/** Writes a pointer file (LATEST, BEST) by rename, so readers never see half of it. */
function writePointer(dir: string, name: string, target: string): void {
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  writeFileDurable(tmp, target + '\n');
  renameSync(tmp, join(dir, name));
}

export function saveCheckpoint(
  dir: string,
  model: Behrt,
  adam: Adam | null,
  meta: Omit<CheckpointMeta, 'format' | 'tensors' | 'weightsSha256' | 'adamStep' | 'frozenDim' | 'projection'>,
  pointers: ('LATEST' | 'BEST')[] = ['LATEST'],
): string {
  mkdirSync(dir, { recursive: true });
  const name = `step-${String(meta.state.step).padStart(9, '0')}`;
  const tensors: CheckpointMeta['tensors'] = [];
  const chunks: Float32Array[] = [];
  let offset = 0;
  const push = (n: string, role: 'param' | 'm' | 'v', t: tf.Tensor) => {
    const data = t.dataSync() as Float32Array;
    tensors.push({ name: n, role, shape: t.shape, offset });
    chunks.push(new Float32Array(data));
    offset += data.length;
  };
  for (const [n, v] of model.params) push(n, 'param', v);
  if (adam) {
    for (const [n, m] of adam.state.m) push(n, 'm', m);
    for (const [n, v] of adam.state.v) push(n, 'v', v);
  }
  const all = new Float32Array(offset);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  const bytes = new Uint8Array(all.buffer);
  const full: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    ...meta,
    frozenDim: model.frozenTable ? model.frozenTable.shape[1] : null,
    projection: model.projected,
    adamStep: adam ? adam.state.step : 0,
    tensors,
    weightsSha256: sha256(bytes),
  };
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeFileDurable(join(tmp, 'weights.bin'), bytes);
  writeFileDurable(join(tmp, 'checkpoint.json'), JSON.stringify(full, null, 1));
  rmSync(join(dir, name), { recursive: true, force: true });
  renameSync(tmp, join(dir, name));
  for (const p of pointers) writePointer(dir, p, name);
  pruneCheckpoints(dir);
  return join(dir, name);
}

/** Keeps the folders LATEST and BEST name; removes the rest. */
function pruneCheckpoints(dir: string): void {
  const keep = new Set(['LATEST', 'BEST'].map((p) => pointerTarget(dir, p)).filter((x): x is string => x !== null));
  for (const f of readdirSync(dir)) if (f.startsWith('step-') && !keep.has(f)) rmSync(join(dir, f), { recursive: true, force: true });
}

function pointerTarget(dir: string, pointer: string): string | null {
  const p = join(dir, pointer);
  return existsSync(p) ? readFileSync(p, 'utf8').trim() : null;
}

/** The folder a pointer names (or the checkpoint folder itself when `path` is one). */
export function resolveCheckpoint(path: string, pointer: 'LATEST' | 'BEST' = 'LATEST'): string | null {
  if (existsSync(join(path, 'checkpoint.json'))) return path;
  const t = pointerTarget(path, pointer);
  return t ? join(path, t) : null;
}

export function readCheckpointMeta(ckptDir: string): CheckpointMeta {
  const file = join(ckptDir, 'checkpoint.json');
  const meta = JSON.parse(readFileSync(file, 'utf8')) as CheckpointMeta;
  if (meta.format !== CHECKPOINT_FORMAT) throw new Error(`${file}: format '${meta.format}', expected '${CHECKPOINT_FORMAT}'`);
  return meta;
}

/**
 * `values` (of `from` shape) placed at the leading corner of a `to`-shaped array whose other
 * entries come from `rest` (the model's initial values) or are zero: a vocabulary-indexed
 * parameter or its optimizer moments, grown by new rows (or MLM output columns).
 */
function grown(values: Float32Array, from: number[], to: number[], rest: Float32Array | null): Float32Array {
  const out = rest ? Float32Array.from(rest) : new Float32Array(to.reduce((a, b) => a * b, 1));
  const cols = from.length === 2 ? from[1] : from[0];
  const rows = from.length === 2 ? from[0] : 1;
  const width = to.length === 2 ? to[1] : to[0];
  for (let r = 0; r < rows; r++) out.set(values.subarray(r * cols, (r + 1) * cols), r * width);
  return out;
}

/** Whether a checkpoint's shape fits into the model's by growing the vocabulary axis only. */
function growsInto(from: number[], to: number[]): boolean {
  return from.length === to.length && from.every((d, i) => d <= to[i]) && from.filter((d, i) => d !== to[i]).length <= 1;
}

/**
 * Restores parameters (and the optimizer state when `adam` is given) into `model`, whose
 * parameters must already exist with the same shapes. Parameters absent from the checkpoint
 * (a new classifier on a pretrained encoder) keep their initial values; `skip` names groups to leave.
 * With `growVocabulary`, a model over a larger vocabulary that starts with the checkpoint's takes the
 * checkpoint's rows for the old indices and keeps its initial values (and zero moments) for the new.
 */
export function loadWeights(ckptDir: string, model: Behrt, adam: Adam | null, opts: { skipPrefixes?: string[]; growVocabulary?: boolean } = {}): CheckpointMeta {
  const meta = readCheckpointMeta(ckptDir);
  const bytes = readFileSync(join(ckptDir, 'weights.bin'));
  if (sha256(bytes) !== meta.weightsSha256) throw new Error(`${ckptDir}/weights.bin: sha256 does not match checkpoint.json (corrupt checkpoint)`);
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  for (const t of meta.tensors) {
    if (opts.skipPrefixes?.some((p) => t.name.startsWith(p))) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    const values = all.subarray(t.offset, t.offset + n);
    const v = model.params.get(t.name);
    if (!v) {
      if (t.role === 'param') throw new Error(`${ckptDir}: parameter ${t.name} has no place in this model`);
      continue;
    }
    const same = v.shape.join('x') === t.shape.join('x');
    const grow = !same && opts.growVocabulary === true && VOCABULARY_INDEXED.has(t.name) && growsInto(t.shape, v.shape);
    if (!same && !grow) throw new Error(`${ckptDir}: parameter ${t.name} has shape ${t.shape}, model expects ${v.shape}`);
    if (t.role === 'param') {
      const value = grow ? tf.tensor(grown(values, t.shape, v.shape, v.dataSync() as Float32Array), v.shape) : tf.tensor(values, t.shape);
      v.assign(value);
      value.dispose(); // the variable keeps its own copy
    } else if (adam) {
      const map = t.role === 'm' ? adam.state.m : adam.state.v;
      map.get(t.name)?.dispose();
      map.set(t.name, tf.keep(grow ? tf.tensor(grown(values, t.shape, v.shape, null), v.shape) : tf.tensor(values, t.shape)));
    }
  }
  if (adam) adam.state.step = meta.adamStep;
  return meta;
}
