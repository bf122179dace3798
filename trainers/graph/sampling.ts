// Neighbour-sampled mini-batches and GRACE's graph augmentations (DropEdge, feature masking),
// in plain typed arrays; the tensors are made from these by grace.ts.
import { Rng } from '../random';
import type { ConceptGraph } from './conceptGraph';

/** A sampled subgraph: its nodes (global indexes, seeds first) and undirected edges (local). */
export interface Subgraph {
  nodes: Int32Array;
  numSeeds: number;
  /** Undirected edges as local index pairs (src[i] < dst[i]). */
  src: Int32Array;
  dst: Int32Array;
}

/**
 * Samples up to fanouts[h] neighbours of every node reached at hop h (PyG NeighborLoader style);
 * the subgraph keeps every sampled edge.
 */
export function sampleSubgraph(g: ConceptGraph, seeds: ArrayLike<number>, fanouts: number[], rng: Rng): Subgraph {
  const local = new Map<number, number>();
  const nodes: number[] = [];
  for (let i = 0; i < seeds.length; i++) if (!local.has(seeds[i])) { local.set(seeds[i], nodes.length); nodes.push(seeds[i]); }
  const numSeeds = nodes.length;
  const edgeKeys = new Set<number>();
  let frontier = nodes.slice();
  for (const fan of fanouts) {
    const next: number[] = [];
    for (const n of frontier) {
      const nb = g.neighbours(n);
      let picks: ArrayLike<number> = nb;
      if (nb.length > fan) {
        // partial Fisher-Yates over a copy: fan distinct neighbours
        const c = Int32Array.from(nb);
        for (let i = 0; i < fan; i++) { const j = i + rng.int(c.length - i); const t = c[i]; c[i] = c[j]; c[j] = t; }
        picks = c.subarray(0, fan);
      }
      const ln = local.get(n)!;
      for (let k = 0; k < picks.length; k++) {
        const m = picks[k];
        let lm = local.get(m);
        if (lm === undefined) { lm = nodes.length; local.set(m, lm); nodes.push(m); next.push(m); }
        edgeKeys.add(ln < lm ? ln * 2 ** 26 + lm : lm * 2 ** 26 + ln);
      }
    }
    frontier = next;
  }
  const keys = Float64Array.from(edgeKeys).sort();
  const src = new Int32Array(keys.length);
  const dst = new Int32Array(keys.length);
  for (let i = 0; i < keys.length; i++) { src[i] = Math.floor(keys[i] / 2 ** 26); dst[i] = keys[i] - src[i] * 2 ** 26; }
  return { nodes: Int32Array.from(nodes), numSeeds, src, dst };
}

/** DropEdge: keeps each undirected edge with probability 1 - p. */
export function dropEdges(src: Int32Array, dst: Int32Array, p: number, rng: Rng): { src: Int32Array; dst: Int32Array } {
  const ks: number[] = [];
  const kd: number[] = [];
  for (let i = 0; i < src.length; i++) if (rng.next() >= p) { ks.push(src[i]); kd.push(dst[i]); }
  return { src: Int32Array.from(ks), dst: Int32Array.from(kd) };
}

/** GRACE's feature masking: each feature column is zeroed, for all nodes, with probability p. */
export function featureMask(dim: number, p: number, rng: Rng): Float32Array {
  const m = new Float32Array(dim);
  for (let i = 0; i < dim; i++) m[i] = rng.next() < p ? 0 : 1;
  return m;
}

/**
 * GCN propagation of an undirected edge list with self loops and symmetric normalisation
 * D^-1/2 (A + I) D^-1/2: every directed message (from, to, weight), loops included.
 */
export function gcnMessages(numNodes: number, src: Int32Array, dst: Int32Array): { from: Int32Array; to: Int32Array; weight: Float32Array } {
  const deg = new Float64Array(numNodes).fill(1);
  for (let i = 0; i < src.length; i++) { deg[src[i]]++; deg[dst[i]]++; }
  const m = numNodes + 2 * src.length;
  const from = new Int32Array(m);
  const to = new Int32Array(m);
  const weight = new Float32Array(m);
  for (let n = 0; n < numNodes; n++) { from[n] = n; to[n] = n; weight[n] = 1 / deg[n]; }
  for (let i = 0; i < src.length; i++) {
    const w = 1 / Math.sqrt(deg[src[i]] * deg[dst[i]]);
    const k = numNodes + 2 * i;
    from[k] = src[i]; to[k] = dst[i]; weight[k] = w;
    from[k + 1] = dst[i]; to[k + 1] = src[i]; weight[k + 1] = w;
  }
  return { from, to, weight };
}
