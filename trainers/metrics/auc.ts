// Ranking metrics of a binary classifier: AUROC with DeLong's 95% interval (the fast midrank
// form of Sun & Xu 2014), AUPRC as the trapezoidal area under the precision-recall curve, the
// curves themselves, and macro averages over several labels.

export interface Curve {
  x: number[];
  y: number[];
}

function checkInputs(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): void {
  if (scores.length !== labels.length) throw new Error(`${scores.length} scores but ${labels.length} labels`);
  for (let i = 0; i < scores.length; i++) if (!Number.isFinite(scores[i])) throw new Error(`score ${i} is not a finite number (${scores[i]})`);
}

/** 1-based midranks (ties share the mean of their ranks). */
export function midranks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]] === values[order[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = r;
    i = j + 1;
  }
  return ranks;
}

export interface AurocResult {
  auroc: number;
  /** DeLong variance and 95% interval (clipped to [0, 1]). */
  variance: number;
  ci95: [number, number];
  positives: number;
  negatives: number;
}

/**
 * DeLong's placement value of every sample, in input order: for a positive, V10 = the share of
 * negatives ranked below it; for a negative, V01 = the share of positives ranked above it (ties
 * count half). Null when a class is missing.
 */
interface Placements {
  auroc: number;
  /** Positives and negatives. */
  m: number;
  n: number;
  place: Float64Array;
}

function placements(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): Placements | null {
  const posIdx: number[] = [];
  const negIdx: number[] = [];
  for (let i = 0; i < scores.length; i++) (labels[i] ? posIdx : negIdx).push(i);
  const m = posIdx.length;
  const n = negIdx.length;
  if (m === 0 || n === 0) return null;
  const pos = posIdx.map((i) => scores[i]);
  const neg = negIdx.map((i) => scores[i]);
  const tz = midranks([...pos, ...neg]);
  const tx = midranks(pos);
  const ty = midranks(neg);
  const place = new Float64Array(scores.length);
  let sum = 0;
  posIdx.forEach((i, a) => { place[i] = (tz[a] - tx[a]) / n; sum += place[i]; });
  negIdx.forEach((i, b) => { place[i] = 1 - (tz[m + b] - ty[b]) / m; });
  return { auroc: sum / m, m, n, place };
}

/** The 95% normal interval of an AUROC with this variance, clipped to [0, 1]. */
function interval95(auroc: number, variance: number): [number, number] {
  const half = 1.959963984540054 * Math.sqrt(variance);
  return [Math.max(0, auroc - half), Math.min(1, auroc + half)];
}

export function aurocDeLong(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): AurocResult {
  checkInputs(scores, labels);
  const c = placements(scores, labels);
  if (!c) {
    let m = 0;
    for (let i = 0; i < labels.length; i++) if (labels[i]) m++;
    throw new Error(`AUROC needs both classes (${m} positives, ${labels.length - m} negatives)`);
  }
  return deLong(c, labels);
}

/** DeLong's variance and interval from one label's placement values. */
function deLong(c: Placements, labels: ArrayLike<boolean | number>): AurocResult {
  const { m, n, auroc } = c;
  const v10: number[] = [];
  const v01: number[] = [];
  for (let i = 0; i < labels.length; i++) (labels[i] ? v10 : v01).push(c.place[i]);
  const sampleVar = (v: number[]) => {
    if (v.length < 2) return 0;
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    return v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1);
  };
  const variance = sampleVar(v10) / m + sampleVar(v01) / n;
  return { auroc, variance, ci95: interval95(auroc, variance), positives: m, negatives: n };
}

/** (threshold-descending) cumulative true and false positives at each distinct score. */
function cumulativeCounts(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): { tp: number[]; fp: number[]; P: number; N: number } {
  checkInputs(scores, labels);
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const tp: number[] = [];
  const fp: number[] = [];
  let t = 0;
  let f = 0;
  for (let k = 0; k < order.length; k++) {
    if (labels[order[k]]) t++;
    else f++;
    const last = k + 1 === order.length || scores[order[k + 1]] !== scores[order[k]];
    if (last) {
      tp.push(t);
      fp.push(f);
    }
  }
  return { tp, fp, P: t, N: f };
}

export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): Curve {
  const { tp, fp, P, N } = cumulativeCounts(scores, labels);
  return { x: [0, ...fp.map((f) => f / N)], y: [0, ...tp.map((t) => t / P)] };
}

/** Recall on x, precision on y, starting at (0, 1). */
export function prCurve(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): Curve {
  const { tp, fp, P } = cumulativeCounts(scores, labels);
  if (P === 0) throw new Error('precision-recall needs at least one positive');
  return { x: [0, ...tp.map((t) => t / P)], y: [1, ...tp.map((t, k) => t / (t + fp[k]))] };
}

