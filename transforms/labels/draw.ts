// Seeded draws that do not depend on the order records arrive in: every visit gets a key from a
// SplitMix64 hash of its id mixed with the task seed; a draw takes the smallest key. The same hash
// is written in SQL in test/reference/, so the draw is reproducible outside this code.
import { splitmix64 } from '../splits';
import { Id } from '../../schemas/ids';

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64(visit_occurrence_id XOR SplitMix64(seed)), ids taken as 64-bit two's complement. */
export function drawKey(seed: number, visitId: Id): bigint {
  const mixedSeed = splitmix64(BigInt(seed) & MASK64);
  return splitmix64((BigInt(visitId) & MASK64) ^ mixedSeed);
}

/** A seeded whole number in [0, n). */
export function drawBelow(seed: number, visitId: Id, n: number): number {
  return Number(drawKey(seed, visitId) % BigInt(n));
}
