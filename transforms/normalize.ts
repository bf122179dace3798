// Concept normalization (DESIGN.md section 5): a concept_id that is 0 or non-standard follows
// "Maps to" from the row's concept (or its source concept) to a standard concept. Both ids are
// kept; rows that cannot be mapped are kept and counted, never dropped. A concept id the given
// vocabulary does not hold (real conversions often ship only their local vocabularies) is kept
// as a token with its own id and counted as not_in_vocabulary.

import { Id } from '../schemas/ids';

export type MappingStatus = 'standard' | 'mapped' | 'unmapped' | 'not_in_vocabulary';

/** What normalization needs of the vocabulary: built by sources/vocabulary.ts or by hand in tests. */
export interface VocabularyIndex {
  /** Every concept id in CONCEPT. */
  known: Set<number>;
  /** Standard concepts (standard_concept = 'S', not invalidated). */
  standard: Set<number>;
  /** Valid "Maps to" targets of each concept, ascending. */
  mapsTo: Map<number, number[]>;
}

export interface Normalized {
  /** A number for every concept of the vocabulary; an unknown id keeps its exact form. */
  conceptId: Id;
  status: MappingStatus;
}

const MAX_CHAIN = 8;

export function buildVocabularyIndex(
  concepts: Iterable<{ concept_id: number; standard_concept: string | null; invalid_reason?: string | null }>,
  mapsToPairs: Iterable<[number, number]>,
): VocabularyIndex {
  const known = new Set<number>();
  const standard = new Set<number>();
  for (const c of concepts) {
    known.add(c.concept_id);
    if (c.standard_concept === 'S' && !c.invalid_reason) standard.add(c.concept_id);
  }
  const mapsTo = new Map<number, number[]>();
  for (const [from, to] of mapsToPairs) {
    if (from === to && !standard.has(to)) continue;
    const list = mapsTo.get(from);
    if (list) list.push(to);
    else mapsTo.set(from, [to]);
  }
  for (const list of mapsTo.values()) list.sort((a, b) => a - b);
  return { known, standard, mapsTo };
}

/** The standard concept reached from `id` through "Maps to", or null. Breadth-first, lowest id first. */
export function followMapsTo(vocab: VocabularyIndex, id: number): number | null {
  if (vocab.standard.has(id)) return id;
  let frontier = [id];
  const seen = new Set<number>(frontier);
  for (let depth = 0; depth < MAX_CHAIN && frontier.length; depth++) {
    const next: number[] = [];
    let best: number | null = null;
    for (const c of frontier) {
      for (const t of vocab.mapsTo.get(c) ?? []) {
        if (vocab.standard.has(t)) {
          if (best === null || t < best) best = t;
        } else if (!seen.has(t)) {
          seen.add(t);
          next.push(t);
        }
      }
    }
    if (best !== null) return best;
    frontier = next.sort((a, b) => a - b);
  }
  return null;
}

/**
 * Normalize one row's concept. `conceptId` is the row's *_concept_id, `sourceConceptId` its
 * *_source_concept_id (0 when absent). Without a mapping the row keeps its own id (the concept,
 * else the source concept): 'unmapped' when the vocabulary holds that id, 'not_in_vocabulary'
 * when it does not.
 */
export function normalizeConcept(vocab: VocabularyIndex, conceptId: Id, sourceConceptId: Id): Normalized {
  // The vocabulary index holds safe-integer ids only (sources/vocabulary.ts): a bigint is unknown.
  const known = (id: Id) => typeof id === 'number' && vocab.known.has(id);
  if (typeof conceptId === 'number' && conceptId !== 0 && vocab.standard.has(conceptId)) return { conceptId, status: 'standard' };
  for (const candidate of [conceptId, sourceConceptId]) {
    if (candidate === 0 || typeof candidate === 'bigint') continue;
    const target = followMapsTo(vocab, candidate);
    if (target !== null) return { conceptId: target, status: 'mapped' };
  }
  const own = conceptId !== 0 ? conceptId : sourceConceptId;
  return { conceptId: own, status: own !== 0 && !known(own) ? 'not_in_vocabulary' : 'unmapped' };
}

export interface MappingCounts {
  standard: number;
  mapped: number;
  unmapped: number;
  not_in_vocabulary: number;
}

export const emptyMappingCounts = (): MappingCounts => ({ standard: 0, mapped: 0, unmapped: 0, not_in_vocabulary: 0 });

/** Rows per table whose concept the vocabulary lacks (tables with none left out). */
export function notInVocabulary(mapping: Iterable<[string, MappingCounts]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [table, m] of [...mapping].sort((a, b) => (a[0] < b[0] ? -1 : 1))) if (m.not_in_vocabulary > 0) out[table] = m.not_in_vocabulary;
  return out;
}

/** The one warning of a run whose rows name concepts the vocabulary lacks, or null. */
export function notInVocabularyWarning(counts: Record<string, number>): string | null {
  const tables = Object.entries(counts);
  if (!tables.length) return null;
  const list = tables.map(([t, n]) => `${t} ${n.toLocaleString('en-US')}`).join(', ');
  return `rows whose concept is not in the vocabulary (${list}) are kept as tokens with their own concept ids, unmapped; pass --vocab DIR with the full Athena vocabulary to map them to standard concepts`;
}

/** A memoizing normalizer for the hot path: most rows repeat a few thousand concept pairs. */
export class ConceptNormalizer {
  private readonly cache = new Map<Id, Map<Id, Normalized>>();
  constructor(readonly vocab: VocabularyIndex) {}

  normalize(conceptId: Id, sourceConceptId: Id): Normalized {
    let inner = this.cache.get(conceptId);
    if (!inner) {
      inner = new Map();
      this.cache.set(conceptId, inner);
    }
    let r = inner.get(sourceConceptId);
    if (!r) {
      r = normalizeConcept(this.vocab, conceptId, sourceConceptId);
      inner.set(sourceConceptId, r);
    }
    return r;
  }
}
