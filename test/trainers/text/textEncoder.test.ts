import { strict as assert } from 'assert';
import { tf } from '../../../trainers/tf';
import { selectBackend } from '../../../trainers/backend';
import { BpeTokenizer, CLS, MASK, SEP, SPECIAL_TOKENS, preTokenize } from '../../../trainers/text/tokenizer';
import { TextEncoder, maskSequence, pretrainMlm, clsVectors, meanVectors } from '../../../trainers/text/encoder';
import { Rng } from '../../../trainers/random';

const corpus = [
  'Type 2 diabetes mellitus. A condition in SNOMED (Clinical Finding).',
  'Type 1 diabetes mellitus. A condition in SNOMED (Clinical Finding).',
  'Metformin 500 MG Oral Tablet. A drug in RxNorm (Clinical Drug). Ingredient: metformin.',
  'Metformin 850 MG Oral Tablet. A drug in RxNorm (Clinical Drug). Ingredient: metformin.',
  'Glucose [Mass/volume] in Blood. A measurement in LOINC (Lab Test).',
  'Hemoglobin A1c/Hemoglobin.total in Blood. A measurement in LOINC (Lab Test).',
  'Appendectomy. A procedure in SNOMED (Procedure).',
  'Colonoscopy. A procedure in SNOMED (Procedure).',
];

describe('BPE tokenizer', () => {
  it('pre-tokenizes into lower-case words and punctuation', () => {
    assert.deepEqual(preTokenize('Glucose [Mass/volume], Café'), ['glucose', '[', 'mass', '/', 'volume', ']', ',', 'cafe']);
  });
  it('learns merges of frequent pairs and round-trips text', () => {
    const tok = BpeTokenizer.train(corpus, 120);
    assert.deepEqual(tok.vocab.slice(0, 5), [...SPECIAL_TOKENS]);
    assert.ok(tok.size <= 120 && tok.size > 40, `${tok.size}`);
    const ids = tok.encode('Metformin 500 MG Oral Tablet', 64);
    assert.equal(ids[0], CLS);
    assert.equal(ids.at(-1), SEP);
    // 'metformin' appears 4 times: its pieces merge to fewer than its 9 letters
    assert.ok(tok.encode('metformin', 64).length - 2 < 9);
    assert.equal(tok.decode(ids), 'metformin 500 mg oral tablet');
    const again = BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    assert.deepEqual(again.encode(corpus[4], 64), tok.encode(corpus[4], 64));
  });
  it('truncates to maxLen keeping [SEP]', () => {
    const tok = BpeTokenizer.train(corpus, 60);
    const ids = tok.encode(corpus[2], 6);
    assert.equal(ids.length, 6);
    assert.equal(ids[5], SEP);
  });
});

describe('text MLM encoder', () => {
  before(async () => { await selectBackend('wasm', () => {}); });

  it('masks 30% of pieces, 80% [MASK] / 10% random / 10% unchanged', () => {
    const rng = Rng.seeded(1);
    const seq = [CLS, ...Array.from({ length: 100 }, (_, i) => 5 + (i % 50)), SEP];
    let chosen = 0, masked = 0, kept = 0, random = 0;
    for (let r = 0; r < 400; r++) {
      const { input, target } = maskSequence(seq, 55, 0.3, rng);
      assert.equal(target[0], -1);
      assert.equal(target[101], -1);
      target.forEach((t, i) => {
        if (t < 0) { assert.equal(input[i], seq[i]); return; }
        chosen++;
        if (input[i] === MASK) masked++;
        else if (input[i] === seq[i]) kept++;
        else random++;
      });
    }
    assert.equal(chosen, 400 * 30);
    assert.ok(Math.abs(masked / chosen - 0.8) < 0.02, `${masked / chosen}`);
    assert.ok(Math.abs(kept / chosen - 0.1) < 0.02 + 1 / 50, `${kept / chosen}`); // a random draw can equal the original
    assert.ok(Math.abs(random / chosen - 0.1) < 0.02, `${random / chosen}`);
  });

  it('pretrains a tiny encoder: validation loss falls, best weights restored, [CLS] vectors returned', () => {
    const tensorsBefore = tf.memory().numTensors;
    const tok = BpeTokenizer.train(corpus, 100);
    const seqs = [];
    for (let r = 0; r < 6; r++) for (const c of corpus) seqs.push(tok.encode(c, 32));
    const model = new TextEncoder({ hidden: 16, layers: 1, heads: 2, intermediate: 32, maxLen: 32 }, tok.size, 3);
    const res = pretrainMlm(model, seqs, { maxEpochs: 12, patience: 12, batchSize: 8, learningRate: 5e-3, validationFraction: 0.2 });
    const first = res.history[0].validation;
    const best = Math.min(...res.history.map((h) => h.validation));
    assert.ok(best < first, `validation ${first} -> ${best}`);
    assert.equal(res.history[res.bestEpoch].validation, best);
    const v = clsVectors(model, seqs.slice(0, 3));
    assert.equal(v.length, 3 * 16);
    assert.ok(v.every(Number.isFinite));
    model.dispose();
    assert.equal(tf.memory().numTensors, tensorsBefore, 'every tensor of training is disposed');
  });

  it('pools a sequence into its [CLS] state or the mean of its token states, padding left out, in input order', () => {
    const tok = BpeTokenizer.train(corpus, 100);
    const model = new TextEncoder({ hidden: 8, layers: 1, heads: 2, intermediate: 16, maxLen: 32 }, tok.size, 5);
    // Sequences of different lengths in one batch: the shorter ones are padded.
    const seqs = [corpus[0], corpus[6], corpus[2], corpus[7]].map((c) => tok.encode(c, 32));
    assert.ok(new Set(seqs.map((q) => q.length)).size > 1, 'lengths differ');
    const cls = clsVectors(model, seqs, 2);
    const mean = meanVectors(model, seqs, 2);
    seqs.forEach((seq, r) => {
      // Each sequence alone, unpadded: what its pooled vectors must equal.
      const states = tf.tidy(() => model.hidden(tf.tensor2d(seq, [1, seq.length], 'int32')).arraySync() as number[][][])[0];
      for (let h = 0; h < 8; h++) {
        const expectedMean = states.reduce((a, st) => a + st[h], 0) / seq.length;
        assert.ok(Math.abs(cls[r * 8 + h] - states[0][h]) < 1e-4, `cls row ${r}`);
        assert.ok(Math.abs(mean[r * 8 + h] - expectedMean) < 1e-4, `mean row ${r}: ${mean[r * 8 + h]} vs ${expectedMean}`);
      }
    });
    model.dispose();
  });
});
