// The per-row MedRep step from an OMOP row (already typed) to a canonical event: concept
// normalization, unit naming and decile binning. Both runners call it, so the logic exists once.
import { ConceptNormalizer, MappingCounts, MappingStatus, emptyMappingCounts } from './normalize';
import { DecileBinner, NO_DECILE } from './deciles';
import { Id } from '../schemas/ids';

export interface RawEventFields {
  domain: number;
  conceptId: Id;
  sourceConceptId: Id;
  value: number | null;
  unitConceptId: Id;
  unitSource: string | null;
}

/** Result slots reused across rows (no allocation per row on the hot path). */
export interface CanonicalSlots {
  conceptId: Id;
  status: MappingStatus;
  unit: string | null;
  decile: number; // NO_DECILE when none
}

export type UnitNamer = (unitConceptId: Id, unitSource: string | null) => string | null;

/** A unit is the unit concept's code (UCUM) when the vocabulary knows it, else the source text. */
export function unitNamer(codeOf: (conceptId: number) => string | null | undefined): UnitNamer {
  const cache = new Map<Id, string | null>();
  return (unitConceptId, unitSource) => {
    // Vocabulary concept ids are safe integers: a bigint unit concept has no code.
    if (typeof unitConceptId === 'number' && unitConceptId) {
      let code = cache.get(unitConceptId);
      if (code === undefined) {
        code = codeOf(unitConceptId) ?? null;
        cache.set(unitConceptId, code);
      }
      if (code) return code;
    }
    if (unitSource === null) return null;
    const s = unitSource.trim();
    return s === '' ? null : s;
  };
}

export class EventCanonicalizer {
  readonly counts = new Map<string, MappingCounts>();
  constructor(
    readonly normalizer: ConceptNormalizer,
    readonly units: UnitNamer,
    readonly binner: DecileBinner | null,
  ) {}

  /**
   * Fills `out` for one row of `table`. Every readable row becomes an event: a concept the
   * vocabulary lacks stays as its own id (counted as not_in_vocabulary), so the labelers and the
   * token windows see the same rows.
   */
  apply(table: string, raw: RawEventFields, out: CanonicalSlots): void {
    const n = this.normalizer.normalize(raw.conceptId, raw.sourceConceptId);
    let counts = this.counts.get(table);
    if (!counts) {
      counts = emptyMappingCounts();
      this.counts.set(table, counts);
    }
    counts[n.status]++;
    out.conceptId = n.conceptId;
    out.status = n.status;
    out.unit = raw.domain === 3 ? this.units(raw.unitConceptId, raw.unitSource) : null;
    // Deciles are fitted per vocabulary concept (a number); an unknown bigint id has none.
    out.decile = raw.domain === 3 && this.binner && typeof n.conceptId === 'number' ? this.binner.bin(n.conceptId, out.unit, raw.value) : NO_DECILE;
  }
}
