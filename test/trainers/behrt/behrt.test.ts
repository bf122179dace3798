import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../../../trainers/tf';
import { initBackend } from '../../../trainers/backend';
import { Behrt, gatherRows } from '../../../trainers/behrt/model';
import { makeBatch } from '../../../trainers/behrt/batch';
import { DEFAULT_MODEL, DEFAULT_TRAIN, BehrtConfig } from '../../../trainers/behrt/config';
import { encodeSequence, Vocabulary } from '../../../trainers/behrt/vocab';
import { maskTokens } from '../../../trainers/behrt/masking';
import { Rng } from '../../../trainers/random';
import { trainBehrt } from '../../../trainers/behrt/train';
import { mapLookup } from '../../../trainers/behrt/representations';
import { FIRST_CONCEPT_INDEX, SPECIAL_TOKENS } from '../../../transforms/tokens';
import { syntheticSequences } from '../../helpers/ehrFixtures';
import { readCheckpointMeta, resolveCheckpoint } from '../../../trainers/behrt/checkpoint';
import { tempDir } from '../../helpers';

const tiny: BehrtConfig = { ...DEFAULT_MODEL, hidden: 8, layers: 1, heads: 2, intermediate: 16, maxLen: 16, segmentVocab: 8, recordRankVocab: 8 };
const snapshot = (m: Behrt) => new Map([...m.params].map(([n, v]) => [n, Float32Array.from(v.dataSync())]));

