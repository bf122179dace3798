// Pads encoded sequences into one batch of tensors (to the batch's longest sequence, not maxLen).
import { tf } from '../tf';
import type { Batch } from './model';
import type { Encoded } from './vocab';

export function makeBatch(items: Encoded[], tokensOverride?: Int32Array[]): Batch {
  const B = items.length;
  const L = Math.max(...items.map((e) => e.tokens.length));
  const tokens = new Int32Array(B * L);
  const ages = new Int32Array(B * L);
  const segments = new Int32Array(B * L);
  const ranks = new Int32Array(B * L);
  const domains = new Int32Array(B * L);
  const mask = new Float32Array(B * L);
  items.forEach((e, i) => {
    const off = i * L;
    tokens.set(tokensOverride ? tokensOverride[i] : e.tokens, off);
    ages.set(e.ages, off);
    segments.set(e.segments, off);
    ranks.set(e.recordRanks, off);
    domains.set(e.domains, off);
    mask.fill(1, off, off + e.tokens.length);
  });
  return {
    tokens: tf.tensor2d(tokens, [B, L], 'int32'),
    ages: tf.tensor2d(ages, [B, L], 'int32'),
    segments: tf.tensor2d(segments, [B, L], 'int32'),
    recordRanks: tf.tensor2d(ranks, [B, L], 'int32'),
    domains: tf.tensor2d(domains, [B, L], 'int32'),
    mask: tf.tensor2d(mask, [B, L], 'float32'),
    padded: items.some((e) => e.tokens.length < L),
  };
}

export function disposeBatch(b: Batch): void {
  for (const t of Object.values(b)) if (t instanceof tf.Tensor) t.dispose();
}
