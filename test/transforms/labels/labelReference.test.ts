// The labelers against the reference SQL (test/reference/*.sql) on the shared OMOP datasets and
// on a synthetic one: the batch labeler, and the incremental labeler fed a shuffled stream, must
// give exactly the SQL's (person, prediction time, label) rows and its Table-1 counts.
import { strict as assert } from 'node:assert';
import { Id } from '../../../schemas/ids';
import * as path from 'node:path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { labelBatch, readLabelInputs } from '../../../sources/labelInputs';
import { shippedTasks } from '../../../sources/taskFiles';
import { IncrementalLabeler, LabelInput, LabelRecord, labelPerson } from '../../../transforms/labels';
import { openDataset, RefRow, runReference, SHARED, SHARED_TASKS } from '../../helpers/labelData';
import { feedStream, runSteps, streamSteps } from '../../helpers/labelStream';
import { createSyntheticOmop } from '../../helpers/syntheticOmop';
import { readFileSync } from 'node:fs';

const DAY = 86_400_000;
const tasks = shippedTasks();
const seedOf = (name: string) => tasks.find((t) => t.def.name === name)?.def.seed ?? 0;
const seeds = {
  readmission: seedOf('readmission'),
  events: Object.fromEntries(['uti', 'sepsis', 'pneumonia', 'mi', 'fracture'].map((n) => [n, seedOf(n)])),
};

const rowKey = (task: string, person: Id, time: number | null, label: number | null, labels: ArrayLike<number> | null, visit: Id | null) =>
  `${task}|${person}|${time}|${label}|${labels ? Array.from(labels).join('') : '-'}|${visit}`;
const sampleKeys = (xs: LabelRecord[]) =>
  xs.map((s) => rowKey(s.task, s.person_id, s.prediction_time, s.label, s.labels, s.index_visit_id)).sort();
const refKeys = (xs: RefRow[]) =>
  xs.filter((r) => r.determined).map((r) => rowKey(r.task, r.person_id, r.prediction_time, r.label, r.labels, r.visit_id)).sort();

/** The latest version of every (task, person) from a stream of label records. */
function finalState(records: LabelRecord[]): LabelRecord[] {
  const last = new Map<string, LabelRecord>();
  for (const r of records) {
    const k = `${r.task}|${r.person_id}`;
    const prev = last.get(k);
    assert.equal(r.version, (prev?.version ?? 0) + 1, `versions of ${k} go up one at a time`);
    last.set(k, r);
  }
  return Array.from(last.values()).filter((r) => !r.retracted);
}

/** `expectLate`: the data are dense enough in time for the watermark-ahead stream to have late records. */
async function checkDataset(conn: DuckDBConnection, minPositives: number, expectLate: boolean): Promise<void> {
  const ref = await runReference(conn, seeds);
  const batch = await labelBatch(conn, tasks);

  // Same rows as the SQL.
  assert.deepEqual(sampleKeys(batch.samples), refKeys(ref.rows));
  // Same Table-1 counts as the SQL.
  for (const s of batch.summary.tasks) {
    const rows = ref.rows.filter((r) => r.task === s.task);
    const det = rows.filter((r) => r.determined);
    assert.equal(s.cohort, rows.length, `${s.task} cohort`);
    assert.equal(s.censored, rows.length - det.length, `${s.task} censored`);
    const positive = (r: RefRow) => (r.labels ? Array.from(r.labels).some((v) => v === 1) : r.label === 1);
    assert.equal(s.positives, det.filter(positive).length, `${s.task} positives`);
    const excluded = Object.fromEntries(ref.excluded.filter((e) => e.task === s.task).map((e) => [e.rule, e.n]));
    assert.deepEqual(s.excluded, excluded, `${s.task} excluded by rule`);
  }
  const positives = batch.summary.tasks.reduce((n, s) => n + s.positives, 0);
  assert.ok(positives >= minPositives, `expected at least ${minPositives} positives, got ${positives}`);
  // Batch ends at the last millisecond of the data's last day.
  assert.equal(new Date(batch.finalWatermark + 1).toISOString().slice(0, 10), addDays(ref.lastDay as string, 1));

  // The incremental labeler, fed a shuffled stream that respects the watermark, ends in the same rows.
  const { inputs } = await readLabelInputs(conn, [9201, 262]);
  const labeler = new IncrementalLabeler(batch.tasks, { allowedLatenessMs: 0 });
  const emitted = feedStream(labeler, inputs, { seed: 7, jitterMs: 20 * DAY, watermarkLeadMs: 0, finalWatermark: batch.finalWatermark });
  assert.deepEqual(sampleKeys(finalState(emitted)), refKeys(ref.rows));
  assert.deepEqual(labeler.summary().tasks, batch.summary.tasks);
  assert.equal(labeler.summary().lateApplied, 0);

  // With the watermark running ahead, some records arrive late but within the allowed lateness:
  // they are applied (with corrections where they change a label) and the end state is the same.
  const late = new IncrementalLabeler(batch.tasks, { allowedLatenessMs: 30 * DAY });
  const emittedLate = feedStream(late, inputs, { seed: 11, jitterMs: 20 * DAY, watermarkLeadMs: 15 * DAY, finalWatermark: batch.finalWatermark });
  assert.deepEqual(sampleKeys(finalState(emittedLate)), refKeys(ref.rows));
  if (expectLate) assert.ok(late.summary().lateApplied > 0, 'the stream had late records');
  assert.deepEqual(late.summary().lateDropped, { visit: 0, death: 0, condition: 0 });
}

