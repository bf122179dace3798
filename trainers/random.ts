// Seeded randomness for every trainer: sampling, masks, shuffles, dropout and initial weights come
// from here, so that the same input and seed give the same vectors and weights.
//
// One generator (mulberry32) with two seedings, each the one its trainers were trained with:
// changing either would change every vector or checkpoint trained before, so both are kept.
// - Rng.seeded(seed): the representation trainers (text MLM, GRACE, lexical vectors, MedTok,
//   evaluation samples) and the synthetic vocabulary; the seed is mixed with the golden ratio.
// - Rng.fromState(state): the EHR models, whose every stream is a pure function of
//   (seed, stream, step) through mixSeed, so that a run resumed from a checkpoint draws exactly
//   what an uninterrupted run would have drawn; the state is taken as given.

/** 32-bit mix of several integers (murmur3 finaliser over a running hash). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    let k = Math.imul(p | 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * How normal() turns a uniform draw x into Box-Muller's radius argument u in (0, 1]: 1 - x
 * (seeded), or x clamped to at least 1e-12 (fromState). Part of each seeding, for the same reason.
 */
type RadiusDraw = 'complement' | 'clamped';

/** Mulberry32: small, fast, good enough for sampling, masking, shuffles and initialisation. */
export class Rng {
  private state: number;

  private constructor(state: number, private readonly radius: RadiusDraw) {
    this.state = state >>> 0;
  }

  /** The representation trainers' seeding: the seed mixed with the golden ratio. */
  static seeded(seed: number): Rng {
    return new Rng((seed >>> 0) ^ 0x9e3779b9, 'complement');
  }

  /** The EHR trainers' seeding: the state as given, usually mixSeed(seed, stream, step). */
  static fromState(state: number): Rng {
    return new Rng(state, 'clamped');
  }

  /** Uniform in [0, 1). attention.ts inlines this step for dropout masks: keep the two equal. */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller, one value per two draws). */
  normal(): number {
    const x = this.next();
    const u = this.radius === 'complement' ? 1 - x : Math.max(x, 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** In-place Fisher-Yates shuffle of an array or typed array. */
  shuffle<A extends { length: number; [i: number]: unknown }>(items: A): A {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }
}

/** Glorot (Xavier) uniform initial weights, row-major [fanIn, fanOut]. */
export function glorotUniform(rng: Rng, fanIn: number, fanOut: number): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const w = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < w.length; i++) w[i] = (rng.next() * 2 - 1) * limit;
  return w;
}
