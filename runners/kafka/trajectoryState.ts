// The trajectory stage's state: what it keeps per person (events, visit starts, birth, gender) in
// changelog-backed stores, the store names and keys, and its options.
import { Versions } from './streamValues';
import { CanonicalEvent } from '../../schemas/canonicalEvent';
import { ClinicalTable, tableSpec } from '../../schemas/omop';
import { tableCode } from '../../sources/eventSource';
import { CompiledTask, PersonSnapshot } from '../../transforms/labels';
import { Id } from '../../schemas/ids';
import { OutputMessage } from './stage';
import { AppendView } from './appendStore';



/** Per-person state: birth, gender (null until the person row came), visit starts, labeler records. */
export interface PersonState {
  b: number | null;
  g: Id;
  /** Source row of the person row kept (the first one: later duplicates are ignored, as locally). */
  pr: number;
  /** Events of any table seen (deaths and visits too): a person with none emits nothing. */
  n: number;
  vs: number[];
  /** Labeler records: index-concept visits [id, concept, start, end], death days' times, conditions [concept, time, visit]. */
  lv?: [Id, number, number, number | null][];
  ld?: number[];
  lc?: [number, number, Id | null][];
  /** The labeler's state after the last closed load (records applied, labels emitted). */
  lab?: PersonSnapshot;
  /** The load (1-based) that last brought events: the trajectory is emitted (again) when it closes. */
  ln?: number;
  /** Why this person's row was set aside (`<column>: <reason>`), when it was. */
  rj?: string;
  /** Continuous mode: events in chunks emitted (counted from the first ever appended: the events store may have dropped a prefix, its base), and chunks emitted. */
  ce?: number;
  ck?: number;
}

/**
 * Clinical rows of a person whose person row has not come (yet) wait in their own store, an event
 * a tuple: OMOP table, time, concept, source concept, decile, value, unit, visit, row id, source
 * row (pendingRow packs, pendingEvent unpacks). A person row releases them to the events topic;
 * when the load closes without one they are set aside, as the local runner sets aside the rows of
 * a person absent from (or rejected by) the person table.
 */
export const PENDING_STORE = 'pending';
export type PendingRow = [string, number, Id, Id, number, number | null, string | null, Id | null, Id, number];

export const pendingRow = (e: CanonicalEvent): PendingRow => [e.omopTable, e.timeMs, e.conceptId, e.sourceConceptId, e.decile, e.value, e.unit, e.visitId, e.rowId, e.row];

/** A waiting row of `person` as its canonical event, into the slot `out` (returned). */
export function pendingEvent(person: Id, row: PendingRow, out: CanonicalEvent): CanonicalEvent {
  const ev = tableSpec(row[0] as ClinicalTable).events!;
  out.personId = person;
  out.timeMs = row[1];
  out.table = ev.eventTable;
  out.omopTable = row[0];
  out.domain = ev.domain;
  out.conceptId = row[2];
  out.sourceConceptId = row[3];
  out.decile = row[4];
  out.value = row[5];
  out.unit = row[6];
  out.visitId = row[7];
  out.rowId = row[8];
  out.row = row[9];
  return out;
}

/**
 * A person's token events live in an append-only store (the changelog carries only new events),
 * the compact form of the state: EVENT_WIDTH numbers per event,
 *   [0] time (ms), [1] table code * 256 + (decile + 1) * 16 + domain, [2] row id, [3] source row, [4] concept.
 * packEvent writes one, unpackEvent reads one back; eventTimeMs reads the time alone (chunk
 * closing and retention read nothing else). Packing keeps a 10M-event state near 400 MB.
 */
export const EVENTS_STORE = 'events';
export const EVENT_WIDTH = 5;

/** What the events store keeps of an event (the table as its code: sources/eventSource.ts tableCode). */
export interface StoredEvent {
  timeMs: number;
  tableCode: number;
  decile: number;
  domain: number;
  rowId: Id;
  row: number;
  conceptId: Id;
}

export const emptyStoredEvent = (): StoredEvent => ({ timeMs: 0, tableCode: 0, decile: -1, domain: 0, rowId: 0, row: 0, conceptId: 0 });

/** A canonical event in the events store's form, into `out` (EVENT_WIDTH slots, returned). */
export function packEvent(e: CanonicalEvent, out: Id[]): Id[] {
  out[0] = e.timeMs;
  out[1] = tableCode(e.omopTable) * 256 + (e.decile + 1) * 16 + e.domain;
  out[2] = e.rowId;
  out[3] = e.row;
  out[4] = e.conceptId;
  return out;
}

/** The i-th event of a person's stored list, into the slot `out` (returned). */
export function unpackEvent(list: readonly Id[], i: number, out: StoredEvent): StoredEvent {
  const at = i * EVENT_WIDTH;
  const packed = list[at + 1] as number;
  out.timeMs = list[at] as number;
  out.tableCode = packed >> 8;
  out.decile = ((packed >> 4) & 15) - 1;
  out.domain = packed & 15;
  out.rowId = list[at + 2];
  out.row = list[at + 3] as number;
  out.conceptId = list[at + 4];
  return out;
}

/** The time of the i-th event of a person's stored list. */
export const eventTimeMs = (list: readonly Id[], i: number): number => list[i * EVENT_WIDTH] as number;

export const END_KEY = '__end_of_load__';
/** The partition's event-time watermark after its last closed load. */
export const WATERMARK_KEY = '__watermark__';

export interface EndState {
  /** End-of-load markers seen per input table, loads closed so far, the latest watermark. */
  counts: Record<string, number>;
  closed: number;
  watermark: number | null;
}

export interface TrajectoryOptions {
  maxEvents: number;
  /** Where the events of persons with a person row go (the sink's events shards). */
  eventsTopic: string;
  pretrainTopic: string;
  samplesTopic: string;
  /** Compiled tasks (concept sets resolved against the vocabulary); none: no samples. */
  tasks: CompiledTask[];
  /** How far behind the watermark a record of a later load may be and still change a label (ms). */
  allowedLatenessMs?: number;
  versions: Versions;
  /** Rows set aside when a load closed because their person has no person row. */
  onSetAside?: (partition: number, persons: number, rows: number) => void;
  /** Continuous mode (`--close-on watermark`): outputs as the watermark determines them; absent: at end-of-load markers. */
  continuous?: ContinuousTrajectory;
}

/** Continuous mode of the trajectory stage (continuousTrajectory.ts), one call per transaction. */
export interface ContinuousTrajectory {
  begin(store: PersonStore, events: AppendView, partition: number): ContinuousCall;
}

export interface ContinuousCall {
  /** Events of a source table with these event times came. */
  observe(table: string, times: readonly number[]): void;
  /** A load closed by end-of-load markers, with the data end they declared. */
  loadClosed(dataEnd: number | null): void;
  /**
   * Moves the watermark and returns what it determines: closed chunks, samples, corrections; and,
   * when there is output (`forwarded`: events already in this transaction's), the end markers
   * that close the sink's shards.
   */
  finish(forwarded: boolean): OutputMessage[];
  /** The partition's watermark after finish(). */
  readonly watermark: number | null;
}

export type PersonStore = { get(k: string): PersonState | undefined; set(k: string, v: PersonState): void; keys(): string[] };
