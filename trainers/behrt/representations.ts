// Concept vectors for frozen embeddings, read through one function type: a representation table
// served by the one lookup with fallbacks (trainers/representations/lookup.ts), or a test's map.
import { readFileSync } from 'node:fs';
import { sha256 } from '../../transforms/hashing';
import { loadRepresentations as loadTable, RepresentationTable } from '../representations/table';
import { RepresentationLookup, type VocabularyIndex, loadVocabularyIndex } from '../representations/lookup';
import type { FrozenTable } from './model';
import type { Token, Vocabulary } from './vocab';

export type VectorLookup = (conceptId: number, decile: number | null) => Float32Array | null;

export interface Representations {
  lookup: VectorLookup;
  dim: number;
  /** sha256 of the source file (recorded in checkpoints and run records). */
  hash: string;
  source: string;
  /** Distinct tokens looked up so far, by how the lookup resolved them (exact, mapped, ancestor, sibling, base, unknown). */
  resolutions?: () => Record<string, number>;
}

/**
 * Reads a representation Parquet file (concept_id int64, decile int8 null for the base
 * concept, vector list<float32>) and serves it through the one representation lookup
 * (trainers/representations/lookup.ts): the token's row; with a vocabulary (a folder or an
 * index), its "Maps to" targets, ancestors nearest first and, for a decile token, a sibling's row
 * of the same decile; then base rows; else [UNK]. Every token's resolution is counted by kind.
 */
export async function loadRepresentations(file: string, o: { vocab?: string | VocabularyIndex | null; standardize?: boolean } = {}): Promise<Representations> {
  let table: RepresentationTable;
  try {
    table = await loadTable(file);
  } catch (e) {
    throw new Error(`${file}: cannot read representations (need columns concept_id, decile, vector): ${(e as Error).message}`);
  }
  if (table.size === 0 || table.dim <= 0) throw new Error(`${file}: no representation vectors`);
  for (let i = 0; i < table.vectors.length; i++) {
    if (!Number.isFinite(table.vectors[i])) throw new Error(`${file}: row ${Math.floor(i / table.dim) + 1}, column vector: missing or non-finite values`);
  }
  const vocabulary = typeof o.vocab === 'string' ? await loadVocabularyIndex(o.vocab, { maxAncestorLevels: 20 }) : o.vocab ?? null;
  if (o.standardize ?? true) standardizeTable(table);
  const resolver = new RepresentationLookup(table, vocabulary);
  const kinds = new Map<string, string>();
  const lookup: VectorLookup = (c, d) => {
    const hit = resolver.resolve(c, d);
    kinds.set(`${c}|${d ?? ''}`, hit ? hit.source : 'unknown');
    return hit ? hit.vector : null;
  };
  const resolutions = () => {
    const out: Record<string, number> = {};
    for (const k of [...kinds.values()].sort()) out[k] = (out[k] ?? 0) + 1;
    return out;
  };
  return { lookup, dim: table.dim, hash: `sha256:${sha256(readFileSync(file))}`, source: file, resolutions };
}

/**
 * Centres the table (its mean row removed) and scales it to a root mean square of 1 per
 * component, in place. Centred cosines, which the representation benchmark measures, do not
 * change; what changes is what BEHRT's frozen path sees: lexical vectors have components of
 * about 0.05, and a model reading them through a projection initialised at N(0, 0.02) stayed on
 * the base-rate plateau (mortality, text-only: training loss at the label entropy for 11 epochs,
 * stopped there; standardized: left it at epoch 14, external AUROC 0.80 instead of 0.36).
 */
export function standardizeTable(table: RepresentationTable): void {
  const { dim, vectors } = table;
  const n = table.size;
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) mean[k] += vectors[i * dim + k] / n;
  let ss = 0;
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) ss += (vectors[i * dim + k] - mean[k]) ** 2;
  const rms = Math.sqrt(ss / (n * dim));
  const s = rms > 0 ? 1 / rms : 1;
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) vectors[i * dim + k] = (vectors[i * dim + k] - mean[k]) * s;
}

/** Lookup over an in-memory map keyed `${conceptId}|${decile ?? ''}`, falling back to the base concept. */
export function mapLookup(map: Map<string, Float32Array>): VectorLookup {
  return (c, d) => map.get(`${c}|${d ?? ''}`) ?? (d === null ? null : map.get(`${c}|`) ?? null);
}

export const hasVector = (lookup: VectorLookup) => (t: Token) => lookup(t.conceptId, t.decile) !== null;

/** The frozen table of a vocabulary: row i = vector of model index FIRST_CONCEPT_INDEX + i. */
export function frozenTableFor(vocab: Vocabulary, reps: Pick<Representations, 'lookup' | 'dim'>): FrozenTable {
  const vectors = new Float32Array(vocab.tokens.length * reps.dim);
  vocab.tokens.forEach((t, i) => {
    const v = reps.lookup(t.conceptId, t.decile);
    if (!v) throw new Error(`no vector for concept ${t.conceptId} decile ${t.decile}: frozen vocabularies hold only tokens with vectors`);
    if (v.length !== reps.dim) throw new Error(`vector of concept ${t.conceptId} has ${v.length} values, expected ${reps.dim}`);
    vectors.set(v, i * reps.dim);
  });
  return { vectors, dim: reps.dim };
}
