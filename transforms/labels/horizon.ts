// How far back a person's history must reach for the labels the labeler may still emit: the
// retention horizon of continuous mode. Once the watermark is at w, a record dated at or before
// w - lateness is no longer applied (incremental.ts), so
//   - a stay whose discharge day ends at or before w - lateness is settled: no record can change
//     its facts (conditions in it, its end, a death in it);
//   - the samples and corrections still to come are those of the current index while its label is
//     undetermined or a record could still change it (determinedAt after w - lateness), of an
//     unsettled stay, of the stay the index falls back to if every unsettled stay is excluded, and
//     of stays not seen yet, which start after w - lateness (a stay sent late with an earlier
//     start gets a window of the events kept).
// Every prediction rule gives a time on or after the day before the stay's admission day.
import { CompiledTask } from './taskDefinition';
import { evaluate, PersonState } from './evaluate';
import { PersonSnapshot, personStateOf } from './snapshot';
import { DAY_MS, dayEnd, dayOf, dayStart } from './time';
import { VisitRecord } from './records';

/** The earliest prediction time a stay admitted at `startMs` can have. */
const earliestPredictionOf = (startMs: number) => dayStart(dayOf(startMs)) - DAY_MS;

/** A stay that a record dated after `settledBefore` can still change. */
const unsettled = (v: VisitRecord, settledBefore: number) => v.endMs === null || dayEnd(dayOf(v.endMs)) > settledBefore;

/**
 * The earliest prediction time of any sample or correction the labeler may still emit for the
 * person (`snap`: its state; undefined: in no cohort yet), at watermark `watermark`. +Infinity
 * when there are no tasks; -Infinity before the first watermark.
 */
export function retentionHorizon(tasks: CompiledTask[], snap: PersonSnapshot | undefined, watermark: number | null, latenessMs: number): number {
  if (tasks.length === 0) return Number.POSITIVE_INFINITY;
  if (watermark === null || !Number.isFinite(watermark)) return Number.NEGATIVE_INFINITY;
  const settledBefore = watermark - latenessMs;
  let horizon = earliestPredictionOf(settledBefore);
  if (!snap) return horizon;
  const st = personStateOf(snap);
  for (const task of tasks) {
    const open = snap.visits.filter((v) => task.indexConcepts.has(v.conceptId) && unsettled(v, settledBefore));
    for (const v of open) horizon = Math.min(horizon, earliestPredictionOf(v.startMs));
    const idx = evaluate(task, st).index;
    if (idx && idx.determinedAt > settledBefore) horizon = Math.min(horizon, idx.predictionTime);
    if (open.length > 0) {
      const settled: PersonState = { ...st, visits: new Map([...st.visits].filter(([, v]) => !open.includes(v))) };
      const fallback = evaluate(task, settled).index;
      if (fallback) horizon = Math.min(horizon, fallback.predictionTime);
    }
  }
  return horizon;
}

/**
 * The person's snapshot without the conditions no label can read any more: those dated before
 * the earliest admission a stay not seen yet can have and in no stay of the person (evaluate
 * reads conditions only from admission day to discharge day). The same object when none is dropped.
 */
export function pruneConditions(snap: PersonSnapshot, watermark: number | null, latenessMs: number): PersonSnapshot {
  if (watermark === null || !Number.isFinite(watermark)) return snap;
  const before = dayStart(dayOf(watermark - latenessMs));
  const stays = snap.visits.map((v) => [dayStart(dayOf(v.startMs)), v.endMs === null ? Number.POSITIVE_INFINITY : dayEnd(dayOf(v.endMs))]);
  const kept = snap.conditions.filter((c) => c.timeMs >= before || stays.some(([from, to]) => c.timeMs >= from && c.timeMs <= to));
  return kept.length === snap.conditions.length ? snap : { ...snap, conditions: kept };
}