export function trapezoid(c: Curve): number {
  let area = 0;
  for (let k = 1; k < c.x.length; k++) area += ((c.x[k] - c.x[k - 1]) * (c.y[k] + c.y[k - 1])) / 2;
  return area;
}

export function auprc(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): number {
  return trapezoid(prCurve(scores, labels));
}

export interface LabelMetrics {
  auroc: number;
  ci95: [number, number];
  auprc: number;
  positives: number;
  negatives: number;
}

export function binaryMetrics(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): LabelMetrics {
  return labelMetrics(aurocDeLong(scores, labels), scores, labels);
}

function labelMetrics(r: AurocResult, scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): LabelMetrics {
  return { auroc: r.auroc, ci95: r.ci95, auprc: auprc(scores, labels), positives: r.positives, negatives: r.negatives };
}

export interface MacroMetrics {
  auroc: number;
  /** 95% interval of the macro AUROC: DeLong's variance carried to the mean (macroAurocVariance). */
  ci95: [number, number];
  auprc: number;
  /** Labels averaged, and those left out because a class was missing from the evaluation set. */
  averaged: number;
  skipped: number[];
  perLabel: (LabelMetrics | null)[];
}

/** Scores and 0/1 labels of label j from row-major [N, K] arrays. */
function labelColumn(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>, k: number, j: number): { s: Float64Array; l: Uint8Array } {
  const n = scores.length / k;
  const s = new Float64Array(n);
  const l = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    s[i] = scores[i * k + j];
    l[i] = labels[i * k + j] ? 1 : 0;
  }
  return { s, l };
}

/** Macro average over K labels; scores and labels are row-major [N, K]. */
export function macroMetrics(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>, k: number): MacroMetrics {
  const perLabel: (LabelMetrics | null)[] = [];
  const skipped: number[] = [];
  const columns: LabelPlacements[] = [];
  for (let j = 0; j < k; j++) {
    const { s, l } = labelColumn(scores, labels, k, j);
    const c = placements(s, l);
    if (!c) {
      perLabel.push(null);
      skipped.push(j);
      continue;
    }
    checkInputs(s, l);
    perLabel.push(labelMetrics(deLong(c, l), s, l));
    columns.push({ l, c });
  }
  const ok = perLabel.filter((x): x is LabelMetrics => x !== null);
  if (ok.length === 0) throw new Error(`no label among ${k} has both classes in the evaluation set`);
  const mean = (f: (x: LabelMetrics) => number) => ok.reduce((a, x) => a + f(x), 0) / ok.length;
  const auroc = mean((x) => x.auroc);
  return { auroc, ci95: interval95(auroc, macroVariance(columns)), auprc: mean((x) => x.auprc), averaged: ok.length, skipped, perLabel };
}

/** One label's 0/1 labels and placement values. */
interface LabelPlacements {
  l: Uint8Array;
  c: Placements;
}

/**
 * Variance of the mean AUROC over the labels that have both classes (scores and labels row-major
 * [N, K]). DeLong's estimator written per sample: for label k, a positive i contributes
 * (V10_k(i) - AUC_k) / m_k and a negative (V01_k(i) - AUC_k) / n_k (scaled by sqrt(m/(m-1)) and
 * sqrt(n/(n-1)), DeLong's sample variances); the macro mean's contribution of a sample is the mean
 * of its labels' contributions, and the variance is the sum of their squares. The labels share
 * their samples, so correlated labels widen the interval as they should; for one label it is
 * exactly DeLong's variance.
 */
export function macroAurocVariance(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>, k: number): number {
  const columns: LabelPlacements[] = [];
  for (let j = 0; j < k; j++) {
    const { s, l } = labelColumn(scores, labels, k, j);
    const c = placements(s, l);
    if (c) columns.push({ l, c });
  }
  if (columns.length === 0) throw new Error(`no label among ${k} has both classes in the evaluation set`);
  return macroVariance(columns);
}

/** macroAurocVariance from the labels' placement values (all of the same samples). */
function macroVariance(columns: LabelPlacements[]): number {
  const n = columns[0].l.length;
  const psi = new Float64Array(n);
  for (const { l, c } of columns) {
    const pw = c.m > 1 ? Math.sqrt(c.m / (c.m - 1)) / c.m : 0;
    const nw = c.n > 1 ? Math.sqrt(c.n / (c.n - 1)) / c.n : 0;
    for (let i = 0; i < n; i++) psi[i] += (c.place[i] - c.auroc) * (l[i] ? pw : nw);
  }
  let v = 0;
  for (let i = 0; i < n; i++) v += (psi[i] / columns.length) ** 2;
  return v;
}
