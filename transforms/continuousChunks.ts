// Pretraining chunks of a running stream (continuous mode): a chunk, once emitted, never changes.
// A person's events not yet in a chunk (the open chunk, in the order they arrived) close
//   - as a full chunk of maxEvents events, as soon as that many are open;
//   - all of them, once the latest of them lies `quietMs` of event time or more behind the
//     watermark (the person has been quiet: more of this stretch is unlikely to come).
// An event that comes later starts or extends the next open chunk, whatever its time: closed
// chunks are never emitted again, so every event is in exactly one chunk.

export const DEFAULT_CHUNK_QUIET_MS = 30 * 86_400_000;

/**
 * Ranges [from, to) of a person's events (arrival order) that close now. Events before `open`
 * are in chunks already; `timeAt(i)` is the event time of event i; watermark null: none yet.
 */
export function closingChunks(
  open: number,
  length: number,
  timeAt: (i: number) => number,
  watermark: number | null,
  maxEvents: number,
  quietMs: number,
): [number, number][] {
  const out: [number, number][] = [];
  let from = open;
  for (; length - from >= maxEvents; from += maxEvents) out.push([from, from + maxEvents]);
  if (from === length || watermark === null) return out;
  let latest = Number.NEGATIVE_INFINITY;
  for (let i = from; i < length; i++) latest = Math.max(latest, timeAt(i));
  if (latest <= watermark - quietMs) out.push([from, length]);
  return out;
}
