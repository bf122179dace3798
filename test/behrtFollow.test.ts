import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initEhrBackend } from '../trainers/behrt/tf';
import { DEFAULT_MODEL, DEFAULT_TRAIN, BehrtConfig } from '../trainers/behrt/config';
import { followManifest, readRegistry, ModelVersion } from '../trainers/behrt/follow';
import { resolveCheckpoint, readCheckpointMeta } from '../trainers/behrt/checkpoint';
import { manifestEntry, syntheticSequences, writeSequenceShard } from './ehrFixtures';

const tiny: BehrtConfig = { ...DEFAULT_MODEL, hidden: 8, layers: 1, heads: 2, intermediate: 16, maxLen: 16, segmentVocab: 8, recordRankVocab: 8 };

describe('BEHRT continuous retraining (--follow)', () => {
  before(() => initEhrBackend('cpu'));

  it('picks up a shard added to the manifest, resumes from the last version and registers both', async () => {
    const out = mkdtempSync(join(tmpdir(), 'behrt-follow-'));
    const modelDir = join(out, 'models');
    const seqs = syntheticSequences({ persons: 160, seed: 21, maxEvents: 12 });
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
  before(() => initEhrBackend('cpu'));

  it('records a version that scores worse on validation without promoting it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'behrt-promote-'));
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
