// Kernels the tfjs WASM backend (4.22) lacks but training needs, implemented in plain
// JavaScript over the backend's buffers. UnsortedSegmentSum is the gradient of Gather (every
// embedding lookup) and the neighbour aggregation of the GCN.
import * as tf from '@tensorflow/tfjs-core';
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

/** Registers the missing kernels once; kernels the installed WASM build already has are kept. */
export function registerWasmTrainingKernels(): string[] {
  const registered: string[] = [];
  for (const k of WASM_TRAINING_KERNELS) {
    if (tf.getKernel(k.kernelName, 'wasm')) continue;
    tf.registerKernel(k);
    registered.push(k.kernelName);
  }
  return registered;
}
