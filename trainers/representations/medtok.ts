// MedTok-style concept vectors (the baseline of the MedRep paper's Table 2), built from this
// project's inputs: the text vector of each concept (the representation trainers' text stage) and
// a graph embedding of it (the same text vectors propagated over the OMOP concept graph, APPNP),
// one shared codebook learned over both (vector quantization by k-means: the codebook and
// commitment terms of VQ are the same squared distance, minimised by Lloyd's steps), each concept
// tokenized to the top-k codes of its text vector and the top-k codes of its graph vector, and
// its MedTok vector = the mean of its codes' embeddings. Concepts that share codes share a part
// of their vector, which is what a tokenizer over a shared vocabulary gives its downstream model.
import { Rng } from '../random';

export interface MedtokOptions {
  /** Codebook entries; 0 = one per four concepts, between 16 and 1024. */
  codebookSize: number;
  /** Codes per modality per concept (top-k nearest entries of the text vector and of the graph vector). */
  codesPerModality: number;
  /** Lloyd iterations at most (stops earlier when no assignment changes). */
  iterations: number;
  seed: number;
}

export const DEFAULT_MEDTOK: MedtokOptions = { codebookSize: 0, codesPerModality: 4, iterations: 50, seed: 7 };

export interface Codebook {
  size: number;
  dim: number;
  /** size x dim, row-major. */
  entries: Float32Array;
  /** Mean squared distance of each point to its code: after the initial codebook, then after every iteration. */
  history: number[];
  /** Iterations run. */
  iterations: number;
}

export interface MedtokResult {
  codebook: Codebook;
  /** n x codesPerModality code indices of each concept's text vector, nearest first. */
  textCodes: Int32Array;
  /** n x codesPerModality code indices of each concept's graph vector, nearest first. */
  graphCodes: Int32Array;
  /** n x dim MedTok vectors. */
  vectors: Float32Array;
  /** Distinct codes used by some concept's tokens. */
  codesUsed: number;
  /** Concepts whose codes (with repeats: a code of both modalities counts twice) equal another concept's: the same MedTok vector. */
  sharedTokenSets: number;
}

/** The codebook size for n concepts when none is given: one entry per four concepts, 16..1024. */
export function defaultCodebookSize(n: number): number {
  return Math.max(16, Math.min(1024, Math.ceil(n / 4)));
}

/** Rows scaled to unit length (zero rows stay zero): text and graph vectors then share one scale. */
export function unitRows(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / dim; r++) {
    let ss = 0;
    for (let k = 0; k < dim; k++) ss += x[r * dim + k] ** 2;
    const s = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let k = 0; k < dim; k++) out[r * dim + k] = x[r * dim + k] * s;
  }
  return out;
}

function sqDist(a: Float32Array, i: number, b: Float64Array | Float32Array, j: number, dim: number): number {
  let s = 0;
  for (let k = 0; k < dim; k++) {
    const d = a[i * dim + k] - b[j * dim + k];
    s += d * d;
  }
  return s;
}

/** Nearest code of every point (ties to the lower index) and each point's squared distance to it. */
function assign(points: Float32Array, n: number, codes: Float64Array, size: number, dim: number, to: Int32Array, dist: Float64Array): void {
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestD = Infinity;
    for (let c = 0; c < size; c++) {
      const d = sqDist(points, i, codes, c, dim);
      if (d < bestD) { bestD = d; best = c; }
    }
    to[i] = best;
    dist[i] = bestD;
  }
}

const meanOf = (v: Float64Array) => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);

/**
 * k-means++ seeding (from `seed`), then Lloyd's steps: every point to its nearest entry, every
 * entry to the mean of its points; an entry left without points moves to the point farthest from
 * its own entry. The mean squared distance never rises; it is recorded after every step.
 */
