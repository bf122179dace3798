// The tfjs handle the EHR trainers use. A local stand-in for trainers/backend.ts: the backend is
// chosen once, logged, and every module imports `tf` from here, so swapping in the project-wide
// selector later touches this file only.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node build registers no gradient functions; @tensorflow/tfjs's Node bundle
// registers them all in the shared registry (the same as trainers/backend.ts does).
import '@tensorflow/tfjs';

export { tf };
export type Tensor = tf.Tensor;

let ready: Promise<string> | null = null;

/** Picks the tfjs backend ('wasm' or 'cpu'; default cpu, which is exact and deterministic). */
export function initEhrBackend(preferred: 'cpu' | 'wasm' = 'cpu'): Promise<string> {
  if (ready && tf.getBackend() === preferred) return ready;
  ready = (async () => {
    if (preferred === 'wasm') {
      // Loaded lazily: the WASM module is only needed when asked for.
      await import('@tensorflow/tfjs-backend-wasm');
    }
    const ok = await tf.setBackend(preferred);
    if (!ok) throw new Error(`tfjs backend '${preferred}' could not be initialised`);
    await tf.ready();
    return tf.getBackend();
  })();
  return ready;
}
