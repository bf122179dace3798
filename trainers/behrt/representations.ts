// Concept vectors for frozen embeddings, read through one function type so any source plugs in
// (the representations issue's `vectorFor`, or this module's Parquet reader).
import { readFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { sha256 } from '../../transforms/hashing';
import type { FrozenTable } from './model';
import type { Token, Vocabulary } from './vocab';

export type VectorLookup = (conceptId: number, decile: number | null) => Float32Array | null;

export interface Representations {
  lookup: VectorLookup;
  dim: number;
  /** sha256 of the source file (recorded in checkpoints and run records). */
  hash: string;
  source: string;
}

/**
 * Reads a representation Parquet file (concept_id int64, decile int8 null for the base concept,
 * vector list<float32>). A (concept, decile) pair without its own row falls back to the
 * concept's base vector.
 */
export async function loadRepresentations(file: string): Promise<Representations> {
  const db = await DuckDBInstance.create(':memory:', { threads: '1' });
  const conn = await db.connect();
  const src = `read_parquet('${file.replace(/'/g, "''")}')`;
  let rows: Record<string, unknown>[];
  try {
    rows = (await conn.runAndReadAll(`SELECT concept_id::DOUBLE AS concept_id, decile::INTEGER AS decile, vector::FLOAT[] AS vector FROM ${src}`)).getRowObjectsJS();
  } catch (e) {
    throw new Error(`${file}: cannot read representations (need columns concept_id, decile, vector): ${(e as Error).message}`);
  }
  const map = new Map<string, Float32Array>();
  let dim = -1;
  rows.forEach((r, i) => {
    const v = r.vector as number[] | null;
    if (!Array.isArray(v) || v.some((x) => x === null || !Number.isFinite(x))) throw new Error(`${file}: row ${i + 1}, column vector: missing or non-finite values`);
    if (dim === -1) dim = v.length;
    if (v.length !== dim) throw new Error(`${file}: row ${i + 1}, column vector: ${v.length} values, earlier rows have ${dim}`);
    map.set(`${r.concept_id}|${r.decile ?? ''}`, Float32Array.from(v));
  });
  conn.closeSync();
  if (dim <= 0) throw new Error(`${file}: no representation vectors`);
  return { lookup: mapLookup(map), dim, hash: `sha256:${sha256(readFileSync(file))}`, source: file };
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

/**
 * Adapts any object with `vectorFor(conceptId, decile)` and `dim` (e.g. the representations
 * issue's RepresentationLookup, with its Maps-to / ancestor fallbacks) to what the trainers take.
 */
export function representationsFrom(
  source: { vectorFor(conceptId: number, decile: number | null): Float32Array | null; dim: number },
  meta: { hash: string; source: string },
): Representations {
  return { lookup: (c, d) => source.vectorFor(c, d), dim: source.dim, hash: meta.hash, source: meta.source };
}
