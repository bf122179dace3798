// The lexical text backend: TF-IDF of word 1- and 2-grams of each description, reduced to a
// dense vector by a truncated SVD (randomized range finder with power iterations, then the exact
// SVD of the small projected matrix). What the text says stays in the vector: two descriptions
// that share rare words are close, whatever encoder is or is not trained.
import { Rng } from '../random';

export interface LexicalOptions {
  /** Output dimension (SVD components). */
  dim: number;
  /** Largest n-gram (1: words only). */
  maxNgram: number;
  /** Terms in fewer descriptions are dropped (2 keeps a term only where it links two concepts). */
  minDf: number;
  /** At most this many terms (most frequent first), bounding the SVD's dense term blocks. */
  maxTerms: number;
  /** Extra columns of the range finder, and its power iterations. */
  oversample: number;
  powerIterations: number;
  seed: number;
}

export const DEFAULT_LEXICAL: LexicalOptions = { dim: 256, maxNgram: 2, minDf: 1, maxTerms: 1 << 18, oversample: 16, powerIterations: 3, seed: 7 };

/** Lower-cased word tokens: runs of letters and digits (decimal points kept inside numbers). */
export function words(text: string): string[] {
  return text.toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '').match(/[a-z0-9]+(?:\.[0-9]+)?/g) ?? [];
}

function ngrams(text: string, maxN: number): string[] {
  const w = words(text);
  const out: string[] = [];
  for (let n = 1; n <= maxN; n++) for (let i = 0; i + n <= w.length; i++) out.push(w.slice(i, i + n).join(' '));
  return out;
}

/** A sparse row-normalized TF-IDF matrix (CSR), rows = texts. */
export interface SparseTfidf {
  rows: number;
  terms: string[];
  rowPtr: Int32Array;
  col: Int32Array;
  val: Float32Array;
}

/** TF-IDF with sublinear term frequency (1 + ln tf), smooth idf (ln((1+n)/(1+df)) + 1), unit rows. */
export function tfidf(texts: string[], o: Pick<LexicalOptions, 'maxNgram' | 'minDf' | 'maxTerms'> = DEFAULT_LEXICAL): SparseTfidf {
  const counts = texts.map((t) => {
    const m = new Map<string, number>();
    for (const g of ngrams(t, o.maxNgram)) m.set(g, (m.get(g) ?? 0) + 1);
    return m;
  });
  const df = new Map<string, number>();
  for (const m of counts) for (const g of m.keys()) df.set(g, (df.get(g) ?? 0) + 1);
  const terms = [...df.entries()].filter(([, d]) => d >= o.minDf)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, o.maxTerms).map(([t]) => t).sort();
  const index = new Map(terms.map((t, i) => [t, i]));
  const n = texts.length;
  const idf = terms.map((t) => Math.log((1 + n) / (1 + df.get(t)!)) + 1);
  const rowPtr = new Int32Array(n + 1);
  const col: number[] = [];
  const val: number[] = [];
  counts.forEach((m, r) => {
    const entries: Array<[number, number]> = [];
    for (const [g, c] of m) { const j = index.get(g); if (j !== undefined) entries.push([j, (1 + Math.log(c)) * idf[j]]); }
    entries.sort((a, b) => a[0] - b[0]);
    const norm = Math.sqrt(entries.reduce((s, [, v]) => s + v * v, 0));
    for (const [j, v] of entries) { col.push(j); val.push(norm > 0 ? v / norm : 0); }
    rowPtr[r + 1] = col.length;
  });
  return { rows: n, terms, rowPtr, col: Int32Array.from(col), val: Float32Array.from(val) };
}

/** The matrix as dense rows (rows x terms), for small vocabularies and the lexical baselines. */
export function denseTfidf(m: SparseTfidf): Float32Array {
  const out = new Float32Array(m.rows * m.terms.length);
  for (let r = 0; r < m.rows; r++) for (let p = m.rowPtr[r]; p < m.rowPtr[r + 1]; p++) out[r * m.terms.length + m.col[p]] = m.val[p];
  return out;
}

/** Y = X W for dense W (terms x l), Y rows x l. */
function mulX(m: SparseTfidf, w: Float64Array, l: number): Float64Array {
  const y = new Float64Array(m.rows * l);
  for (let r = 0; r < m.rows; r++) {
    for (let p = m.rowPtr[r]; p < m.rowPtr[r + 1]; p++) {
      const v = m.val[p];
      const off = m.col[p] * l;
      for (let k = 0; k < l; k++) y[r * l + k] += v * w[off + k];
    }
  }
  return y;
}

/** Z = X^T Y for dense Y (rows x l), Z terms x l. */
function mulXt(m: SparseTfidf, y: Float64Array, l: number): Float64Array {
  const z = new Float64Array(m.terms.length * l);
  for (let r = 0; r < m.rows; r++) {
    for (let p = m.rowPtr[r]; p < m.rowPtr[r + 1]; p++) {
      const v = m.val[p];
      const off = m.col[p] * l;
      for (let k = 0; k < l; k++) z[off + k] += v * y[r * l + k];
    }
  }
  return z;
}

