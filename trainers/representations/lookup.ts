// The one lookup of a token's vector, for every trainer: the representation table's own row;
// else the nearest "Maps to" target or ancestor that has one; for a decile token, else a
// sibling's row of the same decile (a lab under the same parent: decile k of one glucose test
// is nearer decile k of another than any base row); then base rows; else null, which the model
// treats as [UNK]. Every resolution is counted by kind.
import { readVocabularyLinks, type VocabularyLinks } from '../../sources/vocabularyFiles';
import { RepresentationTable } from './table';

/** What the lookup needs to know about the vocabulary. */
export interface VocabularyIndex {
  /** Standard concepts this concept "Maps to" (excluding itself). */
  mapsTo(conceptId: number): readonly number[];
  /** Ancestors, nearest first (fewest levels of separation). */
  ancestors(conceptId: number): readonly number[];
  /** Other children of the concept's direct parents ("Is a"), ascending. */
  siblings?(conceptId: number): readonly number[];
}

/** exact: the token's own row; base: the concept's base row for a decile token; sibling: a sibling's row of the same decile. */
export type LookupSource = 'exact' | 'mapped' | 'ancestor' | 'sibling' | 'base';

export interface LookupHit {
  vector: Float32Array;
  /** The row used: may differ from the token asked for. */
  conceptId: number;
  decile: number | null;
  source: LookupSource;
}

/** Relationship rows the index is built from (as sources/vocabularyFiles.ts reads them; self links ignored). */
export type IndexLinks = Pick<VocabularyLinks, 'mapsTo'> & Partial<Pick<VocabularyLinks, 'isA' | 'ancestors'>>;

/**
 * In-memory vocabulary index. Ancestors come from CONCEPT_ANCESTOR where given (ordered by
 * min_levels_of_separation, then id), and from the transitive closure of "Is a" (breadth first),
 * so vocabularies shipped without CONCEPT_ANCESTOR (Synthea27Nj's is empty) still have them.
 */
export class InMemoryVocabularyIndex implements VocabularyIndex {
  private readonly maps = new Map<number, number[]>();
  private readonly parents = new Map<number, number[]>();
  private readonly children = new Map<number, number[]>();
  private readonly ancestorRows = new Map<number, Array<[number, number]>>();

  constructor(links: IndexLinks, private readonly maxDepth = 20) {
    for (const [a, b] of links.mapsTo) if (a !== b) push(this.maps, a, b);
    for (const [c, p] of links.isA ?? []) if (c !== p) { push(this.parents, c, p); push(this.children, p, c); }
    for (const [anc, desc, lvl] of links.ancestors ?? []) {
      if (anc === desc) continue;
      let l = this.ancestorRows.get(desc);
      if (!l) this.ancestorRows.set(desc, (l = []));
      l.push([lvl, anc]);
    }
    for (const l of this.maps.values()) l.sort((x, y) => x - y);
    for (const l of this.parents.values()) l.sort((x, y) => x - y);
    for (const l of this.children.values()) l.sort((x, y) => x - y);
    for (const l of this.ancestorRows.values()) l.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  }

  mapsTo(conceptId: number): readonly number[] {
    return this.maps.get(conceptId) ?? [];
  }

  siblings(conceptId: number): readonly number[] {
    const out = new Set<number>();
    for (const p of this.parents.get(conceptId) ?? []) for (const c of this.children.get(p) ?? []) if (c !== conceptId) out.add(c);
    return [...out].sort((x, y) => x - y);
  }

  ancestors(conceptId: number): readonly number[] {
    // merge both sources by distance; BFS over "Is a" gives exact hop counts
    const dist = new Map<number, number>();
    for (const [lvl, anc] of this.ancestorRows.get(conceptId) ?? []) if (!dist.has(anc)) dist.set(anc, lvl);
    let frontier = [conceptId];
    const seen = new Set<number>([conceptId]);
    for (let depth = 1; depth <= this.maxDepth && frontier.length > 0; depth++) {
      const next: number[] = [];
      for (const c of frontier) {
        for (const p of this.parents.get(c) ?? []) {
          if (seen.has(p)) continue;
          seen.add(p);
          next.push(p);
          if (!dist.has(p) || dist.get(p)! > depth) dist.set(p, depth);
        }
      }
      frontier = next;
    }
    return [...dist.entries()].sort((x, y) => x[1] - y[1] || x[0] - y[0]).map((e) => e[0]);
  }
}

