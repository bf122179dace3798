import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { AddressInfo } from 'net';
import { DuckDBInstance } from '@duckdb/node-api';
import { buildConceptGraph } from '../../../trainers/graph/conceptGraph';
import { buildConceptText, ordinal, templateDescription } from '../../../trainers/text/conceptText';
import { parseTrainRepresentationsArgs } from '../../../cli/trainRepresentations';
import { trainRepresentations } from '../../../trainers/representations/trainRepresentations';
import { loadRepresentations } from '../../../trainers/representations/table';
import { graceOptions, textEncoderConfig } from '../../../trainers/representations/sizes';
import type { DecileArtifact } from '../../../transforms/deciles';
import { tempDir } from '../../helpers';

/** A CDM-CSV vocabulary (comma separated, quoted names) with a measurement to bin. */
function writeCdmVocabulary(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'CONCEPT.csv'), [
    'concept_id,concept_name,domain_id,vocabulary_id,concept_class_id,standard_concept,concept_code,valid_start_date,valid_end_date,invalid_reason',
    '201826,Type 2 diabetes mellitus,Condition,SNOMED,Clinical Finding,S,44054006,1970-01-01,2099-12-31,',
    '201820,Diabetes mellitus,Condition,SNOMED,Clinical Finding,S,73211009,1970-01-01,2099-12-31,',
    '1503297,Metformin,Drug,RxNorm,Ingredient,S,6809,1970-01-01,2099-12-31,',
    '1503328,"Metformin hydrochloride 500 MG Oral Tablet, extended release",Drug,RxNorm,Clinical Drug,S,860975,1970-01-01,2099-12-31,',
    '3004410,Hemoglobin A1c/Hemoglobin.total in Blood,Measurement,LOINC,Lab Test,S,4548-4,1970-01-01,2099-12-31,',
    '4230911,Colonoscopy,Procedure,SNOMED,Procedure,S,73761001,1970-01-01,2099-12-31,',
    '8554,percent,Unit,UCUM,Unit,S,%,1970-01-01,2099-12-31,',
  ].join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'CONCEPT_RELATIONSHIP.csv'), [
    'concept_id_1,concept_id_2,relationship_id,valid_start_date,valid_end_date,invalid_reason',
    '201826,201820,Is a,1970-01-01,2099-12-31,', '201820,201826,Subsumes,1970-01-01,2099-12-31,',
    '1503328,1503297,RxNorm has ing,1970-01-01,2099-12-31,', '1503297,1503328,RxNorm ing of,1970-01-01,2099-12-31,',
    '3004410,8554,Has unit,1970-01-01,2099-12-31,',
  ].join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'CONCEPT_SYNONYM.csv'), 'concept_id,concept_synonym_name,language_concept_id\n201826,T2DM,4180186\n');
}

const deciles: DecileArtifact = {
  kind: 'medrep.deciles', version: 'v-test', min_count: 10, fitted_on: 'pretrain_train',
  groups: [{ concept_id: 3004410, unit: '8554', count: 50, boundaries: [4, 5, 5.5, 6, 6.5, 7, 7.5, 8, 9, 10, 12] }],
};

