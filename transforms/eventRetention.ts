// Which of a person's oldest events a running stream may forget (continuous mode). An event is
// still needed if it is in the open chunk (not emitted yet), or if a sample's window may read it:
// every prediction time still to come is at or after the horizon (labels/horizon.ts), so the
// windows read the `maxEvents` latest events before the horizon and the events after it, that is
// events at or after t0 (the time of the maxEvents-th latest event before the horizon); events
// that come later only push older ones out. A window's record ranks count the distinct times of
// its segment from the segment's first event, so the segments those events are in stay whole:
// only events before C, the latest visit start at or before t0, are dropped (compared as
// segments compare them, by segmentKey). The events store drops a prefix (arrival order), so the
// cut stops at the first event still needed.
import { segmentKey } from './trajectory';

/**
 * How many of the person's first events (arrival order; `timeAt(i)`, i < length) may be dropped:
 * at most `closed`, the events already in emitted chunks.
 */
export function prunableEvents(
  timeAt: (i: number) => number,
  length: number,
  closed: number,
  horizon: number,
  maxEvents: number,
  visitStarts: readonly number[],
): number {
  if (closed <= 0 || horizon === Number.NEGATIVE_INFINITY) return 0;
  if (horizon === Number.POSITIVE_INFINITY) return closed; // no window reads any event
  const before: number[] = [];
  for (let i = 0; i < length; i++) if (timeAt(i) < horizon) before.push(timeAt(i));
  if (before.length <= maxEvents) return 0;
  before.sort((a, b) => b - a);
  const t0 = before[maxEvents - 1];
  let cut = Number.NEGATIVE_INFINITY;
  for (const s of visitStarts) if (s <= t0 && s > cut) cut = s;
  if (cut === Number.NEGATIVE_INFINITY) return 0; // one segment from the first event on
  let k = 0;
  while (k < closed && segmentKey(timeAt(k)) < cut) k++;
  return k;
}
