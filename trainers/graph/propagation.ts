// Feature-preserving propagation over the concept graph (APPNP's personalized PageRank, without
// learned weights): Z <- (1 - alpha) * A_hat Z + alpha * X, A_hat = D^-1/2 (A + I) D^-1/2. Each
// concept moves towards its neighbourhood but keeps alpha of its own text vector at every step,
// so vectors refine without collapsing onto one another.
import type { ConceptGraph } from './conceptGraph';

export interface PropagationOptions {
  /** Share of the node's own features kept at every step (teleport probability). */
  alpha: number;
  steps: number;
}

export const DEFAULT_PROPAGATION: PropagationOptions = { alpha: 0.2, steps: 10 };

/** Propagates node features (numNodes x dim, row-major) over the graph's links; returns new rows. */
export function propagate(g: ConceptGraph, x: Float32Array, dim: number, o: PropagationOptions = DEFAULT_PROPAGATION): Float32Array {
  const n = g.numNodes;
  if (x.length !== n * dim) throw new Error(`propagation: ${x.length} floats for ${n} nodes of dimension ${dim}`);
  const inv = new Float64Array(n);
  for (let i = 0; i < n; i++) inv[i] = 1 / Math.sqrt(g.degree(i) + 1);
  let z = Float64Array.from(x);
  let next = new Float64Array(n * dim);
  for (let s = 0; s < o.steps; s++) {
    for (let i = 0; i < n; i++) {
      const w = (1 - o.alpha) * inv[i];
      for (let k = 0; k < dim; k++) next[i * dim + k] = w * inv[i] * z[i * dim + k] + o.alpha * x[i * dim + k];
      for (const j of g.neighbours(i)) {
        const wj = w * inv[j];
        for (let k = 0; k < dim; k++) next[i * dim + k] += wj * z[j * dim + k];
      }
    }
    [z, next] = [next, z];
  }
  return Float32Array.from(z);
}
