// The canonical event in memory (DESIGN.md section 4): the one shape an event has from
// canonicalization to a sink's column builder, in both runners. The shard's column layout is
// EVENT_FIELDS (records.ts); the Kafka runner carries the same fields as the columns of an events
// batch (one array per field) between its stages.
import { EventMapping } from './omop';
import { Id } from './ids';

/** The fields of one OMOP clinical row that make its event, as either runner reads them. */
export interface OmopEventRow {
  personId: Id;
  /** coalesce(datetime, date) in epoch ms (UTC, date-only at 00:00). */
  timeMs: number;
  conceptId: Id;
  sourceConceptId: Id;
  value: number | null;
  unitConceptId: Id;
  unitSource: string | null;
  visitId: Id | null;
  rowId: Id;
  /** 1-based row in the source file: row ids repeat in real data, the origin stays unique. */
  row: number;
}

/** One canonical event: normalized concept, unit name, decile, and where it came from. */
export interface CanonicalEvent {
  personId: Id;
  timeMs: number;
  /** The events' `table` column (condition, drug, measurement, procedure, visit, death). */
  table: EventMapping['eventTable'];
  /** The OMOP table of the source row (the origin's prefix). */
  omopTable: string;
  domain: number;
  /** Standard concept after mapping (the row's own id when the vocabulary lacks it). */
  conceptId: Id;
  sourceConceptId: Id;
  /** 0-9, or -1 for none. */
  decile: number;
  value: number | null;
  unit: string | null;
  visitId: Id | null;
  rowId: Id;
  row: number;
}

/** A reusable slot (the hot loops fill one record per row instead of allocating). */
export function emptyCanonicalEvent(): CanonicalEvent {
  return { personId: 0, timeMs: 0, table: 'condition', omopTable: '', domain: 0, conceptId: 0, sourceConceptId: 0, decile: -1, value: null, unit: null, visitId: null, rowId: 0, row: 0 };
}

export function emptyOmopEventRow(): OmopEventRow {
  return { personId: 0, timeMs: 0, conceptId: 0, sourceConceptId: 0, value: null, unitConceptId: 0, unitSource: null, visitId: null, rowId: 0, row: 0 };
}