describe('BEHRT model', () => {
  before(() => initBackend('cpu'));

  it('embeds a*concept + b*age + c*segment + d*rank (+ e*domain) with a=1, b..e=0 at start', () => {
    const cfg = { ...tiny, domainEmbedding: true };
    const m = new Behrt(cfg, { vocabSize: 12, seed: 1 });
    assert.equal(m.params.get('emb.a')!.dataSync()[0], 1);
    for (const s of ['b', 'c', 'd', 'e']) assert.equal(m.params.get(`emb.${s}`)!.dataSync()[0], 0);
    const enc = { tokens: Int32Array.of(3, 5, 9), ages: Int32Array.of(0, 0, 40), segments: Int32Array.of(0, 0, 1), recordRanks: Int32Array.of(0, 0, 2), domains: Int32Array.of(0, 0, 3) };
    const batch = makeBatch([enc]);
    const row = (name: string, i: number) => Array.from(m.params.get(name)!.dataSync().slice(i * 8, i * 8 + 8));
    // With the start values the sum is the concept vector alone.
    const start = m.embeddingSum(batch).arraySync() as number[][];
    start[2].forEach((v, k) => assert.ok(Math.abs(v - row('emb.concept', 9)[k]) < 1e-6));
    // Set the scalars and compare with the sum computed by hand.
    const scal = { a: 0.5, b: 2, c: -1, d: 3, e: 0.25 };
    for (const [k, v] of Object.entries(scal)) m.params.get(`emb.${k}`)!.assign(tf.scalar(v));
    const got = m.embeddingSum(batch).arraySync() as number[][];
    for (let k = 0; k < 8; k++) {
      const want = scal.a * row('emb.concept', 9)[k] + scal.b * row('emb.age', 40)[k] + scal.c * row('emb.segment', 1)[k] + scal.d * row('emb.rank', 2)[k] + scal.e * row('emb.domain', 3)[k];
      assert.ok(Math.abs(got[2][k] - want) < 1e-5, `dim ${k}: ${got[2][k]} vs ${want}`);
    }
    m.dispose();
  });

  it('gathers rows with a scatter-add gradient equal to tf.gather\'s', () => {
    const table = tf.randomNormal([5, 3], 0, 1, 'float32', 7);
    const idx = tf.tensor1d([1, 1, 4, 0], 'int32');
    const w = tf.randomNormal([4, 3], 0, 1, 'float32', 8);
    const g1 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t, idx), w)))(table);
    const g2 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), w)))(table);
    assert.deepEqual(Array.from(g1.dataSync()), Array.from(g2.dataSync()));
  });

  it('keeps a frozen representation table fixed while every trainable weight moves', async () => {
    const seqs = syntheticSequences({ persons: 40, seed: 3, maxEvents: 12 });
    const vecs = new Map<string, Float32Array>();
    const rng = Rng.fromState(9);
    const vocab0 = Vocabulary.fromSequences(seqs);
    for (const t of vocab0.tokens) vecs.set(`${t.conceptId}|${t.decile ?? ''}`, Float32Array.from({ length: 6 }, () => rng.normal()));
    const reps = { lookup: mapLookup(vecs), dim: 6, hash: 'sha256:test', source: 'memory' };
    const res = await trainBehrt({ task: 'pretrain', train: seqs, val: seqs.slice(0, 8), vocab: vocab0, embeddings: 'medrep', reps, model: tiny, trainCfg: { ...DEFAULT_TRAIN, batchSize: 8, epochs: 1 }, seed: 5, shards: [], maxSteps: 0 });
    const before = snapshot(res.model);
    const frozenBefore = Float32Array.from(res.model.frozenTable!.dataSync());
    assert.ok(res.model.projected, 'vectors of size 6 need a projection to hidden 8');
    res.model.dispose();
    const after = await trainBehrt({ task: 'pretrain', train: seqs, val: seqs.slice(0, 8), vocab: vocab0, embeddings: 'medrep', reps, model: tiny, trainCfg: { ...DEFAULT_TRAIN, batchSize: 8, epochs: 1 }, seed: 5, shards: [], maxSteps: 4 });
    assert.deepEqual(Float32Array.from(after.model.frozenTable!.dataSync()), frozenBefore);
    // The frozen table is not among the trainable parameters, and each trainable one changed.
    for (const [name, v] of after.model.params) {
      const changed = v.dataSync().some((x, i) => x !== before.get(name)![i]);
      assert.ok(changed, `${name} did not change in 4 steps`);
    }
    after.model.dispose();
  });
  it('starts the special and gender rows at the frozen vectors\' scale, so they stay distinct tokens', async () => {
    // Representation vectors typically have norms of 3 to 10; rows at N(0, 0.02) next to them end
    // up, after the projection, as its learned bias: [CLS], [SEP], [MASK] and genders become one token.
    const rng = Rng.fromState(4);
    const rows = 20;
    const cfg = { ...tiny, hidden: 16 };
    const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
    for (const [dim, norm] of [[12, 6], [16, 9]] as const) { // with a projection (12 -> 16) and without (16 = hidden)
      const vectors = new Float32Array(rows * dim);
      for (let r = 0; r < rows; r++) {
        const v = Array.from({ length: dim }, () => rng.normal());
        const n = Math.hypot(...v);
        v.forEach((x, k) => (vectors[r * dim + k] = (x / n) * norm));
      }
      const m = new Behrt(cfg, { vocabSize: FIRST_CONCEPT_INDEX + rows, frozen: { vectors, dim }, seed: 3 });
      assert.equal(m.projected, dim !== cfg.hidden);
      const special = m.params.get('emb.special')!.arraySync() as number[][];
      assert.equal(special.length, FIRST_CONCEPT_INDEX);
      const specialNorm = mean(special.map((r) => Math.hypot(...r)));
      assert.ok(specialNorm > norm / 2 && specialNorm < norm * 2, `dim ${dim}: special rows have norm ${specialNorm}, frozen vectors ${norm}`);
      m.dispose();
    }
    // After training, [CLS], [SEP], [MASK] and the two genders still enter the encoder as different vectors.
    const seqs = syntheticSequences({ persons: 48, seed: 3, maxEvents: 12 });
    const vocab = Vocabulary.fromSequences(seqs);
    const vecs = new Map<string, Float32Array>();
    for (const t of vocab.tokens) vecs.set(`${t.conceptId}|${t.decile ?? ''}`, Float32Array.from({ length: 12 }, () => 2 * rng.normal()));
    const reps = { lookup: mapLookup(vecs), dim: 12, hash: 'sha256:test', source: 'memory' };
    const res = await trainBehrt({ task: 'pretrain', train: seqs, val: seqs.slice(0, 8), vocab, embeddings: 'medrep', reps, model: cfg, trainCfg: { ...DEFAULT_TRAIN, batchSize: 8, epochs: 8 }, seed: 5, shards: [] });
    const idx = [SPECIAL_TOKENS.MASK, SPECIAL_TOKENS.CLS, SPECIAL_TOKENS.SEP, 5, 6];
    const zeros = new Int32Array(idx.length);
    const sum = res.model.embeddingSum(makeBatch([{ tokens: Int32Array.from(idx), ages: zeros, segments: zeros, recordRanks: zeros, domains: zeros }]));
    const cos = tf.tidy(() => {
      const { mean: mu, variance } = tf.moments(sum, -1, true);
      const ln = tf.div(tf.sub(sum, mu), tf.sqrt(tf.add(variance, 1e-6)));
      const unit = tf.div(ln, tf.norm(ln, 2, -1, true));
      return tf.matMul(unit, unit, false, true).arraySync() as number[][];
    });
    sum.dispose();
    for (let i = 0; i < idx.length; i++) for (let j = i + 1; j < idx.length; j++) {
      assert.ok(cos[i][j] < 0.8, `model indices ${idx[i]} and ${idx[j]} reach the encoder with cosine ${cos[i][j].toFixed(3)}`);
    }
    res.model.dispose();
  });

  it('recomputing layers in the backward pass (gradient checkpointing) trains to the same weights', async () => {
    const seqs = syntheticSequences({ persons: 32, seed: 6, maxEvents: 12 });
    const vocab = Vocabulary.fromSequences(seqs);
    const run = (recomputeLayers: boolean) =>
      trainBehrt({ task: 'pretrain', train: seqs, val: seqs.slice(0, 4), vocab, embeddings: 'vanilla', model: { ...tiny, layers: 2, recomputeLayers }, trainCfg: { ...DEFAULT_TRAIN, batchSize: 8 }, seed: 2, shards: [], maxSteps: 3 });
    const plain = await run(false);
    const recomputed = await run(true);
    for (const [name, v] of plain.model.params) assert.deepEqual(recomputed.model.params.get(name)!.dataSync(), v.dataSync(), name);
    const moved = [...plain.model.params.values()].some((v) => v.name.startsWith('l1.ff1.w') && v.dataSync()[0] !== 0);
    assert.ok(moved);
    plain.model.dispose();
    recomputed.model.dispose();
  });
});