function addDays(isoDay: string, n: number): string {
  return new Date(Date.parse(isoDay) + n * DAY).toISOString().slice(0, 10);
}

describe('labels: batch and incremental labelers against the reference SQL', function () {
  this.timeout(240_000);

  it('GiBleed (CSV)', async () => {
    await checkDataset(await openDataset(path.join(SHARED, 'omop', 'gibleed')), 0, true);
  });

  it('Synthea27Nj (Parquet)', async () => {
    await checkDataset(await openDataset(path.join(SHARED, 'omop', 'synthea27nj-parquet')), 0, false); // 13 stays over 50 years: too sparse for late arrivals
  });

  it('synthetic data that hits every rule', async () => {
    const conn = await (await DuckDBInstance.create(':memory:')).connect();
    const events = JSON.parse(readFileSync(path.join(SHARED_TASKS, 'in_hospital_event_concepts.json'), 'utf8')) as Record<string, number[]>;
    await createSyntheticOmop(conn, { persons: 600, seed: 42, eventConcepts: events });
    await checkDataset(conn, 100, true);
    // Every task has positives and negatives, and every exclusion rule fired somewhere.
    const batch = await labelBatch(conn, tasks);
    for (const s of batch.summary.tasks) {
      assert.ok(s.positives > 0 && s.negatives > 0, `${s.task}: ${s.positives} positives, ${s.negatives} negatives`);
    }
    const rules = new Set(batch.summary.tasks.flatMap((s) => Object.keys(s.excluded)));
    for (const r of ['no_person', 'age_out_of_range', 'no_end_date', 'stay_shorter_than_min', 'starts_on_or_after_death', 'died_during_stay',
      'event_on_admission_day', 'too_few_record_ranks', 'code_in_first_record_ranks'])
      assert.ok(rules.has(r), `rule ${r} fired`);
    const { inputs: inputs0 } = await readLabelInputs(conn, [9201, 262]);
    const ra = batch.summary.tasks.find((s) => s.task === 'readmission');
    assert.ok(ra && ra.censored > 0, 'some readmission windows run past the end of the data');

    // Labelling person by person (as a runner holding each person's records would) gives the batch's samples.
    const byPerson = new Map<Id, LabelInput[]>();
    for (const r of inputs0) byPerson.set(r.personId, [...(byPerson.get(r.personId) ?? []), r]);
    const perPerson = Array.from(byPerson.values()).flatMap((rs) => labelPerson(batch.tasks, rs, batch.finalWatermark).samples);
    assert.deepEqual(sampleKeys(perPerson), sampleKeys(batch.samples));

    // A restart mid-stream from a JSON snapshot emits exactly what the uninterrupted run emits.
    const inputs = inputs0;
    const steps = streamSteps(inputs, { seed: 3, jitterMs: 20 * DAY, watermarkLeadMs: 10 * DAY, finalWatermark: batch.finalWatermark });
    const opts = { allowedLatenessMs: 30 * DAY };
    const wholeLabeler = new IncrementalLabeler(batch.tasks, opts);
    const whole = runSteps(wholeLabeler, steps);
    let cut = Math.floor(steps.length / 2);
    while (!('watermark' in steps[cut - 1])) cut++; // snapshot right after a watermark advance
    const first = new IncrementalLabeler(batch.tasks, opts);
    const before = runSteps(first, steps.slice(0, cut));
    const restored = IncrementalLabeler.restore(batch.tasks, JSON.parse(JSON.stringify(first.snapshot())), opts);
    const after = runSteps(restored, steps.slice(cut));
    assert.deepEqual([...before, ...after], whole);
    assert.ok(whole.some((r) => r.kind === 'correction'), 'the late stream made corrections');
    assert.deepEqual(restored.summary(), wholeLabeler.summary());
  });
});
