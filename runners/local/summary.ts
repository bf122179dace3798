// The end-of-run summary printed for a user: rows in, per table, rejects by reason, shards, time.
import { RunSummary } from './localRunner';
import { formatLabelSummary } from '../../sources/labelInputs';
import { LabelerSummary } from '../../transforms/labels';
import { emptyMappingCounts } from '../../transforms/normalize';

const n = (x: number) => x.toLocaleString('en-US');

export function formatSummary(s: RunSummary): string {
  // Nothing to emit: one line that says why, and where the manifest and the rejects are.
  if (s.nothingUsable !== null) {
    const aside = s.rejectsTotal > 0 ? ` (${n(s.rejectsTotal)} rows set aside in rejects/)` : '';
    return `medrep run: ${s.input.path} (${s.input.kind}) -> ${s.out}: nothing usable, ${s.nothingUsable}${aside}; manifest ${s.manifest}`;
  }
  const lines: string[] = [];
  lines.push(`medrep run: ${s.input.path} (${s.input.kind}) -> ${s.out}`);
  for (const l of s.inputLines) lines.push(`  ${l}`);
  lines.push(`  persons            ${n(s.persons)}`);
  lines.push(`  rows in            ${n(s.rowsInTotal)} (incl. person rows)`);
  lines.push('  table                   rows in   events out   standard     mapped   unmapped   not in vocabulary');
  for (const [table, rows] of Object.entries(s.rowsIn).sort()) {
    const m = s.mapping[table] ?? emptyMappingCounts();
    const evTable = table.replace(/_(occurrence|exposure)$/, '');
    const out = s.eventsOut[evTable] ?? 0;
    lines.push(
      `  ${table.padEnd(22)}${n(rows).padStart(10)}${n(out).padStart(13)}${n(m.standard).padStart(11)}${n(m.mapped).padStart(11)}${n(m.unmapped).padStart(11)}${n(m.not_in_vocabulary).padStart(20)}`,
    );
  }
  lines.push(`  measurements binned ${n(s.measurementsBinned)} (${n(s.decileGroups)} decile groups)`);
  lines.push(`  rejects            ${n(s.rejectsTotal)}`);
  for (const [reason, count] of Object.entries(s.rejects)) lines.push(`    ${n(count).padStart(8)}  ${reason}`);
  lines.push(`  shards             events ${s.shards.events}, pretrain ${s.shards.pretrain} (${n(s.pretrainSequences)} sequences, ${n(s.pretrainTokens)} tokens), samples ${s.shards.samples}, meds ${s.shards.meds}`);
  if (s.tasks.length || s.tasksSkipped.length) {
    lines.push('  tasks (labelled samples; censored = label not determinable by the end of the data)');
    for (const l of formatLabelSummary({ tasks: s.tasks } as LabelerSummary, s.tasksSkipped).split('\n')) lines.push(`    ${l}`);
  }
  lines.push(`  time               ${s.seconds.toFixed(1)} s, ${n(Math.round(s.rowsPerSecond))} rows/s`);
  lines.push(`  manifest           ${s.manifest}`);
  return lines.join('\n');
}
