// A deterministic feed of the trajectory stage in continuous mode, without a broker: canonical
// batches (as the canonicalize stage writes them) of a few persons with long histories, in rounds
// of transactions, run through the stage's transform with real stores (each transaction's
// changelog taken and committed) and a clock the feed moves. Tests compare what it emits with
// and without retention pruning, and what the events store keeps.
import { ChangelogStore } from '../../runners/kafka/stateStore';
import { AppendLogStore } from '../../runners/kafka/appendStore';
import { continuousTrajectory } from '../../runners/kafka/continuousTrajectory';
import { trajectoryTransform } from '../../runners/kafka/trajectoryStage';
import { EVENTS_STORE, EVENT_WIDTH, PENDING_STORE, TrajectoryOptions } from '../../runners/kafka/trajectoryState';
import { EventsBatchValue, PERSON_STORE, SampleRow, SequenceRow, StreamValue, eventsBatch } from '../../runners/kafka/streamValues';
import { emptyCanonicalEvent } from '../../schemas/canonicalEvent';
import { pushEvent } from '../../schemas/eventColumns';
import { decodeStreamValue, encodeStreamValue } from '../../runners/kafka/streamCodec';
import { OutputMessage, StageContext, StageMessage } from '../../runners/kafka/stage';
import { compileTask } from '../../transforms/labels';
import { shippedTasks } from '../../sources/taskFiles';
import { Id } from '../../schemas/ids';

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** The first round's day: 2020-01-01. */
const START = Date.UTC(2020, 0, 1);
const VERSIONS = { deciles: 'd', vocabulary: 'v' };

type Row = { p: number; t: number; c: number; d?: number; v?: number | null; sd?: number | null; ed?: number | null };

function batch(table: string, rows: Row[], next: () => number): EventsBatchValue {
  const b = eventsBatch(table, VERSIONS);
  const e = emptyCanonicalEvent();
  for (const r of rows) {
    const id = next();
    Object.assign(e, { personId: r.p, timeMs: r.t, conceptId: r.c, sourceConceptId: 0, decile: r.d ?? -1, value: null, unit: null, visitId: r.v ?? null, rowId: id, row: id });
    pushEvent(b, e, { givenConceptId: r.c, startDateMs: r.sd ?? null, endDateMs: r.ed ?? null });
  }
  return b;
}

/** One transaction of the feed: its batches, and how far the clock moves before it. */
export interface FeedTransaction {
  values: StreamValue[];
  advanceMs: number;
}

export const FEED_PERSONS = [1, 2, 3, 4];
/** Token events each round brings a person: 20 conditions, 5 measurements, 2 late conditions, a follow-up. */
export const EVENTS_PER_ROUND = 28;
export const ROUND_DAYS = 60;

/**
 * `rounds` rounds of 60 days. Each person's round: an inpatient stay (length varies with person
 * and round) from day 10, 20 conditions from its admission (date-only and timed), 5 measurements
 * with deciles, 2 conditions of the round before (far behind the watermark: tokens, but too late
 * for the labeler), then, once the sources are idle, a follow-up condition on day 50 that moves
 * the watermark. Person 3 has a second stay on days 40-42 of odd rounds, sent after the
 * follow-up (a late record within the lateness: the latest stay changes, so labels are
 * corrected); person 2's stay of round 5 lasts to day 45 and a death on day 44 comes after the
 * follow-up (a correction of its mortality label). A last transaction (person 99, a year on)
 * moves the watermark past everything.
 */
