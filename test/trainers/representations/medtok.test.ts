// The MedTok baseline: a codebook learned over text and graph vectors of the concepts, each
// concept tokenized to its nearest codes, its vector the mean of their entries; written as a
// representation table that BEHRT reads frozen like any other arm.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { createHash } from 'crypto';
import { generateSynthetic } from '../../../synth';
import { trainCodebook, topCodes } from '../../../trainers/representations/medtok';
import { parseTrainRepresentationsArgs } from '../../../cli/trainRepresentations';
import { trainRepresentations, TrainRepresentationsResult } from '../../../trainers/representations/trainRepresentations';
import { loadRepresentations as loadTable } from '../../../trainers/representations/table';
import { loadRepresentations } from '../../../trainers/behrt/representations';
import { initBackend } from '../../../trainers/backend';
import { trainBehrt } from '../../../trainers/behrt/train';
import { modelVocabulary } from '../../../trainers/behrt/evaluate';
import { DEFAULT_MODEL, DEFAULT_TRAIN, BehrtConfig } from '../../../trainers/behrt/config';
import { Rng } from '../../../trainers/random';
import { syntheticSequences } from '../../helpers/ehrFixtures';
import { tempDir } from '../../helpers';

const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('MedTok baseline', function () {
  this.timeout(300_000);
  let dir: string;
  let vocab: string;
  let first: TrainRepresentationsResult;
  const train = (out: string, seed = 7) => trainRepresentations({ vocab, out: path.join(dir, out), method: 'medtok', lexical: { dim: 32 }, seed, log: () => {} });

  before(async () => {
    dir = tempDir('medtok');
    vocab = path.join(dir, 'omop');
    await generateSynthetic({ persons: 20, seed: 1, out: vocab, format: 'parquet', site: 'A' });
    first = await train('a');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('k-means codebook: the quantization error falls at every step, from seeded k-means++ entries', () => {
    const rng = Rng.seeded(3);
    const dim = 4;
    const points = Float32Array.from({ length: 300 * dim }, () => rng.next());
    const cb = trainCodebook(points, dim, { size: 16, iterations: 40, seed: 5 });
    assert.equal(cb.size, 16);
    assert.ok(cb.iterations >= 2, `${cb.iterations} iterations`);
    for (let i = 1; i < cb.history.length; i++) assert.ok(cb.history[i] <= cb.history[i - 1] + 1e-12, `step ${i}: ${cb.history[i]} > ${cb.history[i - 1]}`);
    const last = cb.history[cb.history.length - 1];
    assert.ok(last < 0.9 * cb.history[0], `error ${cb.history[0]} -> ${last}`);
    // Each point's first code is its nearest entry: no entry is closer.
    const codes = topCodes(points, cb, 3);
    for (let i = 0; i < 300; i += 37) {
      const d = (c: number) => Array.from({ length: dim }, (_, k) => (points[i * dim + k] - cb.entries[c * dim + k]) ** 2).reduce((a, b) => a + b, 0);
      for (let c = 0; c < cb.size; c++) assert.ok(d(codes[i * 3]) <= d(c));
      assert.ok(d(codes[i * 3]) <= d(codes[i * 3 + 1]) && d(codes[i * 3 + 1]) <= d(codes[i * 3 + 2]));
    }
  });

  it('`--method medtok` writes medtok.parquet, medtok-codes.csv and the codebook\'s falling loss in representations.json', () => {
    const out = path.join(dir, 'a');
    assert.ok(fs.existsSync(path.join(out, 'medtok.parquet')) && fs.existsSync(path.join(out, 'text.parquet')));
    assert.ok(!fs.existsSync(path.join(out, 'medrep.parquet')), 'the baseline is not written as MedRep vectors');
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'representations.json'), 'utf8'));
    assert.equal(meta.settings.graph, 'medtok');
    const h: number[] = meta.training.medtok.quantizationError;
    assert.ok(h.length >= 2 && h[h.length - 1] < h[0], `quantization error ${h.join(' ')}`);
    const n = first.graphObject.numConceptNodes;
    assert.equal(meta.training.medtok.codebookSize, Math.max(16, Math.min(1024, Math.ceil(n / 4))));
    assert.ok(meta.training.medtok.codesUsed > 1);
    // one line per concept: its 4 text codes and 4 graph codes
    const lines = fs.readFileSync(path.join(out, 'medtok-codes.csv'), 'utf8').trim().split('\n');
    assert.equal(lines[0], 'concept_id,decile,text_codes,graph_codes');
    assert.equal(lines.length - 1, first.graphObject.numNodes);
    const [, , textCodes, graphCodes] = lines[1].split(',');
    assert.equal(textCodes.split(' ').length, 4);
    assert.equal(graphCodes.split(' ').length, 4);
  });

  it('a concept\'s vector is the mean of its codes\' entries: concepts share a vector exactly when they share their codes', () => {
    const m = first.medtok!;
    const dim = m.codebook.dim;
    const t = first.medrepTable;
    const n = first.graphObject.numConceptNodes;
    const vectorOfSet = new Map<string, string>();
    const sets = new Set<string>();
    const vectors = new Set<string>();
    for (let i = 0; i < n; i++) {
      const codes = [...m.textCodes.subarray(i * 4, i * 4 + 4), ...m.graphCodes.subarray(i * 4, i * 4 + 4)];
      for (let k = 0; k < dim; k++) {
        const want = codes.reduce((a, c) => a + m.codebook.entries[c * dim + k], 0) / codes.length;
        assert.ok(Math.abs(t.vectors[i * t.dim + k] - want) < 1e-5, `concept ${t.conceptIds[i]} component ${k}`);
      }
      const set = [...codes].sort((a, b) => a - b).join(' ');
      const vec = Array.from(t.vectors.subarray(i * t.dim, i * t.dim + dim), (x) => x.toFixed(6)).join(',');
      if (vectorOfSet.has(set)) assert.equal(vec, vectorOfSet.get(set));
      vectorOfSet.set(set, vec);
      sets.add(set);
      vectors.add(vec);
    }
    assert.equal(vectors.size, sets.size);
    assert.ok(sets.size > 20, `${sets.size} code sets for ${n} concepts`);
    // the count representations.json reports: concepts whose code set another concept has too
    const perSet = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const set = [...m.textCodes.subarray(i * 4, i * 4 + 4), ...m.graphCodes.subarray(i * 4, i * 4 + 4)].sort((a, b) => a - b).join(' ');
      perSet.set(set, (perSet.get(set) ?? 0) + 1);
    }
    assert.equal(m.sharedTokenSets, [...perSet.values()].filter((c) => c > 1).reduce((a, b) => a + b, 0));
  });

  it('the same seed gives byte-identical files, another seed another codebook', async () => {
    const again = await train('b');
    assert.equal(again.medrep.sha256, first.medrep.sha256);
    for (const f of ['medtok.parquet', 'medtok-codes.csv', 'text.parquet']) assert.equal(sha(path.join(dir, 'b', f)), sha(path.join(dir, 'a', f)), f);
    const other = await train('c', 8);
    assert.notEqual(sha(path.join(dir, 'c', 'medtok.parquet')), sha(path.join(dir, 'a', 'medtok.parquet')));
    assert.ok(other.medtok!.codebook.history.length > 1);
  });

  it('BEHRT reads the table as a frozen arm: its vectors stay byte for byte the same through finetuning', async () => {
    await initBackend('cpu');
    const file = path.join(dir, 'a', 'medtok.parquet');
    const before = sha(file);
    const table = await loadTable(file);
    const reps = await loadRepresentations(file);
    // The fixture's concepts recoded onto the table's concepts (a fixed map), so every token has a row.
    const base = Array.from(table.conceptIds).filter((_, i) => table.deciles[i] < 0);
    const seqs = syntheticSequences({ persons: 60, seed: 4, maxEvents: 14 }).map((s) => ({
      ...s, conceptIds: s.conceptIds.map((c, i) => (s.domains[i] === 0 ? c : base[(c * 7) % base.length])),
    }));
    const vocabulary = modelVocabulary(seqs, 'medrep', reps);
    assert.ok(vocabulary.tokens.length > 20);
    const cfg: BehrtConfig = { ...DEFAULT_MODEL, hidden: 16, layers: 1, heads: 2, intermediate: 16, maxLen: 16, segmentVocab: 8, recordRankVocab: 8 };
    const run = (maxSteps: number) => trainBehrt({
      task: 'risk', train: seqs, val: seqs.slice(0, 12), vocab: vocabulary, embeddings: 'medrep', reps, model: cfg,
      trainCfg: { ...DEFAULT_TRAIN, batchSize: 8, epochs: 2 }, seed: 3, shards: [], maxSteps,
    });
    const start = await run(0);
    const frozen = Float32Array.from(start.model.frozenTable!.dataSync());
    const head = Float32Array.from(start.model.params.get('cls.head.w')!.dataSync());
    start.model.dispose();
    const done = await run(10);
    assert.deepEqual(Float32Array.from(done.model.frozenTable!.dataSync()), frozen);
    assert.ok(done.model.params.get('cls.head.w')!.dataSync().some((x, i) => x !== head[i]), 'the classifier trained');
    assert.equal(done.meta.representationsHash, reps.hash);
    done.model.dispose();
    assert.equal(sha(file), before);
  });

  it('parses --method medtok and the codebook flags', () => {
    const o = parseTrainRepresentationsArgs(['--vocab', 'v', '--out', 'o', '--method', 'medtok', '--codebook-size', '64', '--codes-per-modality', '2']);
    assert.equal(o.method, 'medtok');
    assert.deepEqual(o.medtok, { codebookSize: 64, codesPerModality: 2 });
    assert.throws(() => parseTrainRepresentationsArgs(['--vocab', 'v', '--out', 'o', '--codebook-size', '0']), /--codebook-size must be above 0, got 0/);
  });
});
