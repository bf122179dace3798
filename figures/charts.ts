// The report's figures: Vega-Lite specifications compiled and rendered to SVG strings in Node
// (vega's headless View.toSVG: no browser, no canvas, no native build). Data is always inline,
// so rendering never reaches for the network.
import * as vega from 'vega';
import * as vl from 'vega-lite';

/** A Vega-Lite specification without its config (the report's own is added). */
type VlSpec = Record<string, unknown>;

// Readable at the page's size: axis and legend text of 12 px, titles of 13 px.
const CONFIG = {
  font: 'Helvetica, Arial, sans-serif',
  axis: { labelFontSize: 12, titleFontSize: 13, titleFontWeight: 'normal', grid: true, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 12, titleFontSize: 13, titleFontWeight: 'normal', labelLimit: 260 },
  header: { labelFontSize: 13, titleFontSize: 13 },
  title: { fontSize: 13, fontWeight: 'bold', anchor: 'start' },
  view: { stroke: '#cccccc' },
} as const;

const DASHES = [[1, 0], [8, 4], [2, 3], [12, 3, 2, 3], [4, 2], [1, 5], [16, 4], [6, 6]];
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

/** A Vega-Lite specification as one SVG element. */
export async function renderSvg(spec: VlSpec): Promise<string> {
  const compiled = vl.compile({ ...spec, config: CONFIG } as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Warn });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A histogram from (value, count) pairs, binned into at most `maxbins` bars. */
export function histogram(counts: { value: number; n: number }[], o: { x: string; y: string; maxbins?: number }): Promise<string> {
  return renderSvg({
    width: 420,
    height: 170,
    data: { values: counts },
    mark: { type: 'bar', color: '#4c78a8' },
    encoding: {
      x: { field: 'value', type: 'quantitative', bin: { maxbins: o.maxbins ?? 30 }, title: o.x },
      y: { field: 'n', type: 'quantitative', aggregate: 'sum', title: o.y },
    },
  });
}

/** Decile boundaries of several labs, one small plot each: the 11 quantiles against their value. */
export function decilePlots(groups: { label: string; boundaries: number[] }[]): Promise<string> {
  const values = groups.flatMap((g) => g.boundaries.map((b, k) => ({ lab: g.label, quantile: k / 10, value: b })));
  return renderSvg({
    data: { values },
    facet: { field: 'lab', type: 'nominal', title: null, sort: groups.map((g) => g.label), header: { labelFontSize: 12, labelLimit: 300 } },
    columns: 3,
    spec: {
      width: 220,
      height: 120,
      layer: [{ mark: { type: 'line', color: '#4c78a8' } }, { mark: { type: 'point', filled: true, color: '#4c78a8', size: 30 } }],
      encoding: {
        x: { field: 'quantile', type: 'quantitative', title: 'quantile', scale: { domain: [0, 1] }, axis: { values: [0, 0.2, 0.4, 0.6, 0.8, 1], format: '.1f' } },
        y: { field: 'value', type: 'quantitative', title: 'value', scale: { zero: false } },
      },
    },
    resolve: { scale: { y: 'independent' } },
  });
}

export interface TaskBar { task: string; arm: string; setting: string; value: number; lo?: number; hi?: number }

/** One bar per task and results row: the metric where defined, with the AUROC's DeLong 95% interval. */
export function taskBarRows<R extends { setting: string; tasks: Record<string, { auroc: number | null; auprc: number | null; ci95: [number | null, number | null] }> }>(
  rows: R[], tasks: string[], metric: 'auroc' | 'auprc', label: (row: R) => string,
): TaskBar[] {
  const defined = (v: number | null | undefined): v is number => v !== null && v !== undefined && !Number.isNaN(v);
  return rows.flatMap((row) => tasks.flatMap((t) => {
    const c = row.tasks[t];
    const v = c?.[metric];
    if (!defined(v)) return [];
    const [lo, hi] = c.ci95;
    return [{ task: t, arm: label(row), setting: row.setting, value: v, ...(metric === 'auroc' && defined(lo) && defined(hi) ? { lo, hi } : {}) }];
  }));
}

/**
 * Grouped bars of a metric per task and arm, one panel per setting (side by side, or one above the
 * other with `stacked`, for a grid too wide for one row), with 95% interval whiskers.
 */
