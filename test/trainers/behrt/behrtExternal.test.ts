import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runExternalExperiment } from '../../../trainers/behrt/external';
import { runCommandLine } from '../../../cli';
import { writeRepresentations, writeSite } from '../../helpers/ehrFixtures';
import type { ResultRow } from '../../../trainers/behrt/experiment';
import { experimentConfig } from '../../../trainers/behrt/external';
import { splitOf } from '../../../transforms/splits';
import { tempDir } from '../../helpers';
import { decodePng } from '../../helpers/png';
import type { CurveFigures } from '../../../trainers/behrt/experiment';
import type { FigureFiles } from '../../../figures/figureFiles';

/** A written figure: its PNG decodes at the size results.json declares, its SVG holds each text. Returns the SVG. */
function assertFigure(out: string, f: FigureFiles, texts: string[]): string {
  const png = decodePng(readFileSync(join(out, f.png)));
  assert.deepEqual(png, { width: f.width, height: f.height }, f.png);
  const svg = readFileSync(join(out, f.svg), 'utf8');
  const size = /^<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg);
  assert.ok(size, `${f.svg} has no width and height`);
  // Rendered at twice the SVG's size, the white band past the last ink cut off.
  const [w, h] = [Number(size[1]), Number(size[2])];
  assert.ok(f.width > w && f.width <= 2 * w && f.height > h && f.height <= 2 * h, `${f.png} is ${f.width}x${f.height}, its SVG ${w}x${h}`);
  for (const t of texts) assert.ok(svg.includes(`>${t}`), `${f.svg} has no text starting "${t}"`);
  return svg;
}

const tinyModel = { hidden: 16, layers: 1, heads: 2, intermediate: 32, maxLen: 32, segmentVocab: 16, recordRankVocab: 8 };

