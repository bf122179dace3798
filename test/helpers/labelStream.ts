// Feeding the incremental labeler as a stream would: records in a shuffled order that respects
// the watermark (bounded disorder), the watermark advanced now and then, and the final watermark
// at the end.
import { eventTime, IncrementalLabeler, LabelInput, LabelRecord } from '../../transforms/labels';
import { prng } from './syntheticOmop';

export interface StreamOptions {
  seed: number;
  /** Records arrive up to this much after their event time (ms). */
  jitterMs: number;
  /** The watermark runs this far ahead of the safe bound: records up to this late arrive (ms). */
  watermarkLeadMs: number;
  finalWatermark: number;
}

/** Feeds `inputs` to `labeler`; returns every record it emitted, in order. */
export function feedStream(labeler: IncrementalLabeler, inputs: LabelInput[], opts: StreamOptions): LabelRecord[] {
  const rnd = prng(opts.seed);
  const times = inputs.map(eventTime).filter((t): t is number => t !== null);
  const lo = Math.min(...times);
  const hi = Math.max(...times);
  // Arrival key: event time plus a random delay; person rows (no event time) anywhere.
  const keyed = inputs.map((r) => {
    const t = eventTime(r);
    return { r, a: t === null ? lo + rnd() * (hi - lo) : t + rnd() * opts.jitterMs };
  });
  keyed.sort((x, y) => x.a - y.a);
  const out: LabelRecord[] = [];
  let untilTick = 0;
  for (const { r, a } of keyed) {
    labeler.add(r);
    if (--untilTick <= 0) {
      // Every later record has event time >= a - jitter: a watermark below that makes none late.
      // Never past the end of the data: that would claim times the data do not cover.
      out.push(...labeler.advanceWatermark(Math.min(opts.finalWatermark, a - opts.jitterMs - 1 + opts.watermarkLeadMs)));
      untilTick = 1 + Math.floor(rnd() * 40);
    }
  }
  out.push(...labeler.advanceWatermark(opts.finalWatermark));
  return out;
}
