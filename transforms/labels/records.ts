// What the labelers read (one person's records) and what they emit (versioned label records).
// Times are epoch milliseconds (UTC); person and visit ids are exact 64-bit Ids (schemas/ids.ts),
// concept ids the vocabulary's numbers.
import { Id } from '../../schemas/ids';

export interface PersonRecord {
  personId: Id;
  /** Birth at 00:00 (birth_datetime, else year/month/day of birth with month and day defaulting to 1). */
  birthMs: number;
  genderConceptId: Id;
}

export interface VisitRecord {
  personId: Id;
  visitId: Id;
  conceptId: number;
  /** visit_start_date at 00:00. */
  startMs: number;
  /** visit_end_date at 00:00; null when missing (such a stay is excluded, rule no_end_date). */
  endMs: number | null;
}

export interface DeathRecord {
  personId: Id;
  timeMs: number;
}

export interface ConditionRecord {
  personId: Id;
  conceptId: number;
  /** condition_start_datetime, else condition_start_date at 00:00. */
  timeMs: number;
  visitId: Id | null;
}

export type LabelInput =
  | ({ table: 'person' } & PersonRecord)
  | ({ table: 'visit' } & VisitRecord)
  | ({ table: 'death' } & DeathRecord)
  | ({ table: 'condition' } & ConditionRecord);

/**
 * Event time of a record for the watermark: a visit row is complete at discharge, so its end
 * (its start when it has none); a death or condition its own time. Person rows carry no event
 * time and are never late.
 */
export function eventTime(input: LabelInput): number | null {
  switch (input.table) {
    case 'person':
      return null;
    case 'visit':
      return input.endMs ?? input.startMs;
    case 'death':
    case 'condition':
      return input.timeMs;
  }
}

/**
 * One emitted label. Keyed by (task, person_id): every task has at most one sample per person.
 * version 1 is the sample; a later version is a correction that replaces it (retracted = the
 * person no longer has a sample for the task).
 */
export interface LabelRecord {
  task: string;
  person_id: Id;
  version: number;
  kind: 'sample' | 'correction';
  retracted: boolean;
  index_visit_id: Id | null;
  prediction_time: number | null;
  /** Binary tasks: 0 or 1. */
  label: 0 | 1 | null;
  /** Multi-label tasks: one 0/1 per concept set, in the task's order. */
  labels: number[] | null;
  /** The labeler's watermark when this version was emitted. */
  watermark: number;
}
