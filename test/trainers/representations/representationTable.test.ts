import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { DuckDBInstance } from '@duckdb/node-api';
import { writeRepresentations, loadRepresentations, RepresentationWriter } from '../../../trainers/representations/table';
import { InMemoryVocabularyIndex, RepresentationLookup } from '../../../trainers/representations/lookup';
import { tempDir } from '../../helpers';

describe('representation tables (Parquet)', () => {
  let dir: string;
  before(() => { dir = tempDir('repr'); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes concept_id int64, decile int8 (null for base), vector float[] that DuckDB reads back exactly', async () => {
    const file = path.join(dir, 't.parquet');
    const vectors = Float32Array.from([0.5, -1.25, 3, 1e-3, 2, 4, -0.125, 7, 8]);
    const w = await writeRepresentations(file, 3, { conceptIds: [3004410, 3004410, 9007199254740], deciles: [null, 7, null], vectors }, 2);
    assert.equal(w.rows, 3);
    assert.match(w.sha256, /^[0-9a-f]{64}$/);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const types = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`)).getRows().map((r) => `${r[0]}:${r[1]}`);
    assert.deepEqual(types, ['concept_id:BIGINT', 'decile:TINYINT', 'vector:FLOAT[]']);
    const rows = (await conn.runAndReadAll(`SELECT concept_id, decile, vector[2] FROM read_parquet('${file}') ORDER BY concept_id, decile NULLS FIRST`)).getRows();
    assert.deepEqual(rows.map((r) => [Number(r[0]), r[1], r[2]]), [[3004410, null, -1.25], [3004410, 7, 2], [9007199254740, null, 7]]);
    conn.closeSync();
    db.closeSync();

    const t = await loadRepresentations(file);
    assert.equal(t.dim, 3);
    assert.equal(t.size, 3);
    assert.deepEqual(Array.from(t.get(3004410, 7)!), [1e-3, 2, 4].map(Math.fround));
    assert.deepEqual(Array.from(t.get(9007199254740, null)!), [-0.125, 7, 8]);
    assert.equal(t.get(3004410, 6), undefined);
  });

  it('same rows give byte-identical files', async () => {
    const a = path.join(dir, 'a.parquet');
    const b = path.join(dir, 'b.parquet');
    const batch = { conceptIds: [1, 2], deciles: [null, 0], vectors: Float32Array.from([1, 2, 3, 4]) };
    const wa = await writeRepresentations(a, 2, batch);
    const wb = await writeRepresentations(b, 2, batch);
    assert.equal(wa.sha256, wb.sha256);
    assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)));
  });

  it('refuses a vector block of the wrong size, naming the counts', () => {
    const w = new RepresentationWriter(path.join(dir, 'bad.parquet'), 4);
    assert.throws(() => w.append({ conceptIds: [1, 2], deciles: [null, null], vectors: new Float32Array(7) }), /7 floats for 2 rows of dimension 4/);
  });

  it('refuses to load a table whose vectors differ in length', async () => {
    const file = path.join(dir, 'ragged.parquet');
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    await conn.run(`COPY (SELECT 1::BIGINT concept_id, NULL::TINYINT decile, [1,2]::FLOAT[] vector UNION ALL SELECT 2, NULL, [1,2,3]::FLOAT[]) TO '${file}' (FORMAT parquet)`);
    conn.closeSync();
    db.closeSync();
    await assert.rejects(loadRepresentations(file), /ragged\.parquet: column vector has lengths 2\.\.3/);
  });
});

describe('lookup of unseen tokens', () => {
  // hand-made vocabulary: 10 (non-standard) maps to 20; 20 is a 30; 30 is a 40; 50 is a 40.
  const vocab = new InMemoryVocabularyIndex({
    mapsTo: [[10, 20], [11, 21]],
    isA: [[20, 30], [30, 40], [50, 40], [21, 60]],
    ancestors: [[70, 21, 1]],
  });
  let lookup: RepresentationLookup;
  before(async () => {
    const dir = tempDir('lookup');
    const file = path.join(dir, 'l.parquet');
    // rows: (20, decile 3), (30, null), (40, null), (70, null), (60, null)
    await writeRepresentations(file, 2, {
      conceptIds: [20, 30, 40, 70, 60], deciles: [3, null, null, null, null],
      vectors: Float32Array.from([2, 3, 3, 0, 4, 0, 7, 0, 6, 0]),
    });
    lookup = new RepresentationLookup(await loadRepresentations(file), vocab);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('returns the row itself when present', () => {
    assert.deepEqual(Array.from(lookup.vectorFor(30, null)!), [3, 0]);
    assert.equal(lookup.resolve(20, 3)!.source, 'exact');
  });
  it('follows Maps to, keeping the decile', () => {
    const hit = lookup.resolve(10, 3)!;
    assert.deepEqual([hit.conceptId, hit.decile, hit.source], [20, 3, 'mapped']);
  });
  it('falls back to the nearest ancestor (1 hop before 2 hops)', () => {
    const hit = lookup.resolve(20, null)!; // no (20, null) row: parent 30 before grandparent 40
    assert.deepEqual([hit.conceptId, hit.source], [30, 'ancestor']);
    assert.deepEqual([lookup.resolve(50, null)!.conceptId], [40]);
  });
  it('tries the same decile on every candidate before base rows', () => {
    const hit = lookup.resolve(20, 5)!; // no (20,5) anywhere -> base rows: 20 lacks one, so 30
    assert.deepEqual([hit.conceptId, hit.decile, hit.source], [30, null, 'ancestor']);
  });
  it('uses CONCEPT_ANCESTOR rows, nearest first, through a mapped concept', () => {
    const hit = lookup.resolve(11, null)!; // 11 -> 21; 21's ancestors: 70 (1 level), 60 (Is a, 1 hop)
    assert.equal(hit.source, 'ancestor');
    assert.ok([60, 70].includes(hit.conceptId));
  });
  it('returns null ([UNK]) when nothing related has a vector', () => {
    assert.equal(lookup.vectorFor(999, null), null);
    assert.equal(new RepresentationLookup(lookup.table, null).vectorFor(10, 3), null);
  });
});

describe('vocabulary index from files', () => {
  it('reads Maps to and Is a from an Athena folder for the lookup', async () => {
    const { loadVocabularyIndex } = await import('../../../trainers/representations/lookup');
    const dir = tempDir('vi');
    fs.writeFileSync(path.join(dir, 'CONCEPT.csv'), 'concept_id\tconcept_name\tdomain_id\n1\ta\tDrug\n');
    fs.writeFileSync(path.join(dir, 'CONCEPT_RELATIONSHIP.csv'), ['concept_id_1\tconcept_id_2\trelationship_id\tvalid_start_date\tvalid_end_date\tinvalid_reason',
      '5\t6\tMaps to\t19700101\t20991231\t', '5\t7\tMaps to\t19700101\t20991231\tD', '6\t8\tIs a\t19700101\t20991231\t', '8\t9\tIs a\t19700101\t20991231\t'].join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'CONCEPT_ANCESTOR.csv'), 'ancestor_concept_id\tdescendant_concept_id\tmin_levels_of_separation\tmax_levels_of_separation\n10\t6\t4\t4\n11\t6\t2\t2\n');
    const idx = await loadVocabularyIndex(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(idx.mapsTo(5), [6]); // the deprecated row (invalid_reason D) is not followed
    assert.deepEqual(idx.ancestors(6), [8, 9, 11]); // 1 hop, 2 hops, level 2; level 4 beyond the default 3
  });
});
