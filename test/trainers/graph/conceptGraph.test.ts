import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { buildConceptGraph, ConceptGraph } from '../../../trainers/graph/conceptGraph';
import type { DecileArtifact } from '../../../transforms/deciles';
import { tempDir } from '../../helpers';

/** Writes an Athena-layout vocabulary: tab-separated, no quoting, dates YYYYMMDD. */
function writeAthena(dir: string, concepts: Array<[number, string, string]>, rels: Array<[number, number, string, string?]>): void {
  fs.mkdirSync(dir, { recursive: true });
  const c = ['concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_class_id\tstandard_concept\tconcept_code\tvalid_start_date\tvalid_end_date\tinvalid_reason'];
  for (const [id, name, dom] of concepts) c.push(`${id}\t${name}\t${dom}\tSNOMED\tClinical Finding\tS\tC${id}\t19700101\t20991231\t`);
  fs.writeFileSync(path.join(dir, 'CONCEPT.csv'), c.join('\n') + '\n');
  const r = ['concept_id_1\tconcept_id_2\trelationship_id\tvalid_start_date\tvalid_end_date\tinvalid_reason'];
  for (const [a, b, rel, inv] of rels) r.push(`${a}\t${b}\t${rel}\t19700101\t20991231\t${inv ?? ''}`);
  fs.writeFileSync(path.join(dir, 'CONCEPT_RELATIONSHIP.csv'), r.join('\n') + '\n');
}

function neighbourIds(g: ConceptGraph, id: number, decile: number | null = null): string[] {
  const n = g.indexOf(id, decile);
  assert.ok(n >= 0, `node ${id}/${decile}`);
  return Array.from(g.neighbours(n)).map((m) => (g.deciles[m] < 0 ? `${g.conceptIds[m]}` : `${g.conceptIds[m]}#${g.deciles[m]}`));
}

