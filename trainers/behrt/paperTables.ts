// The MedRep paper's result tables from an experiment's rows, as Markdown and CSV: Table 2, each
// arm's improvement over vanilla per task group (AUROC and AUPRC, internal and external), and
// Table 3, each arm's own values (the ablations side by side). Task groups are named as in the
// paper; a requested group that did not resolve on the data is a column that says so.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultRow } from './experiment';
import { fmt } from '../metrics/table';

/** The paper's task groups, by the pipeline's task names. */
export const TASK_GROUPS: Record<string, string> = {
  mortality: 'MT', long_stay: 'LLOS', readmission: 'RA', phenotypes: 'Pheno', uti: 'UTI',
  fracture: 'Fx', sepsis: 'Sepsis', pneumonia: 'PNA', mi: 'MI',
};
export const PAPER_TASKS = Object.keys(TASK_GROUPS);

export const groupOf = (task: string): string => TASK_GROUPS[task] ?? task;

export interface UnresolvedTask {
  task: string;
  reason: string;
}

const METRICS = [['auroc', 'AUROC'], ['auprc', 'AUPRC']] as const;
type Metric = (typeof METRICS)[number][0];

const csvField = (v: string | number | null): string => {
  const s = v === null || (typeof v === 'number' && Number.isNaN(v)) ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};
const csv = (header: string[], lines: (string | number | null)[][]) => [header, ...lines].map((l) => l.map(csvField).join(',')).join('\n') + '\n';
const md = (header: string[], lines: string[][]) =>
  [`| ${header.join(' | ')} |`, `| ${header.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`, ...lines.map((l) => `| ${l.join(' | ')} |`)].join('\n');
const signed = (x: number) => (Number.isNaN(x) ? '-' : `${x >= 0 ? '+' : ''}${x.toFixed(3)}`);
const modelOf = (r: ResultRow) => r.model ?? 'behrt';

export interface PaperTables {
  table2Markdown: string;
  table2Csv: string;
  table3Markdown: string;
  table3Csv: string;
}

export function paperTables(rows: ResultRow[], tasks: string[], unresolved: UnresolvedTask[]): PaperTables {
  const columns = [...tasks, ...unresolved.map((u) => u.task)];
  const header = ['arm', 'setting', ...columns.map(groupOf), 'average'];
  const models = [...new Set(rows.map(modelOf))];
  const notResolved = unresolved.length
    ? `\n\nNot resolved on this data (no samples to train or test): ${unresolved.map((u) => `${groupOf(u.task)} (${u.task}): ${u.reason}`).join('; ')}.`
    : '';
  const vanillaOf = (r: ResultRow) => rows.find((v) => v.embeddings === 'vanilla' && modelOf(v) === modelOf(r) && v.setting === r.setting);
  const value = (r: ResultRow, t: string, m: Metric) => r.tasks[t]?.[m] ?? NaN;
  const why = (t: string) => unresolved.find((u) => u.task === t)?.reason ?? null;

  const t2md: string[] = ['# Table 2: improvement over vanilla', '', 'Mean over seeds; vanilla rows are its own values, the other rows the arm minus vanilla (same model and setting).'];
  const t2csv: (string | number | null)[][] = [];
  const t3md: string[] = ['# Table 3: every arm', '', 'Mean over seeds ± sd (sd only with more than one seed).'];
  const t3csv: (string | number | null)[][] = [];
  for (const model of models) {
    const mine = rows.filter((r) => modelOf(r) === model);
    for (const [m, label] of METRICS) {
      const lines2: string[][] = [];
      const lines3: string[][] = [];
      for (const r of mine) {
        const base = vanillaOf(r);
        const isVanilla = r.embeddings === 'vanilla';
        const delta = (t: string) => (base ? value(r, t, m) - value(base, t, m) : NaN);
        lines2.push([r.embeddings, r.setting, ...columns.map((t) => (why(t) ? 'not resolved' : isVanilla ? fmt(value(r, t, m)) : signed(delta(t)))),
          isVanilla ? fmt(r.average[m]) : base ? signed(r.average[m] - base.average[m]) : '-']);
        lines3.push([r.embeddings, r.setting, ...columns.map((t) => {
          if (why(t)) return 'not resolved';
          const c = r.tasks[t];
          const sd = m === 'auroc' ? c.aurocSd : c.auprcSd;
          return `${fmt(c[m])}${c.perSeed.length > 1 ? ` ±${fmt(sd)}` : ''}`;
        }), fmt(r.average[m])]);
        for (const t of columns) {
          const note = why(t) ? `not resolved: ${why(t)}` : r.tasks[t]?.undefinedBecause ?? '';
          const v = why(t) ? NaN : value(r, t, m);
          t2csv.push([model, r.embeddings, r.setting, label, groupOf(t), t, v, base && !why(t) ? value(base, t, m) : NaN, isVanilla || why(t) ? NaN : delta(t), note]);
          const c = r.tasks[t];
          t3csv.push([model, r.embeddings, r.setting, label, groupOf(t), t, v, c ? (m === 'auroc' ? c.aurocSd : c.auprcSd) : NaN,
            c && m === 'auroc' ? c.ci95[0] : NaN, c && m === 'auroc' ? c.ci95[1] : NaN, c ? c.perSeed.length : 0, note]);
        }
      }
      if (!mine.some((r) => r.embeddings === 'vanilla')) t2md.push('', `## ${model}, ${label}`, '', 'No vanilla arm in this grid: no improvement to show.');
      else t2md.push('', `## ${model}, ${label}`, '', md(header, lines2));
      t3md.push('', `## ${model}, ${label}`, '', md(header, lines3));
    }
  }
  return {
    table2Markdown: t2md.join('\n') + notResolved + '\n',
    table2Csv: csv(['model', 'arm', 'setting', 'metric', 'task_group', 'task', 'value', 'vanilla', 'improvement', 'note'], t2csv),
    table3Markdown: t3md.join('\n') + notResolved + '\n',
    table3Csv: csv(['model', 'arm', 'setting', 'metric', 'task_group', 'task', 'mean', 'sd', 'ci95_low', 'ci95_high', 'seeds', 'note'], t3csv),
  };
}

/** Writes table2.md, table2.csv, table3.md, table3.csv into `out`; returns their names. */
export function writePaperTables(out: string, t: PaperTables): string[] {
  const files: [string, string][] = [['table2.md', t.table2Markdown], ['table2.csv', t.table2Csv], ['table3.md', t.table3Markdown], ['table3.csv', t.table3Csv]];
  for (const [name, text] of files) writeFileSync(join(out, name), text);
  return files.map(([n]) => n);
}
