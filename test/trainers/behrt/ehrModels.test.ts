import assert from 'node:assert/strict';
import { tf } from '../../../trainers/tf';
import { initBackend } from '../../../trainers/backend';
import { Behrt } from '../../../trainers/behrt/model';
import { makeBatch } from '../../../trainers/behrt/batch';
import { DEFAULT_MODEL, DEFAULT_TRAIN, EHR_MODELS, modelConfig, type BehrtConfig } from '../../../trainers/behrt/config';
import { encodeSequence, Vocabulary } from '../../../trainers/behrt/vocab';
import { maskTokens } from '../../../trainers/behrt/masking';
import { Rng } from '../../../trainers/random';
import { trainBehrt } from '../../../trainers/behrt/train';
import { mapLookup } from '../../../trainers/behrt/representations';
import { withProlongedStay } from '../../../trainers/behrt/prolongedStay';
import { SPECIAL_TOKENS } from '../../../transforms/tokens';
import { syntheticSequences, writeSite } from '../../helpers/ehrFixtures';
import { runCommandLine } from '../../../cli';
import { readCheckpointMeta, resolveCheckpoint } from '../../../trainers/behrt/checkpoint';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../helpers';

const size: BehrtConfig = { ...DEFAULT_MODEL, hidden: 16, layers: 1, heads: 2, intermediate: 32, maxLen: 16, segmentVocab: 8, recordRankVocab: 8 };

