// The stages of `medrep stream` (DESIGN.md section 6), each a StageWorker transform over one input
// partition; transforms/ does the MedRep logic, exactly as in the local runner:
//
//   omop.<table> --canonicalize--> medrep.canonical --trajectory (stores: person, pending)--> medrep.events, medrep.pretrain, medrep.samples
//                                                                                                  \___________ sink ___________/
//                                                                                                   OUT/events, OUT/pretrain, OUT/samples shards
//
// canonicalize: JSON rows -> normalized, unit-named, decile-binned events (EventCanonicalizer) and
//   persons, as columnar batches; unreadable rows -> dead-letter topic (a concept the vocabulary
//   lacks is kept as its own id, as by the local runner).
// trajectory: per-person state (events, visit starts, birth, gender) in a changelog-backed store;
//   the events of a person with a person row go on to medrep.events; those that come before it
//   wait (pending store) and are set aside as rejects if the load closes without one. When the
//   load is closed (end-of-load markers of every input table seen in the partition) each person's
//   trajectory is cut into pretraining chunks (buildSequence, chunkRanges). In continuous mode
//   (`--close-on watermark`) the event-time watermark decides instead (continuousTrajectory.ts).
// sink: batches -> Parquet shards named <topic>-p<partition>-<first>-<last offset>, written
//   atomically; offsets are committed only through what is on disk (ctx.commitThrough).
import { ClinicalTable, tableSpec } from '../../schemas/omop';
import { DecileBinner } from '../../transforms/deciles';
import { CanonicalSlots, EventCanonicalizer, RawEventFields, unitNamer } from '../../transforms/events';
import { ConceptNormalizer } from '../../transforms/normalize';
import { splitOf } from '../../transforms/splits';
import { TOKEN_DOMAINS } from '../../transforms/tokens';
import { PersonEvents, PersonInfo, buildSequence, chunkRanges, segmentsAndRanks } from '../../transforms/trajectory';
import { EVENT_SPECS, tableCode } from '../../sources/eventSource';
import { CONTROL_HEADER, END_OF_LOAD, EndOfLoadValue } from './omopLoad';
import { CompiledTask, IncrementalLabeler, LabelRecord, PersonSnapshot, TaskSummary } from '../../transforms/labels';
import { windowBefore } from '../../transforms/trajectory';
import { birthMs, idOr, intOr, rowEventFields, timeMs } from './rowFields';
import { Id, compareIds, parseId } from '../../schemas/ids';
import { parseJsonExact, stringifyJsonExact } from '../../schemas/exactJson';
import { decodeStreamValue, encodeStreamValue } from './streamCodec';
import { RowProblem, rowValidator } from '../../schemas/rowSchemas';
import { StageContext, StageMessage, OutputMessage, StageTransform } from './stage';
import { DeadLetterKind } from './deadLetter';
import { AppendView } from './appendStore';
import { StreamArtifacts } from './streamArtifacts';
import { TopicNames } from './topics';

/** Versions of the artifacts a record was made with (carried in every batch). */
export interface Versions {
  deciles: string;
  vocabulary: string;
}

export interface EventsBatchValue {
  k: 'events';
  table: string;
  versions: Versions;
  /** person_id, time (ms), concept, source concept, decile (-1 none), value, unit, visit, row id, source row. */
  p: Id[]; t: number[]; c: Id[]; s: Id[]; d: number[];
  x: (number | null)[]; u: (string | null)[]; v: (Id | null)[]; r: Id[]; n: number[];
  /** For the labeler: the concept id as given, and visit start/end or death dates (00:00, ms). */
  rc: Id[]; sd: (number | null)[]; ed: (number | null)[];
}

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

export interface SampleRow extends SequenceRow {
  task: string;
  pt: number;
  iv: Id | null;
  label: number | null;
  labels: number[] | null;
  /** A correction of a label an earlier load emitted (absent: a sample). */
  kind?: 'correction';
  version?: number;
  retracted?: boolean;
}

export interface SamplesBatchValue {
  k: 'samples';
  versions: Versions;
  rows: SampleRow[];
}

