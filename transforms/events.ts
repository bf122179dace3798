// The per-row MedRep step from an OMOP row (already typed) to a canonical event: concept
// normalization, unit naming and decile binning. Both runners call it, so the logic exists once.
import { ConceptNormalizer, MappingCounts, emptyMappingCounts } from './normalize';
import { DecileBinner, NO_DECILE } from './deciles';
import { Id } from '../schemas/ids';
import { CanonicalEvent, OmopEventRow } from '../schemas/canonicalEvent';
import { EventMapping } from '../schemas/omop';

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
   * Fills `out` with the canonical event of one row of `omopTable` (its event mapping `ev`).
   * Every readable row becomes an event: a concept the vocabulary lacks stays as its own id
   * (counted as not_in_vocabulary), so the labelers and the token windows see the same rows.
   */
  canonicalizeRow(omopTable: string, ev: EventMapping, row: OmopEventRow, out: CanonicalEvent): void {
    const n = this.normalizer.normalize(row.conceptId, row.sourceConceptId);
    let counts = this.counts.get(omopTable);
    if (!counts) {
      counts = emptyMappingCounts();
      this.counts.set(omopTable, counts);
    }
    counts[n.status]++;
    const measurement = ev.domain === 3;
    out.personId = row.personId;
    out.timeMs = row.timeMs;
    out.table = ev.eventTable;
    out.omopTable = omopTable;
    out.domain = ev.domain;
    out.conceptId = n.conceptId;
    out.sourceConceptId = row.sourceConceptId;
    out.unit = measurement ? this.units(row.unitConceptId, row.unitSource) : null;
    // Deciles are fitted per vocabulary concept (a number); an unknown bigint id has none.
    out.decile = measurement && this.binner && typeof n.conceptId === 'number' ? this.binner.bin(n.conceptId, out.unit, row.value) : NO_DECILE;
    out.value = row.value;
    out.visitId = row.visitId;
    out.rowId = row.rowId;
    out.row = row.row;
  }
}
