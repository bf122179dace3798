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

export function aurocDeLong(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): AurocResult {
  checkInputs(scores, labels);
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < scores.length; i++) (labels[i] ? pos : neg).push(scores[i]);
  const m = pos.length;
  const n = neg.length;
  if (m === 0 || n === 0) throw new Error(`AUROC needs both classes (${m} positives, ${n} negatives)`);
  const tz = midranks([...pos, ...neg]);
  const tx = midranks(pos);
  const ty = midranks(neg);
  // Placement values: V10[i] = share of negatives ranked below positive i (ties count half).
  const v10 = pos.map((_, i) => (tz[i] - tx[i]) / n);
  const v01 = neg.map((_, j) => 1 - (tz[m + j] - ty[j]) / m);
  const auroc = v10.reduce((a, b) => a + b, 0) / m;
  const sampleVar = (v: number[]) => {
    if (v.length < 2) return 0;
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    return v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1);
  };
  const variance = sampleVar(v10) / m + sampleVar(v01) / n;
  const half = 1.959963984540054 * Math.sqrt(variance);
  return { auroc, variance, ci95: [Math.max(0, auroc - half), Math.min(1, auroc + half)], positives: m, negatives: n };
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
  const r = aurocDeLong(scores, labels);
  return { auroc: r.auroc, ci95: r.ci95, auprc: auprc(scores, labels), positives: r.positives, negatives: r.negatives };
}

export interface MacroMetrics {
  auroc: number;
  auprc: number;
  /** Labels averaged, and those left out because a class was missing from the evaluation set. */
  averaged: number;
  skipped: number[];
  perLabel: (LabelMetrics | null)[];
}

/** Macro average over K labels; scores and labels are row-major [N, K]. */
export function macroMetrics(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>, k: number): MacroMetrics {
  const n = scores.length / k;
  const perLabel: (LabelMetrics | null)[] = [];
  const skipped: number[] = [];
  for (let j = 0; j < k; j++) {
    const s = new Float64Array(n);
    const l = new Uint8Array(n);
    let p = 0;
    for (let i = 0; i < n; i++) {
      s[i] = scores[i * k + j];
      l[i] = labels[i * k + j] ? 1 : 0;
      p += l[i];
    }
    if (p === 0 || p === n) {
      perLabel.push(null);
      skipped.push(j);
    } else perLabel.push(binaryMetrics(s, l));
  }
  const ok = perLabel.filter((x): x is LabelMetrics => x !== null);
  if (ok.length === 0) throw new Error(`no label among ${k} has both classes in the evaluation set`);
  const mean = (f: (x: LabelMetrics) => number) => ok.reduce((a, x) => a + f(x), 0) / ok.length;
  return { auroc: mean((x) => x.auroc), auprc: mean((x) => x.auprc), averaged: ok.length, skipped, perLabel };
}