export interface SequenceRow {
  p: Id; chunk: number; split: string;
  c: Id[]; d: (number | null)[]; a: number[]; s: number[]; r: number[]; m: number[];
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

function isEndOfLoad(m: StageMessage): boolean {
  const h = m.headers[CONTROL_HEADER];
  return h !== undefined && String(h) === END_OF_LOAD;
}

function endOf(m: StageMessage, table: string): EndValue {
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
  if (v.k === 'events') return v.p.length;
  if (v.k === 'persons') return v.p.length + (v.rp?.length ?? 0);
  return v.k === 'pretrain' || v.k === 'samples' ? v.rows.length : 0;
}

/** A stream topic message: the value in its schema's codec (Arrow record batch or JSON marker) with the schema header. */
export const streamMessage = (topic: string, partition: number, value: StreamValue): OutputMessage => ({ topic, partition, key: null, ...encodeStreamValue(value), rows: valueRows(value) });

// ---------------------------------------------------------------------------------------------
// canonicalize

export function canonicalizeTransform(names: TopicNames, eventsTopic: string, art: StreamArtifacts): StageTransform {
  const normalizer = new ConceptNormalizer(art.vocabulary.index);
  const units = unitNamer((id) => art.vocabulary.concepts.get(id)?.concept_code);
  const canon = new EventCanonicalizer(normalizer, units, new DecileBinner(art.deciles));
  const versions: Versions = { deciles: art.deciles.version, vocabulary: art.vocabularyArtifact.version };
  const raw: RawEventFields = { domain: 0, conceptId: 0, sourceConceptId: 0, value: null, unitConceptId: 0, unitSource: null };
  const slots: CanonicalSlots = { conceptId: 0, status: 'standard', unit: null, decile: -1 };

  return (messages: StageMessage[], ctx: StageContext): OutputMessage[] => {
    const table = names.tableOf(ctx.topic);
    if (table === null) throw new Error(`canonicalize: ${ctx.topic} is not an omop.<table> topic`);
    ctx.rowsRead(0); // rows are counted as read (a chunk of end markers holds none)
    const out: OutputMessage[] = [];
    if (table === 'person') {
      const empty = (): PersonsBatchValue => ({ k: 'persons', p: [], b: [], g: [], n: [], rp: [], rw: [] });
      return columnarBatches(messages, ctx, table, eventsTopic, empty, (batch, row) => {
        batch.p.push(idOr(row.person_id, 0));
        batch.b.push(birthMs(row));
        batch.g.push(idOr(row.gender_concept_id, 0));
        batch.n.push(intOr(row.__row, 0));
      }, (batch, row, first) => {
        // As the local runner: the rows of a person whose row was set aside say why (loadPersons).
        const id = first.column !== 'person_id' ? parseId(row.person_id) : null;
        if (id === null) return;
        batch.rp!.push(id);
        batch.rw!.push(`${first.column}: ${first.reason}`);
      });
    }
    const spec = tableSpec(table as ClinicalTable);
    const ev = spec.events;
    if (!ev) {
      // Tables that carry no events (e.g. observation_period) only pass their end marker on (their rows are not read).
      for (const m of messages) if (isEndOfLoad(m)) out.push(streamMessage(eventsTopic, ctx.partition, endOf(m, table)));
      return out;
    }
    const empty = (): EventsBatchValue => ({ k: 'events', table, versions, p: [], t: [], c: [], s: [], d: [], x: [], u: [], v: [], r: [], n: [], rc: [], sd: [], ed: [] });
    return columnarBatches(messages, ctx, table, eventsTopic, empty, (batch, row, m, element) => {
      const f = rowEventFields(row, ev);
      if (f.t === null) {
        ctx.deadLetter(m, 'invalid-row', `column ${ev.dateColumn}: no readable date`, table, element);
        return;
      }
      raw.domain = ev.domain;
      raw.conceptId = f.conceptId;
      raw.sourceConceptId = f.sourceConceptId;
      raw.value = f.value;
      raw.unitConceptId = f.unitConceptId;
      raw.unitSource = f.unitSource;
      canon.apply(table, raw, slots);
      batch.p.push(f.personId);
      batch.t.push(f.t);
      batch.c.push(slots.conceptId);
      batch.s.push(f.sourceConceptId);
      batch.d.push(slots.decile);
      batch.x.push(f.value);
      batch.u.push(slots.unit);
      batch.v.push(f.visitId);
      batch.r.push(f.rowId);
      batch.n.push(f.rn);
      batch.rc.push(f.conceptId);
      // The labeler reads dates: visit start and end, death date (00:00).
      batch.sd.push(table === 'visit_occurrence' ? timeMs(row.visit_start_date) : table === 'death' ? timeMs(row.death_date) : null);
      batch.ed.push(table === 'visit_occurrence' ? timeMs(row.visit_end_date) : null);
    });
  };
}

/**
 * The rows of a chunk of one omop.<table> partition as columnar batches of up to ROWS_PER_MESSAGE
 * rows (`add` appends a row to a batch, or dead-letters it), with each end-of-load marker passed
 * on in order after the rows before it.
 */
function columnarBatches<B extends EventsBatchValue | PersonsBatchValue>(
  messages: StageMessage[],
  ctx: StageContext,
  table: string,
  eventsTopic: string,
  empty: () => B,
  add: (batch: B, row: Record<string, unknown>, m: StageMessage, element: ParsedRow['element']) => void,
  invalid?: (batch: B, row: Record<string, unknown>, first: RowProblem) => void,
): OutputMessage[] {
  const out: OutputMessage[] = [];
  let batch = empty();
  const size = () => valueRows(batch);
  const flush = () => {
    if (size()) out.push(streamMessage(eventsTopic, ctx.partition, batch));
    batch = empty();
  };
  for (const m of messages) {
    if (isEndOfLoad(m)) {
      flush();
      out.push(streamMessage(eventsTopic, ctx.partition, endOf(m, table)));
      continue;
    }
    for (const { row, element } of parseRows(m, ctx, table, invalid && ((r, first) => invalid(batch, r, first)))) {
      add(batch, row, m, element);
      if (size() >= ROWS_PER_MESSAGE) flush();
    }
  }
  flush();
  return out;
}

/**
 * The rows of a row message: its JSON object, or the objects of its JSON array (several rows of
 * one person, keyed by that person_id). What is not a usable row is dead-lettered: the whole
 * message when it is not JSON, else the offending element alone.
 */
function parseRows(m: StageMessage, ctx: StageContext, table: string, invalid?: (row: Record<string, unknown>, first: RowProblem) => void): ParsedRow[] {
  let value: unknown;
  try {
    // Exact: an id written as a JSON number beyond 2^53 is read from its digits, never rounded.
    value = parseJsonExact(m.value?.toString() ?? 'null');
  } catch (e) {
    ctx.rowsRead(1);
    ctx.deadLetter(m, 'not-json', (e as Error).message, table);
    return [];
  }
  ctx.rowsRead(Array.isArray(value) ? value.length : 1);
  if (!Array.isArray(value)) {
    const problem = rowProblem(value, null, table);
    if (problem === null) return [{ row: value as Record<string, unknown>, element: undefined }];
    ctx.deadLetter(m, problem[0], problem[1], table);
    if (problem[2]) invalid?.(value as Record<string, unknown>, problem[2]);
    return [];
  }
  const key = m.key === null ? null : m.key.toString();
  const rows: ParsedRow[] = [];
  value.forEach((v: unknown, index) => {
    // The element's text is written only when a dead letter needs it (most rows pass).
    const element = { get value() { return stringifyJsonExact(v) ?? 'undefined'; }, index };
    const problem = rowProblem(v, key, table);
    if (problem === null) rows.push({ row: v as Record<string, unknown>, element });
    else {
      ctx.deadLetter(m, problem[0], problem[1], table, element);
      if (problem[2]) invalid?.(v as Record<string, unknown>, problem[2]);
    }
  });
  return rows;
}

/** A row and, for a multi-row message, which element it was (what a dead letter carries). */
interface ParsedRow {
  row: Record<string, unknown>;
  element: { value: string; index: number } | undefined;
}

/**
 * Why a parsed value is not a row of `table` (of the person `key`, when a message carries
 * several), or null. Rows are held to the same schema as the local runner's (schemas/rowSchemas.ts),
 * whoever produced them: the same rows pass, the rest are dead letters naming the column (and
 * the schema's first problem, which the local runner's reject names).
 */
function rowProblem(v: unknown, key: string | null, table: string): [DeadLetterKind, string, RowProblem?] | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return ['not-an-object', 'a row must be a JSON object'];
  const problems = rowValidator(tableSpec(table as ClinicalTable)).check(v as Record<string, unknown>);
  if (problems.length) return ['invalid-row', problems.map((p) => `column ${p.column}: ${p.reason}`).join('; '), problems[0]];
  // The key places the message: a row of another person would miss that person's partition.
  const personId = parseId((v as Record<string, unknown>).person_id);
  if (key !== null && String(personId) !== key) return ['invalid-row', `column person_id: ${personId} differs from the message key of a multi-row message`];
  return null;
}

