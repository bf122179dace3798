// The model vocabulary: special indices, gender tokens, then the (concept_id, decile) pairs seen
// in training, in a sorted (hence reproducible) order. Also turns shard sequences into index
// arrays of at most maxLen tokens.
import { FIRST_CONCEPT_INDEX, GENDER_CONCEPTS, MAX_AGE, SPECIAL_TOKENS } from '../../transforms/tokens';
import { SHARD_CLS, SHARD_SEP } from '../../schemas/records';
import { contentHash } from '../../transforms/hashing';
import type { BehrtConfig } from './config';
import type { Sequence } from './data';

export interface Token {
  conceptId: number;
  decile: number | null;
}

const key = (conceptId: number, decile: number | null): string => `${conceptId}|${decile ?? ''}`;

export class Vocabulary {
  private readonly index = new Map<string, number>();
  constructor(readonly tokens: Token[]) {
    tokens.forEach((t, i) => this.index.set(key(t.conceptId, t.decile), FIRST_CONCEPT_INDEX + i));
  }

  /** Pairs in the events (domains 1-4) of `sequences`, optionally only those `keep` accepts. */
  static fromSequences(sequences: Iterable<Sequence>, keep: (t: Token) => boolean = () => true, minCount = 1): Vocabulary {
    const counts = new Map<string, { t: Token; n: number }>();
    for (const s of sequences) {
      for (let i = 0; i < s.conceptIds.length; i++) {
        if (s.domains[i] === 0) continue;
        const k = key(s.conceptIds[i], s.deciles[i]);
        const hit = counts.get(k);
        if (hit) hit.n++;
        else counts.set(k, { t: { conceptId: s.conceptIds[i], decile: s.deciles[i] ?? null }, n: 1 });
      }
    }
    const tokens = [...counts.values()].filter((c) => c.n >= minCount && keep(c.t)).map((c) => c.t);
    tokens.sort((a, b) => a.conceptId - b.conceptId || (a.decile ?? -1) - (b.decile ?? -1));
    return new Vocabulary(tokens);
  }

  /** This vocabulary followed by the new pairs of `other` (frozen tables grow at another site; indices of this one stay). */
  extendedWith(other: Vocabulary): Vocabulary {
    const added = other.tokens.filter((t) => !this.index.has(key(t.conceptId, t.decile)));
    return new Vocabulary([...this.tokens, ...added]);
  }

  /** Whether `tokens` (an earlier vocabulary) open this one in the same order: a model trained on them grows into this one. */
  extends(tokens: Token[]): boolean {
    return tokens.length <= this.tokens.length && tokens.every((t, i) => t.conceptId === this.tokens[i].conceptId && t.decile === this.tokens[i].decile);
  }

  get size(): number {
    return FIRST_CONCEPT_INDEX + this.tokens.length;
  }

  indexOf(conceptId: number, decile: number | null): number {
    return this.index.get(key(conceptId, decile)) ?? SPECIAL_TOKENS.UNK;
  }

  hash(): string {
    return contentHash(this.tokens.map((t) => [t.conceptId, t.decile]));
  }
}

/** Model inputs of one sequence (all the same length, at most maxLen). */
export interface Encoded {
  tokens: Int32Array;
  ages: Int32Array;
  segments: Int32Array;
  recordRanks: Int32Array;
  domains: Int32Array;
}

const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

/** Index of a prefix token ([CLS], [SEP], gender); anything else in domain 0 is unknown. */
function prefixIndex(conceptId: number, position: number): number {
  if (conceptId === SHARD_CLS) return SPECIAL_TOKENS.CLS;
  if (conceptId === SHARD_SEP) return SPECIAL_TOKENS.SEP;
  const g = position === 1 ? GENDER_CONCEPTS.indexOf(conceptId as (typeof GENDER_CONCEPTS)[number]) : -1;
  return g >= 0 ? 5 + g : SPECIAL_TOKENS.UNK;
}

/**
 * [CLS], gender, then the newest events up to maxLen tokens. Segments are re-based to the window (1 = its
 * oldest visit) so that a long history does not push them past the embedding; ranks are clamped.
 */
export function encodeSequence(s: Sequence, vocab: Vocabulary, cfg: BehrtConfig): Encoded {
  const n = s.conceptIds.length;
  // The prefix ([CLS], gender) is whatever domain-0 tokens open the sequence, at most two.
  let prefixLen = 0;
  while (prefixLen < Math.min(2, n) && s.domains[prefixLen] === 0) prefixLen++;
  const start = Math.max(prefixLen, n - (cfg.maxLen - prefixLen));
  const picks: number[] = [];
  for (let i = 0; i < prefixLen; i++) picks.push(i);
  for (let i = start; i < n; i++) picks.push(i);
  let minSeg = Infinity;
  for (let i = prefixLen; i < picks.length; i++) if (s.domains[picks[i]] !== 0) minSeg = Math.min(minSeg, s.segments[picks[i]]);
  const L = picks.length;
  const e: Encoded = {
    tokens: new Int32Array(L),
    ages: new Int32Array(L),
    segments: new Int32Array(L),
    recordRanks: new Int32Array(L),
    domains: new Int32Array(L),
  };
  picks.forEach((src, j) => {
    const domain = s.domains[src];
    const special = domain === 0;
    e.tokens[j] = special ? prefixIndex(s.conceptIds[src], src) : vocab.indexOf(s.conceptIds[src], s.deciles[src] ?? null);
    e.ages[j] = clamp(s.ages[src] ?? 0, 0, Math.min(MAX_AGE, cfg.ageVocab - 1));
    e.segments[j] = special ? 0 : clamp(s.segments[src] - minSeg + 1, 1, cfg.segmentVocab - 1);
    e.recordRanks[j] = special ? 0 : clamp(s.recordRanks[src], 0, cfg.recordRankVocab - 1);
    e.domains[j] = clamp(domain, 0, 4);
  });
  return e;
}

/** Whether a model index is a special or gender token (never masked, never a prediction target). */
export const isSpecialIndex = (index: number): boolean => index < FIRST_CONCEPT_INDEX;
