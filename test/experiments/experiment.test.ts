import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { experimentExternal } from '../../experiments/externalValidation';
import { silentLogger } from '../../common/progress';
import { tempDir } from '../helpers';

describe('medrep experiment external on two synthetic sites (end to end, tiny settings)', function () {
  it('writes the Table-2 shape: vanilla / text-only / MedRep x internal / external, per task and average, AUROC and AUPRC', async () => {
    const out = path.join(tempDir('experiment'), 'out');
    const r = await experimentExternal({
      out, personsA: 400, personsB: 150, tasks: ['mortality'], seeds: [1], epochs: 1, textEpochs: 1, gclEpochs: 1,
      valSplits: ['pretrain_val'], testSplits: ['finetune_val', 'finetune_test'], withMedtok: true, log: silentLogger,
    });
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    assert.equal(r.resultsFile, path.join(out, 'results.json'));
    const text = JSON.stringify(results);
    for (const arm of ['vanilla', 'text', 'medrep']) assert.match(text, new RegExp(`"${arm}`, 'i'));
    for (const setting of ['internal', 'external']) assert.match(text, new RegExp(setting));
    assert.match(r.table, /AUROC/);
    assert.match(r.table, /AUPRC/);
    assert.match(r.table, /medrep\s+behrt\s+external/);
    assert.match(r.table, /vanilla\s+behrt\s+internal/);
    // Site B was coded with other concept ids than site A, and the pipeline ran on both.
    for (const site of ['site-a', 'site-b']) assert.ok(fs.existsSync(path.join(out, site, 'samples/mortality')));
    assert.ok(fs.existsSync(path.join(out, 'representations/medrep.parquet')));
    // The paper's tables, by task group, and each arm's stored cell.
    assert.match(fs.readFileSync(path.join(out, 'table2.md'), 'utf8'), /\| arm \| setting \| MT \| average \|/);
    assert.match(fs.readFileSync(path.join(out, 'table3.md'), 'utf8'), /\| text-only \| external \| \d\.\d{3} \|/);
    for (const arm of ['vanilla', 'text-only', 'medrep']) assert.ok(fs.existsSync(path.join(out, 'cells', arm, 'behrt', 'mortality', 'seed-1.json')), arm);
    // --with-medtok: the MedTok baseline's table is one more frozen arm, scored in both settings.
    const medtok = results.rows.filter((row: { embeddings: string }) => row.embeddings === 'medtok');
    assert.deepEqual(medtok.map((row: { setting: string }) => row.setting), ['internal', 'external']);
    assert.ok(medtok.every((row: { tasks: Record<string, { perSeed: unknown[] }> }) => row.tasks.mortality.perSeed.length === 1));
    assert.equal(results.representations.medtok.file, 'medtok.parquet');
    assert.match(r.table, /medtok\s+behrt\s+external/);
  });
});
