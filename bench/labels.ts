// Benchmark of the outcome labelers on synthetic OMOP data: the batch labeler and the
// incremental labeler (shuffled stream with watermarks) against the reference SQL of
// test/reference/ as the baseline, measured in the same run. Prints a table and writes
// bench/results/labels.json. Usage: node dist/bench/labels.js [persons=20000]
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { labelBatch, readLabelInputs } from '../sources/labelInputs';
import { shippedTasks } from '../sources/taskFiles';
import { IncrementalLabeler } from '../transforms/labels';
import { runReference, SHARED_TASKS } from '../test/helpers/labelData';
import { feedStream } from '../test/helpers/labelStream';
import { createSyntheticOmop } from '../test/helpers/syntheticOmop';
import { writeBenchResult } from './resultFile';

async function main(): Promise<void> {
  const persons = Number(process.argv[2] ?? 20000);
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  const events = JSON.parse(readFileSync(path.join(SHARED_TASKS, 'in_hospital_event_concepts.json'), 'utf8')) as Record<string, number[]>;
  await createSyntheticOmop(conn, { persons, seed: 42, eventConcepts: events });
  const tasks = shippedTasks();
  const seed = (n: string) => tasks.find((t) => t.def.name === n)?.def.seed ?? 0;

  const time = async <T>(f: () => Promise<T> | T): Promise<[T, number]> => {
    const t0 = process.hrtime.bigint();
    const r = await f();
    return [r, Number(process.hrtime.bigint() - t0) / 1e9];
  };

  const [ref, refS] = await time(() =>
    runReference(conn, { readmission: seed('readmission'), events: Object.fromEntries(['uti', 'sepsis', 'pneumonia', 'mi', 'fracture'].map((n) => [n, seed(n)])) }),
  );
  const [batch, batchS] = await time(() => labelBatch(conn, tasks));
  const [{ inputs }, readS] = await time(() => readLabelInputs(conn, [9201, 262]));
  const [, labelOnlyS] = await time(() => {
    const lab = new IncrementalLabeler(batch.tasks);
    for (const r of inputs) lab.add(r);
    return lab.advanceWatermark(batch.finalWatermark);
  });
  const [, streamS] = await time(() =>
    feedStream(new IncrementalLabeler(batch.tasks, { allowedLatenessMs: 30 * 86_400_000 }), inputs, {
      seed: 1,
      jitterMs: 20 * 86_400_000,
      watermarkLeadMs: 10 * 86_400_000,
      finalWatermark: batch.finalWatermark,
    }),
  );
  const same = ref.rows.filter((r) => r.determined).length === batch.samples.length;
  const records = inputs.length;
  const rows = [
    { stage: 'reference SQL (baseline)', seconds: refS },
    { stage: 'labelBatch (read + label)', seconds: batchS },
    { stage: 'read inputs', seconds: readS },
    { stage: 'label only (batch)', seconds: labelOnlyS },
    { stage: 'label only (stream, 9 tasks)', seconds: streamS },
  ].map((r) => ({ ...r, recordsPerSecond: Math.round(records / r.seconds), vsBaseline: +(refS / r.seconds).toFixed(2) }));
  const peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  console.log(`labels benchmark: ${persons} synthetic persons, ${records} label input records, ${batch.samples.length} samples (SQL agrees: ${same})`);
  console.log('stage                          seconds   records/s   speed vs SQL');
  for (const r of rows)
    console.log(`${r.stage.padEnd(30)} ${r.seconds.toFixed(3).padStart(7)} ${String(r.recordsPerSecond).padStart(11)} ${String(r.vsBaseline).padStart(13)}x`);
  console.log(`peak RSS ${peakRssMiB} MiB`);
  writeBenchResult('labels.json', { benchmark: 'labels', persons, records, samples: batch.samples.length, sqlAgrees: same, rows, peakRssMiB });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
