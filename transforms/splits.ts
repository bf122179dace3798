// Person splits by a stable hash of person_id (DESIGN.md section 5): 70% pretraining train, 15%
// pretraining validation, 15% finetuning, the latter 6:2:2 into train / validation / test. The
// hash is SplitMix64 of the id, so any language can reproduce it.

export const SPLITS = ['pretrain_train', 'pretrain_val', 'finetune_train', 'finetune_val', 'finetune_test'] as const;
export type Split = (typeof SPLITS)[number];

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64 finalizer of a 64-bit integer (two's complement for negative ids). */
export function splitmix64(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** Bucket 0..9999 of a person. */
export function splitBucket(personId: number | bigint, salt = 0n): number {
  const id = BigInt.asUintN(64, BigInt(personId) ^ salt);
  return Number(splitmix64(id) % 10000n);
}

export function splitOfBucket(bucket: number): Split {
  if (bucket < 7000) return 'pretrain_train';
  if (bucket < 8500) return 'pretrain_val';
  if (bucket < 9400) return 'finetune_train';
  if (bucket < 9700) return 'finetune_val';
  return 'finetune_test';
}

export function splitOf(personId: number | bigint, salt = 0n): Split {
  return splitOfBucket(splitBucket(personId, salt));
}

/** MEDS's names for our splits (train / tuning / held_out). */
export function medsSplit(split: Split): 'train' | 'tuning' | 'held_out' {
  if (split === 'pretrain_train' || split === 'finetune_train') return 'train';
  if (split === 'pretrain_val' || split === 'finetune_val') return 'tuning';
  return 'held_out';
}
