// Kernels the tfjs WASM backend (4.22) lacks but training needs, implemented in plain
// JavaScript over the backend's buffers. UnsortedSegmentSum is the gradient of Gather (every
// embedding lookup) and the neighbour aggregation of the GCN.
import { tf } from './tf';
import type { KernelConfig, KernelFunc, TensorInfo, DataType, TypedArray } from '@tensorflow/tfjs-core';

/** What these kernels need from a backend: read a tensor's values, make an output from values. */
interface ValueBackend {
  readSync(dataId: unknown): unknown;
  makeOutput(shape: number[], dtype: DataType, memoryOffset?: number, values?: TypedArray): TensorInfo;
}

/**
 * tf.unsortedSegmentSum: out[s, ...] = sum of x[i, ...] over i with segmentIds[i] == s;
 * segmentIds covers the leading dims of x; ids outside [0, numSegments) are dropped (as in
 * TensorFlow).
 */
export function unsortedSegmentSumValues(
  x: ArrayLike<number>, xShape: number[], ids: ArrayLike<number>, idsRank: number, numSegments: number,
  out: Float32Array | Int32Array,
): void {
  let rows = 1;
  for (let d = 0; d < idsRank; d++) rows *= xShape[d];
  let inner = 1;
  for (let d = idsRank; d < xShape.length; d++) inner *= xShape[d];
  for (let r = 0; r < rows; r++) {
    const s = ids[r];
    if (s < 0 || s >= numSegments) continue;
    const src = r * inner;
    const dst = s * inner;
    for (let k = 0; k < inner; k++) out[dst + k] += x[src + k];
  }
}

const unsortedSegmentSumKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const numSegments = (attrs as { numSegments: number }).numSegments;
  const b = backend as unknown as ValueBackend;
  const xv = b.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = b.readSync(segmentIds.dataId) as Int32Array;
  const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const size = shape.reduce((a, c) => a * c, 1);
  const out = x.dtype === 'int32' ? new Int32Array(size) : new Float32Array(size);
  unsortedSegmentSumValues(xv, x.shape, ids, segmentIds.shape.length, numSegments, out);
  return b.makeOutput(shape, x.dtype === 'int32' ? 'int32' : 'float32', undefined, out);
};

export const WASM_TRAINING_KERNELS: KernelConfig[] = [
  { kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSumKernel },
];

/** The parts of the WASM backend that the batch-splitting matMul reads and writes directly. */
interface HeapBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: unknown): void;
  dataIdMap: { get(dataId: unknown): { memoryOffset: number } };
  wasm: { HEAPF32: Float32Array };
}

/** Matrices smaller than this (M*K*N) stay in the native batched loop: per-item calls would cost more. */
export const SPLIT_MATMUL_MIN_WORK = 1 << 14;

/**
 * tfjs-wasm's BatchMatMul runs XNNPACK only when the batch is 1; a batch of 12 heads takes a naive
 * loop that is 15-30x slower (measured: 12 x [256,64]x[64,2048], 2900 ms batched vs 95 ms as 12
 * 2-D products). Large batched products are therefore run item by item: each item is copied out
 * of the WASM heap (linear cost), multiplied by the original kernel, and copied into the output.
 * Only equal batch shapes, or a batch of 1 on one side, are split; other broadcasts keep the
 * original kernel.
 */
