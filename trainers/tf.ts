// The tfjs handle every trainer uses: `import { tf } from '<..>/tf'`, never tfjs itself, so that
// the kernels and gradients below are registered wherever a tensor is made. The backend is
// chosen by trainers/backend.ts.
import * as tf from '@tensorflow/tfjs-core';
// The plain CPU backend: always there, exact and deterministic (what tests pass).
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node build registers no gradient functions; @tensorflow/tfjs's Node bundle
// registers them all in the shared registry, so tf.grad works on any backend.
import '@tensorflow/tfjs';

export { tf };
export type Tensor = tf.Tensor;
