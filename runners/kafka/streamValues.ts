// The values that travel between the stages of `medrep stream` (DESIGN.md section 6), in memory:
// events and persons batches, pretraining and samples batches, end-of-load markers, and the one
// way they become topic messages (the stream codec, streamCodec.ts, with a schema header).
//
//   omop.<table> --canonicalize--> medrep.canonical --trajectory (stores: person, pending)--> medrep.events, medrep.pretrain, medrep.samples
//                                                                                                  \___________ sink ___________/
//                                                                                                   OUT/events, OUT/pretrain, OUT/samples shards
//
// canonicalize (canonicalizeStage.ts): JSON rows -> normalized, unit-named, decile-binned events and
//   persons, as columnar batches; unreadable rows -> dead-letter topic.
// trajectory (trajectoryStage.ts, loadClose.ts, continuousTrajectory.ts): per-person state in
//   changelog-backed stores; pretraining chunks and labelled samples when a load closes or, in
//   continuous mode, when the event-time watermark decides.
// sink (shardSink.ts): batches -> Parquet shards, offsets committed only through what is on disk.
import { EVENT_SPECS } from '../../sources/eventSource';
import { CONTROL_HEADER, END_OF_LOAD, EndOfLoadValue } from './omopLoad';
import { TaskSummary } from '../../transforms/labels';
import { SampleRow, SequenceRow } from './sequenceRows';
import { Id } from '../../schemas/ids';
import { CanonicalEventColumns, emptyEventColumns, eventCount } from '../../schemas/eventColumns';
import { decodeStreamValue, encodeStreamValue } from './streamCodec';
import { StageMessage, OutputMessage } from './stage';

export { SampleLabel, SampleRow, SequenceRow, sampleRow, sequenceRow } from './sequenceRows';


/** Versions of the artifacts a record was made with (carried in every batch). */
export interface Versions {
  deciles: string;
  vocabulary: string;
}

/** A batch of one OMOP table's canonical events: the columns of schemas/eventColumns.ts. */
export interface EventsBatchValue extends CanonicalEventColumns {
  k: 'events';
  table: string;
  versions: Versions;
}

/** An empty events batch of `table` (its events go in with pushEvent, out with eventAt: schemas/eventColumns.ts). */
export const eventsBatch = (table: string, versions: Versions): EventsBatchValue => ({ k: 'events', table, versions, ...emptyEventColumns() });

export interface PersonsBatchValue {
  k: 'persons';
  p: Id[]; b: number[]; g: Id[]; n: number[];
  /** Persons whose row was set aside (person_id readable) and why: `<column>: <reason>`. */
  rp?: Id[]; rw?: string[];
}

export interface EndValue {
  k: 'end';
  table: string;
  /** Event-time watermark of the load (end-of-load markers). */
  watermark?: number | null;
  /** Samples topic: the labeler's Table-1 counts of the partition at the watermark. */
  tasks?: TaskSummary[];
  late?: LateCounts;
}

export interface SamplesBatchValue {
  k: 'samples';
  versions: Versions;
  rows: SampleRow[];
}

export interface PretrainBatchValue {
  k: 'pretrain';
  versions: Versions;
  rows: SequenceRow[];
}

export type StreamValue = EventsBatchValue | PersonsBatchValue | EndValue | PretrainBatchValue | SamplesBatchValue;

export const PERSON_STORE = 'person';
/** Tables whose end-of-load markers close a load in a partition. */
export const LOAD_TABLES = ['person', ...EVENT_SPECS.map((s) => s.table)];
/** Rows per output message (a batch stays well under the topics' message size). */
export const ROWS_PER_MESSAGE = 2000;
export const TOKENS_PER_MESSAGE = 100_000;

export function isEndOfLoad(m: StageMessage): boolean {
  const h = m.headers[CONTROL_HEADER];
  return h !== undefined && String(h) === END_OF_LOAD;
}

export function endOf(m: StageMessage, table: string): EndValue {
  let watermark: number | null = null;
  try {
    const v = JSON.parse(m.value?.toString() ?? 'null') as EndOfLoadValue | null;
    if (v && typeof v.watermark === 'number') watermark = v.watermark;
  } catch {
    /* a marker without a watermark */
  }
  return { k: 'end', table, watermark };
}

/** A stream topic's value, by the schema its header names (streamCodec.ts; an unknown one throws: a dead letter). */
export function parseValue(m: StageMessage): StreamValue {
  return decodeStreamValue(m);
}

/** Rows a stream value holds (batches; markers none), for the progress lines. */
export function valueRows(v: StreamValue): number {
  if (v.k === 'events') return eventCount(v);
  if (v.k === 'persons') return v.p.length + (v.rp?.length ?? 0);
  return v.k === 'pretrain' || v.k === 'samples' ? v.rows.length : 0;
}

/** A stream topic message: the value in its schema's codec (Arrow record batch or JSON marker) with the schema header. */
export const streamMessage = (topic: string, partition: number, value: StreamValue): OutputMessage => ({ topic, partition, key: null, ...encodeStreamValue(value), rows: valueRows(value) });

/** Records of a later load: applied to labels, dropped as too late, corrections emitted. */
export interface LateCounts {
  applied: number;
  dropped: { visit: number; death: number; condition: number };
  corrections: number;
}