function splitBatchMatMul(original: KernelFunc, a: TensorInfo, b: TensorInfo, backend: unknown, attrs: unknown): TensorInfo {
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
  const [M, K] = a.shape.slice(-2);
  const N = b.shape[b.shape.length - 1];
  const nA = size(batchA);
  const nB = size(batchB);
  const n = Math.max(nA, nB);
  const sameBatch = nA === nB && batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i]);
  const oneSided = (nA === 1 && batchA.length <= batchB.length) || (nB === 1 && batchB.length <= batchA.length);
  if (n === 1 || M * K * N < SPLIT_MATMUL_MIN_WORK || a.dtype !== 'float32' || b.dtype !== 'float32' || !(sameBatch || oneSided)) {
    return original({ inputs: { a, b }, backend: backend as never, attrs: attrs as never }) as TensorInfo;
  }
  const bk = backend as HeapBackend;
  const out = bk.makeOutput([...(nA >= nB ? batchA : batchB), M, N], 'float32');
  const offset = (t: TensorInfo) => bk.dataIdMap.get(t.dataId).memoryOffset / 4;
  // Item i of a [n, rows, cols] tensor as its own [1, rows, cols] tensor (HEAPF32 is re-read after
  // each allocation: the heap may have grown and been replaced).
  const item = (t: TensorInfo, count: number, i: number, rows: number, cols: number): TensorInfo => {
    if (count === 1) return t;
    const part = bk.makeOutput([1, rows, cols], 'float32');
    const start = offset(t) + i * rows * cols;
    bk.wasm.HEAPF32.copyWithin(offset(part), start, start + rows * cols);
    return part;
  };
  for (let i = 0; i < n; i++) {
    const ai = item(a, nA, i, M, K);
    const bi = item(b, nB, i, K, N);
    const oi = original({ inputs: { a: ai, b: bi }, backend: backend as never, attrs: attrs as never }) as TensorInfo;
    const from = offset(oi);
    bk.wasm.HEAPF32.copyWithin(offset(out) + i * M * N, from, from + M * N);
    bk.disposeData(oi.dataId);
    if (ai !== a) bk.disposeData(ai.dataId);
    if (bi !== b) bk.disposeData(bi.dataId);
  }
  return out;
}

/**
 * tfjs-wasm's BatchMatMul is 5-10x slower with transposeA/transposeB than on plain operands
 * (measured: 1500x1500 by 1500x64, 450 ms vs 50 ms), and every matMul gradient uses those flags.
 * The wrapper transposes the operand explicitly (linear cost), then multiplies (batches split
 * into items, see splitBatchMatMul).
 */
function fastTransposedMatMul(original: KernelFunc, transpose: KernelFunc): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) return splitBatchMatMul(original, a, b, backend, attrs);
    const swapLast = (t: TensorInfo): TensorInfo => {
      const perm = t.shape.map((_, i) => i);
      const r = perm.length;
      [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
      return transpose({ inputs: { x: t }, backend, attrs: { perm } }) as TensorInfo;
    };
    const ta = transposeA ? swapLast(a) : a;
    const tb = transposeB ? swapLast(b) : b;
    const out = splitBatchMatMul(original, ta, tb, backend, { ...attrs, transposeA: false, transposeB: false });
    const bk = backend as unknown as { disposeData(id: unknown): void };
    if (ta !== a) bk.disposeData(ta.dataId);
    if (tb !== b) bk.disposeData(tb.dataId);
    return out;
  };
}

/**
 * tfjs-wasm's Identity copies its input, and the engine clones (Identity) every tensor it saves for
 * the backward pass: in training each saved activation existed twice on the WASM heap. Tensors are
 * immutable (a variable's assign swaps its data rather than writing it), so the clone can share
 * the data with a reference count, as the cpu backend's Identity does.
 */
const sharingIdentityKernel: KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: TensorInfo };
  (backend as unknown as { incRef(dataId: unknown): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

let identityReplaced = false;
let matMulWrapped = false;

/**
 * Registers the missing kernels once (kernels the installed WASM build already has are kept)
 * and the faster transposed BatchMatMul. Returns the names registered by this call.
 */
export function registerWasmTrainingKernels(): string[] {
  const registered: string[] = [];
  for (const k of WASM_TRAINING_KERNELS) {
    if (tf.getKernel(k.kernelName, 'wasm')) continue;
    tf.registerKernel(k);
    registered.push(k.kernelName);
  }
  const mm = tf.getKernel(tf.BatchMatMul, 'wasm');
  const tr = tf.getKernel(tf.Transpose, 'wasm');
  if (!matMulWrapped && mm && tr) {
    tf.unregisterKernel(tf.BatchMatMul, 'wasm');
    tf.registerKernel({ ...mm, kernelName: tf.BatchMatMul, backendName: 'wasm', kernelFunc: fastTransposedMatMul(mm.kernelFunc, tr.kernelFunc) });
    matMulWrapped = true;
    registered.push(`${tf.BatchMatMul} (transposed operands)`);
  }
  const id = tf.getKernel(tf.Identity, 'wasm');
  if (!identityReplaced && id) {
    tf.unregisterKernel(tf.Identity, 'wasm');
    tf.registerKernel({ ...id, kernelName: tf.Identity, backendName: 'wasm', kernelFunc: sharingIdentityKernel });
    identityReplaced = true;
    registered.push(`${tf.Identity} (shared data)`);
  }
  return registered;
}
