import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { generateSynthetic } from '../../../synth';
import { counterpartKey } from '../../../bench/counterparts';
import { scoreTable } from '../../../bench/representationsQuality';
import { trainRepresentations } from '../../../trainers/representations/trainRepresentations';
import { loadRepresentations as loadTable, writeRepresentations } from '../../../trainers/representations/table';
import { InMemoryVocabularyIndex, RepresentationLookup, loadVocabularyIndex } from '../../../trainers/representations/lookup';
import { counterpartRetrieval, crossSiteDecile, decileOrder, effectiveDimensions, spearman, tableMean } from '../../../trainers/representations/quality';
import { ordinalCode, withOrdinalDecileRows } from '../../../trainers/representations/decileRows';
import { decileDescription } from '../../../trainers/text/conceptText';
import { loadRepresentations } from '../../../trainers/behrt/representations';
import { tempDir } from '../../helpers';

const source = (rows: Map<string, number[]>, dim: number) => ({
  dim,
  vectorFor: (c: number, d: number | null) => { const v = rows.get(`${c}|${d ?? ''}`); return v ? Float32Array.from(v) : null; },
});

describe('representation quality measures', () => {
  it('ranks counterparts by centred cosine; a tie with another candidate counts against the query', () => {
    const rows = new Map<string, number[]>([['1|', [1, 0]], ['2|', [0, 1]], ['3|', [0, 1]], ['9|', [0.9, 0.1]], ['8|', [0, 1]]]);
    const r = counterpartRetrieval(source(rows, 2), new Float64Array(2), [1, 2, 3], [
      { conceptId: 9, domain: 'drug', targets: [1] }, // nearest is 1: rank 1
      { conceptId: 8, domain: 'lab', targets: [2] }, // 2 and 3 tie: rank 2
      { conceptId: 7, domain: 'lab', targets: [1] }, // no vector: last
    ]);
    assert.deepEqual([r.r1, r.r5, r.unresolved, r.meanRank], [1 / 3, 1, 1, 2]);
    assert.deepEqual([r.byDomain.drug.r1, r.byDomain.lab.r1], [1, 0]);
  });

  it('scores decile order and cross-site decile retrieval: ordinal rows pass, one vector for ten rows fails', () => {
    const labs = withOrdinalDecileRows({ conceptIds: [10, 20, 30], withDeciles: [true, true, false], vectors: Float32Array.from([1, 0, 0.9, 0.2, 0, 1]), dim: 2 }, 1);
    const table = new Map<string, number[]>();
    labs.conceptIds.forEach((c, i) => table.set(`${c}|${labs.deciles[i] ?? ''}`, Array.from(labs.vectors.subarray(i * labs.dim, (i + 1) * labs.dim))));
    const src = source(table, labs.dim);
    const mean = tableMean(labs.vectors, labs.dim);
    assert.equal(decileOrder(src, [10, 20]).mean, 1);
    assert.equal(crossSiteDecile(src, mean, [{ a: 10, b: 20 }]).r1, 1);
    const flat = source(new Map([...Array.from({ length: 10 }, (_, k) => [`10|${k}`, [1, 0]] as [string, number[]]), ...Array.from({ length: 10 }, (_, k) => [`20|${k}`, [0.9, 0.2]] as [string, number[]])]), 2);
    assert.equal(decileOrder(flat, [10]).mean, 0);
    assert.equal(crossSiteDecile(flat, new Float64Array(2), [{ a: 10, b: 20 }]).r1, 0);
  });

  it('ordinal codes sum to zero and lie in decile order', () => {
    const codes = Array.from({ length: 10 }, (_, k) => ordinalCode(k));
    assert.ok(Math.abs(codes.reduce((s, c) => s + c[0] + c[1], 0)) < 1e-9);
    assert.equal(spearman(codes.map((c) => -c[0]), codes.map((_, k) => k)), 1);
  });

  it('counts effective dimensions: 1 for rows on a line, about d for isotropic rows', () => {
    const line = Float32Array.from({ length: 200 * 4 }, (_, i) => (Math.floor(i / 4) % 7) * [1, 2, 3, 4][i % 4]);
    assert.ok(Math.abs(effectiveDimensions(line, 4) - 1) < 1e-6);
    const eye = Float32Array.from({ length: 8 * 8 }, (_, i) => (i % 9 === 0 ? 1 : 0));
    assert.ok(effectiveDimensions(eye, 8) > 6.9);
  });

  it('describes a decile by its band and, where known, its value range', () => {
    assert.equal(decileDescription(8, [4, 5, 5.5, 6, 6.5, 7, 7.5, 8, 8, 9, 12], '%'), 'decile 9 of 10, high, 8 to 9 %');
    assert.equal(decileDescription(0), 'decile 1 of 10, lowest');
  });
});