describe('EHR models: BEHRT, CDM-BERT and Med-BERT on one encoder', function () {
  this.timeout(120_000);
  before(() => initBackend('cpu'));

  const seqs = syntheticSequences({ persons: 96, seed: 11, maxEvents: 14 });
  // Med-BERT's labels: persons whose planted risk concept occurs had a "prolonged stay" here.
  const withPlos = withProlongedStay(seqs.map(({ label, ...s }) => s), seqs);
  const vocab = Vocabulary.fromSequences(seqs);
  const rng = Rng.fromState(21);
  const vecs = new Map<string, Float32Array>();
  for (const t of vocab.tokens) vecs.set(`${t.conceptId}|${t.decile ?? ''}`, Float32Array.from({ length: 12 }, () => rng.normal()));
  const reps = { lookup: mapLookup(vecs), dim: 12, hash: 'sha256:test', source: 'memory' };

  it('names the variants as options of one config: CDM-BERT the domain embedding, Med-BERT the prolonged-stay head', () => {
    assert.deepEqual([...EHR_MODELS], ['behrt', 'cdm-bert', 'med-bert']);
    const params = (name: (typeof EHR_MODELS)[number]) => {
      const m = new Behrt(modelConfig(name, size), { vocabSize: vocab.size, seed: 1 });
      m.addMlmHead(vocab.size, 1);
      const names = [...m.params.keys()];
      m.dispose();
      return names;
    };
    const behrt = params('behrt');
    const cdm = params('cdm-bert');
    const med = params('med-bert');
    assert.deepEqual(cdm.filter((n) => !behrt.includes(n)).sort(), ['emb.domain', 'emb.e']);
    assert.deepEqual(med.filter((n) => !behrt.includes(n)).sort(), ['mlm.plos.head.b', 'mlm.plos.head.w', 'mlm.plos.pool.b', 'mlm.plos.pool.w']);
  });

  it('CDM-BERT: a masked token keeps its domain, so the input at a [MASK] says which domain was masked', () => {
    const cfg = modelConfig('cdm-bert', size);
    const m = new Behrt(cfg, { vocabSize: vocab.size, seed: 2 });
    m.params.get('emb.e')!.assign(tf.scalar(1));
    const e = encodeSequence(seqs[0], vocab, cfg);
    const masked = maskTokens(e.tokens, vocab.size, 1, Rng.fromState(3));
    assert.ok(masked.actions.includes(0), 'some token became [MASK]');
    const batch = makeBatch([e], [masked.tokens]);
    const domains = batch.domains.dataSync();
    for (const p of masked.positions) assert.equal(domains[p], e.domains[p], `position ${p} lost its domain`);
    // Two [MASK] tokens of different domains enter the encoder as different vectors.
    const zeros = new Int32Array(2);
    const sum = m.embeddingSum(makeBatch([{ tokens: Int32Array.of(SPECIAL_TOKENS.MASK, SPECIAL_TOKENS.MASK), ages: zeros, segments: zeros, recordRanks: zeros, domains: Int32Array.of(1, 3) }]));
    const rows = sum.arraySync() as number[][];
    assert.ok(rows[0].some((v, k) => Math.abs(v - rows[1][k]) > 1e-4), 'the [MASK] of a condition and of a measurement look the same');
    sum.dispose();
    m.dispose();
  });

  for (const name of EHR_MODELS) {
    it(`${name}: pretraining loss falls, its own parameters move, and a frozen table stays byte-equal`, async () => {
      const cfg = modelConfig(name, size);
      const train = withPlos.filter((s) => s.split !== 'pretrain_val');
      const res = await trainBehrt({
        task: 'pretrain', train, val: withPlos.slice(0, 12), vocab, embeddings: 'medrep', reps, model: cfg,
        trainCfg: { ...DEFAULT_TRAIN, batchSize: 8, epochs: 6, patience: 6 }, seed: 4, shards: [], maxSteps: 0,
      });
      const frozen = Buffer.from(res.model.frozenTable!.dataSync().buffer).toString('hex');
      const start = new Map([...res.model.params].map(([n, v]) => [n, Float32Array.from(v.dataSync())]));
      res.model.dispose();
      const done = await trainBehrt({
        task: 'pretrain', train, val: withPlos.slice(0, 12), vocab, embeddings: 'medrep', reps, model: cfg,
        trainCfg: { ...DEFAULT_TRAIN, batchSize: 8, epochs: 6, patience: 6 }, seed: 4, shards: [],
      });
      const h = done.state.history;
      assert.equal(h.length, 6);
      assert.ok(h[h.length - 1].trainLoss < h[0].trainLoss - 0.1, `${name}: training loss ${h.map((x) => x.trainLoss.toFixed(3)).join(' -> ')}`);
      assert.equal(Buffer.from(done.model.frozenTable!.dataSync().buffer).toString('hex'), frozen, 'the frozen table changed');
      const own = name === 'cdm-bert' ? ['emb.domain', 'emb.e'] : name === 'med-bert' ? ['mlm.plos.pool.w', 'mlm.plos.head.w', 'mlm.plos.head.b'] : [];
      for (const p of own) {
        const now = done.model.params.get(p)!.dataSync();
        assert.ok(now.some((x, i) => x !== start.get(p)![i]), `${name}: ${p} did not move`);
      }
      done.model.dispose();
    });
  }

  it('Med-BERT refuses pretraining sequences without a prolonged-stay label', async () => {
    await assert.rejects(trainBehrt({
      task: 'pretrain', train: seqs, val: seqs.slice(0, 4), vocab, embeddings: 'vanilla', model: modelConfig('med-bert', size),
      trainCfg: { ...DEFAULT_TRAIN, batchSize: 8, epochs: 1 }, seed: 1, shards: [],
    }), /no prolonged-stay label \(the site needs long_stay samples\)/);
  });

  it('`train ehr --model med-bert` pretrains with the prolonged-stay head from the long_stay samples, and says so when they are missing', async () => {
    const root = tempDir('med-bert-cli');
    const flags = ['--epochs', '1', '--hidden', '8', '--layers', '1', '--heads', '2', '--intermediate', '16', '--max-len', '16', '--backend', 'cpu'];
    await writeSite(join(root, 'no-stay'), { persons: 60, seed: 3, maxEvents: 12 });
    await assert.rejects(runCommandLine(['train', 'ehr', '--shards', join(root, 'no-stay'), '--task', 'pretrain', '--model', 'med-bert', '--out', join(root, 'x'), ...flags]),
      /--model med-bert: its prolonged-stay head learns from long_stay samples, and .* has none/);
    await assert.rejects(runCommandLine(['train', 'ehr', '--shards', join(root, 'no-stay'), '--task', 'pretrain', '--model', 'gpt', ...flags]), /--model takes behrt, cdm-bert, med-bert, got 'gpt'/);
    await writeSite(join(root, 'A'), { persons: 60, seed: 3, maxEvents: 12 }, ['risk', 'long_stay']);
    const out = join(root, 'pre');
    await runCommandLine(['train', 'ehr', '--shards', join(root, 'A'), '--task', 'pretrain', '--model', 'med-bert', '--out', out, ...flags]);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    assert.equal(run.model, 'med-bert');
    assert.equal(run.config.model.plosHead, true);
    const ckpt = resolveCheckpoint(join(out, 'checkpoints', 'vanilla', 'med-bert', 'seed-1', 'pretrain'))!;
    assert.ok(ckpt && existsSync(ckpt));
    const meta = readCheckpointMeta(ckpt);
    assert.ok(meta.tensors.some((t) => t.name === 'mlm.plos.head.w'), 'the checkpoint has no prolonged-stay head');
    assert.ok(meta.shards.some((s) => s.path.startsWith('samples/long_stay/')), 'the checkpoint does not name the long_stay shards it learned from');
  });

  it('labels a person prolonged-stay from the long_stay samples, false without one', () => {
    const pre = [{ ...seqs[0], label: undefined }, { ...seqs[1], label: undefined }, { ...seqs[2], label: undefined }];
    const out = withProlongedStay(pre, [{ ...seqs[0], label: true }, { ...seqs[1], label: false }]);
    assert.deepEqual(out.map((s) => s.prolongedStay), [true, false, false]);
  });
});
