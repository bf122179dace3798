import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildConceptGraph, ConceptGraph } from '../trainers/graph/conceptGraph';
import type { DecileArtifact } from '../transforms/deciles';

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
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-graph-')); });
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