export function trainCodebook(points: Float32Array, dim: number, o: { size: number; iterations: number; seed: number }): Codebook {
  const n = points.length / dim;
  if (!Number.isInteger(n) || n === 0) throw new Error(`codebook: ${points.length} floats are not rows of dimension ${dim}`);
  const size = Math.min(o.size, n);
  const rng = Rng.seeded(o.seed);
  const codes = new Float64Array(size * dim);
  const nearest = new Float64Array(n).fill(Infinity);
  let pick = rng.int(n);
  for (let c = 0; c < size; c++) {
    for (let k = 0; k < dim; k++) codes[c * dim + k] = points[pick * dim + k];
    let total = 0;
    for (let i = 0; i < n; i++) {
      nearest[i] = Math.min(nearest[i], sqDist(points, i, codes, c, dim));
      total += nearest[i];
    }
    if (c + 1 === size) break;
    // next entry: a point drawn with probability proportional to its squared distance to the entries so far
    let u = rng.next() * total;
    pick = -1;
    for (let i = 0; i < n; i++) {
      if (nearest[i] <= 0) continue;
      u -= nearest[i];
      pick = i;
      if (u < 0) break;
    }
    if (pick < 0) pick = rng.int(n); // every point already is an entry
  }
  const to = new Int32Array(n).fill(-1);
  const dist = new Float64Array(n);
  const next = new Int32Array(n);
  assign(points, n, codes, size, dim, to, dist);
  const history = [meanOf(dist)];
  let iterations = 0;
  for (let it = 0; it < o.iterations; it++) {
    const sums = new Float64Array(size * dim);
    const counts = new Int32Array(size);
    for (let i = 0; i < n; i++) {
      counts[to[i]]++;
      for (let k = 0; k < dim; k++) sums[to[i] * dim + k] += points[i * dim + k];
    }
    for (let c = 0; c < size; c++) {
      if (counts[c] === 0) {
        let far = 0;
        for (let i = 1; i < n; i++) if (dist[i] > dist[far]) far = i;
        for (let k = 0; k < dim; k++) codes[c * dim + k] = points[far * dim + k];
        dist[far] = 0;
      } else for (let k = 0; k < dim; k++) codes[c * dim + k] = sums[c * dim + k] / counts[c];
    }
    assign(points, n, codes, size, dim, next, dist);
    iterations++;
    history.push(meanOf(dist));
    let changed = false;
    for (let i = 0; i < n; i++) if (next[i] !== to[i]) { changed = true; break; }
    to.set(next);
    if (!changed) break;
  }
  return { size, dim, entries: Float32Array.from(codes), history, iterations };
}

/** The k nearest codebook entries of every row of `x`, nearest first (ties to the lower index): n x k. */
export function topCodes(x: Float32Array, codebook: Codebook, k: number): Int32Array {
  const { dim, size, entries } = codebook;
  const n = x.length / dim;
  const kk = Math.min(k, size);
  const out = new Int32Array(n * kk);
  const d = new Float64Array(size);
  const order = Array.from({ length: size }, (_, i) => i);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < size; c++) d[c] = sqDist(x, i, entries, c, dim);
    order.sort((a, b) => d[a] - d[b] || a - b);
    for (let j = 0; j < kk; j++) out[i * kk + j] = order[j];
  }
  return out;
}

/**
 * MedTok vectors of n concepts from their text and graph vectors (n x dim each, same rows): one
 * codebook over both sets (unit rows), the concept's text and graph codes, the mean of their entries.
 */
export function medtokVectors(text: Float32Array, graph: Float32Array, dim: number, options: Partial<MedtokOptions> = {}): MedtokResult {
  const o = { ...DEFAULT_MEDTOK, ...options };
  if (text.length !== graph.length) throw new Error(`medtok: ${text.length} text floats but ${graph.length} graph floats`);
  const n = text.length / dim;
  const t = unitRows(text, dim);
  const g = unitRows(graph, dim);
  const both = new Float32Array(2 * n * dim);
  both.set(t, 0);
  both.set(g, n * dim);
  const codebook = trainCodebook(both, dim, { size: o.codebookSize > 0 ? o.codebookSize : defaultCodebookSize(n), iterations: o.iterations, seed: o.seed });
  const textCodes = topCodes(t, codebook, o.codesPerModality);
  const graphCodes = topCodes(g, codebook, o.codesPerModality);
  const k = textCodes.length / Math.max(1, n);
  const vectors = new Float32Array(n * dim);
  const used = new Set<number>();
  const sets = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const mine = [...textCodes.subarray(i * k, (i + 1) * k), ...graphCodes.subarray(i * k, (i + 1) * k)];
    for (const c of mine) {
      used.add(c);
      for (let j = 0; j < dim; j++) vectors[i * dim + j] += codebook.entries[c * dim + j] / mine.length;
    }
    const key = mine.sort((a, b) => a - b).join(',');
    sets.set(key, (sets.get(key) ?? 0) + 1);
  }
  let sharedTokenSets = 0;
  for (const c of sets.values()) if (c > 1) sharedTokenSets += c;
  return { codebook, textCodes, graphCodes, vectors, codesUsed: used.size, sharedTokenSets };
}
