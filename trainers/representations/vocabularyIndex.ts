// Builds the lookup's vocabulary index from a vocabulary folder (Athena, CDM CSV or Parquet):
// "Maps to" and "Is a" rows of CONCEPT_RELATIONSHIP and, where present, CONCEPT_ANCESTOR.
import { streamAncestors, streamRelationships } from '../graph/vocabularyFiles';
import { InMemoryVocabularyIndex } from './lookup';

export interface VocabularyIndexOptions {
  /** Keep CONCEPT_ANCESTOR rows only up to this many levels (the full table is large). Default 3. */
  maxAncestorLevels?: number;
}

export async function loadVocabularyIndex(vocabDir: string, o: VocabularyIndexOptions = {}): Promise<InMemoryVocabularyIndex> {
  const maxLevels = o.maxAncestorLevels ?? 3;
  const mapsTo: Array<[number, number]> = [];
  const isA: Array<[number, number]> = [];
  const ancestors: Array<[number, number, number]> = [];
  await streamRelationships(vocabDir, (a, b, rel) => {
    if (rel === 'Maps to') mapsTo.push([a, b]);
    else if (rel === 'Is a') isA.push([a, b]);
  });
  await streamAncestors(vocabDir, (anc, desc, lvl) => { if (lvl > 0 && lvl <= maxLevels) ancestors.push([anc, desc, lvl]); });
  return new InMemoryVocabularyIndex({ mapsTo, isA, ancestors });
}