describe('BEHRT vocabulary and encoding', () => {
  it('maps shard tokens to model indices and keeps [CLS], gender and the newest events', () => {
    const seq = {
      personId: 1, split: 'pretrain_train',
      conceptIds: [-3, 8532, 201, 3001, 3001, 401, 999],
      deciles: [null, null, null, 4, 7, null, null],
      ages: [0, 0, 40, 41, 41, 42, 200],
      segments: [0, 0, 3, 3, 4, 5, 5],
      recordRanks: [0, 0, 0, 1, 0, 0, 1],
      domains: [0, 0, 1, 3, 3, 4, 2],
    };
    const vocab = Vocabulary.fromSequences([{ ...seq, conceptIds: [-3, 8532, 201, 3001, 3001, 401, 5], deciles: [null, null, null, 4, 7, null, null] }]);
    // Sorted by concept then decile: 5, 201, 401, (3001,4), (3001,7) -> indices 8..12
    assert.deepEqual(vocab.tokens.map((t) => [t.conceptId, t.decile]), [[5, null], [201, null], [401, null], [3001, 4], [3001, 7]]);
    const e = encodeSequence(seq, vocab, { ...tiny, maxLen: 6 });
    // Newest 4 events: (3001,4) (3001,7) 401 999(unknown); gender 8532 is the second gender token (index 6).
    assert.deepEqual(Array.from(e.tokens), [SPECIAL_TOKENS.CLS, 6, 11, 12, 10, SPECIAL_TOKENS.UNK]);
    assert.deepEqual(Array.from(e.segments), [0, 0, 1, 2, 3, 3]); // visit ranks re-based to the window
    assert.deepEqual(Array.from(e.ages), [0, 0, 41, 41, 42, 119]); // ages clamped to 0..119
    assert.deepEqual(Array.from(e.recordRanks), [0, 0, 1, 0, 0, 1]);
    assert.deepEqual(Array.from(e.domains), [0, 0, 3, 3, 4, 2]);
  });
});

