// Scaled dot-product attention with dropout on the probabilities, in two forms that compute the
// same values and gradients:
//  - plain: the whole [B, heads, L, L] score tensor at once, differentiated by the tfjs tape
//    (fast for short sequences);
//  - blocked: queries in blocks of `block` rows, with a hand-written gradient that recomputes each
//    block's scores in the backward pass, so that only one block's [B, heads, block, L] tensors
//    are ever alive. At 2048 tokens and 12 heads a full score tensor is 200 MB and the tape keeps
//    several per layer (scores, probabilities, dropout mask, their gradients); a 256-row block is
//    25 MB.
// The dropout mask is drawn per (batch row, head, query row) from its own seeded stream, so that
// any block of query rows can regenerate exactly its part of the mask (in the plain form too).
import { tf, Tensor } from '../tf';
import { mixSeed } from '../random';

export interface AttentionDropout {
  seed: number;
  rate: number;
}

/**
 * Dropout multipliers for query rows [q0, q1) of every (batch row, head): [B, heads, q1-q0, L],
 * each 0 (dropped, with probability `rate`) or 1/(1-rate), as tf.dropout scales them.
 */
export function attentionDropoutMask(d: AttentionDropout, B: number, heads: number, q0: number, q1: number, L: number): Float32Array {
  const rows = q1 - q0;
  const out = new Float32Array(B * heads * rows * L);
  const keep = 1 / (1 - d.rate);
  // Compare 32-bit integers rather than floats in [0, 1): u < rate  <=>  bits < rate * 2^32.
  const threshold = Math.floor(d.rate * 4294967296);
  let o = 0;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      for (let r = q0; r < q1; r++) {
        // Mulberry32 (as Rng.next), inlined: 2048 draws per row, tens of millions per step.
        let state = mixSeed(d.seed, b, h, r);
        for (let c = 0; c < L; c++) {
          state = (state + 0x6d2b79f5) >>> 0;
          let t = Math.imul(state ^ (state >>> 15), state | 1);
          t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
          out[o++] = ((t ^ (t >>> 14)) >>> 0) < threshold ? 0 : keep;
        }
      }
    }
  }
  return out;
}

function maskTensor(d: AttentionDropout, B: number, heads: number, q0: number, q1: number, L: number): Tensor {
  return tf.tensor4d(attentionDropoutMask(d, B, heads, q0, q1, L), [B, heads, q1 - q0, L]);
}

/** Probabilities of query rows [q0, q1): softmax(q_block k^T + bias) and, with dropout, the dropped ones. */
function blockProbs(qb: Tensor, kT: Tensor, bias: Tensor | null, mask: Tensor | null): { p: Tensor; pd: Tensor } {
  const raw = tf.matMul(qb as tf.Tensor4D, kT as tf.Tensor4D);
  const p = tf.softmax(bias ? tf.add(raw, bias) : raw);
  return { p, pd: mask ? tf.mul(p, mask) : p };
}

/**
 * Attention context [B, heads, L, dh] of q (already scaled by 1/sqrt(dh)), k, v [B, heads, L, dh];
 * `bias` [B, 1, 1, L] is added to the scores (padding keys); `block` > 0 and < L selects the
 * blocked form.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | null, dropout: AttentionDropout | null, block: number): Tensor {
  const [B, heads, L] = q.shape;
  if (!(block > 0 && block < L)) {
    const raw = tf.matMul(q as tf.Tensor4D, k as tf.Tensor4D, false, true);
    let probs = tf.softmax(bias ? tf.add(raw, bias) : raw);
    if (dropout) probs = tf.mul(probs, maskTensor(dropout, B, heads, 0, L, L));
    return tf.matMul(probs as tf.Tensor4D, v as tf.Tensor4D);
  }
  return blockedAttention(q, k, v, bias, dropout, block);
}

function blockedAttention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | null, dropout: AttentionDropout | null, block: number): Tensor {
  const [B, heads, L, dh] = q.shape;
  const starts: number[] = [];
  for (let s = 0; s < L; s += block) starts.push(s);
  const rowsOf = (s: number) => Math.min(block, L - s);
  const sliceRows = (t: Tensor, s: number) => tf.slice(t, [0, 0, s, 0], [B, heads, rowsOf(s), dh]);
  const maskOf = (s: number) => (dropout ? maskTensor(dropout, B, heads, s, s + rowsOf(s), L) : null);
  const swapLast = (t: Tensor) => tf.transpose(t, [0, 1, 3, 2]);

  const f = tf.customGrad(((qIn: Tensor, kIn: Tensor, vIn: Tensor, save: (ts: Tensor[]) => void) => {
    // The bias is made inside the loss function: saving it keeps it alive for the backward pass.
    save(bias ? [qIn, kIn, vIn, bias] : [qIn, kIn, vIn]);
    const value = tf.tidy(() => {
      const kT = swapLast(kIn);
      const outs = starts.map((s) => tf.tidy(() => tf.matMul(blockProbs(sliceRows(qIn, s), kT, bias, maskOf(s)).pd as tf.Tensor4D, vIn as tf.Tensor4D)));
      return tf.concat(outs, 2);
    });
    return {
      value,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [qs, ks, vs] = saved;
        const savedBias = saved[3] ?? null;
        const kT = swapLast(ks);
        const vT = swapLast(vs);
        let dk = tf.zerosLike(ks);
        let dv = tf.zerosLike(vs);
        const dqs: Tensor[] = [];
        for (const s of starts) {
          const [dq, dkNext, dvNext] = tf.tidy(() => {
            const qb = sliceRows(qs, s);
            const mask = maskOf(s);
            const { p, pd } = blockProbs(qb, kT, savedBias, mask);
            const dOut = sliceRows(dy, s);
            // ctx = pd v: d pd = dOut v^T, d v = pd^T dOut.
            const dPd = tf.matMul(dOut as tf.Tensor4D, vT as tf.Tensor4D);
            const dvAdd = tf.add(dv, tf.matMul(swapLast(pd) as tf.Tensor4D, dOut as tf.Tensor4D));
            const dP = mask ? tf.mul(dPd, mask) : dPd;
            // Softmax: d s = p * (d p - sum(d p * p)) over the key axis.
            const dS = tf.mul(p, tf.sub(dP, tf.sum(tf.mul(dP, p), -1, true)));
            // s = q_block k^T: d q_block = dS k, d k += dS^T q_block.
            return [tf.matMul(dS as tf.Tensor4D, ks as tf.Tensor4D), tf.add(dk, tf.matMul(swapLast(dS) as tf.Tensor4D, qb as tf.Tensor4D)), dvAdd];
          });
          dk.dispose();
          dv.dispose();
          dk = dkNext;
          dv = dvNext;
          dqs.push(dq);
        }
        const dq = tf.concat(dqs, 2);
        for (const t of [...dqs, kT, vT]) t.dispose();
        return [dq, dk, dv];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (f as unknown as (...t: Tensor[]) => Tensor)(q, k, v);
}