/** Orthonormalizes the l columns of a (n x l, row-major) in place (modified Gram-Schmidt, twice). */
function orthonormalize(a: Float64Array, n: number, l: number): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < l; j++) {
      for (let i = 0; i < j; i++) {
        let d = 0;
        for (let r = 0; r < n; r++) d += a[r * l + i] * a[r * l + j];
        for (let r = 0; r < n; r++) a[r * l + j] -= d * a[r * l + i];
      }
      let s = 0;
      for (let r = 0; r < n; r++) s += a[r * l + j] ** 2;
      const norm = Math.sqrt(s);
      for (let r = 0; r < n; r++) a[r * l + j] = norm > 1e-12 ? a[r * l + j] / norm : 0;
    }
  }
}

/** Eigen decomposition of a symmetric l x l matrix (cyclic Jacobi): eigenvalues descending, vectors as columns. */
export function symmetricEigen(s: Float64Array, l: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(s);
  const v = new Float64Array(l * l);
  for (let i = 0; i < l; i++) v[i * l + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < l; p++) for (let q = p + 1; q < l; q++) off += a[p * l + q] ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < l; p++) {
      for (let q = p + 1; q < l; q++) {
        const apq = a[p * l + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * l + q] - a[p * l + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        for (let k = 0; k < l; k++) {
          const akp = a[k * l + p], akq = a[k * l + q];
          a[k * l + p] = c * akp - sn * akq;
          a[k * l + q] = sn * akp + c * akq;
        }
        for (let k = 0; k < l; k++) {
          const apk = a[p * l + k], aqk = a[q * l + k];
          a[p * l + k] = c * apk - sn * aqk;
          a[q * l + k] = sn * apk + c * aqk;
        }
        for (let k = 0; k < l; k++) {
          const vkp = v[k * l + p], vkq = v[k * l + q];
          v[k * l + p] = c * vkp - sn * vkq;
          v[k * l + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: l }, (_, i) => i).sort((x, y) => a[y * l + y] - a[x * l + x]);
  const values = Float64Array.from(order, (i) => a[i * l + i]);
  const vectors = new Float64Array(l * l);
  order.forEach((src, j) => { for (let k = 0; k < l; k++) vectors[k * l + j] = v[k * l + src]; });
  return { values, vectors };
}

/**
 * Rows of U * Sigma of the rank-dim truncated SVD of X (the LSA document vectors: their dot
 * products approximate those of the TF-IDF rows). Components beyond the matrix rank are zero.
 */
export function truncatedSvd(m: SparseTfidf, o: Pick<LexicalOptions, 'dim' | 'oversample' | 'powerIterations' | 'seed'>): Float32Array {
  const n = m.rows;
  const k = o.dim;
  const l = Math.min(k + o.oversample, Math.max(1, Math.min(n, m.terms.length)));
  const rng = Rng.seeded(o.seed);
  const omega = Float64Array.from({ length: m.terms.length * l }, () => rng.normal());
  const q = mulX(m, omega, l);
  orthonormalize(q, n, l);
  for (let it = 0; it < o.powerIterations; it++) {
    const z = mulXt(m, q, l);
    orthonormalize(z, m.terms.length, l);
    q.set(mulX(m, z, l));
    orthonormalize(q, n, l);
  }
  // B = Q^T X (l x terms); B B^T = (X^T Q)^T (X^T Q)
  const bt = mulXt(m, q, l);
  const bbt = new Float64Array(l * l);
  for (let t = 0; t < m.terms.length; t++) {
    for (let i = 0; i < l; i++) {
      const x = bt[t * l + i];
      if (x === 0) continue;
      for (let j = 0; j < l; j++) bbt[i * l + j] += x * bt[t * l + j];
    }
  }
  const { values, vectors } = symmetricEigen(bbt, l);
  // U Sigma = Q U_B Sigma; Sigma = sqrt(eigenvalue of B B^T)
  const out = new Float32Array(n * k);
  for (let j = 0; j < Math.min(k, l); j++) {
    const sigma = Math.sqrt(Math.max(0, values[j]));
    if (sigma < 1e-9) continue;
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let i = 0; i < l; i++) s += q[r * l + i] * vectors[i * l + j];
      out[r * k + j] = s * sigma;
    }
  }
  return out;
}

/** Dense lexical vectors of the texts (TF-IDF 1..maxNgram-grams -> SVD to o.dim). */
export function lexicalVectors(texts: string[], options: Partial<LexicalOptions> = {}): Float32Array {
  const o = { ...DEFAULT_LEXICAL, ...options };
  return truncatedSvd(tfidf(texts, o), o);
}
