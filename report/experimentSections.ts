// The report's sections about an external-validation experiment, read from its results.json and
// the curve points it wrote beside its PNG figures: the results tables (the paper's Table 2
// shape), per-task bars, and ROC / PR curves per task and setting.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { curvePlot, taskBarRows, taskBars, thinCurve } from '../figures/charts';
import { escapeHtml, figure, para, section, table } from './html';
import { UserError } from '../common/errors';

interface Cell {
  auroc: number | null;
  auprc: number | null;
  aurocSd: number;
  auprcSd: number;
  ci95: [number | null, number | null];
  perSeed: { seed: number; n: number; positives: number }[];
  undefinedBecause?: string;
}
interface Row {
  embeddings: string;
  /** The EHR model (absent in results written before the grid had models). */
  model?: string;
  setting: string;
  tasks: Record<string, Cell>;
  average: { auroc: number | null; auprc: number | null };
}
export interface ExperimentResults {
  experiment: string;
  backend: string;
  tasks: string[];
  rows: Row[];
  curves: Record<string, { arms: string[]; roc: string; pr: string; points?: string }>;
  config: { seeds?: number[]; testSplits?: string[] };
  unknownTokenShare?: Record<string, Record<string, number>>;
}

export function readResults(dir: string): ExperimentResults {
  const file = path.join(dir, 'results.json');
  let r: Partial<ExperimentResults>;
  try {
    r = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: not a readable experiment result (${(e as Error).message.split('\n')[0]})`);
  }
  if (!Array.isArray(r.rows) || !Array.isArray(r.tasks)) throw new UserError(`${file}: not the results of medrep experiment (no rows or tasks)`);
  return r as ExperimentResults;
}

/** A grid over several EHR models names each arm with its model; one model keeps the arm's name. */
function armLabel(r: ExperimentResults): (row: Row) => string {
  const several = new Set(r.rows.map((row) => row.model ?? 'behrt')).size > 1;
  return (row) => (several ? `${row.embeddings} ${row.model ?? 'behrt'}` : row.embeddings);
}

const f3 = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(3));

function resultsTable(r: ExperimentResults, metric: 'auroc' | 'auprc'): string {
  const label = armLabel(r);
  const rows = r.rows.map((row) => [
    label(row),
    row.setting,
    ...r.tasks.map((t) => {
      const c = row.tasks[t];
      if (!c) return null;
      if (c.undefinedBecause) return `– (${c.undefinedBecause})`;
      const sd = c.perSeed.length > 1 ? ` ±${f3(metric === 'auroc' ? c.aurocSd : c.auprcSd)}` : '';
      const ci = metric === 'auroc' ? ` [${f3(c.ci95[0])}, ${f3(c.ci95[1])}]` : '';
      return `${f3(c[metric])}${sd}${ci}`;
    }),
    f3(row.average[metric]),
  ]);
  const caption = metric === 'auroc'
    ? 'AUROC: mean over seeds (± SD when several) [DeLong 95% interval]; average over the tasks with a value'
    : 'AUPRC: mean over seeds (± SD when several)';
  return table(`results-${metric}`, ['embeddings', 'setting', ...r.tasks, 'average'], rows, caption);
}

function testSizes(r: ExperimentResults): string {
  const label = armLabel(r);
  const first = r.rows.filter((row) => label(row) === label(r.rows[0]));
  const rows = first.map((row) => [row.setting, ...r.tasks.map((t) => {
    const s = row.tasks[t]?.perSeed[0];
    return s ? `${s.n} (${s.positives} positive)` : null;
  })]);
  return table('test-sizes', ['setting', ...r.tasks], rows, 'Test samples per task (first seed)');
}

async function curveFigures(dir: string, r: ExperimentResults, arms: string[]): Promise<string> {
  const figs: string[] = [];
  for (const [key, c] of Object.entries(r.curves ?? {})) {
    // Keys are setting|task, or model|setting|task for models other than BEHRT.
    const parts = key.split('|');
    const [setting, task] = parts.slice(-2);
    const title = parts.length > 2 ? `${task}, ${setting}, ${parts[0]}` : `${task}, ${setting}`;
    const points = c.points ? path.join(dir, c.points) : null;
    if (points && fs.existsSync(points)) {
      const list = JSON.parse(fs.readFileSync(points, 'utf8')) as { arm: string; roc: { x: number[]; y: number[] }; pr: { x: number[]; y: number[] } }[];
      figs.push(await curvePlot(list.map((l) => ({ arm: l.arm, ...thinCurve(l.roc) })), { title: `ROC: ${title}`, x: 'false positive rate', y: 'true positive rate', diagonal: true }, arms));
      figs.push(await curvePlot(list.map((l) => ({ arm: l.arm, ...thinCurve(l.pr) })), { title: `PR: ${title}`, x: 'recall', y: 'precision', diagonal: false }, arms));
    } else {
      // An older experiment without points: its PNG figures, with their legend as text.
      for (const [kind, rel, axes] of [['ROC', c.roc, 'x false positive rate, y true positive rate'], ['PR', c.pr, 'x recall, y precision']] as const) {
        const file = path.join(dir, rel);
        if (!fs.existsSync(file)) continue;
        const img = `<img alt="${escapeHtml(`${kind} ${title}`)}" width="260" height="260" src="data:image/png;base64,${fs.readFileSync(file).toString('base64')}">`;
        figs.push(figure(img, `${kind}: ${title} (${axes}); ${c.arms.join(', ')}`));
      }
    }
  }
  return figs.length ? `<div class="grid">${figs.join('')}</div>` : para('The experiment wrote no curves.');
}

export async function experimentSections(dir: string, r: ExperimentResults): Promise<{ id: string; title: string; html: string }[]> {
  const label = armLabel(r);
  const arms = [...new Set(r.rows.map(label))];
  // Curves and token shares are per embeddings arm (one figure per model already).
  const embeddings = [...new Set(r.rows.map((row) => row.embeddings))];
  const bars = (metric: 'auroc' | 'auprc') => taskBars(taskBarRows(r.rows, r.tasks, metric, label), metric.toUpperCase(), arms, r.tasks);
  const unk = r.unknownTokenShare
    ? para(`[UNK] share of tokens at the external site: ${embeddings.map((a) => `${a} ${(100 * (r.unknownTokenShare![a]?.external ?? 0)).toFixed(1)}%`).join(', ')}.`)
    : '';
  const meta = para(`Backend ${r.backend}; seeds ${(r.config?.seeds ?? []).join(', ')}; internal test splits ${(r.config?.testSplits ?? []).join(', ')}; external = every sample of site B.`);
  return [
    { id: 'results', title: 'Results', html: section('results', 'Results (train at site A; internal = A\'s test split, external = site B)', meta, resultsTable(r, 'auroc'), resultsTable(r, 'auprc'), testSizes(r), unk) },
    { id: 'bars', title: 'Per task', html: section('bars', 'Per task', `<div class="grid">${figure(await bars('auroc'), 'AUROC per task and embeddings, whiskers the DeLong 95% interval')}${figure(await bars('auprc'), 'AUPRC per task and embeddings')}</div>`) },
    { id: 'curves', title: 'ROC and PR', html: section('curves', 'ROC and precision-recall curves (first seed)', await curveFigures(dir, r, embeddings)) },
  ];
}