describe('BEHRT external validation experiment', function () {
  this.timeout(240_000);

  it('trains on site A, scores A internally and B externally; MedRep vectors carry to B, vanilla ids do not', async () => {
    const root = tempDir('behrt-ext');
    // Site B codes the same process with concept ids shifted by 50000; the vectors put twins together.
    await writeSite(join(root, 'A'), { persons: 240, seed: 1, maxEvents: 16 });
    await writeSite(join(root, 'B'), { persons: 120, seed: 2, maxEvents: 16, conceptOffset: 50000 });
    await writeRepresentations(join(root, 'reps.parquet'), 12, [0, 50000], 3);
    const out = join(root, 'out');
    const logs: string[] = [];
    const res = await runExternalExperiment({
      siteA: join(root, 'A'), siteB: join(root, 'B'), representations: join(root, 'reps.parquet'), out, seeds: [1],
      // Frozen tables sit longer on the base-rate plateau than learned ones (here ~15 epochs vs ~8):
      // a shorter budget compares two untrained models.
      model: tinyModel, train: { epochs: 30, batchSize: 16, patience: 10 }, pretrainEpochs: 1,
      valSplits: ['pretrain_val'], testSplits: ['finetune_val', 'finetune_test'], log: (m) => logs.push(m),
    });
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    const rows = results.rows as ResultRow[];
    assert.deepEqual(rows.map((r) => `${r.embeddings}/${r.model}/${r.setting}`), ['vanilla/behrt/internal', 'vanilla/behrt/external', 'medrep/behrt/internal', 'medrep/behrt/external']);
    const get = (e: string, s: string) => rows.find((r) => r.embeddings === e && r.setting === s)!;
    // Vanilla sees only [UNK] at site B; MedRep sees vectors.
    assert.equal(get('vanilla', 'external').tasks.risk.perSeed[0].unknownTokenShare, 1);
    assert.equal(get('medrep', 'external').tasks.risk.perSeed[0].unknownTokenShare, 0);
    assert.equal(get('medrep', 'external').tasks.risk.perSeed[0].n, 120);
    const medrep = get('medrep', 'external').average.auroc;
    const vanilla = get('vanilla', 'external').average.auroc;
    assert.ok(medrep > vanilla + 0.1, `MedRep external AUROC ${medrep} vs vanilla ${vanilla}`);
    const ci = get('medrep', 'external').tasks.risk.ci95!;
    assert.ok(ci[0] <= medrep && medrep <= ci[1]);
    assert.equal(results.projection[0].learnedProjection, true); // 12-d vectors, hidden 16
    // Versions, not machine paths: the table by its hash and file name.
    assert.deepEqual(Object.keys(results.representations.medrep).sort(), ['dim', 'file', 'hash']);
    assert.equal(results.representations.medrep.file, 'reps.parquet');
    assert.ok(!JSON.stringify(results).includes(root), 'results.json names no folder of this machine');
    assert.match(res.table, /medrep\s+behrt\s+external/);
    // Figures: a PNG of the declared size beside its SVG, axes titled, a legend naming each arm.
    const curves = results.curves as Record<string, CurveFigures>;
    assert.deepEqual(Object.keys(curves).sort(), ['external|risk', 'internal|risk']);
    for (const setting of ['internal', 'external']) {
      const c = curves[`${setting}|risk`];
      assert.equal(c.roc, `curves/risk-${setting}-roc.png`);
      assertFigure(out, c.files.roc, [`ROC: risk, ${setting}`, 'false positive rate', 'true positive rate', 'embeddings', 'vanilla', 'medrep']);
      assertFigure(out, c.files.pr, [`PR: risk, ${setting}`, 'recall', 'precision', 'vanilla', 'medrep']);
    }
    const bars = results.bars as Record<string, FigureFiles>;
    assert.deepEqual(Object.keys(bars), ['behrt']);
    assert.equal(bars.behrt.png, 'auroc-bars.png');
    const barSvg = assertFigure(out, bars.behrt, ['AUROC per task (behrt)', 'internal', 'external', 'task', 'AUROC, DeLong 95% CI', 'risk', 'vanilla', 'medrep']);
    // One bar per arm and setting, and on each a whisker from its DeLong interval.
    assert.equal(barSvg.match(/aria-roledescription="bar"/g)?.length, 4);
    assert.equal(barSvg.match(/aria-roledescription="rule mark"/g)?.length, 4);
    const [lo, hi] = get('medrep', 'external').tasks.risk.ci95;
    assert.ok(barSvg.includes(`task: risk; lo: ${+lo.toFixed(12)}; hi: ${+hi.toFixed(12)}; arm: medrep`), 'no whisker at the medrep external interval');
  });

  it('runs `train ehr` on a 24-phenotype multi-label task and writes results, curves and a run record', async () => {
    const root = tempDir('behrt-pheno');
    await writeSite(join(root, 'A'), { persons: 160, seed: 5, maxEvents: 16, phenotypes: 24 }, 'phenotypes');
    const out = join(root, 'model');
    await runCommandLine(['train', 'ehr', '--shards', join(root, 'A'), '--task', 'phenotypes', '--out', out, '--seeds', '1,2', '--epochs', '1',
      '--hidden', '8', '--layers', '1', '--heads', '2', '--intermediate', '16', '--max-len', '16',
      '--train-splits', 'pretrain_train,finetune_train', '--val-splits', 'pretrain_val', '--test-splits', 'finetune_val,finetune_test']);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    // Same shards, same seeds: the same results file, byte for byte.
    const again = join(root, 'model-again');
    await runCommandLine(['train', 'ehr', '--shards', join(root, 'A'), '--task', 'phenotypes', '--out', again, '--seeds', '1,2', '--epochs', '1',
      '--hidden', '8', '--layers', '1', '--heads', '2', '--intermediate', '16', '--max-len', '16',
      '--train-splits', 'pretrain_train,finetune_train', '--val-splits', 'pretrain_val', '--test-splits', 'finetune_val,finetune_test']);
    assert.ok(readFileSync(join(out, 'results.json')).equals(readFileSync(join(again, 'results.json'))), 'results.json differs between identical runs');
    assert.equal(run.task, 'phenotypes');
    assert.ok(!JSON.stringify(run).includes(root), 'run.json names no folder of this machine');
    assert.match(run.shards, /^sha256:/);
    const cell = run.results[0].tasks.phenotypes;
    assert.equal(cell.perSeed.length, 2);
    // The macro average's interval (DeLong's variance carried to the mean), bounds averaged over seeds.
    assert.ok(cell.ci95[0] < cell.auroc && cell.auroc < cell.ci95[1], JSON.stringify(cell.ci95));
    for (const r of cell.perSeed) assert.ok(r.ci95[0] <= r.auroc && r.auroc <= r.ci95[1]);
    assert.ok(cell.perSeed[0].labelsAveraged > 0 && cell.perSeed[0].labelsAveraged <= 24);
    assert.ok(cell.auroc > 0 && cell.auroc < 1.0001);
    const written = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    assertFigure(out, written.curves['internal|phenotypes'].files.roc, ['ROC: phenotypes, internal', 'false positive rate', 'true positive rate', 'vanilla']);
    assertFigure(out, written.bars.behrt, ['AUROC per task (behrt)', 'phenotypes', 'vanilla']);
  });

  it('pretrains with `train ehr --task pretrain` and finetunes from that checkpoint with --init', async () => {
    const root = tempDir('behrt-init');
    await writeSite(join(root, 'A'), { persons: 120, seed: 8, maxEvents: 12 });
    const size = ['--hidden', '8', '--layers', '1', '--heads', '2', '--intermediate', '16', '--max-len', '16', '--backend', 'cpu'];
    const pre = join(root, 'pre');
    await runCommandLine(['train', 'ehr', '--shards', join(root, 'A'), '--task', 'pretrain', '--out', pre, '--epochs', '1', ...size]);
    const preRun = JSON.parse(readFileSync(join(pre, 'run.json'), 'utf8'));
    assert.equal(preRun.task, 'pretrain');
    const ckpt = join(pre, 'checkpoints', 'vanilla', 'behrt', 'seed-1', 'pretrain');
    assert.ok(existsSync(join(ckpt, 'BEST')));
    const ft = join(root, 'ft');
    await runCommandLine(['train', 'ehr', '--shards', join(root, 'A'), '--task', 'risk', '--out', ft, '--epochs', '1', '--init', ckpt, ...size,
      '--train-splits', 'pretrain_train,finetune_train', '--val-splits', 'pretrain_val', '--test-splits', 'finetune_val,finetune_test']);
    const meta = JSON.parse(readFileSync(join(ft, 'checkpoints', 'vanilla', 'behrt', 'seed-1', 'risk', readFileSync(join(ft, 'checkpoints', 'vanilla', 'behrt', 'seed-1', 'risk', 'LATEST'), 'utf8').trim(), 'checkpoint.json'), 'utf8'));
    const preMeta = JSON.parse(readFileSync(join(ckpt, readFileSync(join(ckpt, 'BEST'), 'utf8').trim(), 'checkpoint.json'), 'utf8'));
    assert.equal(meta.vocabHash, preMeta.vocabHash);
    // An arm that does not match the pretrained embeddings is refused.
    await writeRepresentations(join(root, 'reps.parquet'), 8, [0], 1);
    await assert.rejects(runCommandLine(['train', 'ehr', '--shards', join(root, 'A'), '--task', 'risk', '--out', join(root, 'x'), '--init', ckpt, '--embeddings', 'medrep', '--representations', join(root, 'reps.parquet'), ...size]), /pretrained with vanilla embeddings/);
  });

  it('train ehr --vocab: tokens without a row of their own take their Maps to target\'s, counted in run.json', async () => {
    const root = tempDir('behrt-vocab');
    // Site B's ids are site A's plus 50000; the table has rows for site A's ids only.
    await writeSite(join(root, 'B'), { persons: 60, seed: 2, maxEvents: 12, conceptOffset: 50000 });
    await writeRepresentations(join(root, 'reps.parquet'), 8, [0], 3);
    const vocab = join(root, 'vocab');
    mkdirSync(vocab);
    const ids = [...Array.from({ length: 4 * 20 }, (_, i) => 100 * (1 + Math.floor(i / 20)) + (i % 20)), 1001, 1002, 1003];
    writeFileSync(join(vocab, 'CONCEPT_RELATIONSHIP.csv'), ['concept_id_1,concept_id_2,relationship_id,valid_start_date,valid_end_date,invalid_reason',
      ...ids.map((c) => `${c + 50000},${c},Maps to,1970-01-01,2099-12-31,`)].join('\n') + '\n');
    const size = ['--hidden', '8', '--layers', '1', '--heads', '2', '--intermediate', '16', '--max-len', '16', '--backend', 'cpu', '--epochs', '1', '--seeds', '1'];
    const out = join(root, 'ft');
    await runCommandLine(['train', 'ehr', '--shards', join(root, 'B'), '--task', 'risk', '--out', out, '--embeddings', 'medrep', '--representations', join(root, 'reps.parquet'), '--vocab', vocab, ...size]);
    const lookup = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).lookup as Record<string, number>;
    assert.ok(lookup.mapped > 50, `mapped ${lookup.mapped}`);
    assert.equal(lookup.exact, undefined);
  });

  it('selects epochs on a validation split of a sixth of the persons, apart from training and test persons', () => {
    const cfg = experimentConfig({});
    const share = new Map<string, number>();
    for (let id = 1; id <= 20000; id++) share.set(splitOf(id), (share.get(splitOf(id)) ?? 0) + 1 / 20000);
    const of = (splits: string[]) => splits.reduce((a, s) => a + (share.get(s) ?? 0), 0);
    // finetune_val alone is 3% of the persons: ~10 labelled samples per task at a 1,500-person site.
    assert.ok(of(cfg.valSplits) > 0.15, `validation splits ${cfg.valSplits.join(',')} hold ${(100 * of(cfg.valSplits)).toFixed(1)}% of persons`);
    for (const s of cfg.valSplits) assert.ok(!cfg.trainSplits.includes(s) && !cfg.testSplits.includes(s), `${s} is also a training or test split`);
  });

  it('names the flag when arguments are wrong', async () => {
    await assert.rejects(runCommandLine(['train', 'ehr', '--task', 'x']), /--shards and --task are required/);
    await assert.rejects(runCommandLine(['train', 'ehr', '--shards', '/nonexistent', '--task', 'x', '--embeddings', 'medrep']), /needs --representations/);
    await assert.rejects(runCommandLine(['train', 'ehr', '--shards', '/tmp', '--task', 'x', '--epochs', 'many']), /--epochs must be a number/);
  });
});
