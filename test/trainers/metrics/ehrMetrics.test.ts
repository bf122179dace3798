import assert from 'node:assert/strict';
import { DuckDBInstance } from '@duckdb/node-api';
import { aurocDeLong, auprc, binaryMetrics, macroAurocVariance, macroMetrics, prCurve, rocCurve } from '../../../trainers/metrics/auc';
import { Rng } from '../../../trainers/random';

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

describe('EHR metrics: AUROC, AUPRC, DeLong', () => {
  it('match hand-computed values on a four-sample example', () => {
    const s = [0.1, 0.4, 0.35, 0.8];
    const y = [0, 0, 1, 1];
    const r = aurocDeLong(s, y);
    close(r.auroc, 0.75); // 3 of 4 positive-negative pairs ordered right
    close(r.variance, 0.125); // S10 = S01 = 0.125, 0.125/2 + 0.125/2
    close(r.ci95[0], 0.75 - 1.959963984540054 * Math.sqrt(0.125));
    close(r.ci95[1], 1);
    // PR points (0,1) (.5,1) (.5,.5) (1,2/3) (1,.5): area 0.5 + 0.5*(0.5+2/3)/2 = 19/24
    close(auprc(s, y), 19 / 24);
    assert.deepEqual(rocCurve(s, y), { x: [0, 0, 0.5, 0.5, 1], y: [0, 0.5, 0.5, 1, 1] });
  });

  it('count ties as half in AUROC and as one threshold in AUPRC', () => {
    const s = [0.5, 0.5, 0.5, 0.2];
    const y = [1, 0, 1, 0];
    close(aurocDeLong(s, y).auroc, 0.75);
    const pr = prCurve(s, y);
    assert.deepEqual(pr.x, [0, 1, 1]);
    close(auprc(s, y), (1 + 2 / 3) / 2);
  });

  it('refuse one-class data and non-finite scores', () => {
    assert.throws(() => aurocDeLong([0.1, 0.2], [1, 1]), /both classes/);
    assert.throws(() => aurocDeLong([0.1, NaN], [1, 0]), /score 1 is not a finite/);
  });

  it('agree with DuckDB SQL (rank formula, PR trapezoid) and pairwise DeLong on random data', async () => {
    const rng = Rng.fromState(42);
    const conn = await (await DuckDBInstance.create(':memory:')).connect();
    for (let trial = 0; trial < 5; trial++) {
      const n = 50 + rng.int(300);
      const y = Array.from({ length: n }, () => (rng.next() < 0.3 ? 1 : 0));
      // Rounded scores so that ties occur; positives score higher on average.
      const s = y.map((l) => Math.round((rng.next() + 0.3 * l) * 40) / 40);
      const values = s.map((v, i) => `(${v}, ${y[i] === 1})`).join(',');
      const sql = `WITH d(s, y) AS (VALUES ${values}),
        r AS (SELECT s, y, (RANK() OVER (ORDER BY s) * 2 + COUNT(*) OVER (PARTITION BY s) - 1) / 2.0 AS midrank FROM d),
        c AS (SELECT COUNT(*) FILTER (WHERE y) AS m, COUNT(*) FILTER (WHERE NOT y) AS n, SUM(midrank) FILTER (WHERE y) AS rs FROM r),
        t AS (SELECT s, SUM(y::INT) AS tp, SUM((NOT y)::INT) AS fp FROM d GROUP BY s),
        cum AS (SELECT SUM(tp) OVER (ORDER BY s DESC) AS tp, SUM(fp) OVER (ORDER BY s DESC) AS fp FROM t),
        pts AS (SELECT tp / (SELECT m FROM c) AS rec, tp / (tp + fp) AS prec FROM cum UNION ALL SELECT 0.0, 1.0),
        seg AS (SELECT rec, prec, LAG(rec) OVER (ORDER BY rec, prec DESC) AS r0, LAG(prec) OVER (ORDER BY rec, prec DESC) AS p0 FROM pts)
        SELECT (SELECT (rs - m * (m + 1) / 2.0) / (m * n) FROM c) AS auroc,
               (SELECT SUM((rec - r0) * (prec + p0) / 2) FROM seg WHERE r0 IS NOT NULL) AS auprc`;
      const row = (await conn.runAndReadAll(sql)).getRowObjectsJS()[0] as { auroc: number; auprc: number };
      const m = binaryMetrics(s, y);
      close(m.auroc, Number(row.auroc), 1e-9);
      close(m.auprc, Number(row.auprc), 1e-9);
      // DeLong from pairwise placement values (O(m n)), independent of the midrank shortcut.
      const pos = s.filter((_, i) => y[i] === 1);
      const neg = s.filter((_, i) => y[i] === 0);
      const psi = (a: number, b: number) => (a > b ? 1 : a === b ? 0.5 : 0);
      const v10 = pos.map((a) => neg.reduce((acc, b) => acc + psi(a, b), 0) / neg.length);
      const v01 = neg.map((b) => pos.reduce((acc, a) => acc + psi(a, b), 0) / pos.length);
      const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
      const svar = (v: number[]) => v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1);
      close(aurocDeLong(s, y).variance, svar(v10) / pos.length + svar(v01) / neg.length, 1e-12);
      close(mean(v10), m.auroc, 1e-12);
    }
    conn.closeSync();
  });

  it('macro-average over labels with both classes and name the others', () => {
    // Three samples x three labels, row-major; label 2 is all-negative.
    const scores = [0.9, 0.5, 0.5, 0.1, 0.8, 0.5, 0.3, 0.4, 0.6];
    const labels = [1, 0, 0, 0, 1, 0, 0, 1, 0];
    const m = macroMetrics(scores, labels, 3);
    assert.deepEqual(m.skipped, [2]);
    assert.equal(m.averaged, 2);
    // label 0: 0.9 above 0.1 and 0.3 -> 1; label 1: positives 0.8, 0.4 against 0.5 -> 0.5
    close(m.auroc, (1 + 0.5) / 2);
    close(m.auprc, (1 + 19 / 24) / 2);
    assert.ok(m.ci95[0] <= m.auroc && m.auroc <= m.ci95[1]);
  });

  it('give the macro AUROC an interval: DeLong for one label, the same for a repeated label, as wide as a bootstrap on random data', () => {
    const rng = Rng.fromState(7);
    const n = 600;
    const y1 = Array.from({ length: n }, () => (rng.next() < 0.25 ? 1 : 0));
    const s1 = y1.map((l) => Math.round((rng.next() + 0.4 * l) * 30) / 30);
    // One label: exactly DeLong's variance.
    close(macroAurocVariance(s1, y1, 1), aurocDeLong(s1, y1).variance, 1e-15);
    // A label repeated: the mean of two identical AUROCs is as uncertain as one.
    const twice = (a: number[]) => a.flatMap((v) => [v, v]);
    close(macroAurocVariance(twice(s1), twice(y1), 2), aurocDeLong(s1, y1).variance, 1e-15);

    // Four labels, two of them correlated through a shared risk; the bootstrap over samples (a
    // second estimate, 400 resamples) gives about the same standard error.
    const k = 4;
    const risk = Array.from({ length: n }, () => rng.next());
    const labels: number[] = [];
    const scores: number[] = [];
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < k; j++) {
        const l = (j < 2 ? risk[i] : rng.next()) + 0.5 * rng.next() > 0.9 + 0.1 * j ? 1 : 0;
        labels.push(l);
        scores.push(Math.round((0.5 * (j < 2 ? risk[i] : 0) + rng.next() + 0.3 * l) * 40) / 40);
      }
    }
    const se = Math.sqrt(macroAurocVariance(scores, labels, k));
    const boot: number[] = [];
    for (let b = 0; b < 400; b++) {
      const pick = Array.from({ length: n }, () => rng.int(n));
      boot.push(macroMetrics(pick.flatMap((i) => scores.slice(i * k, i * k + k)), pick.flatMap((i) => labels.slice(i * k, i * k + k)), k).auroc);
    }
    const mean = boot.reduce((a, b) => a + b, 0) / boot.length;
    const bootSe = Math.sqrt(boot.reduce((a, b) => a + (b - mean) ** 2, 0) / (boot.length - 1));
    assert.ok(se / bootSe > 0.85 && se / bootSe < 1.15, `DeLong-style ${se.toFixed(4)} vs bootstrap ${bootSe.toFixed(4)}`);
    // Ignoring the shared samples (labels as independent) would understate it: the correlated pair counts.
    const separate = Math.sqrt([0, 1, 2, 3].reduce((a, j) => a + aurocDeLong(scores.filter((_, x) => x % k === j), labels.filter((_, x) => x % k === j)).variance, 0)) / k;
    assert.ok(se > separate, `${se} <= ${separate}`);
    const m = macroMetrics(scores, labels, k);
    close(m.ci95[1] - m.ci95[0], 2 * 1.959963984540054 * se, 1e-12);
  });
});
