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

export type StreamStep = { add: LabelInput } | { watermark: number };

/** Feeds `inputs` to `labeler`; returns every record it emitted, in order. */
export function feedStream(labeler: IncrementalLabeler, inputs: LabelInput[], opts: StreamOptions): LabelRecord[] {
  return runSteps(labeler, streamSteps(inputs, opts));
}

export function runSteps(labeler: IncrementalLabeler, steps: StreamStep[]): LabelRecord[] {
  const out: LabelRecord[] = [];
  for (const step of steps) {
    if ('add' in step) labeler.add(step.add);
    else out.push(...labeler.advanceWatermark(step.watermark));
  }
  return out;
}

/** The arrivals and watermark advances of a shuffled, watermark-respecting stream. */
export function streamSteps(inputs: LabelInput[], opts: StreamOptions): StreamStep[] {
  const rnd = prng(opts.seed);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const r of inputs) {
    const t = eventTime(r);
    if (t !== null) {
      lo = Math.min(lo, t);
      hi = Math.max(hi, t);
    }
  }
  // Arrival key: event time plus a random delay; person rows (no event time) anywhere.
  const keyed = inputs.map((r) => {
    const t = eventTime(r);
    return { r, a: t === null ? lo + rnd() * (hi - lo) : t + rnd() * opts.jitterMs };
  });
  keyed.sort((x, y) => x.a - y.a);
  const steps: StreamStep[] = [];
  let untilTick = 0;
  for (const { r, a } of keyed) {
    steps.push({ add: r });
    if (--untilTick <= 0) {
      // Every later record has event time >= a - jitter: a watermark below that makes none late.
      // Never past the end of the data: that would claim times the data do not cover.
      steps.push({ watermark: Math.min(opts.finalWatermark, a - opts.jitterMs - 1 + opts.watermarkLeadMs) });
      untilTick = 1 + Math.floor(rnd() * 40);
    }
  }
  steps.push({ watermark: opts.finalWatermark });
  return steps;
}