// ---------------------------------------------------------------------------------------------
// trajectory

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
  /** Continuous mode: events (of the events store's list) in chunks emitted, and chunks emitted. */
  ce?: number;
  ck?: number;
}

/**
 * Clinical rows of a person whose person row has not come (yet) wait in their own store, in the
 * events batch's fields: table, t, c, s, d, x, u, v, r, n. A person row releases them to the
 * events topic; when the load closes without one they are set aside, as the local runner sets
 * aside the rows of a person absent from (or rejected by) the person table.
 */
export const PENDING_STORE = 'pending';
type PendingRow = [string, number, Id, Id, number, number | null, string | null, Id | null, Id, number];

/**
 * A person's token events live in an append-only store (the changelog carries only new events),
 * EVENT_WIDTH numbers per event: time (ms), packed (table code, decile, domain), row id, source
 * row, concept. Packing keeps a 10M-event state near 400 MB.
 */
export const EVENTS_STORE = 'events';
export const EVENT_WIDTH = 5;
const packEvent = (code: number, decile: number, domain: number) => code * 256 + (decile + 1) * 16 + domain;

const END_KEY = '__end_of_load__';
/** The partition's event-time watermark after its last closed load. */
export const WATERMARK_KEY = '__watermark__';

interface EndState {
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

/** Rows for the events topic as columnar batches, one per table, flushed after each input message. */
class EventsOut {
  private readonly batches = new Map<string, EventsBatchValue>();
  constructor(private readonly topic: string, private readonly partition: number, private readonly versions: Versions, private readonly out: OutputMessage[]) {}

