// The canonical event in columnar form (one array per field): how a batch of events travels
// between the Kafka runner's stages. The per-row fields keep CanonicalEvent's names; the fields
// every event of a batch shares (table, omopTable, domain) come from the batch's OMOP table. The
// labeler's extra columns ride along from canonicalize to the trajectory stage only.
import { CanonicalEvent } from './canonicalEvent';
import { ClinicalTable, tableSpec } from './omop';
import { Id } from './ids';

/** CanonicalEvent's fields that vary by row (the rest follow from the batch's table). */
export type EventRowField = Exclude<keyof CanonicalEvent, 'table' | 'omopTable' | 'domain'>;

/** What the labeler reads of a row beyond its event. */
export interface LabelerFields {
  /** The row's concept id as the source gave it (before mapping to a standard concept). */
  givenConceptId: Id;
  /** Visit start or death date (00:00, ms); null for other tables. */
  startDateMs: number | null;
  /** Visit end date (00:00, ms); null for other tables. */
  endDateMs: number | null;
}

const LABELER_COLUMNS: ReadonlySet<string> = new Set<keyof LabelerFields>(['givenConceptId', 'startDateMs', 'endDateMs']);

/** Whether a column is one of the labeler's (empty in batches that carry none). */
export const isLabelerColumn = (name: keyof CanonicalEventColumns): boolean => LABELER_COLUMNS.has(name);

/**
 * A batch's events, a column per field. The labeler's columns are either as long as the others
 * or empty (batches the trajectory stage releases carry none: the sink reads none).
 */
export type CanonicalEventColumns = { [K in EventRowField]: CanonicalEvent[K][] } & { [K in keyof LabelerFields]: LabelerFields[K][] };

export function emptyEventColumns(): CanonicalEventColumns {
  return {
    personId: [], timeMs: [], conceptId: [], sourceConceptId: [], decile: [], value: [], unit: [], visitId: [], rowId: [], row: [],
    givenConceptId: [], startDateMs: [], endDateMs: [],
  };
}

/** Appends an event (of the batch's table) and, when given, its labeler fields. */
export function pushEvent(cols: CanonicalEventColumns, e: CanonicalEvent, labeler?: LabelerFields): void {
  cols.personId.push(e.personId);
  cols.timeMs.push(e.timeMs);
  cols.conceptId.push(e.conceptId);
  cols.sourceConceptId.push(e.sourceConceptId);
  cols.decile.push(e.decile);
  cols.value.push(e.value);
  cols.unit.push(e.unit);
  cols.visitId.push(e.visitId);
  cols.rowId.push(e.rowId);
  cols.row.push(e.row);
  if (labeler === undefined) return;
  cols.givenConceptId.push(labeler.givenConceptId);
  cols.startDateMs.push(labeler.startDateMs);
  cols.endDateMs.push(labeler.endDateMs);
}

/** The i-th event of a batch of the OMOP table `omopTable`, into the slot `out` (returned). */
export function eventAt(cols: CanonicalEventColumns, omopTable: string, i: number, out: CanonicalEvent): CanonicalEvent {
  const ev = tableSpec(omopTable as ClinicalTable).events!;
  out.personId = cols.personId[i];
  out.timeMs = cols.timeMs[i];
  out.table = ev.eventTable;
  out.omopTable = omopTable;
  out.domain = ev.domain;
  out.conceptId = cols.conceptId[i];
  out.sourceConceptId = cols.sourceConceptId[i];
  out.decile = cols.decile[i];
  out.value = cols.value[i];
  out.unit = cols.unit[i];
  out.visitId = cols.visitId[i];
  out.rowId = cols.rowId[i];
  out.row = cols.row[i];
  return out;
}

/** Events in a batch. */
export const eventCount = (cols: CanonicalEventColumns): number => cols.personId.length;

/** Whether a batch carries the labeler's columns. */
export const hasLabelerFields = (cols: CanonicalEventColumns): boolean => cols.givenConceptId.length === cols.personId.length;