function push(m: Map<number, number[]>, k: number, v: number): void {
  const l = m.get(k);
  if (l) { if (!l.includes(v)) l.push(v); } else m.set(k, [v]);
}

/**
 * Candidate concepts for a token, nearest first: the concept, its "Maps to" targets, then the
 * ancestors of the concept and of its targets (by distance). For a decile token every candidate
 * is tried with the same decile first; only then base rows (decile null), since a mapped
 * concept's decile row describes the same value range while a base row does not.
 */
export class RepresentationLookup {
  /** Resolutions by kind (and 'unknown' for null), since construction. */
  counts: Record<LookupSource | 'unknown', number> = { exact: 0, mapped: 0, ancestor: 0, sibling: 0, base: 0, unknown: 0 };

  constructor(readonly table: RepresentationTable, readonly vocabulary: VocabularyIndex | null = null) {}

  get dim(): number { return this.table.dim; }

  /** The vector for (conceptId, decile), or null meaning [UNK]. */
  vectorFor(conceptId: number, decile: number | null = null): Float32Array | null {
    return this.resolve(conceptId, decile)?.vector ?? null;
  }

  /** Like vectorFor, saying which row was used and why. */
  resolve(conceptId: number, decile: number | null = null): LookupHit | null {
    const d = decile === null || decile < 0 ? null : decile;
    const candidates: Array<[number, LookupSource]> = [[conceptId, 'exact']];
    if (this.vocabulary) {
      const seen = new Set<number>([conceptId]);
      const mapped = this.vocabulary.mapsTo(conceptId);
      for (const m of mapped) if (!seen.has(m)) { seen.add(m); candidates.push([m, 'mapped']); }
      const anc: Array<[number, number]> = [];
      for (const [root, offset] of [[conceptId, 0], ...mapped.map((m) => [m, 1] as [number, number])] as Array<[number, number]>) {
        this.vocabulary.ancestors(root).forEach((a, rank) => anc.push([a, rank + offset]));
      }
      anc.sort((x, y) => x[1] - y[1]);
      for (const [a] of anc) if (!seen.has(a)) { seen.add(a); candidates.push([a, 'ancestor']); }
    }
    const hit = this.find(d, candidates);
    this.counts[hit ? hit.source : 'unknown']++;
    return hit;
  }

  private find(d: number | null, candidates: Array<[number, LookupSource]>): LookupHit | null {
    if (d !== null) {
      for (const [c, source] of candidates) {
        const v = this.table.get(c, d);
        if (v) return { vector: v, conceptId: c, decile: d, source };
      }
      if (this.vocabulary?.siblings) {
        const roots = candidates.filter(([, s]) => s !== 'ancestor').map(([c]) => c);
        for (const r of roots) {
          for (const s of this.vocabulary.siblings(r)) {
            const v = this.table.get(s, d);
            if (v) return { vector: v, conceptId: s, decile: d, source: 'sibling' };
          }
        }
      }
    }
    for (const [c, source] of candidates) {
      const v = this.table.get(c, null);
      if (v) return { vector: v, conceptId: c, decile: null, source: d !== null && source === 'exact' ? 'base' : source };
    }
    return null;
  }
}

/** The index of a vocabulary folder, ancestors up to maxAncestorLevels (default 3) levels apart. */
export async function loadVocabularyIndex(vocabDir: string, o: { maxAncestorLevels?: number } = {}): Promise<InMemoryVocabularyIndex> {
  return new InMemoryVocabularyIndex(await readVocabularyLinks(vocabDir, o));
}
