// Labels in the MEDS LabelSchema: OUT/meds/labels/<task>/part-00000.parquet; a multi-label
// task gets one label set per label, OUT/meds/labels/<task>/<label>/part-00000.parquet.
import * as path from 'node:path';
import { CompiledTask } from '../transforms/labels';
import { writeParquetAtomic } from './parquet';
import { medsLabelTable } from './sampleShards';
import { ShardEntry } from './shards';
import { Id } from '../schemas/ids';

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '');

export function writeMedsLabels(
  out: string,
  tasks: CompiledTask[],
  samples: Map<string, { multi: boolean; meds: { subjectId: Id; predictionMs: number; labels: number[] }[] }>,
): ShardEntry[] {
  const entries: ShardEntry[] = [];
  const write = (rel: string, rows: { subjectId: Id; predictionMs: number; value: boolean }[]) => {
    const f = writeParquetAtomic(path.join(out, rel), medsLabelTable(rows));
    entries.push({ kind: 'meds-labels', path: rel, rows: f.rows, bytes: f.bytes, sha256: f.sha256 });
  };
  for (const t of tasks) {
    const s = samples.get(t.name);
    if (!s) continue;
    if (!s.multi) {
      write(`meds/labels/${t.name}/part-00000.parquet`, s.meds.map((r) => ({ subjectId: r.subjectId, predictionMs: r.predictionMs, value: r.labels[0] === 1 })));
      continue;
    }
    t.sets.forEach((set, k) => {
      write(
        `meds/labels/${t.name}/${String(k).padStart(2, '0')}_${slug(set.name)}/part-00000.parquet`,
        s.meds.map((r) => ({ subjectId: r.subjectId, predictionMs: r.predictionMs, value: r.labels[k] === 1 })),
      );
    });
  }
  return entries;
}