describe('MLM masking', () => {
  it('chooses ~30% of non-special tokens, then 80% [MASK] / 10% random / 10% kept, never a special token', () => {
    const vocabSize = FIRST_CONCEPT_INDEX + 50;
    const rng = Rng.fromState(123);
    const tokens = new Int32Array(20000);
    for (let i = 0; i < tokens.length; i++) tokens[i] = i % 10 === 0 ? SPECIAL_TOKENS.CLS : i % 10 === 1 ? 6 : FIRST_CONCEPT_INDEX + rng.int(50);
    const m = maskTokens(tokens, vocabSize, 0.3, Rng.fromState(7));
    const eligible = tokens.filter((t) => t >= FIRST_CONCEPT_INDEX).length; // 16000
    const share = m.positions.length / eligible;
    // 4 binomial standard deviations: sqrt(.3*.7/16000) = 0.0036
    assert.ok(Math.abs(share - 0.3) < 0.015, `masked share ${share}`);
    for (const p of m.positions) assert.ok(tokens[p] >= FIRST_CONCEPT_INDEX, 'a special token was chosen');
    const k = m.positions.length;
    const count = (a: number) => m.actions.filter((x) => x === a).length / k;
    assert.ok(Math.abs(count(0) - 0.8) < 0.025, `mask share ${count(0)}`);
    assert.ok(Math.abs(count(1) - 0.1) < 0.02, `random share ${count(1)}`);
    assert.ok(Math.abs(count(2) - 0.1) < 0.02, `kept share ${count(2)}`);
    m.positions.forEach((p, i) => {
      if (m.actions[i] === 0) assert.equal(m.tokens[p], SPECIAL_TOKENS.MASK);
      if (m.actions[i] === 2) assert.equal(m.tokens[p], tokens[p]);
      if (m.actions[i] === 1) assert.ok(m.tokens[p] >= FIRST_CONCEPT_INDEX && m.tokens[p] < vocabSize);
      assert.equal(m.targets[i], tokens[p]);
    });
    // Unchosen positions are untouched.
    const chosen = new Set(m.positions);
    tokens.forEach((t, i) => chosen.has(i) || assert.equal(m.tokens[i], t));
  });
});

describe('BEHRT checkpoints', () => {
  before(() => initBackend('cpu'));

  it('resuming from a checkpoint gives the same weights as an uninterrupted run with the same seed', async () => {
    const seqs = syntheticSequences({ persons: 48, seed: 4, maxEvents: 12 });
    const vocab = Vocabulary.fromSequences(seqs);
    const base = { task: 'pretrain', train: seqs.slice(8), val: seqs.slice(0, 8), vocab, embeddings: 'vanilla' as const, model: tiny, trainCfg: { ...DEFAULT_TRAIN, batchSize: 8, epochs: 3, patience: 5 }, seed: 11, shards: [] };
    const full = await trainBehrt({ ...base, checkpointDir: tempDir('behrt-full') });
    const dir = tempDir('behrt-resume');
    // Stop mid-epoch (5 batches per epoch), then continue in a fresh model.
    const part = await trainBehrt({ ...base, checkpointDir: dir, maxSteps: 7 });
    assert.equal(part.state.step, 7);
    part.model.dispose();
    const latest = resolveCheckpoint(dir)!;
    assert.ok(existsSync(join(latest, 'weights.bin')));
    assert.equal(readCheckpointMeta(latest).state.stepInEpoch, 2);
    const resumed = await trainBehrt({ ...base, checkpointDir: dir, resume: true });
    assert.equal(resumed.state.step, full.state.step);
    assert.deepEqual(resumed.state.history, full.state.history);
    for (const [name, v] of full.model.params) assert.deepEqual(resumed.model.params.get(name)!.dataSync(), v.dataSync(), name);
    const meta = JSON.parse(readFileSync(join(resolveCheckpoint(dir)!, 'checkpoint.json'), 'utf8'));
    assert.match(meta.shardManifestHash, /^sha256:/);
    full.model.dispose();
    resumed.model.dispose();
  });
});