export function retentionFeed(rounds: number): FeedTransaction[] {
  let rowId = 1000;
  const next = () => rowId++;
  const txns: FeedTransaction[] = [];
  const persons = [...FEED_PERSONS, 99];
  txns.push({ advanceMs: 0, values: [{ k: 'persons', p: persons, b: persons.map(() => Date.UTC(1960, 5, 1)), g: persons.map(() => 8507), n: persons.map((p) => p) }] });
  for (let r = 0; r < rounds; r++) {
    const base = START + r * ROUND_DAYS * DAY;
    const visitId = (p: number, k = 0) => 100_000 * p + 10 * r + k;
    const stayEnd = (p: number) => (p === 2 && r === 5 ? 45 : 10 + 1 + ((p + r) % 8));
    const visits = FEED_PERSONS.map((p) => ({ p, t: base + 10 * DAY, c: 9201, v: visitId(p), sd: base + 10 * DAY, ed: base + stayEnd(p) * DAY }));
    const conditions = FEED_PERSONS.flatMap((p) => Array.from({ length: 20 }, (_, k) => ({ p, t: base + 10 * DAY + k * 6 * HOUR, c: 201_820 + (k % 7), v: visitId(p) })));
    const measurements = FEED_PERSONS.flatMap((p) => Array.from({ length: 5 }, (_, k) => ({ p, t: base + 11 * DAY + k * HOUR, c: 3_000_000 + k, d: (k + r) % 10 })));
    const late = FEED_PERSONS.flatMap((p) => [0, 1].map((k) => ({ p, t: base - 48 * DAY + (3 + k) * HOUR, c: 201_900 + k, v: null })));
    txns.push({ advanceMs: 1000, values: [batch('visit_occurrence', visits, next)] });
    txns.push({ advanceMs: 1000, values: [batch('condition_occurrence', conditions, next)] });
    txns.push({ advanceMs: 1000, values: [batch('measurement', measurements, next), batch('condition_occurrence', late, next)] });
    txns.push({ advanceMs: 10_000, values: [batch('condition_occurrence', FEED_PERSONS.map((p) => ({ p, t: base + 50 * DAY + 9 * HOUR, c: 201_830, v: null })), next)] });
    const after: StreamValue[] = [];
    if (r % 2 === 1) after.push(batch('visit_occurrence', [{ p: 3, t: base + 40 * DAY, c: 9201, v: visitId(3, 1), sd: base + 40 * DAY, ed: base + 42 * DAY }], next));
    if (r === 5) after.push(batch('death', [{ p: 2, t: base + 44 * DAY, c: 0, sd: base + 44 * DAY }], next));
    if (after.length) txns.push({ advanceMs: 1000, values: after });
  }
  const end = START + (rounds * ROUND_DAYS + 365) * DAY;
  txns.push({ advanceMs: 10_000, values: [batch('condition_occurrence', [{ p: 99, t: end, c: 201_830 }], next)] });
  return txns;
}

export interface FeedRun {
  samples: SampleRow[];
  chunks: SequenceRow[];
  /** Per transaction: events kept in the events store per person (committed). */
  kept: Map<number, number>[];
  events: AppendLogStore;
}

const TOPIC = (t: string) => `feed.medrep.${t}`;

/** Runs the feed through the trajectory transform of continuous mode, one partition. */
export function runFeed(feed: FeedTransaction[], o: { maxEvents: number; allowedLatenessMs: number; retainAll: boolean }): FeedRun {
  const tasks = shippedTasks(['mortality', 'long_stay', 'readmission']).map((t) => compileTask(t.def, []));
  let clock = 1_000_000;
  const opts: TrajectoryOptions = {
    maxEvents: o.maxEvents, eventsTopic: TOPIC('events'), pretrainTopic: TOPIC('pretrain'), samplesTopic: TOPIC('samples'),
    tasks, allowedLatenessMs: o.allowedLatenessMs, versions: VERSIONS,
  };
  opts.continuous = continuousTrajectory(opts, { outOfOrdernessMs: DAY, idleTimeoutMs: 5000, chunkQuietMs: 30 * DAY, now: () => clock, retainAll: o.retainAll });
  const transform = trajectoryTransform(opts);
  const person = new ChangelogStore<unknown>(PERSON_STORE, 'unused');
  const pending = new ChangelogStore<unknown>(PENDING_STORE, 'unused');
  const events = new AppendLogStore(EVENTS_STORE, 'unused');
  const stores = [person, pending, events];
  const ctx = {
    topic: TOPIC('canonical'), partition: 0,
    store: (name: string) => (name === PERSON_STORE ? person : pending).view(0),
    appendStore: () => events.view(0),
    deadLetter: (_m: StageMessage, kind: string, reason: string) => {
      throw new Error(`dead letter ${kind}: ${reason}`);
    },
    commitThrough: () => undefined, rowsRead: () => undefined, watermark: () => undefined,
  } as unknown as StageContext;
  const run: FeedRun = { samples: [], chunks: [], kept: [], events };
  let offset = 0;
  for (const txn of feed) {
    clock += txn.advanceMs;
    const messages: StageMessage[] = txn.values.map((v) => ({ topic: TOPIC('canonical'), partition: 0, offset: String(offset++), timestamp: String(clock), key: null, ...encodeStreamValue(v) }));
    const out = transform(messages, ctx) as OutputMessage[];
    for (const s of stores) s.changelogMessages(0);
    for (const s of stores) s.commitPending(0);
    for (const m of out) {
      const v = decodeStreamValue({ topic: m.topic, value: m.value as Buffer, headers: m.headers });
      if (v.k === 'samples') run.samples.push(...v.rows);
      else if (v.k === 'pretrain') run.chunks.push(...v.rows);
    }
    run.kept.push(new Map([...events.sizes(0)].map(([k, s]) => [Number(k), s.kept / EVENT_WIDTH])));
  }
  return run;
}

/** Token events the feed brings each person (every event it sends but visits, deaths and person rows). */
export function tokenEventsOf(feed: FeedTransaction[], personId: Id): number {
  let n = 0;
  for (const t of feed) for (const v of t.values) if (v.k === 'events' && v.table !== 'visit_occurrence' && v.table !== 'death') n += v.personId.filter((p) => p === personId).length;
  return n;
}
