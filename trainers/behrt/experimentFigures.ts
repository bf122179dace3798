// The experiment's figures: per model, task and setting a ROC and a PR figure (SVG and PNG, axes
// titled, legend by arm) with the curves' points beside them, so the report can draw them again;
// per model the AUROC bars of every task and arm.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Curve } from '../metrics/auc';
import { curvePlot, taskBarRows, taskBars, thinCurve } from '../../figures/charts';
import { writeFigure, type FigureFiles } from '../../figures/figureFiles';
import type { CurveFigures, ResultRow } from './experiment';

export async function writeExperimentFigures(
  out: string,
  armNames: string[],
  modelNames: string[],
  rows: ResultRow[],
  tasks: string[],
  curves: Map<string, { arm: string; roc: Curve; pr: Curve }[]>,
): Promise<{ figures: Record<string, CurveFigures>; bars: Record<string, FigureFiles> }> {
  const figures: Record<string, CurveFigures> = {};
  mkdirSync(join(out, 'curves'), { recursive: true });
  for (const [key, list] of curves) {
    const [model, setting, task] = key.split('|');
    // BEHRT's figures keep their names from before the grid had models.
    const base = join('curves', `${task}-${setting}${model === 'behrt' ? '' : `-${model}`}`);
    const title = `${task}, ${setting}${model === 'behrt' ? '' : `, ${model}`}`;
    const roc = writeFigure(out, `${base}-roc`, await curvePlot(list.map((c) => ({ arm: c.arm, ...thinCurve(c.roc) })), { title: `ROC: ${title}`, x: 'false positive rate', y: 'true positive rate', diagonal: true }, armNames));
    const pr = writeFigure(out, `${base}-pr`, await curvePlot(list.map((c) => ({ arm: c.arm, ...thinCurve(c.pr) })), { title: `PR: ${title}`, x: 'recall', y: 'precision', diagonal: false }, armNames));
    writeFileSync(join(out, `${base}.json`), JSON.stringify(list.map((c) => ({ arm: c.arm, roc: c.roc, pr: c.pr }))));
    figures[model === 'behrt' ? `${setting}|${task}` : key] = { arms: list.map((c) => c.arm), roc: roc.png, pr: pr.png, points: `${base}.json`, files: { roc, pr } };
  }
  // The paper's Figure 3/5 layout per model: tasks on x, one bar per arm, internal and external side by side.
  const bars: Record<string, FigureFiles> = {};
  for (const model of modelNames) {
    const modelRows = rows.filter((r) => r.model === model);
    const svg = await taskBars(taskBarRows(modelRows, tasks, 'auroc', (r) => r.embeddings), 'AUROC, DeLong 95% CI', armNames, tasks, { title: `AUROC per task (${model})`, stacked: tasks.length * armNames.length > 12 });
    bars[model] = writeFigure(out, `auroc-bars${model === 'behrt' ? '' : `-${model}`}`, svg);
  }
  return { figures, bars };
}
