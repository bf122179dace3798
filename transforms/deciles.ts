// Decile binning of numeric measurements (DESIGN.md section 5): boundaries per (measurement
// concept, unit) fitted on the training split only, groups under 10 values not binned, 11
// quantiles with linear interpolation, bin = max(0, bisect_left(b, v) - 1) clamped to 0..9.
import { contentHash } from './hashing';
import { GrowableFloat64 } from '../common/growable';

export const DECILE_MIN_COUNT = 10;
export const NO_DECILE = -1;

/** The 11 quantiles 0, 0.1, ..., 1 of ascending values, linear interpolation (numpy's default). */
export function quantileBoundaries(sorted: ArrayLike<number>): number[] {
  const n = sorted.length;
  if (n === 0) throw new Error('quantiles of an empty group');
  const out: number[] = [];
  for (let k = 0; k <= 10; k++) {
    const h = ((n - 1) * k) / 10;
    const lo = Math.floor(h);
    const hi = Math.min(lo + 1, n - 1);
    out.push(sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]));
  }
  return out;
}

/** First index i with b[i] >= v (Python's bisect.bisect_left). */
export function bisectLeft(b: ArrayLike<number>, v: number): number {
  let lo = 0;
  let hi = b.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (b[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function decileOf(boundaries: ArrayLike<number>, value: number): number {
  const bin = bisectLeft(boundaries, value) - 1;
  return bin < 0 ? 0 : bin > 9 ? 9 : bin;
}

export interface DecileGroup {
  concept_id: number;
  unit: string | null;
  count: number;
  boundaries: number[];
}

export interface DecileArtifact {
  kind: 'medrep.deciles';
  /** Content hash of the groups: every output records the version it used. */
  version: string;
  min_count: number;
  fitted_on: string;
  groups: DecileGroup[];
}

/** Something per (concept, unit) group (a null unit for none): nested maps, no key built per value. */
class ByGroup<T> {
  private readonly byConcept = new Map<number, Map<string | null, T>>();
  get(conceptId: number, unit: string | null): T | undefined {
    return this.byConcept.get(conceptId)?.get(unit);
  }
  set(conceptId: number, unit: string | null, item: T): T {
    let units = this.byConcept.get(conceptId);
    if (!units) this.byConcept.set(conceptId, (units = new Map()));
    units.set(unit, item);
    return item;
  }
  values(): T[] {
    return [...this.byConcept.values()].flatMap((units) => [...units.values()]);
  }
}

/** The values of one (concept, unit) group. */
class GroupValues extends GrowableFloat64 {
  constructor(readonly concept: number, readonly unit: string | null) {
    super(64);
  }
}

/** Collects training-split values per group, then fits. */
export class DecileFitter {
  private readonly groups = new ByGroup<GroupValues>();

  add(conceptId: number, unit: string | null, value: number): void {
    if (!Number.isFinite(value)) return;
    const g = this.groups.get(conceptId, unit) ?? this.groups.set(conceptId, unit, new GroupValues(conceptId, unit));
    g.push(value);
  }

  fit(minCount = DECILE_MIN_COUNT, fittedOn = 'pretrain_train'): DecileArtifact {
    const groups: DecileGroup[] = [];
    for (const g of this.groups.values()) {
      if (g.length < minCount) continue;
      const sorted = g.toArray().sort();
      groups.push({ concept_id: g.concept, unit: g.unit, count: sorted.length, boundaries: quantileBoundaries(sorted) });
    }
    groups.sort((a, b) => a.concept_id - b.concept_id || compareUnits(a.unit, b.unit));
    const body = { min_count: minCount, fitted_on: fittedOn, groups };
    return { kind: 'medrep.deciles', version: contentHash(body), ...body };
  }
}

function compareUnits(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : 1;
}

/** Applies a fitted artifact; returns NO_DECILE where the value is missing or the group unbinned. */
export class DecileBinner {
  private readonly byGroup = new ByGroup<Float64Array>();
  constructor(readonly artifact: DecileArtifact) {
    for (const g of artifact.groups) this.byGroup.set(g.concept_id, g.unit, Float64Array.from(g.boundaries));
  }
  boundaries(conceptId: number, unit: string | null): Float64Array | undefined {
    return this.byGroup.get(conceptId, unit);
  }
  bin(conceptId: number, unit: string | null, value: number | null): number {
    if (value === null || !Number.isFinite(value)) return NO_DECILE;
    const b = this.byGroup.get(conceptId, unit);
    return b ? decileOf(b, value) : NO_DECILE;
  }
}