  add(person: Id, row: PendingRow): void {
    const table = row[0];
    let b = this.batches.get(table);
    if (!b) this.batches.set(table, (b = { k: 'events', table, versions: this.versions, p: [], t: [], c: [], s: [], d: [], x: [], u: [], v: [], r: [], n: [], rc: [], sd: [], ed: [] }));
    b.p.push(person);
    b.t.push(row[1]); b.c.push(row[2]); b.s.push(row[3]); b.d.push(row[4]); b.x.push(row[5]);
    b.u.push(row[6]); b.v.push(row[7]); b.r.push(row[8]); b.n.push(row[9]);
    // The sink reads no labeler field (rc, sd, ed): these batches carry none.
    if (b.p.length >= ROWS_PER_MESSAGE) this.flushTable(table);
  }

  flush(): void {
    for (const table of [...this.batches.keys()].sort()) this.flushTable(table);
  }

  private flushTable(table: string): void {
    const b = this.batches.get(table)!;
    this.batches.delete(table);
    if (b.p.length) this.out.push(streamMessage(this.topic, this.partition, b));
  }
}

export function trajectoryTransform(opts: TrajectoryOptions): StageTransform {
  const indexConcepts = new Set(opts.tasks.flatMap((t) => Array.from(t.indexConcepts)));
  return (messages: StageMessage[], ctx: StageContext): OutputMessage[] => {
    const store = ctx.store<PersonState | string[]>(PERSON_STORE);
    const events = ctx.appendStore(EVENTS_STORE);
    const pendingStore = ctx.store<PendingRow[]>(PENDING_STORE);
    const continuous = opts.continuous?.begin(store as never, events, ctx.partition);
    const out: OutputMessage[] = [];
    const released = new EventsOut(opts.eventsTopic, ctx.partition, opts.versions, out);
    const touched = new Map<string, PersonState>();
    const stateOf = (id: Id): PersonState => {
      const key = String(id);
      let s = touched.get(key);
      if (!s) {
        s = (store.get(key) as PersonState | undefined) ?? { b: null, g: 0, pr: 0, n: 0, vs: [] };
        touched.set(key, s);
      }
      return s;
    };
    // Waiting rows by person (an empty list: released or set aside, deleted from the store on save).
    const pending = new Map<string, PendingRow[]>();
    const pendingOf = (key: string): PendingRow[] | undefined => {
      let list = pending.get(key);
      if (list === undefined) {
        const stored = pendingStore.get(key);
        if (stored === undefined) return undefined;
        pending.set(key, (list = [...stored]));
      }
      return list;
    };
    const endState = (): EndState => (store.get(END_KEY) as unknown as EndState | undefined) ?? { counts: {}, closed: 0, watermark: null };
    let openLoad = endState().closed + 1;
    const event: Id[] = new Array(EVENT_WIDTH);
    // A row of a person with a person row joins the person's trajectory state.
    const apply = (person: Id, s: PersonState, row: PendingRow) => {
      const table = row[0];
      const ev = tableSpec(table as ClinicalTable).events!;
      s.n++;
      s.ln = openLoad;
      if (TOKEN_DOMAINS.has(ev.domain)) {
        event[0] = row[1];
        event[1] = packEvent(tableCode(table), row[4], ev.domain);
        event[2] = row[8];
        event[3] = row[9];
        event[4] = row[2];
        events.append(String(person), event);
      } else if (ev.eventTable === 'visit') s.vs.push(row[1]);
    };
    const save = () => {
      for (const [k, s] of touched) store.set(k, s);
      touched.clear();
      for (const [k, list] of pending) {
        if (list.length) pendingStore.set(k, list);
        else if (pendingStore.get(k) !== undefined) pendingStore.delete(k);
      }
      pending.clear();
    };
    // A load closes: the rows still waiting have no person row; they are set aside with the reason.
    const setAsideWaiting = (m: StageMessage) => {
      save();
      const keys = pendingStore.keys().map((k) => parseId(k) as Id).sort(compareIds);
      let rows = 0;
      for (const id of keys) {
        const key = String(id);
        const s = stateOf(id);
        const list = pendingOf(key)!;
        for (const row of list) {
          if (s.b !== null) {
            apply(id, s, row);
            released.add(id, row);
            continue;
          }
          const reason = s.rj !== undefined ? `person rejected (${s.rj})` : 'person_id not in the person table';
          const value = stringifyJsonExact({ person_id: id, __row: row[9] });
          ctx.deadLetter(m, 'invalid-row', `column person_id: ${reason}`, row[0], { value, index: rows++ });
        }
        list.length = 0;
      }
      released.flush();
      if (keys.length) opts.onSetAside?.(ctx.partition, keys.length, rows);
      save();
    };
    for (const m of messages) {
      const value = parseValue(m);
      ctx.rowsRead(valueRows(value));
      if (value.k === 'persons') {
        for (let i = 0; i < value.p.length; i++) {
          const s = stateOf(value.p[i]);
          if (s.b !== null) {
            // The same source row again (a load sent twice) changes nothing. Another row of the same
            // person_id is a reject, as in the local runner: the later one in the source (rows
            // without a source row number cannot be told apart, so every repeat is a reject).
            if (s.pr === value.n[i] && s.pr !== 0) continue;
            const later = Math.max(s.pr, value.n[i]);
            const dup = { value: stringifyJsonExact({ person_id: value.p[i], __row: later }), index: i };
            ctx.deadLetter(m, 'invalid-row', 'column person_id: duplicate person_id', 'person', dup);
            if (value.n[i] >= s.pr) continue;
          }
          s.b = value.b[i];
          s.g = value.g[i];
          s.pr = value.n[i];
          // Rows that came before their person row go on now.
          const waiting = pendingOf(String(value.p[i]));
          if (waiting) {
            for (const row of waiting) {
              apply(value.p[i], s, row);
              released.add(value.p[i], row);
            }
            waiting.length = 0;
          }
        }
        const rp = value.rp ?? [];
        for (let i = 0; i < rp.length; i++) stateOf(rp[i]).rj = value.rw![i];
        released.flush();
      } else if (value.k === 'events') {
        continuous?.observe(value.table, value.t);
        const ev = tableSpec(value.table as ClinicalTable).events!;
        let allKnown = true;
        for (let i = 0; i < value.p.length; i++) {
          const s = stateOf(value.p[i]);
          const row: PendingRow = [value.table, value.t[i], value.c[i], value.s[i], value.d[i], value.x[i], value.u[i], value.v[i], value.r[i], value.n[i]];
          if (s.b !== null) {
            apply(value.p[i], s, row);
            if (!allKnown) released.add(value.p[i], row);
          } else {
            if (allKnown) {
              // The first row without a person: the rows before it go out as a batch of their own.
              allKnown = false;
              for (let j = 0; j < i; j++) released.add(value.p[j], [value.table, value.t[j], value.c[j], value.s[j], value.d[j], value.x[j], value.u[j], value.v[j], value.r[j], value.n[j]]);
            }
            const key = String(value.p[i]);
            let list = pendingOf(key);
            if (!list) pending.set(key, (list = []));
            list.push(row);
          }
          if (opts.tasks.length === 0) continue;
          // What the labeler reads (sources/labelInputs.ts): index visits by their dates, deaths, conditions,
          // of every row (those of a person without a person row are excluded there as no_person, as locally).
          // The labeler takes concept ids as the vocabulary's numbers (labelInputs reads them as DOUBLE):
          // a bigint concept is in no concept set either way.
          const rc = Number(value.rc[i]);
          if (ev.eventTable === 'visit' && indexConcepts.has(rc) && value.sd[i] !== null) (s.lv ??= []).push([value.v[i] ?? value.r[i], rc, value.sd[i]!, value.ed[i]]);
          else if (ev.eventTable === 'death' && value.sd[i] !== null) (s.ld ??= []).push(value.sd[i]!);
          else if (ev.eventTable === 'condition') (s.lc ??= []).push([rc, value.t[i], value.v[i]]);
        }
        // Every row's person known: the batch goes on as it came.
        if (allKnown) out.push({ topic: opts.eventsTopic, partition: ctx.partition, key: null, value: m.value, headers: m.headers, rows: value.p.length });
        else released.flush();
      } else if (value.k === 'end') {
        save();
        // Load k closes once every input table has sent its k-th end-of-load marker.
        const prev = endState();
        const counts = { ...prev.counts, [value.table]: (prev.counts[value.table] ?? 0) + 1 };
        const wm = value.watermark ?? null;
        const watermark = wm === null ? prev.watermark : prev.watermark === null ? wm : Math.max(prev.watermark, wm);
        let closed = prev.closed;
        while (LOAD_TABLES.every((t) => (counts[t] ?? 0) > closed)) {
          if (closed === prev.closed) setAsideWaiting(m);
          closed++;
          if (continuous) {
            continuous.loadClosed(watermark);
            continue;
          }
          out.push(streamMessage(opts.eventsTopic, ctx.partition, { k: 'end', table: 'events' } satisfies EndValue));
          out.push(...closeLoad(store as never, events, closed, ctx.partition, opts, watermark));
        }
        store.set(END_KEY, { counts, closed, watermark } as never);
        openLoad = closed + 1;
      }
    }
    save();
    if (continuous) out.push(...continuous.finish(out.length > 0));
    ctx.watermark?.(continuous ? continuous.watermark : ((store.get(WATERMARK_KEY) as unknown as number | undefined) ?? null));
    return out;
  };
}

export type PersonStore = { get(k: string): PersonState | undefined; set(k: string, v: PersonState): void; keys(): string[] };

/**
 * Closes a load in a partition: the incremental labeler moves to the load's watermark and emits
 * the samples it determines (and corrections of labels emitted by an earlier load); every person
 * with new events emits its pretraining chunks. The state is kept for later loads.
 */
function closeLoad(store: PersonStore, events: AppendView, load: number, partition: number, opts: TrajectoryOptions, watermark: number | null): OutputMessage[] {
  const out: OutputMessage[] = [];
  const ids = store.keys().filter((k) => !k.startsWith('__')).map((k) => parseId(k) as Id).sort(compareIds);
  const previous = (store.get(WATERMARK_KEY) as unknown as number | undefined) ?? null;
  const wm = watermark === null ? previous : previous === null ? watermark : Math.max(previous, watermark);
  const { samples, summary, late } = labelPartition(store, ids, opts, previous, wm);
  if (wm !== null) store.set(WATERMARK_KEY, wm as never);
  let sampleRows: SampleRow[] = [];
  let sampleTokens = 0;
  const flushSamples = () => {
    if (sampleRows.length) out.push(streamMessage(opts.samplesTopic, partition, { k: 'samples', versions: opts.versions, rows: sampleRows } satisfies SamplesBatchValue));
    sampleRows = [];
    sampleTokens = 0;
  };
  let rows: SequenceRow[] = [];
  let tokens = 0;
  const flush = () => {
    if (rows.length) out.push(streamMessage(opts.pretrainTopic, partition, { k: 'pretrain', versions: opts.versions, rows } satisfies PretrainBatchValue));
    rows = [];
    tokens = 0;
  };
  for (const id of ids) {
    const s = store.get(String(id))!;
    const emit = samples.get(id) ?? [];
    const dirty = s.ln === load;
    if (!dirty && emit.length === 0) continue;
    // No event, or no person row (its rows were set aside when the load closed).
    if (s.n === 0 || s.b === null) continue;
    const pe = sortedEvents(events.get(String(id)) ?? []);
    const n = pe.length;
    const info = { birthMs: s.b, genderConceptId: s.g, visitStarts: s.vs };
    const sr = segmentsAndRanks(pe, s.vs);
    const split = splitOf(id);
    for (const r of emit) {
      const row = sampleRowOf(r, pe, info, sr, split, opts.maxEvents);
      sampleRows.push(row);
      sampleTokens += row.c.length;
      if (sampleRows.length >= ROWS_PER_MESSAGE || sampleTokens >= TOKENS_PER_MESSAGE) flushSamples();
    }
    if (!dirty) continue;
    chunkRanges(n, opts.maxEvents).forEach(([from, to], k) => {
      const seq = buildSequence(pe, info, from, to, sr);
      rows.push({ p: id, chunk: k, split, c: seq.conceptIds, d: seq.deciles, a: seq.ages, s: seq.segments, r: seq.recordRanks, m: seq.domains });
      tokens += seq.conceptIds.length;
      if (rows.length >= ROWS_PER_MESSAGE || tokens >= TOKENS_PER_MESSAGE) flush();
    });
  }
  flush();
  flushSamples();
  out.push(streamMessage(opts.pretrainTopic, partition, { k: 'end', table: 'pretrain' } satisfies EndValue));
  out.push(streamMessage(opts.samplesTopic, partition, { k: 'end', table: 'samples', watermark: wm, tasks: summary, late } satisfies EndValue));
  return out;
}

/** A labeler's record as a sample row: the window of the person's events before its prediction time. */
export function sampleRowOf(r: LabelRecord, pe: PersonEvents, info: PersonInfo, sr: ReturnType<typeof segmentsAndRanks>, split: string, maxEvents: number): SampleRow {
  const [from, to] = r.prediction_time === null ? [0, 0] : windowBefore(pe, r.prediction_time, maxEvents);
  const seq = buildSequence(pe, info, from, to, sr);
  return {
    task: r.task, p: r.person_id, chunk: 0, split, pt: r.prediction_time ?? 0, iv: r.index_visit_id, label: r.label, labels: r.labels,
    c: seq.conceptIds, d: seq.deciles, a: seq.ages, s: seq.segments, r: seq.recordRanks, m: seq.domains,
    ...(r.kind === 'correction' ? { kind: 'correction' as const, version: r.version, retracted: r.retracted } : {}),
  };
}

/** A person's packed events in the local runner's order: time, table, row id, source row. */
export function sortedEvents(list: readonly Id[]): PersonEvents {
  const n = list.length / EVENT_WIDTH;
  // Time, packed fields and source row are numbers; row id and concept are exact Ids.
  const at = (i: number, field: number) => list[i * EVENT_WIDTH + field] as number;
  const id = (i: number, field: number) => list[i * EVENT_WIDTH + field];
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => at(a, 0) - at(b, 0) || (at(a, 1) >> 8) - (at(b, 1) >> 8) || compareIds(id(a, 2), id(b, 2)) || at(a, 3) - at(b, 3));
  const conceptIds: Id[] = new Array(n);
  const pe: PersonEvents = { times: new Float64Array(n), conceptIds, deciles: new Int8Array(n), domains: new Int8Array(n), length: n };
  for (let k = 0; k < n; k++) {
    const i = order[k];
    const packed = at(i, 1);
    pe.times[k] = at(i, 0);
    conceptIds[k] = id(i, 4);
    pe.deciles[k] = ((packed >> 4) & 15) - 1;
    pe.domains[k] = packed & 15;
  }
  return pe;
}

