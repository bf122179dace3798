// Blocked attention (queries in blocks, gradient recomputed per block) against the plain form
// differentiated by the tfjs tape: same values, same gradients, same dropout mask.
import assert from 'node:assert/strict';
import { tf } from '../../../trainers/tf';
import { initBackend } from '../../../trainers/backend';
import { attention, attentionDropoutMask } from '../../../trainers/behrt/attention';
import { Behrt } from '../../../trainers/behrt/model';
import { makeBatch } from '../../../trainers/behrt/batch';
import { DEFAULT_MODEL, BehrtConfig } from '../../../trainers/behrt/config';
import { Rng } from '../../../trainers/random';

/** Largest |a - b| relative to the largest |b| (gradients span several orders of magnitude). */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

describe('BEHRT blocked attention', () => {
  before(() => initBackend('cpu'));

  it('draws the dropout mask per query row, so any block of rows is a slice of the full mask', () => {
    const d = { seed: 77, rate: 0.25 };
    const [B, H, L] = [2, 3, 40];
    const full = attentionDropoutMask(d, B, H, 0, L, L);
    const values = new Set(full);
    assert.deepEqual([...values].sort(), [0, Math.fround(1 / 0.75)]);
    const dropped = full.filter((x) => x === 0).length / full.length;
    assert.ok(Math.abs(dropped - 0.25) < 0.03, `dropped fraction ${dropped}`);
    const part = attentionDropoutMask(d, B, H, 13, 29, L);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let r = 13; r < 29; r++) {
          const want = full.subarray(((b * H + h) * L + r) * L, ((b * H + h) * L + r + 1) * L);
          const got = part.subarray(((b * H + h) * 16 + (r - 13)) * L, ((b * H + h) * 16 + (r - 13) + 1) * L);
          assert.deepEqual(got, want, `row ${b}/${h}/${r}`);
        }
      }
    }
    assert.notDeepEqual(attentionDropoutMask({ seed: 78, rate: 0.25 }, B, H, 0, L, L), full);
  });

  it('gives the plain attention\'s output and q/k/v gradients for uneven blocks, padding and dropout', () => {
    const [B, H, L, dh] = [2, 3, 11, 4];
    const rng = Rng.fromState(5);
    const rand = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
    const [q, k, v, w] = [rand([B, H, L, dh]), rand([B, H, L, dh]), rand([B, H, L, dh]), rand([B, H, L, dh])];
    // Row 1 has its last three keys padded.
    const mask = tf.tensor2d(Array.from({ length: B * L }, (_, i) => (i >= L && i % L >= L - 3 ? 0 : 1)), [B, L]);
    const bias = tf.reshape(tf.mul(tf.sub(1, mask), -1e9), [B, 1, 1, L]);
    for (const dropout of [null, { seed: 3, rate: 0.3 }]) {
      const loss = (block: number) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(attention(a, b, c, bias, dropout, block), w));
      const plainOut = attention(q, k, v, bias, dropout, 0).dataSync();
      const plainGrads = tf.grads(loss(0))([q, k, v]).map((g) => g.dataSync());
      for (const block of [1, 4, 10]) {
        const out = attention(q, k, v, bias, dropout, block).dataSync();
        assert.ok(relDiff(out, plainOut) < 1e-5, `output, block ${block}, dropout ${!!dropout}`);
        const grads = tf.grads(loss(block))([q, k, v]).map((g) => g.dataSync());
        grads.forEach((g, i) => assert.ok(relDiff(g, plainGrads[i]) < 1e-5, `grad ${'qkv'[i]}, block ${block}, dropout ${!!dropout}: ${relDiff(g, plainGrads[i])}`));
      }
      // Dropout really acts: outputs with and without it differ.
      if (dropout) assert.ok(relDiff(plainOut, attention(q, k, v, bias, null, 0).dataSync()) > 1e-3);
    }
  });

  it('a model with blocked attention (and recomputed layers) has the plain model\'s training loss and gradients', () => {
    const cfg: BehrtConfig = { ...DEFAULT_MODEL, hidden: 12, layers: 2, heads: 3, intermediate: 16, maxLen: 13, segmentVocab: 8, recordRankVocab: 8, dropout: 0.2 };
    const rng = Rng.fromState(11);
    const seq = (n: number) => ({
      tokens: Int32Array.from({ length: n }, (_, i) => (i === 0 ? 3 : 5 + rng.int(15))),
      ages: Int32Array.from({ length: n }, () => rng.int(100)),
      segments: Int32Array.from({ length: n }, () => rng.int(8)),
      recordRanks: Int32Array.from({ length: n }, () => rng.int(8)),
      domains: Int32Array.from({ length: n }, () => rng.int(5)),
    });
    const items = [seq(13), seq(9), seq(13)];
    const target = tf.tensor(Float32Array.from({ length: 3 * 13 * 12 }, () => rng.normal()), [3, 13, 12]);
    const lossAndGrads = (variant: Partial<BehrtConfig>) => {
      const m = new Behrt({ ...cfg, ...variant }, { vocabSize: 20, seed: 4 });
      m.setDropoutSeed(9, 2);
      const { value, grads } = tf.variableGrads(() => {
        const b = makeBatch(items);
        return tf.sum(tf.mul(m.encode(b, true), target)) as tf.Scalar;
      }, [...m.params.values()]);
      const byName = new Map([...m.params].map(([n, p]) => [n, Array.from(grads[p.name].dataSync())]));
      const loss = value.dataSync()[0];
      m.dispose();
      return { loss, byName };
    };
    const plain = lossAndGrads({ attentionBlock: 0, recomputeLayers: false });
    for (const variant of [{ attentionBlock: 5, recomputeLayers: false }, { attentionBlock: 4, recomputeLayers: true }]) {
      const got = lossAndGrads(variant);
      assert.ok(Math.abs(got.loss - plain.loss) <= 1e-5 * Math.abs(plain.loss), `loss ${got.loss} vs ${plain.loss}`);
      assert.equal(got.byName.size, plain.byName.size);
      // Relative to each tensor's own scale, except tensors whose true gradient is zero (the key
      // bias: softmax ignores a shift shared by all keys), which are float noise on both sides.
      const globalScale = Math.max(...[...plain.byName.values()].map((g) => g.reduce((a, x) => Math.max(a, Math.abs(x)), 0)));
      for (const [name, g] of plain.byName) {
        const other = got.byName.get(name)!;
        const scale = Math.max(g.reduce((a, x) => Math.max(a, Math.abs(x)), 0), 1e-4 * globalScale);
        const diff = other.reduce((a, x, i) => Math.max(a, Math.abs(x - g[i])), 0);
        assert.ok(diff <= 1e-4 * scale, `${name} (${JSON.stringify(variant)}): differs by ${diff} at scale ${scale}`);
      }
    }
    // The attention weights get a gradient at all (the comparison is not between zeros).
    assert.ok(plain.byName.get('l0.q.w')!.some((x) => Math.abs(x) > 1e-6));
  });
});
