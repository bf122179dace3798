import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { buildConceptGraph } from '../../../trainers/graph/conceptGraph';
import { relatedPairs, meanPairCosine, meanRowCosine, meanKl } from '../../../trainers/representations/evaluate';
import { tempDir } from '../../helpers';

describe('representation evaluation pairs', () => {
  let dir: string;
  before(() => {
    dir = tempDir('eval');
    const c = ['concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_class_id\tstandard_concept\tconcept_code\tvalid_start_date\tvalid_end_date\tinvalid_reason'];
    for (const [id, dom] of [[1, 'Drug'], [2, 'Drug'], [3, 'Drug'], [4, 'Drug'], [10, 'Condition'], [11, 'Condition'], [20, 'Measurement']] as Array<[number, string]>) {
      c.push(`${id}\tc${id}\t${dom}\tV\tK\tS\t${id}\t19700101\t20991231\t`);
    }
    fs.writeFileSync(path.join(dir, 'CONCEPT.csv'), c.join('\n') + '\n');
    // drugs 1 and 2 consist of components 101/102 (not in CONCEPT) whose ingredient is 900;
    // drug 3 names 900 directly, ingredient 900 lists drug 3 too ('RxNorm ing of'); drug 4 has 901
    const r = ['1\t101\tConsists of', '2\t102\tConsists of', '101\t900\tRxNorm has ing', '102\t900\tRxNorm has ing',
      '3\t900\tRxNorm has ing', '900\t3\tRxNorm ing of', '4\t901\tRxNorm has ing', '11\t10\tIs a', '10\t11\tSubsumes']
      .map((l) => `${l}\t19700101\t20991231\t`);
    r.unshift('concept_id_1\tconcept_id_2\trelationship_id\tvalid_start_date\tvalid_end_date\tinvalid_reason');
    fs.writeFileSync(path.join(dir, 'CONCEPT_RELATIONSHIP.csv'), r.join('\n') + '\n');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('finds same-ingredient (also through components), parent/child and decile-neighbour pairs', async () => {
    const g = await buildConceptGraph(dir, { deciles: { kind: 'medrep.deciles', version: 'v', min_count: 10, fitted_on: 'x', groups: [{ concept_id: 20, unit: null, count: 10, boundaries: [] }] } });
    const p = await relatedPairs(dir, g);
    const ids = (pairs: Array<[number, number]>) => pairs.map(([a, b]) => `${g.conceptIds[a]}${g.deciles[a] >= 0 ? '#' + g.deciles[a] : ''}-${g.conceptIds[b]}${g.deciles[b] >= 0 ? '#' + g.deciles[b] : ''}`).sort();
    assert.deepEqual(ids(p.same_ingredient), ['1-2', '1-3', '2-3']);
    assert.deepEqual(ids(p.parent_child), ['10-11']);
    assert.equal(p.decile_neighbours.length, 9);
    assert.ok(ids(p.decile_neighbours).includes('20#3-20#4'));
    assert.equal(p.random.length, 2000);
    assert.ok(p.random.every(([a, b]) => a !== b));
  });

  it('cosines and KL by hand', () => {
    const v = Float32Array.from([1, 0, 0, 1, 1, 1]);
    assert.ok(Math.abs(meanPairCosine(v, 2, [[0, 1], [0, 2]])! - (0 + Math.SQRT1_2) / 2) < 1e-7);
    assert.equal(meanPairCosine(v, 2, []), null);
    assert.ok(Math.abs(meanRowCosine(v, Float32Array.from([2, 0, 0, -1, 1, 1]), 2) - (1 - 1 + 1) / 3) < 1e-7);
    assert.ok(Math.abs(meanKl(Float32Array.from([0, 0]), Float32Array.from([Math.log(3), 0]), 2) - 0.5 * Math.log(4 / 3)) < 1e-7);
  });
});
