// The tfjs handle the EHR trainers use: every module imports `tf` from here; the backend is chosen
// once by the project-wide selector.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node build registers no gradient functions; @tensorflow/tfjs's Node bundle
// registers them all in the shared registry (the same as trainers/backend.ts does).
import '@tensorflow/tfjs';
import { BackendPreference, selectBackend } from '../backend';

export { tf };
export type Tensor = tf.Tensor;

let ready: Promise<string> | null = null;
let readyFor: BackendPreference | undefined | null = null;

/**
 * Activates the tfjs backend through the project-wide selector (trainers/backend.ts): without a
 * preference tfjs-node-gpu > tfjs-node > wasm > cpu, the choice logged; tests pass 'cpu', which
 * is exact and deterministic.
 */
export function initEhrBackend(preferred?: BackendPreference): Promise<string> {
  if (ready && readyFor === preferred) return ready;
  readyFor = preferred;
  ready = selectBackend(preferred);
  return ready;
}
