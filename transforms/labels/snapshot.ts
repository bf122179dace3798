// The incremental labeler's state as plain JSON: one person's (kept in a state store keyed by
// person_id) and the whole labeler's, and a person's task state rebuilt from its snapshot.
import { PersonState } from './evaluate';
import { LabelRecord } from './records';
import type { LabelerSummary } from './incremental';
import { Id } from '../../schemas/ids';

/** A person's state as plain JSON (for a state store keyed by person_id). */
export interface PersonSnapshot {
  personId: Id;
  person: PersonState['person'];
  visits: PersonState['visits'] extends Map<Id, infer V> ? V[] : never;
  deathDay: number | null;
  conditions: PersonState['conditions'];
  /** The last record emitted for each task, by task name. */
  emitted: Record<string, LabelRecord>;
}

/** The whole labeler as plain JSON: restore it with IncrementalLabeler.restore. */
export interface LabelerSnapshot {
  watermark: number | null;
  lateApplied: number;
  corrections: number;
  lateDropped: LabelerSummary['lateDropped'];
  persons: PersonSnapshot[];
}

/** The task logic's view of a person's snapshot (conditions sorted by time, as evaluate reads them). */
export function personStateOf(snap: PersonSnapshot): PersonState {
  return {
    person: snap.person,
    visits: new Map(snap.visits.map((v) => [v.visitId, v])),
    deathDay: snap.deathDay,
    conditions: snap.conditions.slice().sort((a, b) => a.timeMs - b.timeMs || a.conceptId - b.conceptId),
  };
}