/**
 * The incremental labeler of the partition, restored from every person's state (records applied
 * by earlier loads, labels emitted), fed the records of this load (those older than the previous
 * watermark by more than the allowed lateness are dropped and counted), moved to the watermark.
 * Returns what it emits, by person: samples now determined and corrections; the rest is censored.
 */
export function labelPartition(
  store: PersonStore,
  ids: Id[],
  opts: TrajectoryOptions,
  previous: number | null,
  watermark: number | null,
): { samples: Map<Id, LabelRecord[]>; summary: TaskSummary[]; late: LateCounts } {
  const samples = new Map<Id, LabelRecord[]>();
  const late: LateCounts = { applied: 0, dropped: { visit: 0, death: 0, condition: 0 }, corrections: 0 };
  if (opts.tasks.length === 0) return { samples, summary: [], late };
  const labeler = IncrementalLabeler.restore(
    opts.tasks,
    { watermark: previous, lateApplied: 0, corrections: 0, lateDropped: { visit: 0, death: 0, condition: 0 }, persons: [] },
    { allowedLatenessMs: opts.allowedLatenessMs ?? 0 },
  );
  const touched = ids.filter((id) => {
    const s = store.get(String(id))!;
    return s.lab !== undefined || (s.lv?.length ?? 0) > 0; // else in no cohort: no index visit
  });
  // First every person's state as of the last load (restoring re-derives what was emitted: nothing
  // new), then this load's records: restorePerson evaluates every person changed so far.
  for (const id of touched) {
    const lab = store.get(String(id))!.lab;
    if (lab && labeler.restorePerson(lab).length > 0) throw new Error(`labeler state of person ${id} does not match its emitted labels`);
  }
  for (const id of touched) {
    const s = store.get(String(id))!;
    if (s.b !== null) labeler.add({ table: 'person', personId: id, birthMs: s.b, genderConceptId: s.g });
    for (const [visitId, conceptId, startMs, endMs] of s.lv ?? []) labeler.add({ table: 'visit', personId: id, visitId, conceptId, startMs, endMs });
    for (const t of s.ld ?? []) labeler.add({ table: 'death', personId: id, timeMs: t });
    for (const [conceptId, timeMs, visitId] of s.lc ?? []) labeler.add({ table: 'condition', personId: id, conceptId, timeMs, visitId });
  }
  for (const r of labeler.advanceWatermark(watermark ?? Number.NEGATIVE_INFINITY)) {
    let list = samples.get(r.person_id);
    if (!list) samples.set(r.person_id, (list = []));
    list.push(r);
  }
  // The labeler's state replaces the records of this load in the store.
  for (const id of touched) {
    const s = store.get(String(id))!;
    store.set(String(id), { ...s, lv: undefined, ld: undefined, lc: undefined, lab: labeler.snapshotPerson(id) ?? undefined });
  }
  const summary = labeler.summary();
  return { samples, summary: summary.tasks, late: { applied: summary.lateApplied, dropped: summary.lateDropped, corrections: summary.corrections } };
}

/** Records of a later load that came behind the watermark, and corrections emitted. */
export interface LateCounts {
  applied: number;
  dropped: { visit: number; death: number; condition: number };
  corrections: number;
}
