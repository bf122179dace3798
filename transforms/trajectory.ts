// Trajectory building (DESIGN.md section 5): [CLS], the gender token, then the person's events in
// time order, each with age in years, segment (dense rank of the latest visit start at or before
// the event; a date-only event belongs to a visit that starts on its day) and record rank (dense
// rank of the timestamp within that segment). Windows keep the newest events; pretraining cuts a
// trajectory into chunks.
import { SHARD_CLS } from '../schemas/records';
import { DOMAIN, MAX_AGE } from './tokens';
import { Id } from '../schemas/ids';

/** One person's token events, time-ordered (ties broken by the caller's stable order). */
export interface PersonEvents {
  times: Float64Array; // epoch milliseconds
  conceptIds: ArrayLike<Id>;
  deciles: Int8Array; // -1 = none
  domains: Int8Array;
  length: number;
}

export interface PersonInfo {
  birthMs: number;
  genderConceptId: Id;
  /** Visit start times (epoch ms), any order, duplicates allowed. */
  visitStarts: ArrayLike<number>;
}

export interface Sequence {
  conceptIds: Id[];
  deciles: (number | null)[];
  ages: number[];
  segments: number[];
  recordRanks: number[];
  domains: number[];
}

/** Whole calendar years from birth to t (both epoch ms, UTC), clamped to 0..MAX_AGE. */
export function ageInYears(birthMs: number, t: number): number {
  const b = new Date(birthMs);
  const d = new Date(t);
  let age = d.getUTCFullYear() - b.getUTCFullYear();
  const beforeBirthday =
    d.getUTCMonth() < b.getUTCMonth() || (d.getUTCMonth() === b.getUTCMonth() && d.getUTCDate() < b.getUTCDate());
  if (beforeBirthday) age -= 1;
  return age < 0 ? 0 : age > MAX_AGE ? MAX_AGE : age;
}

/**
 * ageInYears for one person's events in ascending time: the age only changes on birthdays, so
 * each call compares with the next birthday instead of building dates.
 */
export function sequentialAger(birthMs: number): (t: number) => number {
  const b = new Date(birthMs);
  const [by, bm, bd] = [b.getUTCFullYear(), b.getUTCMonth(), b.getUTCDate()];
  let age = Number.NaN;
  let nextBirthday = Number.NEGATIVE_INFINITY;
  let lastT = Number.POSITIVE_INFINITY;
  return (t) => {
    if (t < lastT || Number.isNaN(age)) {
      age = ageInYears(birthMs, t);
      nextBirthday = Date.UTC(by + age + 1, bm, bd);
    } else {
      while (t >= nextBirthday && age < MAX_AGE) {
        age++;
        nextBirthday = Date.UTC(by + age + 1, bm, bd);
      }
    }
    lastT = t;
    return age < 0 ? 0 : age > MAX_AGE ? MAX_AGE : age;
  };
}

const DAY_MS = 86_400_000;

/**
 * The time an event is compared with visit starts. A date-only fact (at 00:00, DESIGN.md section
 * 4) happened some time on its day, so it counts as the end of that day: it belongs to a visit that
 * starts on its day, not to the one before. A timed event is compared as it is.
 */
export function segmentKey(t: number): number {
  return t % DAY_MS === 0 ? t + DAY_MS - 1 : t;
}

/**
 * Per event: segment = dense rank of the latest visit start at or before the event (compared by
 * segmentKey: a date-only event joins a visit starting on its day), 0 before the first visit; and
 * record rank = dense rank of the event time within its segment.
 */
export function segmentsAndRanks(ev: PersonEvents, visitStarts: ArrayLike<number>): { segments: Int32Array; ranks: Int32Array } {
  const starts = Float64Array.from(new Set(Array.from(visitStarts))).sort();
  const segments = new Int32Array(ev.length);
  const ranks = new Int32Array(ev.length);
  // Date-only events may join a later segment than a timed event after them, so segments
  // interleave: each keeps its own last time and rank.
  const lastTime = new Float64Array(starts.length + 1).fill(Number.NaN);
  const rank = new Int32Array(starts.length + 1);
  let seg = 0; // the number of starts <= key
  for (let i = 0; i < ev.length; i++) {
    const t = ev.times[i];
    const key = segmentKey(t);
    // Moved from the last event's: times ascend, so it moves a step or none (back a little for a
    // date-only key, which lies at its day's end).
    while (seg < starts.length && starts[seg] <= key) seg++;
    while (seg > 0 && starts[seg - 1] > key) seg--;
    if (t !== lastTime[seg]) {
      rank[seg]++;
      lastTime[seg] = t;
    }
    segments[i] = seg;
    ranks[i] = rank[seg];
  }
  return { segments, ranks };
}

/** The sequence of events [from, to) of a person, with its [CLS] and gender prefix. */
export function buildSequence(
  ev: PersonEvents,
  info: PersonInfo,
  from: number,
  to: number,
  sr = segmentsAndRanks(ev, info.visitStarts),
): Sequence {
  const n = to - from;
  const seq: Sequence = {
    conceptIds: new Array(n + 2),
    deciles: new Array(n + 2),
    ages: new Array(n + 2),
    segments: new Array(n + 2),
    recordRanks: new Array(n + 2),
    domains: new Array(n + 2),
  };
  const age = sequentialAger(info.birthMs);
  const firstAge = n > 0 ? age(ev.times[from]) : 0;
  const prefix: [Id, number][] = [
    [SHARD_CLS, DOMAIN.special],
    [info.genderConceptId, DOMAIN.special],
  ];
  prefix.forEach(([c, d], k) => {
    seq.conceptIds[k] = c;
    seq.deciles[k] = null;
    seq.ages[k] = firstAge;
    seq.segments[k] = 0;
    seq.recordRanks[k] = 0;
    seq.domains[k] = d;
  });
  for (let i = from, k = 2; i < to; i++, k++) {
    seq.conceptIds[k] = ev.conceptIds[i];
    seq.deciles[k] = ev.deciles[i] < 0 ? null : ev.deciles[i];
    seq.ages[k] = age(ev.times[i]);
    seq.segments[k] = sr.segments[i];
    seq.recordRanks[k] = sr.ranks[i];
    seq.domains[k] = ev.domains[i];
  }
  return seq;
}

/** Index range of the window: events strictly before `predictionMs`, the newest `maxEvents` kept. */
export function windowBefore(ev: PersonEvents, predictionMs: number, maxEvents: number): [number, number] {
  let to = 0;
  while (to < ev.length && ev.times[to] < predictionMs) to++;
  return [Math.max(0, to - maxEvents), to];
}

/** Pretraining chunks: consecutive ranges of at most `maxEvents` events, oldest first. */
export function chunkRanges(length: number, maxEvents: number): [number, number][] {
  const out: [number, number][] = [];
  for (let from = 0; from < length; from += maxEvents) out.push([from, Math.min(length, from + maxEvents)]);
  return out;
}

export const DEFAULT_MAX_EVENTS = 2048;
