// Labelling without a running labeler: a whole batch at its final watermark, or one person's
// records at a watermark.
import { CompiledTask } from './taskDefinition';
import { Evaluation, evaluate, PersonState } from './evaluate';
import { LabelInput, LabelRecord } from './records';
import { dayOf } from './time';
import { IncrementalLabeler, LabelerSummary } from './incremental';
import { Id } from '../../schemas/ids';

/** Batch labelling: every record, then the final watermark. */
export function labelRecords(
  tasks: CompiledTask[],
  inputs: Iterable<LabelInput>,
  finalWatermarkMs: number,
): { samples: LabelRecord[]; summary: LabelerSummary } {
  const labeler = new IncrementalLabeler(tasks);
  for (const r of inputs) labeler.add(r);
  labeler.advanceWatermark(finalWatermarkMs);
  return { samples: labeler.currentSamples(), summary: labeler.summary() };
}

/**
 * One person's samples at a watermark, without a labeler: the task logic applied to the
 * person's records (for a runner that already holds each person's records together).
 * Undetermined indexes are returned in `pending`, not as samples.
 */
export function labelPerson(
  tasks: CompiledTask[],
  records: LabelInput[],
  watermarkMs: number,
): { samples: LabelRecord[]; pending: string[]; evaluations: Evaluation[] } {
  const st: PersonState = { person: null, visits: new Map(), deathDay: null, conditions: [] };
  let personId: Id | null = null;
  for (const r of records) {
    if (personId === null) personId = r.personId;
    else if (r.personId !== personId) throw new Error(`labelPerson: records of persons ${personId} and ${r.personId} mixed`);
    if (r.table === 'person') st.person = { personId: r.personId, birthMs: r.birthMs, genderConceptId: r.genderConceptId };
    else if (r.table === 'visit') st.visits.set(r.visitId, { personId: r.personId, visitId: r.visitId, conceptId: r.conceptId, startMs: r.startMs, endMs: r.endMs });
    else if (r.table === 'death') {
      const d = dayOf(r.timeMs);
      if (st.deathDay === null || d < st.deathDay) st.deathDay = d;
    } else st.conditions.push({ personId: r.personId, conceptId: r.conceptId, timeMs: r.timeMs, visitId: r.visitId });
  }
  st.conditions.sort((a, b) => a.timeMs - b.timeMs || a.conceptId - b.conceptId);
  const samples: LabelRecord[] = [];
  const pending: string[] = [];
  const evaluations = tasks.map((t) => evaluate(t, st));
  evaluations.forEach((ev, k) => {
    const idx = ev.index;
    if (!idx || personId === null) return;
    if (idx.determinedAt > watermarkMs) {
      pending.push(tasks[k].name);
      return;
    }
    samples.push({
      task: tasks[k].name,
      person_id: personId,
      version: 1,
      kind: 'sample',
      retracted: false,
      index_visit_id: idx.visitId,
      prediction_time: idx.predictionTime,
      label: idx.label,
      labels: idx.labels,
      watermark: watermarkMs,
    });
  });
  return { samples, pending, evaluations };
}
