import assert from 'node:assert/strict';
import { writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../../../trainers/backend';
import { DEFAULT_MODEL, DEFAULT_TRAIN, BehrtConfig } from '../../../trainers/behrt/config';
import { followManifest, readRegistry, ModelVersion } from '../../../trainers/behrt/follow';
import { resolveCheckpoint, readCheckpointMeta, loadWeights } from '../../../trainers/behrt/checkpoint';
import { buildModel, trainBehrt } from '../../../trainers/behrt/train';
import { Vocabulary } from '../../../trainers/behrt/vocab';
import { Adam } from '../../../trainers/behrt/adam';
import type { Behrt } from '../../../trainers/behrt/model';
import { manifestEntry, syntheticSequences, writeSequenceShard } from '../../helpers/ehrFixtures';
import { tempDir } from '../../helpers';

const tiny: BehrtConfig = { ...DEFAULT_MODEL, hidden: 8, layers: 1, heads: 2, intermediate: 16, maxLen: 16, segmentVocab: 8, recordRankVocab: 8 };

describe('BEHRT continuous retraining (--follow)', () => {
  before(() => initBackend('cpu'));

  it('picks up a shard added to the manifest, resumes from the last version and registers both', async () => {
    const out = tempDir('behrt-follow');
    const modelDir = join(out, 'models');
    const seqs = syntheticSequences({ persons: 160, seed: 21, maxEvents: 12 });
    // Shard 2's site starts coding some conditions with new concepts (100-104 become 150-154).
    for (const s of seqs.slice(80)) s.conceptIds = s.conceptIds.map((c, i) => (s.domains[i] === 1 && c < 105 ? c + 50 : c));
    // Shard 1 carries the first half, shard 2 lands later with the second half.
    await writeSequenceShard(join(out, 'samples', 'risk', 'part-1.parquet'), seqs.slice(0, 80));
    await writeSequenceShard(join(out, 'samples', 'risk', 'part-2.parquet'), seqs.slice(80));
    const entry1 = manifestEntry(out, 'samples/risk/part-1.parquet', 'samples/risk', 80);
    writeFileSync(join(out, 'manifest.json'), JSON.stringify({ shards: [entry1] }));
    const controller = new AbortController();
    const versions: ModelVersion[] = [];
    const follower = followManifest({
      shardsDir: out, task: 'risk', embeddings: 'vanilla', model: tiny, train: { ...DEFAULT_TRAIN, batchSize: 16, epochs: 1 }, seed: 3, modelDir,
      trainSplits: ['pretrain_train', 'finetune_train'], valSplits: ['pretrain_val', 'finetune_val'], pollMs: 50, signal: controller.signal,
      onVersion: (v) => {
        versions.push(v);
        // Once version 1 exists, the pipeline publishes a second shard.
        if (v.version === 1) writeFileSync(join(out, 'manifest.json'), JSON.stringify({ shards: [entry1, manifestEntry(out, 'samples/risk/part-2.parquet', 'samples/risk', 80)] }));
        if (v.version === 2) controller.abort();
      },
    });
    const registry = await follower;
    assert.equal(registry.versions.length, 2);
    const [v1, v2] = registry.versions;
    assert.deepEqual(v1.newShards.map((s) => s.path), ['samples/risk/part-1.parquet']);
    assert.deepEqual(v2.newShards.map((s) => s.path), ['samples/risk/part-2.parquet']);
    assert.deepEqual(v2.shards.map((s) => s.path).sort(), ['samples/risk/part-1.parquet', 'samples/risk/part-2.parquet']);
    assert.notEqual(v1.shardSetHash, v2.shardSetHash);
    // Version 2 continued from version 1: its step count goes on from where version 1 ended.
    const m1 = readCheckpointMeta(resolveCheckpoint(v1.checkpoint)!);
    const m2 = readCheckpointMeta(resolveCheckpoint(v2.checkpoint)!);
    assert.ok(m2.state.step > m1.state.step, `${m2.state.step} <= ${m1.state.step}`);
    assert.equal(m2.state.step - m1.state.step, Math.ceil(v2.trainSequences / 16));
    // The new codes joined the vocabulary after version 1's tokens, which keep their indices.
    const newCodes = m2.vocab.filter((t) => t.conceptId >= 150 && t.conceptId < 155);
    assert.ok(newCodes.length > 0 && m1.vocab.every((t) => t.conceptId < 150 || t.conceptId >= 155), 'version 1 never saw the new codes; version 2 learned them');
    assert.deepEqual(m2.vocab.slice(0, m1.vocab.length), m1.vocab);
    assert.deepEqual(v2.vocabulary, { tokens: m2.vocab.length, added: m2.vocab.length - m1.vocab.length });
    assert.deepEqual(v1.vocabulary, { tokens: m1.vocab.length, added: m1.vocab.length });
    // Added: every (concept, decile) pair of shard 2's training persons that version 1 did not have.
    const trainOf2 = seqs.slice(80).filter((q) => ['pretrain_train', 'finetune_train'].includes(q.split));
    const known = new Set(m1.vocab.map((t) => `${t.conceptId}|${t.decile}`));
    const fresh = new Set(Vocabulary.fromSequences(trainOf2).tokens.map((t) => `${t.conceptId}|${t.decile}`).filter((k) => !known.has(k)));
    assert.deepEqual(new Set(m2.vocab.slice(m1.vocab.length).map((t) => `${t.conceptId}|${t.decile}`)), fresh);
    // Promotion follows the scores compared on the same validation set.
    assert.equal(v1.promoted, true);
    assert.equal(v2.validation.promotedScore !== null, true);
    assert.equal(v2.promoted, v2.validation.score > v2.validation.promotedScore!);
    assert.equal(readRegistry(modelDir)!.promoted, v2.promoted ? 2 : 1);
    assert.equal(versions.length, 2);
    // With nothing new, another poll registers nothing.
    const again = await followManifest({
      shardsDir: out, task: 'risk', embeddings: 'vanilla', model: tiny, train: { ...DEFAULT_TRAIN, batchSize: 16, epochs: 1 }, seed: 3, modelDir,
      trainSplits: ['pretrain_train', 'finetune_train'], valSplits: ['pretrain_val', 'finetune_val'], pollMs: 10, maxVersions: 2,
    });
    assert.equal(again.versions.length, 2);
    assert.ok(existsSync(join(modelDir, 'registry.json')));
    assert.ok(JSON.parse(readFileSync(join(modelDir, 'registry.json'), 'utf8')).versions.length === 2);
  });
});

describe('BEHRT model registry promotion', () => {
  before(() => initBackend('cpu'));

  it('records a version that scores worse on validation without promoting it', async () => {
    const out = tempDir('behrt-promote');
    const modelDir = join(out, 'models');
    const seqs = syntheticSequences({ persons: 300, seed: 31, maxEvents: 12 });
    await writeSequenceShard(join(out, 'samples', 'risk', 'part-1.parquet'), seqs.slice(0, 200));
    await writeSequenceShard(join(out, 'samples', 'risk', 'part-2.parquet'), seqs.slice(200));
    const e1 = manifestEntry(out, 'samples/risk/part-1.parquet', 'samples/risk', 200);
    const e2 = manifestEntry(out, 'samples/risk/part-2.parquet', 'samples/risk', 100);
    const common = {
      shardsDir: out, task: 'risk', embeddings: 'vanilla' as const, model: { ...tiny, hidden: 16, intermediate: 32 }, seed: 3, modelDir,
      trainSplits: ['pretrain_train', 'finetune_train'], valSplits: ['pretrain_val', 'finetune_val', 'finetune_test'], pollMs: 10,
    };
    writeFileSync(join(out, 'manifest.json'), JSON.stringify({ shards: [e1] }));
    const r1 = await followManifest({ ...common, train: { ...DEFAULT_TRAIN, batchSize: 16, epochs: 8, patience: 8, learningRate: 5e-3 }, maxVersions: 1 });
    assert.equal(r1.promoted, 1);
    assert.ok(r1.versions[0].validation.score > 0.75, `version 1 learned the planted signal: AUROC ${r1.versions[0].validation.score}`);
    // The next shard is trained with a learning rate that wrecks the model.
    writeFileSync(join(out, 'manifest.json'), JSON.stringify({ shards: [e1, e2] }));
    const r2 = await followManifest({ ...common, train: { ...DEFAULT_TRAIN, batchSize: 16, epochs: 1, learningRate: 20, clipNorm: 0 }, maxVersions: 2 });
    const v2 = r2.versions[1];
    assert.ok(v2.validation.score < v2.validation.promotedScore!, `v2 ${v2.validation.score} vs v1 ${v2.validation.promotedScore}`);
    assert.equal(v2.promoted, false);
    assert.equal(r2.promoted, 1);
    assert.equal(r2.versions.length, 2);
  });
});

describe('BEHRT vocabulary growth (a checkpoint continued on new concepts)', () => {
  before(() => initBackend('cpu'));

  it('old indices keep their trained rows and moments, new ones start fresh; anything else is refused', async () => {
    const dir = tempDir('behrt-grow');
    const seqs = syntheticSequences({ persons: 80, seed: 5, maxEvents: 10 });
    const train = seqs.filter((s) => s.split !== 'pretrain_val');
    const val = seqs.filter((s) => s.split === 'pretrain_val');
    const vocab1 = Vocabulary.fromSequences(train);
    const run = { task: 'pretrain', train, val, embeddings: 'vanilla' as const, model: tiny, trainCfg: { ...DEFAULT_TRAIN, batchSize: 16, epochs: 1 }, seed: 3, shards: [] };
    const first = await trainBehrt({ ...run, vocab: vocab1, checkpointDir: dir });
    first.model.dispose();
    const ckpt = resolveCheckpoint(dir)!;
    const rowsOf = (m: Behrt, name: string) => m.params.get(name)!.arraySync() as number[][];

    // The checkpoint as saved (weights and Adam moments), read into a model of its own vocabulary.
    const same = buildModel({ model: tiny, vocab: vocab1, embeddings: 'vanilla', seed: 9 });
    same.addMlmHead(vocab1.size, 9);
    const sameAdam = new Adam(1e-3);
    loadWeights(ckpt, same, sameAdam);

    const vocab2 = vocab1.extendedWith(new Vocabulary([{ conceptId: 990001, decile: null }, { conceptId: 990002, decile: 3 }]));
    assert.equal(vocab2.size, vocab1.size + 2);
    assert.ok(vocab2.extends(vocab1.tokens) && !vocab1.extends(vocab2.tokens));
    const grown = buildModel({ model: tiny, vocab: vocab2, embeddings: 'vanilla', seed: 9 });
    grown.addMlmHead(vocab2.size, 9);
    const initial = rowsOf(grown, 'emb.concept');
    const initialOut = rowsOf(grown, 'mlm.out.w');
    assert.throws(() => loadWeights(ckpt, grown, null), /emb\.concept has shape/);
    const adam = new Adam(1e-3);
    loadWeights(ckpt, grown, adam, { growVocabulary: true });

    const old = vocab1.size;
    assert.deepEqual(rowsOf(grown, 'emb.concept').slice(0, old), rowsOf(same, 'emb.concept'));
    assert.deepEqual(rowsOf(grown, 'emb.concept').slice(old), initial.slice(old));
    // The MLM output grows by columns: old columns from the checkpoint, new ones as initialised.
    const out = rowsOf(grown, 'mlm.out.w');
    rowsOf(same, 'mlm.out.w').forEach((row, h) => assert.deepEqual(out[h].slice(0, old), row));
    out.forEach((row, h) => assert.deepEqual(row.slice(old), initialOut[h].slice(old)));
    // Other parameters load unchanged; the moments of the new rows are zero.
    assert.deepEqual(rowsOf(grown, 'emb.age'), rowsOf(same, 'emb.age'));
    const m = adam.state.m.get('emb.concept')!.arraySync() as number[][];
    assert.deepEqual(m.slice(0, old), sameAdam.state.m.get('emb.concept')!.arraySync());
    assert.ok(m.slice(0, old).some((r) => r.some((x) => x !== 0)), 'trained rows have moments');
    assert.ok(m.slice(old).every((r) => r.every((x) => x === 0)));
    assert.equal(adam.state.step, sameAdam.state.step);
    for (const x of [same, grown]) x.dispose();

    // Resuming training on the grown vocabulary works; on a vocabulary that reorders the old one it is refused.
    const second = await trainBehrt({ ...run, vocab: vocab2, resumeFrom: ckpt, extraEpochs: true, checkpointDir: tempDir('behrt-grow2') });
    assert.deepEqual(second.meta.vocab, vocab2.tokens);
    second.model.dispose();
    const reordered = new Vocabulary([...vocab1.tokens].reverse());
    await assert.rejects(trainBehrt({ ...run, vocab: reordered, resumeFrom: ckpt }), /neither this run's .* nor its beginning/);
  });
});