export function taskBars(rows: TaskBar[], metric: string, arms: string[], tasks: string[], o: { title?: string; stacked?: boolean } = {}): Promise<string> {
  const panels = { field: 'setting', type: 'nominal', title: null, sort: ['internal', 'external'], header: { labelFontSize: 13 } };
  return renderSvg({
    ...(o.title ? { title: o.title } : {}),
    data: { values: rows },
    facet: o.stacked ? { row: { ...panels, header: { labelFontSize: 13, labelAngle: 0, labelOrient: 'top', labelAnchor: 'start' } } } : { column: panels },
    spec: {
      width: { step: 18 },
      height: 240,
      layer: [
        { mark: { type: 'bar' }, encoding: { y: { field: 'value', type: 'quantitative', title: metric, scale: { domain: [0, 1] } } } },
        // Dark whiskers: in the bar's own colour the part inside the bar would not show.
        { mark: { type: 'rule', strokeWidth: 1.5 }, encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color: { value: '#222222' } } },
      ],
      encoding: {
        x: { field: 'task', type: 'nominal', title: 'task', sort: tasks, axis: { labelAngle: -30 } },
        xOffset: { field: 'arm', type: 'nominal', sort: arms },
        color: { field: 'arm', type: 'nominal', sort: arms, title: 'embeddings', scale: { domain: arms, range: PALETTE } },
      },
    },
  });
}

/** ROC or PR curves of several arms (one line each) in one panel. */
export function curvePlot(
  curves: { arm: string; x: number[]; y: number[] }[],
  o: { title: string; x: string; y: string; diagonal: boolean; legend?: string; xDomain?: [number, number] | null; yDomain?: [number, number] | null },
  arms: string[],
): Promise<string> {
  const legend = o.legend ?? 'embeddings';
  // Rates and shares span [0, 1]; null fits the axis to the data.
  const scale = (d: [number, number] | null | undefined) => (d === null ? { zero: false } : { domain: d ?? [0, 1] });
  const values = curves.flatMap((c) => c.x.map((x, i) => ({ arm: c.arm, i, x, y: c.y[i] })));
  const layers: Record<string, unknown>[] = [
    {
      mark: { type: 'line', strokeWidth: 2, interpolate: 'linear' },
      encoding: {
        // The first label centred on its tick, as the y axis's: flush it would sit right of the origin.
        x: { field: 'x', type: 'quantitative', title: o.x, scale: scale(o.xDomain), axis: { labelFlush: false } },
        y: { field: 'y', type: 'quantitative', title: o.y, scale: scale(o.yDomain) },
        order: { field: 'i', type: 'quantitative' },
        color: { field: 'arm', type: 'nominal', sort: arms, title: legend, scale: { domain: arms, range: PALETTE } },
        // Arms with the same curve lie on each other: the dash pattern shows where they do.
        strokeDash: { field: 'arm', type: 'nominal', sort: arms, title: legend, scale: { domain: arms, range: DASHES } },
      },
    },
  ];
  if (o.diagonal) {
    layers.unshift({
      // The chance line thin, light and solid: no arm's dash pattern is mistaken for it.
      data: { values: [{ x: 0, y: 0 }, { x: 1, y: 1 }] },
      mark: { type: 'line', color: '#c8c8c8', strokeWidth: 1 },
      encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
    });
  }
  return renderSvg({ title: o.title, width: 220, height: 220, data: { values }, layer: layers });
}

/** At most `max` points of a step curve, its first and last kept (the page stays small for big test sets). */
export function thinCurve(c: { x: number[]; y: number[] }, max = 200): { x: number[]; y: number[] } {
  if (c.x.length <= max) return c;
  const step = (c.x.length - 1) / (max - 1);
  const idx = Array.from({ length: max }, (_, k) => Math.round(k * step));
  return { x: idx.map((i) => c.x[i]), y: idx.map((i) => c.y[i]) };
}

/** Counts per arm and level (the paper's Figure 4): one group per arm, one bar per level. */
export function levelBars(rows: { arm: string; level: string; n: number }[], o: { title: string; y: string; levels: string[]; colors: string[] }, arms: string[]): Promise<string> {
  return renderSvg({
    title: o.title,
    width: { step: 22 },
    height: 220,
    data: { values: rows },
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'arm', type: 'nominal', title: 'embeddings', sort: arms, axis: { labelAngle: 0 } },
      xOffset: { field: 'level', type: 'nominal', sort: o.levels },
      y: { field: 'n', type: 'quantitative', title: o.y, axis: { tickMinStep: 1 } },
      color: { field: 'level', type: 'nominal', sort: o.levels, title: 'relevance', scale: { domain: o.levels, range: o.colors } },
    },
  });
}