describe('concept graph', () => {
  let dir: string;
  before(() => { dir = tempDir('graph'); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('links in-scope concepts symmetrically, once per pair, without self links or out-of-scope ends', async () => {
    const v = path.join(dir, 'small');
    writeAthena(v, [[1, 'Diabetes', 'Condition'], [2, 'Metformin', 'Drug'], [3, 'Glucose', 'Measurement'], [4, 'Biopsy', 'Procedure'],
      [5, 'Smoker', 'Observation'], [6, 'Type 2 diabetes', 'Condition']],
    [[6, 1, 'Is a'], [1, 6, 'Subsumes'], [2, 1, 'May treat'], [1, 1, 'Maps to'], [1, 5, 'Has finding'], [3, 4, 'Has method', 'D'], [4, 99, 'Is a']]);
    const g = await buildConceptGraph(v);
    assert.equal(g.numNodes, 5); // concept 5 is an observation: not in scope
    assert.deepEqual(neighbourIds(g, 1), ['2', '6']);
    assert.deepEqual(neighbourIds(g, 6), ['1']);
    assert.deepEqual(neighbourIds(g, 2), ['1']);
    assert.deepEqual(neighbourIds(g, 3), []); // the only link is deprecated (invalid_reason D)
    assert.deepEqual(neighbourIds(g, 4), []); // 99 is not in the vocabulary
    assert.equal(g.numEdges, 2);
    assert.equal(g.stats.relationshipRowsInvalid, 1);
    assert.deepEqual(Array.from(g.domains.slice(0, 5)), [1, 2, 3, 4, 1]);
    for (let n = 0; n < g.numNodes; n++) for (const m of g.neighbours(n)) assert.ok(Array.from(g.neighbours(m)).includes(n), `symmetry ${n}-${m}`);
  });

  it('adds decile nodes 0..9 with base <-> decile edges for every concept with a decile group', async () => {
    const v = path.join(dir, 'dec');
    writeAthena(v, [[10, 'Glucose', 'Measurement'], [11, 'HbA1c', 'Measurement'], [12, 'Diabetes', 'Condition']], [[10, 12, 'Has finding']]);
    const deciles: DecileArtifact = {
      kind: 'medrep.deciles', version: 'x', min_count: 10, fitted_on: 'pretrain_train',
      groups: [
        { concept_id: 10, unit: 'mg/dL', count: 20, boundaries: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
        { concept_id: 10, unit: 'mmol/L', count: 20, boundaries: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
        { concept_id: 777, unit: null, count: 20, boundaries: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
      ],
    };
    const g = await buildConceptGraph(v, { deciles });
    assert.equal(g.stats.decileNodes, 10);
    assert.equal(g.stats.decileConceptsNotInScope, 1);
    assert.equal(g.numNodes, 13);
    assert.deepEqual(neighbourIds(g, 10), ['12', ...Array.from({ length: 10 }, (_, d) => `10#${d}`)]);
    assert.deepEqual(neighbourIds(g, 10, 4), ['10']);
    assert.equal(g.indexOf(11, 0), -1); // HbA1c has no group
    assert.deepEqual(neighbourIds(g, 11), []);
  });

  it('drops every edge touching a node with more than 100 links, keeping the node', async () => {
    const v = path.join(dir, 'hub');
    const concepts: Array<[number, string, string]> = [[1000, 'Hub', 'Drug'], [2000, 'Edge hub', 'Drug'], [3000, 'Other', 'Drug']];
    const rels: Array<[number, number, string]> = [];
    for (let i = 0; i < 101; i++) { concepts.push([1 + i, `leaf ${i}`, 'Drug']); rels.push([1000, 1 + i, 'Has ingredient'], [1 + i, 1000, 'Ingredient of']); }
    for (let i = 0; i < 100; i++) { concepts.push([200 + i, `twig ${i}`, 'Drug']); rels.push([2000, 200 + i, 'Has ingredient']); }
    rels.push([3000, 1, 'Is a'], [3000, 200, 'Is a']);
    writeAthena(v, concepts, rels);
    const g = await buildConceptGraph(v);
    assert.deepEqual(neighbourIds(g, 1000), []); // 101 links: all dropped
    assert.ok(g.indexOf(1000) >= 0);
    assert.equal(neighbourIds(g, 2000).length, 100); // exactly 100: kept
    assert.deepEqual(neighbourIds(g, 1), ['3000']); // leaf keeps its other link
    assert.deepEqual(neighbourIds(g, 3000), ['1', '200']); // twig 200's links to 2000 (100 links) and 3000 are kept
  });
});

describe('concept graph on a synthetic vocabulary (scaled-down bounded-memory check)', () => {
  let dir: string;
  before(() => { dir = tempDir('syn'); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('compacting links while streaming gives the same graph as DuckDB SQL over the files', async () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { writeSyntheticVocabulary } = require('../../../trainers/graph/syntheticVocabulary') as typeof import('../../../trainers/graph/syntheticVocabulary');
    const { DuckDBInstance } = await import('@duckdb/node-api');
    writeSyntheticVocabulary(dir, { concepts: 30_001, linksPerConcept: 2.5, hubEvery: 5_000, hubLinks: 120 });
    // a tiny compaction threshold forces many sort+dedup rounds while streaming
    const g = await buildConceptGraph(dir, { compactEvery: 5_000 });

    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const opts = `delim='\t', header=true, quote='', all_varchar=true`;
    await conn.run(`CREATE TABLE c AS SELECT concept_id::BIGINT id FROM read_csv('${dir}/CONCEPT.csv', ${opts}) WHERE domain_id IN ('Condition','Drug','Measurement','Procedure')`);
    await conn.run(`CREATE TABLE l AS SELECT DISTINCT least(a, b) lo, greatest(a, b) hi FROM (
        SELECT concept_id_1::BIGINT a, concept_id_2::BIGINT b FROM read_csv('${dir}/CONCEPT_RELATIONSHIP.csv', ${opts})) r
      WHERE a <> b AND a IN (SELECT id FROM c) AND b IN (SELECT id FROM c)`);
    await conn.run(`CREATE TABLE d AS SELECT n, count(*) deg FROM (SELECT lo n FROM l UNION ALL SELECT hi FROM l) GROUP BY n`);
    const [[nodes], [links], [kept], [hubs]] = await Promise.all([
      'SELECT count(*) FROM c', 'SELECT count(*) FROM l',
      `SELECT count(*) FROM l WHERE lo NOT IN (SELECT n FROM d WHERE deg > 100) AND hi NOT IN (SELECT n FROM d WHERE deg > 100)`,
      'SELECT count(*) FROM d WHERE deg > 100',
    ].map(async (q) => (await conn.runAndReadAll(q)).getRows()[0].map(Number)));
    // a sample of adjacency rows, checked one by one
    const sample = (await conn.runAndReadAll(`SELECT lo, hi FROM l WHERE lo NOT IN (SELECT n FROM d WHERE deg > 100) AND hi NOT IN (SELECT n FROM d WHERE deg > 100) ORDER BY hash(lo * 7 + hi) LIMIT 200`)).getRows();
    conn.closeSync();
    db.closeSync();

    assert.equal(g.numNodes, nodes);
    assert.equal(g.stats.distinctLinks, links);
    assert.equal(g.numEdges, kept);
    assert.equal(g.stats.hubNodes, hubs);
    assert.ok(hubs > 0 && kept < links, 'the synthetic hubs exercise the >100 rule');
    for (const [lo, hi] of sample) {
      const a = g.indexOf(Number(lo));
      const b = g.indexOf(Number(hi));
      assert.ok(Array.from(g.neighbours(a)).includes(b) && Array.from(g.neighbours(b)).includes(a), `${lo}-${hi}`);
    }
  });
});

describe('concept graph of Synthea27Nj (real vocabulary)', () => {
  const csv = path.join(__dirname, '../../../../../shared/omop/synthea27nj');
  const parquet = path.join(__dirname, '../../../../../shared/omop/synthea27nj-parquet');

  it('is the same from the CDM CSV folder and the Parquet folder, and matches DuckDB SQL', async () => {
    const a = await buildConceptGraph(csv);
    const b = await buildConceptGraph(parquet);
    assert.deepEqual(Array.from(a.conceptIds), Array.from(b.conceptIds));
    assert.deepEqual(Array.from(a.rowPtr), Array.from(b.rowPtr));
    assert.deepEqual(Array.from(a.colIdx), Array.from(b.colIdx));
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    await conn.run(`CREATE TABLE c AS SELECT concept_id::BIGINT id FROM read_csv('${csv}/CONCEPT.csv', header=true, all_varchar=true) WHERE domain_id IN ('Condition','Drug','Measurement','Procedure')`);
    const [[nodes, links]] = (await conn.runAndReadAll(`SELECT (SELECT count(*) FROM c), count(*) FROM (SELECT DISTINCT least(a, b), greatest(a, b) FROM (
        SELECT concept_id_1::BIGINT a, concept_id_2::BIGINT b FROM read_csv('${csv}/CONCEPT_RELATIONSHIP.csv', header=true, all_varchar=true) WHERE invalid_reason IS NULL) r
      WHERE a <> b AND a IN (SELECT id FROM c) AND b IN (SELECT id FROM c))`)).getRows().map((r) => r.map(Number));
    conn.closeSync();
    db.closeSync();
    assert.equal(a.numNodes, nodes);
    assert.equal(a.stats.distinctLinks, links);
    assert.ok(a.stats.relationshipRows > 250_000);
  });
});
