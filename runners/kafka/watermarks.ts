// Event-time watermarks of a stream partition (bounded out-of-orderness, as stream processors
// compute them). Each source feeding the partition (one omop.<table> partition: its rows reach
// the trajectory stage through medrep.canonical) keeps the latest event time it brought; the
// source's watermark is that time minus the allowed out-of-orderness. The partition's watermark
// is the lowest of its active sources: a source that brought nothing for the idle timeout (wall
// clock) no longer holds it back, and once every source is idle the highest counts. It never
// goes back, and an end-of-load marker's data end raises it (the producer says the load is whole).

export const DEFAULT_OUT_OF_ORDERNESS_MS = 86_400_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

export interface WatermarkOptions {
  /** How far behind the latest event time of a source its records may still come (ms). */
  outOfOrdernessMs: number;
  /** A source silent for this long (wall clock, ms) no longer holds the watermark back. */
  idleTimeoutMs: number;
}

export interface SourceClock {
  /** Latest event time seen (epoch ms). */
  t: number;
  /** Wall clock when the source last brought a record (epoch ms). */
  seen: number;
}

/** What a partition keeps across transactions (in its state store, so a restart goes on from it). */
export interface WatermarkState {
  sources: Record<string, SourceClock>;
  /** The watermark last computed (null: no event yet). */
  wm: number | null;
  /** Raised by end-of-load markers: the data end the producer declared. */
  floor: number | null;
}

export const NO_WATERMARK: WatermarkState = { sources: {}, wm: null, floor: null };

/** A source brought records up to event time `t` at wall clock `now`. */
export function observeSource(state: WatermarkState, source: string, t: number, now: number): void {
  const s = state.sources[source];
  if (s === undefined) state.sources[source] = { t, seen: now };
  else {
    if (t > s.t) s.t = t;
    s.seen = now;
  }
}

/** Raises the floor to an end-of-load marker's data end. */
export function raiseFloor(state: WatermarkState, dataEnd: number): void {
  state.floor = state.floor === null ? dataEnd : Math.max(state.floor, dataEnd);
}

/** The partition's watermark at wall clock `now` (stored in state.wm; never lower than before). */
export function advanceWatermark(state: WatermarkState, opts: WatermarkOptions, now: number): number | null {
  const held = lowestActive(Object.values(state.sources).map((c) => ({ v: c.t, active: now - c.seen < opts.idleTimeoutMs })));
  let wm = held === null ? null : held - opts.outOfOrdernessMs;
  for (const w of [state.wm, state.floor]) if (w !== null && (wm === null || w > wm)) wm = w;
  state.wm = wm;
  return wm;
}

/**
 * Whether the partition's watermark would move at wall clock `now` with no new record: a source
 * went idle since it was last computed, so a lower one no longer holds it back.
 */
export function watermarkWouldAdvance(state: WatermarkState | undefined, opts: WatermarkOptions, now: number): boolean {
  if (state === undefined) return false;
  const next = advanceWatermark(structuredClone(state), opts, now);
  return next !== null && (state.wm === null || next > state.wm);
}

/** The stage's watermark over its partitions: the lowest of those not idle (else the highest). */
export function stageWatermark(partitions: Iterable<{ wm: number | null; idle: boolean }>): number | null {
  const all = [...partitions].filter((p) => p.wm !== null) as { wm: number; idle: boolean }[];
  return lowestActive(all.map((p) => ({ v: p.wm, active: !p.idle })));
}

/** The rule of sources and of partitions alike: the lowest active value holds back; none active, the highest. */
function lowestActive(xs: { v: number; active: boolean }[]): number | null {
  if (xs.length === 0) return null;
  const active = xs.filter((x) => x.active);
  return active.length > 0 ? Math.min(...active.map((x) => x.v)) : Math.max(...xs.map((x) => x.v));
}

/** A watermark as the status and health lines print it: ISO time, or "none". */
export function watermarkText(wm: number | null): string {
  return wm === null ? 'none' : new Date(wm).toISOString().replace('.000Z', 'Z');
}

/** The committed offset's metadata that carries a partition's watermark. */
export function watermarkMetadata(wm: number | null): string {
  return JSON.stringify({ watermark: wm });
}

/** The watermark in a committed offset's metadata; undefined when it carries none. */
export function watermarkOfMetadata(metadata: string | null | undefined): number | null | undefined {
  if (!metadata) return undefined;
  try {
    const v = JSON.parse(metadata) as { watermark?: unknown };
    return typeof v.watermark === 'number' || v.watermark === null ? v.watermark : undefined;
  } catch {
    return undefined;
  }
}
