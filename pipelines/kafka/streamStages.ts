// The stages of `medrep stream` (DESIGN.md section 6), each a StageWorker transform over one input
// partition; transforms/ does the MedRep logic, exactly as in the local runner:
//
//   omop.<table> --canonicalize--> medrep.events --trajectory (store: person)--> medrep.pretrain
//                                        \______________ sink ______________________/
//                                                  OUT/events, OUT/pretrain shards
//
// canonicalize: JSON rows -> normalized, unit-named, decile-binned events (EventCanonicalizer) and
//   persons, as columnar batches; unknown concepts -> dead-letter topic.
// trajectory: per-person state (events, visit starts, birth, gender) in a changelog-backed store;
//   when the load is closed (end-of-load markers of every input table seen in the partition) each
//   person's trajectory is cut into pretraining chunks (buildSequence, chunkRanges).
// sink: batches -> Parquet shards named <topic>-p<partition>-<first>-<last offset>, written
//   atomically; offsets are committed only through what is on disk (ctx.commitThrough).
import { ClinicalTable, tableSpec } from '../../schemas/omop';
import { DecileBinner } from '../../transforms/deciles';
import { CanonicalSlots, EventCanonicalizer, RawEventFields, unitNamer } from '../../transforms/events';
import { ConceptNormalizer } from '../../transforms/normalize';
import { splitOf } from '../../transforms/splits';
import { TOKEN_DOMAINS } from '../../transforms/tokens';
import { PersonEvents, buildSequence, chunkRanges, segmentsAndRanks } from '../../transforms/trajectory';
import { EVENT_SPECS, tableCode } from '../eventSource';
import { CONTROL_HEADER, END_OF_LOAD } from './omopLoad';
import { birthMs, intOr, rowEventFields } from './rowFields';
import { StageContext, StageMessage, OutputMessage, StageTransform } from './stage';
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
  p: number[]; t: number[]; c: number[]; s: number[]; d: number[];
  x: (number | null)[]; u: (string | null)[]; v: (number | null)[]; r: number[]; n: number[];
}

export interface PersonsBatchValue {
  k: 'persons';
  p: number[]; b: number[]; g: number[]; n: number[];
}

export interface EndValue {
  k: 'end';
  table: string;
}

export interface SequenceRow {
  p: number; chunk: number; split: string;
  c: number[]; d: (number | null)[]; a: number[]; s: number[]; r: number[]; m: number[];
}

export interface PretrainBatchValue {
  k: 'pretrain';
  versions: Versions;
  rows: SequenceRow[];
}

export type StreamValue = EventsBatchValue | PersonsBatchValue | EndValue | PretrainBatchValue;

export const PERSON_STORE = 'person';
/** Tables whose end-of-load markers close a load in a partition. */
export const LOAD_TABLES = ['person', ...EVENT_SPECS.map((s) => s.table)];
/** Rows per output message (columnar JSON stays well under the topics' message size). */
const ROWS_PER_MESSAGE = 2000;
const TOKENS_PER_MESSAGE = 100_000;

function isEndOfLoad(m: StageMessage): boolean {
  const h = m.headers[CONTROL_HEADER];
  return h !== undefined && String(h) === END_OF_LOAD;
}

export function parseValue(m: StageMessage): StreamValue {
  return JSON.parse(m.value!.toString()) as StreamValue;
}

