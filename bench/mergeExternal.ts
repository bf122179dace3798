// Merges the results.json of several `medrep experiment external` runs (e.g. one per seed or per
// task group, run side by side) into one table of the paper's shape: per arm and setting, each
// task's AUROC / AUPRC averaged over every seed found, with the DeLong bounds averaged as the
// experiment itself does, and the [UNK] share per arm at each site.
// Usage: node dist/bench/mergeExternal.js OUT.json RESULTS.json...
import * as fs from 'fs';
import { formatResults, type Cell, type ResultRow } from '../trainers/behrt/experiment';

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: number[]) => (v.length < 2 ? 0 : Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1)));

export function mergeRows(runs: Array<{ tasks: string[]; rows: ResultRow[] }>): { rows: ResultRow[]; tasks: string[] } {
  const tasks = [...new Set(runs.flatMap((r) => r.tasks))];
  const cells = new Map<string, Cell['perSeed']>();
  const order: string[] = [];
  for (const run of runs) {
    for (const row of run.rows) {
      const armKey = `${row.embeddings}|${row.model ?? 'behrt'}|${row.setting}`;
      if (!order.includes(armKey)) order.push(armKey);
      for (const [t, c] of Object.entries(row.tasks)) {
        const k = `${armKey}|${t}`;
        cells.set(k, [...(cells.get(k) ?? []), ...c.perSeed]);
      }
    }
  }
  const rows: ResultRow[] = order.map((armKey) => {
    const [embeddings, model, setting] = armKey.split('|');
    const byTask: Record<string, Cell> = {};
    for (const t of tasks) {
      const p = cells.get(`${armKey}|${t}`);
      if (!p) throw new Error(`no ${embeddings} ${setting} result for task ${t}`);
      const au = p.map((x) => x.auroc);
      const pr = p.map((x) => x.auprc);
      byTask[t] = { auroc: mean(au), auprc: mean(pr), aurocSd: sd(au), auprcSd: sd(pr), ci95: [mean(p.map((x) => x.ci95[0])), mean(p.map((x) => x.ci95[1]))], perSeed: p };
    }
    const cs = Object.values(byTask);
    return { embeddings, model, setting: setting as ResultRow['setting'], tasks: byTask, average: { auroc: mean(cs.map((c) => c.auroc)), auprc: mean(cs.map((c) => c.auprc)) } };
  });
  return { rows, tasks };
}

function main(): void {
  const [out, ...files] = process.argv.slice(2);
  if (!out || files.length === 0) throw new Error('usage: node dist/bench/mergeExternal.js OUT.json RESULTS.json...');
  const runs = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as { tasks: string[]; rows: ResultRow[]; lookup?: unknown; config?: { seeds?: number[] } });
  const { rows, tasks } = mergeRows(runs);
  const unk = rows.map((r) => `${r.embeddings} ${r.setting} ${(100 * mean(Object.values(r.tasks).flatMap((c) => c.perSeed.map((p) => (p as { unknownTokenShare: number }).unknownTokenShare)))).toFixed(1)}%`);
  const seeds = [...new Set(runs.flatMap((r) => r.config?.seeds ?? []))].sort();
  const table = `${formatResults(rows, tasks)}\n\n[UNK] share of tokens: ${unk.join(', ')}`;
  fs.writeFileSync(out, JSON.stringify({ kind: 'medrep.external-merged', runs: files.length, seeds, tasks, rows, lookup: runs.map((r) => r.lookup ?? null), table }, null, 1) + '\n');
  console.log(table);
}

if (require.main === module) main();
