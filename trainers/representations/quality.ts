// Representation quality as a user of the vectors would check it: does the vector of a site-B
// concept find the site-A concept that codes the same clinical fact (counterpart retrieval)? Do a
// lab's ten decile rows lie in decile order, and does B's decile k find A's decile k of the
// counterpart lab? How many dimensions do the vectors really use? Cosines are taken after
// removing the table mean, so a direction every row shares does not count as similarity.

/** Any source of vectors by (concept, decile): a table, or the lookup with its fallbacks. */
export interface VectorSource {
  readonly dim: number;
  vectorFor(conceptId: number, decile: number | null): Float32Array | null;
}

/** A site-B concept and the site-A concepts that code the same fact. */
export interface CounterpartQuery {
  conceptId: number;
  domain: string;
  targets: number[];
}

export interface RetrievalScore {
  queries: number;
  /** Queries without a vector (ranked last). */
  unresolved: number;
  r1: number;
  r5: number;
  meanRank: number;
}

export interface RetrievalResult extends RetrievalScore {
  byDomain: Record<string, RetrievalScore>;
}

/** Mean of all rows of a row-major table. */
export function tableMean(vectors: Float32Array, dim: number): Float64Array {
  const n = vectors.length / dim;
  const m = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) m[k] += vectors[i * dim + k];
  if (n > 0) for (let k = 0; k < dim; k++) m[k] /= n;
  return m;
}

/** The vector minus the mean, scaled to unit length (a zero vector stays zero). */
function centredUnit(v: Float32Array, mean: Float64Array): Float64Array {
  const out = new Float64Array(v.length);
  let s = 0;
  for (let k = 0; k < v.length; k++) { out[k] = v[k] - mean[k]; s += out[k] * out[k]; }
  const n = Math.sqrt(s);
  if (n > 0) for (let k = 0; k < v.length; k++) out[k] /= n;
  return out;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k] * b[k];
  return s;
}

function score(ranks: number[], unresolved: number): RetrievalScore {
  const n = ranks.length;
  return {
    queries: n,
    unresolved,
    r1: n ? ranks.filter((r) => r === 1).length / n : 0,
    r5: n ? ranks.filter((r) => r <= 5).length / n : 0,
    meanRank: n ? ranks.reduce((a, b) => a + b, 0) / n : 0,
  };
}

/**
 * Ranks the candidates (site A's concepts) by centred cosine to each query's vector; a query's
 * rank is that of its best-placed target (1 = top). Ties count against the query (a candidate
 * as close as the target ranks before it), so identical vectors do not score by luck.
 */
export function counterpartRetrieval(src: VectorSource, mean: Float64Array, candidates: number[], queries: CounterpartQuery[]): RetrievalResult {
  const cand = candidates.map((c) => { const v = src.vectorFor(c, null); return v ? centredUnit(v, mean) : null; });
  const ranks: number[] = [];
  const byDomain = new Map<string, { ranks: number[]; unresolved: number }>();
  let unresolved = 0;
  for (const q of queries) {
    const d = byDomain.get(q.domain) ?? { ranks: [], unresolved: 0 };
    byDomain.set(q.domain, d);
    const v = src.vectorFor(q.conceptId, null);
    let rank = candidates.length;
    if (!v) { unresolved++; d.unresolved++; } else {
      const u = centredUnit(v, mean);
      const sims = cand.map((c) => (c ? dot(u, c) : -Infinity));
      const targets = new Set(q.targets);
      let best = -Infinity;
      candidates.forEach((c, i) => { if (targets.has(c)) best = Math.max(best, sims[i]); });
      if (best > -Infinity) rank = 1 + candidates.filter((c, i) => !targets.has(c) && sims[i] >= best).length;
    }
    ranks.push(rank);
    d.ranks.push(rank);
  }
  const domains: Record<string, RetrievalScore> = {};
  for (const [k, d] of [...byDomain.entries()].sort()) domains[k] = score(d.ranks, d.unresolved);
  return { ...score(ranks, unresolved), byDomain: domains };
}

function ranksOf(x: number[]): number[] {
  const idx = x.map((_, i) => i).sort((a, b) => x[a] - x[b]);
  const r = new Array<number>(x.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && x[idx[j + 1]] === x[idx[i]]) j++;
    for (let t = i; t <= j; t++) r[idx[t]] = (i + j) / 2;
    i = j + 1;
  }
  return r;
}

/** Spearman's rank correlation; 0 when either side is constant. */
export function spearman(x: number[], y: number[]): number {
  const rx = ranksOf(x);
  const ry = ranksOf(y);
  const mx = rx.reduce((a, b) => a + b, 0) / rx.length;
  const my = ry.reduce((a, b) => a + b, 0) / ry.length;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < rx.length; i++) { sxy += (rx[i] - mx) * (ry[i] - my); sxx += (rx[i] - mx) ** 2; syy += (ry[i] - my) ** 2; }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