describe('concept text', () => {
  let dir: string;
  before(() => { dir = tempDir('text'); writeCdmVocabulary(path.join(dir, 'v')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('ordinals', () => assert.deepEqual([1, 2, 3, 4, 10, 11, 12, 13, 21].map(ordinal), ['1st', '2nd', '3rd', '4th', '10th', '11th', '12th', '13th', '21st']));

  it('uses the descriptions file first, then the endpoint, then templates, recording each source', async () => {
    const v = path.join(dir, 'v');
    const g = await buildConceptGraph(v, { deciles });
    const desc = path.join(dir, 'desc.csv');
    fs.writeFileSync(desc, 'concept_id,description\n201826,"Type 2 diabetes, a chronic metabolic disease."\n');
    const server = http.createServer((req, res) => {
      let b = '';
      req.on('data', (c) => { b += c; });
      req.on('end', () => {
        const name = /"([^"]+)"/.exec(JSON.parse(b).messages[1].content)![1];
        if (name === 'Colonoscopy') { res.writeHead(500); res.end(); return; }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ message: { content: `LLM text for ${name}.` } }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const endpoint = { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, cacheFile: path.join(dir, 'cache.jsonl'), maxRetries: 0, requestsPerSecond: 1000 };
      const t = await buildConceptText(v, g, { descriptionsFile: desc, endpoint });
      const at = (id: number, d: number | null = null) => g.indexOf(id, d);
      assert.equal(t.texts[at(201826)], 'Type 2 diabetes, a chronic metabolic disease.');
      assert.equal(t.sources[at(201826)], 'file');
      assert.equal(t.texts[at(1503297)], 'LLM text for Metformin.');
      assert.equal(t.sources[at(1503297)], 'endpoint');
      // the endpoint failed for Colonoscopy: the template stands in, and says so
      assert.equal(t.sources[at(4230911)], 'template');
      assert.equal(t.texts[at(4230911)], 'Colonoscopy. A procedure concept in SNOMED (Procedure).');
      assert.equal(t.texts[at(3004410, 2)], 'Hemoglobin A1c/Hemoglobin.total in Blood, decile 3 of 10, low. LLM text for Hemoglobin A1c/Hemoglobin.total in Blood.');
      assert.deepEqual(t.counts, { file: 1, endpoint: 4 + 10, template: 1 });
    } finally {
      server.close();
    }
  });

  it('decile descriptions name the value range of the decile where the boundaries are known', async () => {
    const v = path.join(dir, 'v');
    const g = await buildConceptGraph(v, { deciles });
    const t = await buildConceptText(v, g, { deciles });
    assert.match(t.texts[g.indexOf(3004410, 8)], /^Hemoglobin A1c\/Hemoglobin\.total in Blood, decile 9 of 10, high, 9 to 10 8554\. Hemoglobin A1c/);
  });

  it('templates carry synonyms, ancestors, source names and related names', async () => {
    const v = path.join(dir, 'v');
    const g = await buildConceptGraph(v);
    const t = await buildConceptText(v, g);
    assert.equal(t.texts[g.indexOf(201826)], 'Type 2 diabetes mellitus. A condition concept in SNOMED (Clinical Finding). Also known as T2DM. A kind of Diabetes mellitus.');
    assert.equal(t.texts[g.indexOf(1503328)], 'Metformin hydrochloride 500 MG Oral Tablet, extended release. A drug concept in RxNorm (Clinical Drug). RxNorm has ing: Metformin.');
    assert.equal(t.texts[g.indexOf(3004410)], templateDescription({ name: 'Hemoglobin A1c/Hemoglobin.total in Blood', vocabulary: 'LOINC', cls: 'Lab Test' }, 'measurement', [], [], [['Has unit', 'percent']]));
    assert.deepEqual(t.counts, { file: 0, endpoint: 0, template: 6 });
  });
});

describe('train representations (end to end, tiny)', () => {
  let dir: string;
  before(() => { dir = tempDir('train'); writeCdmVocabulary(path.join(dir, 'v')); fs.writeFileSync(path.join(dir, 'deciles.json'), JSON.stringify(deciles)); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('parses the command line, refusing bad values', () => {
    const o = parseTrainRepresentationsArgs(['--vocab', 'V', '--out', 'O', '--backend', 'cpu', '--epochs', '3', '--no-kd', '--hidden', '32']);
    assert.equal(o.backend, 'cpu');
    assert.equal(o.gcl!.maxEpochs, 3);
    assert.equal(o.mlm!.maxEpochs, 3);
    assert.equal(o.gcl!.distill, false);
    assert.equal(o.textConfig!.hidden, 32);
    assert.throws(() => parseTrainRepresentationsArgs(['--vocab', 'V']), /--vocab and --out are required/);
    assert.throws(() => parseTrainRepresentationsArgs(['--vocab', 'V', '--out', 'O', '--backend', 'gpu']), /--backend must be one of/);
    assert.throws(() => parseTrainRepresentationsArgs(['--vocab', 'V', '--out', 'O', '--epochs', '0']), /--epochs must be above 0, got 0/);
  });

  it('takes named sizes of the text encoder and GRACE, a single flag overriding its value', () => {
    const o = parseTrainRepresentationsArgs(['--vocab', 'V', '--out', 'O', '--text-size', 'paper', '--hidden', '96', '--graph-size', 'small', '--seeds-per-batch', '64']);
    assert.deepEqual(textEncoderConfig(o.textSize, o.textConfig), { hidden: 96, layers: 6, heads: 12, intermediate: 512, maxLen: 128 });
    const g = graceOptions(o.graphSize, o.gcl);
    assert.deepEqual([g.seedsPerBatch, g.fanouts, g.maxLossNodes, g.tau], [64, [10, 5], 1024, 0.5]);
    const d = graceOptions(parseTrainRepresentationsArgs(['--vocab', 'V', '--out', 'O']).graphSize);
    assert.deepEqual([d.seedsPerBatch, d.fanouts, d.maxLossNodes], [1024, [30, 20, 10], 4096]);
    assert.throws(() => parseTrainRepresentationsArgs(['--vocab', 'V', '--out', 'O', '--graph-size', 'tiny']), /--graph-size must be full or small, got "tiny"/);
  });

  it('the paper method writes text.parquet, medrep.parquet and representations.json; the same seed gives identical files', async () => {
    const run = (out: string) => trainRepresentations({
      vocab: path.join(dir, 'v'), out, deciles: path.join(dir, 'deciles.json'), backend: 'wasm', log: () => {}, method: 'paper',
      textConfig: { hidden: 16, layers: 1, heads: 2, intermediate: 32, maxLen: 24 }, tokenizerVocabSize: 120,
      mlm: { maxEpochs: 2, batchSize: 8 }, graphSize: 'small', gcl: { maxEpochs: 2, seedsPerBatch: 8, fanouts: [3, 2] },
    });
    const a = await run(path.join(dir, 'a'));
    const b = await run(path.join(dir, 'b'));
    for (const f of ['text.parquet', 'medrep.parquet', 'descriptions.jsonl', 'tokenizer.json']) {
      assert.ok(fs.readFileSync(path.join(dir, 'a', f)).equals(fs.readFileSync(path.join(dir, 'b', f))), `${f} differs between runs`);
    }
    assert.equal(a.medrep.rows, 6 + 10);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'a', 'representations.json'), 'utf8'));
    assert.equal(meta.inputs.deciles.version, 'v-test');
    assert.match(meta.inputs.vocabulary.sha256['CONCEPT.csv'], /^[0-9a-f]{64}$/);
    assert.equal(meta.outputs['medrep.parquet'].sha256, a.medrep.sha256);
    assert.equal(meta.settings.gcl.tau, 0.5);
    assert.deepEqual([meta.settings.gcl.maxLossNodes, meta.settings.gcl.seedsPerBatch, meta.settings.gcl.fanouts], [1024, 8, [3, 2]]);
    assert.equal(meta.backend.name, 'wasm');
    assert.equal(b.medrep.sha256, a.medrep.sha256);
    // the tables hold every node: 6 concepts and 10 deciles of HbA1c, checked with DuckDB
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    const rows = (await c.runAndReadAll(`SELECT count(*), count(decile), count(DISTINCT concept_id), min(len(vector)) FROM read_parquet('${path.join(dir, 'a', 'medrep.parquet')}')`)).getRows()[0].map(Number);
    c.closeSync(); db.closeSync();
    assert.deepEqual(rows, [16, 10, 6, 16]);
    const t = await loadRepresentations(path.join(dir, 'a', 'text.parquet'));
    assert.ok(t.get(3004410, 9) && t.get(201826, null));
  });

  it('the default method (lexical, APPNP, ordinal decile rows) gives every measurement concept ten rows without any deciles file', async () => {
    const out = path.join(dir, 'lex');
    const r = await trainRepresentations({ vocab: path.join(dir, 'v'), out, log: () => {}, lexical: { dim: 8 } });
    assert.deepEqual([r.settings.text, r.settings.graph, r.settings.deciles], ['lexical', 'appnp', 'ordinal']);
    assert.equal(r.medrep.rows, 6 + 10);
    assert.equal(r.medrep.dim, 8 + 2);
    const t = await loadRepresentations(path.join(out, 'medrep.parquet'));
    // decile rows carry the lab's vector and differ only in the ordinal code
    assert.deepEqual(Array.from(t.get(3004410, 0)!.subarray(0, 8)), Array.from(t.get(3004410, null)!.subarray(0, 8)));
    assert.notDeepEqual(Array.from(t.get(3004410, 0)!), Array.from(t.get(3004410, 9)!));
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'representations.json'), 'utf8'));
    assert.equal(meta.settings.method, 'lexical');
    assert.equal(meta.settings.propagation.alpha, 0.2);
    assert.ok(!JSON.stringify(meta).includes(dir), 'representations.json records a machine path');
  });
});