const json = (topic: string, partition: number, value: unknown): OutputMessage => ({ topic, partition, key: null, value: JSON.stringify(value) });

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
    const out: OutputMessage[] = [];
    if (table === 'person') {
      let batch: PersonsBatchValue = { k: 'persons', p: [], b: [], g: [], n: [] };
      const flush = () => {
        if (batch.p.length) out.push(json(eventsTopic, ctx.partition, batch));
        batch = { k: 'persons', p: [], b: [], g: [], n: [] };
      };
      for (const m of messages) {
        if (isEndOfLoad(m)) {
          flush();
          out.push(json(eventsTopic, ctx.partition, { k: 'end', table } satisfies EndValue));
          continue;
        }
        const row = parseRow(m, ctx, table);
        if (!row) continue;
        batch.p.push(intOr(row.person_id, 0));
        batch.b.push(birthMs(row));
        batch.g.push(intOr(row.gender_concept_id, 0));
        batch.n.push(intOr(row.__row, 0));
        if (batch.p.length >= ROWS_PER_MESSAGE) flush();
      }
      flush();
      return out;
    }
    const spec = tableSpec(table as ClinicalTable);
    const ev = spec.events;
    if (!ev) {
      // Tables that carry no events (e.g. observation_period) only pass their end marker on.
      for (const m of messages) if (isEndOfLoad(m)) out.push(json(eventsTopic, ctx.partition, { k: 'end', table } satisfies EndValue));
      return out;
    }
    const empty = (): EventsBatchValue => ({ k: 'events', table, versions, p: [], t: [], c: [], s: [], d: [], x: [], u: [], v: [], r: [], n: [] });
    let batch = empty();
    const flush = () => {
      if (batch.p.length) out.push(json(eventsTopic, ctx.partition, batch));
      batch = empty();
    };
    for (const m of messages) {
      if (isEndOfLoad(m)) {
        flush();
        out.push(json(eventsTopic, ctx.partition, { k: 'end', table } satisfies EndValue));
        continue;
      }
      const row = parseRow(m, ctx, table);
      if (!row) continue;
      const f = rowEventFields(row, ev);
      if (f.t === null) {
        ctx.deadLetter(m, 'invalid-row', `column ${ev.dateColumn}: no readable date`, table);
        continue;
      }
      raw.domain = ev.domain;
      raw.conceptId = f.conceptId;
      raw.sourceConceptId = f.sourceConceptId;
      raw.value = f.value;
      raw.unitConceptId = f.unitConceptId;
      raw.unitSource = f.unitSource;
      if (!canon.apply(table, raw, slots)) {
        ctx.deadLetter(m, 'transform-error', `column ${ev.conceptColumn}: concept not in the vocabulary (CONCEPT) and no mappable source concept`, table);
        continue;
      }
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
      if (batch.p.length >= ROWS_PER_MESSAGE) flush();
    }
    flush();
    return out;
  };
}