describe('the lookup for unseen decile tokens', () => {
  // 21 and 22 are two glucose tests under parent 30; only 21 has decile rows
  const vocab = new InMemoryVocabularyIndex({ mapsTo: [[11, 22]], isA: [[21, 30], [22, 30]] });
  let file: string;
  before(async () => {
    file = path.join(tempDir('sibling'), 'r.parquet');
    await writeRepresentations(file, 2, {
      conceptIds: [21, 21, 22, 30], deciles: [4, 5, null, null], vectors: Float32Array.from([4, 1, 5, 1, 2, 0, 3, 0]),
    });
  });

  it("takes a sibling's row of the same decile before any base row, and counts each kind", async () => {
    const lookup = new RepresentationLookup(await loadTable(file), vocab);
    const hit = lookup.resolve(11, 5)!; // 11 maps to 22, which has no decile rows; its sibling 21 has decile 5
    assert.deepEqual([hit.conceptId, hit.decile, hit.source], [21, 5, 'sibling']);
    assert.equal(lookup.resolve(22, 7)!.source, 'base'); // no sibling has decile 7: 22's base row
    assert.equal(lookup.resolve(99, null), null);
    assert.deepEqual(lookup.counts, { exact: 0, mapped: 0, ancestor: 0, sibling: 1, base: 1, unknown: 1 });
  });

  it("BEHRT's frozen path reads through the same lookup and reports resolutions per token", async () => {
    const reps = await loadRepresentations(file, { vocab, standardize: false });
    assert.deepEqual(Array.from(reps.lookup(11, 5)!), [5, 1]);
    assert.deepEqual(Array.from(reps.lookup(21, 4)!), [4, 1]);
    assert.equal(reps.lookup(99, 1), null);
    assert.deepEqual(reps.resolutions!(), { exact: 1, sibling: 1, unknown: 1 });
    const plain = await loadRepresentations(file, { standardize: false }); // without a vocabulary: own rows and base rows only
    assert.equal(plain.lookup(11, 5), null);
    assert.deepEqual(Array.from(plain.lookup(22, 3)!), [2, 0]);
  });

  it('hands BEHRT the table centred and scaled to unit root mean square per component', async () => {
    const reps = await loadRepresentations(file); // rows (4,1) (5,1) (2,0) (3,0): mean (3.5, 0.5), rms 0.866
    const rows = [reps.lookup(21, 4)!, reps.lookup(21, 5)!, reps.lookup(22, null)!, reps.lookup(30, null)!];
    const mean = [0, 1].map((k) => rows.reduce((s, r) => s + r[k], 0) / 4);
    const rms = Math.sqrt(rows.reduce((s, r) => s + r[0] ** 2 + r[1] ** 2, 0) / 8);
    assert.ok(Math.abs(mean[0]) < 1e-6 && Math.abs(mean[1]) < 1e-6 && Math.abs(rms - 1) < 1e-6, `mean ${mean}, rms ${rms}`);
    assert.ok(Math.abs(rows[0][0] - 0.5 / Math.sqrt(0.75)) < 1e-6);
  });
});

describe('representation benchmark, small (synthetic sites A and B)', function () {
  this.timeout(180_000);
  let dir: string;
  before(async () => {
    dir = tempDir('quality');
    await generateSynthetic({ persons: 20, seed: 1, out: path.join(dir, 'omop'), format: 'parquet', site: 'A' });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the default method finds site-B counterparts, keeps decile order and maps B decile k to A decile k', async () => {
    const vocabDir = path.join(dir, 'omop');
    // a smaller SVD than the default keeps the test short; the benchmark measures the default
    const r = await trainRepresentations({ vocab: vocabDir, out: path.join(dir, 'repr'), lexical: { dim: 128 }, log: () => {} });
    const key = counterpartKey();
    assert.equal(key.queries.length, 60);
    const vocab = await loadVocabularyIndex(vocabDir, { maxAncestorLevels: 100 });
    const s = scoreTable('default', await loadTable(r.medrep.path), vocab, key);
    assert.ok(s.retrieval.r1 >= 0.9, `cross-site r@1 ${s.retrieval.r1}`);
    for (const [d, x] of Object.entries(s.retrieval.byDomain)) assert.ok(x.r1 >= 0.8, `${d} r@1 ${x.r1}`);
    assert.ok(s.decileOrder! >= 0.9, `decile order ${s.decileOrder}`);
    assert.ok(s.crossSiteDecileR1! >= 0.9, `cross-site decile r@1 ${s.crossSiteDecileR1}`);
    // every measurement concept of the vocabulary has its ten decile rows, not only one site's
    const t = await loadTable(r.medrep.path);
    for (const lab of key.labs) for (let k = 0; k < 10; k++) assert.ok(t.has(lab, k), `no row for lab ${lab} decile ${k}`);
  });
});