/**
 * Coordinates of rows along their main axis (first principal component), from the power
 * iteration on the Gram matrix of the centred rows; all zero when the rows are identical.
 */
export function mainAxisProjection(rows: Float32Array[]): number[] {
  const n = rows.length;
  const dim = rows[0].length;
  const mean = new Float64Array(dim);
  for (const r of rows) for (let k = 0; k < dim; k++) mean[k] += r[k] / n;
  const c = rows.map((r) => Float64Array.from(r, (x, k) => x - mean[k]));
  const g = c.map((a) => c.map((b) => dot(a, b)));
  const trace = g.reduce((s, row, i) => s + row[i], 0);
  if (!(trace > 1e-12)) return new Array<number>(n).fill(0);
  // start from the decile ramp: deterministic, and never orthogonal to an ordinal main axis
  let v = Array.from({ length: n }, (_, i) => i - (n - 1) / 2 + 1e-3 * ((i * 7919) % 13));
  for (let it = 0; it < 200; it++) {
    const w = g.map((row) => row.reduce((s, x, j) => s + x * v[j], 0));
    const norm = Math.sqrt(w.reduce((s, x) => s + x * x, 0));
    if (norm === 0) break;
    v = w.map((x) => x / norm);
  }
  // projection of row i on the axis = (G v)_i / sqrt(lambda), proportional to v_i
  return v;
}

/** |Spearman| of the decile index along the main axis of each lab's ten rows (mean, and per lab). */
export function decileOrder(src: VectorSource, labs: number[]): { labs: number; mean: number; perLab: Record<string, number> } {
  const perLab: Record<string, number> = {};
  let s = 0;
  for (const lab of labs) {
    const rows: Float32Array[] = [];
    for (let d = 0; d < 10; d++) rows.push(src.vectorFor(lab, d) ?? new Float32Array(src.dim));
    const rho = Math.abs(spearman(mainAxisProjection(rows), rows.map((_, i) => i)));
    perLab[String(lab)] = rho;
    s += rho;
  }
  return { labs: labs.length, mean: labs.length ? s / labs.length : 0, perLab };
}

/**
 * For each (B lab, A lab) pair and decile k: is A's decile k the nearest (centred cosine) of
 * A's ten decile rows to B's decile k? Rows come from the source as given (pass the lookup a
 * model would use). Ties count as misses.
 */
export function crossSiteDecile(src: VectorSource, mean: Float64Array, pairs: Array<{ a: number; b: number }>): { pairs: number; r1: number } {
  let hits = 0;
  let total = 0;
  for (const { a, b } of pairs) {
    const rowsA = Array.from({ length: 10 }, (_, d) => src.vectorFor(a, d));
    for (let k = 0; k < 10; k++) {
      total++;
      const q = src.vectorFor(b, k);
      if (!q || rowsA.some((r) => r === null)) continue;
      const u = centredUnit(q, mean);
      const sims = rowsA.map((r) => dot(u, centredUnit(r!, mean)));
      if (sims.every((x, j) => j === k || x < sims[k])) hits++;
    }
  }
  return { pairs: pairs.length, r1: total ? hits / total : 0 };
}

/**
 * Participation ratio of the covariance spectrum, (sum lambda)^2 / sum lambda^2: 1 when all rows
 * lie on one line, dim when variance is spread evenly. Computed from the Gram matrix of (at most
 * maxRows evenly spaced) centred rows, which has the same non-zero spectrum, so wide sparse
 * tables (TF-IDF) need no eigen decomposition.
 */
export function effectiveDimensions(vectors: Float32Array, dim: number, maxRows = 3000): number {
  const n = vectors.length / dim;
  if (n < 2) return 0;
  const step = Math.max(1, Math.ceil(n / maxRows));
  const picked: number[] = [];
  for (let i = 0; i < n; i += step) picked.push(i);
  const mean = new Float64Array(dim);
  for (const i of picked) for (let k = 0; k < dim; k++) mean[k] += vectors[i * dim + k] / picked.length;
  const c = picked.map((i) => Float64Array.from(vectors.subarray(i * dim, (i + 1) * dim), (x, k) => x - mean[k]));
  let tr = 0;
  let tr2 = 0;
  for (let i = 0; i < c.length; i++) {
    for (let j = i; j < c.length; j++) {
      const g = dot(c[i], c[j]);
      if (i === j) { tr += g; tr2 += g * g; } else tr2 += 2 * g * g;
    }
  }
  return tr2 > 0 ? (tr * tr) / tr2 : 0;
}