/** The JSON object of a row message, or null after dead-lettering what is not one. */
function parseRow(m: StageMessage, ctx: StageContext, table: string): Record<string, unknown> | null {
  let row: unknown;
  try {
    row = JSON.parse(m.value?.toString() ?? 'null');
  } catch (e) {
    ctx.deadLetter(m, 'not-json', (e as Error).message, table);
    return null;
  }
  if (row === null || typeof row !== 'object' || Array.isArray(row)) {
    ctx.deadLetter(m, 'not-an-object', 'a row must be a JSON object', table);
    return null;
  }
  const r = row as Record<string, unknown>;
  if (typeof r.person_id !== 'number' || !Number.isInteger(r.person_id)) {
    ctx.deadLetter(m, 'invalid-row', 'column person_id: must be integer', table);
    return null;
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// trajectory

/** Per-person state: birth, gender (null until the person row came), token events, visit starts. */
export interface PersonState {
  b: number | null;
  g: number;
  /** Source row of the person row kept (the first one: later duplicates are ignored, as locally). */
  pr: number;
  /** Events of any table seen (deaths and visits too): a person with none emits nothing. */
  n: number;
  /** Token events: time, table code, row id, source row, concept, decile, domain. */
  e: [number, number, number, number, number, number, number][];
  vs: number[];
}

const END_KEY = '__end_of_load__';

export interface TrajectoryOptions {
  maxEvents: number;
  pretrainTopic: string;
  versions: Versions;
  /** Persons with events but no person row when the load closes (not emitted). */
  onOrphans?: (partition: number, count: number) => void;
}

export function trajectoryTransform(opts: TrajectoryOptions): StageTransform {
  return (messages: StageMessage[], ctx: StageContext): OutputMessage[] => {
    const store = ctx.store<PersonState | string[]>(PERSON_STORE);
    const out: OutputMessage[] = [];
    const touched = new Map<string, PersonState>();
    const stateOf = (id: number): PersonState => {
      const key = String(id);
      let s = touched.get(key);
      if (!s) {
        s = (store.get(key) as PersonState | undefined) ?? { b: null, g: 0, pr: 0, n: 0, e: [], vs: [] };
        touched.set(key, s);
      }
      return s;
    };
    const save = () => {
      for (const [k, s] of touched) store.set(k, s);
      touched.clear();
    };
    for (const m of messages) {
      const value = parseValue(m);
      if (value.k === 'persons') {
        for (let i = 0; i < value.p.length; i++) {
          const s = stateOf(value.p[i]);
          if (s.b !== null && s.pr <= value.n[i]) continue;
          s.b = value.b[i];
          s.g = value.g[i];
          s.pr = value.n[i];
        }
      } else if (value.k === 'events') {
        const spec = tableSpec(value.table as ClinicalTable);
        const ev = spec.events!;
        const code = tableCode(value.table);
        for (let i = 0; i < value.p.length; i++) {
          const s = stateOf(value.p[i]);
          s.n++;
          if (TOKEN_DOMAINS.has(ev.domain)) s.e.push([value.t[i], code, value.r[i], value.n[i], value.c[i], value.d[i], ev.domain]);
          else if (ev.eventTable === 'visit') s.vs.push(value.t[i]);
        }
      } else if (value.k === 'end') {
        save();
        const ended = new Set((store.get(END_KEY) as string[] | undefined) ?? []);
        ended.add(value.table);
        if (LOAD_TABLES.every((t) => ended.has(t))) {
          out.push(...closeLoad(store as never, ctx.partition, opts));
          store.delete(END_KEY);
        } else {
          store.set(END_KEY, [...ended].sort());
        }
      }
    }
    save();
    return out;
  };
}

/** Emits every person's pretraining chunks (person-id order), clears the state, ends with a marker. */
function closeLoad(store: { get(k: string): PersonState | undefined; keys(): string[]; delete(k: string): void }, partition: number, opts: TrajectoryOptions): OutputMessage[] {
  const out: OutputMessage[] = [];
  const ids = store.keys().filter((k) => k !== END_KEY).map(Number).sort((a, b) => a - b);
  let rows: SequenceRow[] = [];
  let tokens = 0;
  let orphans = 0;
  const flush = () => {
    if (rows.length) out.push(json(opts.pretrainTopic, partition, { k: 'pretrain', versions: opts.versions, rows } satisfies PretrainBatchValue));
    rows = [];
    tokens = 0;
  };
  for (const id of ids) {
    const s = store.get(String(id))!;
    store.delete(String(id));
    if (s.n === 0) continue;
    if (s.b === null) {
      orphans++;
      continue;
    }
    // The local runner's order: time, table, row id, source row.
    s.e.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2] || a[3] - b[3]);
    const n = s.e.length;
    const pe: PersonEvents = {
      times: Float64Array.from(s.e, (x) => x[0]),
      conceptIds: Float64Array.from(s.e, (x) => x[4]),
      deciles: Int8Array.from(s.e, (x) => x[5]),
      domains: Int8Array.from(s.e, (x) => x[6]),
      length: n,
    };
    const info = { birthMs: s.b, genderConceptId: s.g, visitStarts: s.vs };
    const sr = segmentsAndRanks(pe, s.vs);
    const split = splitOf(id);
    chunkRanges(n, opts.maxEvents).forEach(([from, to], k) => {
      const seq = buildSequence(pe, info, from, to, sr);
      rows.push({ p: id, chunk: k, split, c: seq.conceptIds, d: seq.deciles, a: seq.ages, s: seq.segments, r: seq.recordRanks, m: seq.domains });
      tokens += seq.conceptIds.length;
      if (rows.length >= ROWS_PER_MESSAGE || tokens >= TOKENS_PER_MESSAGE) flush();
    });
  }
  flush();
  if (orphans) opts.onOrphans?.(partition, orphans);
  out.push(json(opts.pretrainTopic, partition, { k: 'end', table: 'pretrain' } satisfies EndValue));
  return out;
}
