// The synthetic OMOP generator (`medrep synth`): determinism, valid rows, a closed vocabulary,
// the clinical facts later tasks rely on, site B's different codes, and the Parquet form.
// Facts are checked with DuckDB SQL over the written files, independently of the generator.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { ClinicalTable, tableSpec } from '../../schemas/omop';
import { rowValidator } from '../../schemas/rowSchemas';
import {
  CLINICAL_OUT_TABLES, OUT_COLUMNS, SynthSummary, generateSynthetic, personsForRows,
} from '../../synth';
import { dottedIcd9 } from '../../synth/catalogue';
import { tempDir } from '../helpers';
import { runCommandLine } from '../../cli';

const SHARED = path.resolve(__dirname, '../../../../shared');
const HCUP_CSV = path.join(SHARED, 'tasks/hcup_ccs_phenotypes_icd9.csv');
const EVENT_JSON = path.join(SHARED, 'tasks/in_hospital_event_concepts.json');

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

let db: DuckDBInstance;
let conn: DuckDBConnection;

async function rows<T = Record<string, unknown>>(query: string): Promise<T[]> {
  const reader = await conn.runAndReadAll(query);
  return reader.getRowObjectsJson() as unknown as T[];
}

async function one<T = Record<string, unknown>>(query: string): Promise<T> {
  const r = await rows<T>(query);
  assert.equal(r.length, 1, `expected one row from: ${query}`);
  return r[0];
}

function fileHashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) out[f] = createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex');
  return out;
}

/** Folders loaded once into DuckDB schemas (see before()), by folder. */
const loaded = new Map<string, string>();

/** A table of a generated CSV folder as a DuckDB relation, every column typed by sniffing. */
const t = (dir: string, table: string) => {
  const schema = loaded.get(dir);
  return schema ? `${schema}.${table}` : `read_csv(${lit(path.join(dir, `${table}.csv`))}, header = true)`;
};

async function load(dir: string, schema: string): Promise<void> {
  await conn.run(`CREATE SCHEMA ${schema}`);
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.csv'))) {
    await conn.run(`CREATE TABLE ${schema}.${f.slice(0, -4)} AS SELECT * FROM ${t(dir, f.slice(0, -4))}`);
  }
  loaded.set(dir, schema);
}

describe('synthetic OMOP generator', function () {
  this.timeout(180_000);
  const root = tempDir('synth');
  const dirA = path.join(root, 'a');
  const dirB = path.join(root, 'b');
  let summaryA: SynthSummary;
  let summaryB: SynthSummary;

  before(async () => {
    db = await DuckDBInstance.create(':memory:');
    conn = await db.connect();
    summaryA = await generateSynthetic({ persons: 1500, seed: 7, out: dirA, format: 'csv', site: 'A', hcupCsv: HCUP_CSV });
    summaryB = await generateSynthetic({ persons: 1500, seed: 7, out: dirB, format: 'csv', site: 'B', hcupCsv: HCUP_CSV });
    await load(dirA, 'site_a');
    await load(dirB, 'site_b');
  });

  after(() => {
    conn?.closeSync();
    db?.closeSync();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('writes every CDM table, with lower-case names, into one folder, and counts what it wrote', async () => {
    const names = fs.readdirSync(dirA).sort();
    assert.deepEqual(names, [
      'concept.csv', 'concept_ancestor.csv', 'concept_relationship.csv', 'condition_occurrence.csv', 'death.csv',
      'drug_exposure.csv', 'measurement.csv', 'observation_period.csv', 'person.csv', 'procedure_occurrence.csv',
      'synth_meta.json', 'visit_occurrence.csv',
    ]);
    for (const table of Object.keys(summaryA.rows)) {
      const { n } = await one<{ n: string }>(`SELECT count(*) AS n FROM ${t(dirA, table)}`);
      assert.equal(Number(n), summaryA.rows[table as keyof SynthSummary['rows']], table);
    }
    assert.equal(summaryA.rows.person, 1500);
    assert.equal(summaryA.icd9Source.startsWith('csv:'), true);
  });

  it('writes every column of schemas/omop.ts for each clinical table', () => {
    for (const table of CLINICAL_OUT_TABLES) {
      const written = new Set(OUT_COLUMNS[table].map(([n]) => n));
      for (const col of tableSpec(table as ClinicalTable).columns) assert.ok(written.has(col.name), `${table}.${col.name}`);
    }
  });

  it('gives byte-identical files for the same seed and different data for another seed', async () => {
    const opts = { persons: 200, format: 'csv' as const, site: 'A' as const, hcupCsv: HCUP_CSV };
    await generateSynthetic({ ...opts, seed: 11, out: path.join(root, 's11a') });
    await generateSynthetic({ ...opts, seed: 11, out: path.join(root, 's11b'), batchSize: 17 });
    await generateSynthetic({ ...opts, seed: 12, out: path.join(root, 's12') });
    const first = fileHashes(path.join(root, 's11a'));
    assert.deepEqual(fileHashes(path.join(root, 's11b')), first);
    const other = fileHashes(path.join(root, 's12'));
    for (const table of ['person.csv', 'visit_occurrence.csv', 'measurement.csv', 'drug_exposure.csv']) {
      assert.notEqual(other[table], first[table], table);
    }
    // The vocabulary does not depend on the seed.
    assert.equal(other['concept.csv'], first['concept.csv']);
  });

  it('writes clinical rows that all pass the row schemas of schemas/rowSchemas.ts', async () => {
    const dir = path.join(root, 'validate');
    await generateSynthetic({ persons: 300, seed: 21, out: dir, format: 'csv', site: 'B', hcupCsv: HCUP_CSV });
    for (const table of CLINICAL_OUT_TABLES) {
      const validator = rowValidator(tableSpec(table as ClinicalTable));
      const all = await rows(`SELECT * FROM read_csv(${lit(path.join(dir, `${table}.csv`))}, header = true, all_varchar = true)`);
      assert.ok(all.length > 0, table);
      for (let i = 0; i < all.length; i++) {
        const problems = validator.check(all[i]);
        if (problems.length) assert.fail(`${table} row ${i + 1}: ${JSON.stringify(problems)}`);
      }
      // Dates and datetimes have the exact layouts of the brief.
      for (const [name, type] of OUT_COLUMNS[table]) {
        if (type !== 'DATE' && type !== 'TIMESTAMP') continue;
        const re = type === 'DATE' ? '^\\d{4}-\\d{2}-\\d{2}$' : '^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}$';
        const { bad } = await one<{ bad: string }>(
          `SELECT count(*) AS bad FROM read_csv(${lit(path.join(dir, `${table}.csv`))}, header = true, all_varchar = true) WHERE ${name} IS NOT NULL AND NOT regexp_full_match(${name}, ${lit(re)})`,
        );
        assert.equal(Number(bad), 0, `${table}.${name}`);
      }
    }
  });

  it('uses only concept ids that exist in its CONCEPT table, including gender 8507/8532', async () => {
    for (const dir of [dirA, dirB]) {
      for (const table of CLINICAL_OUT_TABLES) {
        for (const [col] of OUT_COLUMNS[table].filter(([n]) => n.endsWith('concept_id'))) {
          const missing = await rows(
            `SELECT DISTINCT x.${col} AS id FROM ${t(dir, table)} x ANTI JOIN ${t(dir, 'concept')} c ON c.concept_id = x.${col} WHERE x.${col} IS NOT NULL`,
          );
          assert.deepEqual(missing, [], `${path.basename(dir)} ${table}.${col}`);
        }
      }
      const genders = await rows<{ gender_concept_id: string; concept_name: string }>(
        `SELECT DISTINCT p.gender_concept_id, c.concept_name FROM ${t(dir, 'person')} p JOIN ${t(dir, 'concept')} c ON c.concept_id = p.gender_concept_id ORDER BY 1`,
      );
      assert.deepEqual(genders.map((g) => [Number(g.gender_concept_id), g.concept_name]), [[8507, 'MALE'], [8532, 'FEMALE']]);
    }
  });

  it('maps every non-standard source concept in use to a standard concept through "Maps to"', async () => {
    for (const dir of [dirA, dirB]) {
      const used = CLINICAL_OUT_TABLES.flatMap((table) =>
        OUT_COLUMNS[table].filter(([n]) => n.endsWith('source_concept_id')).map(([n]) => `SELECT ${n} AS id FROM ${t(dir, table)}`),
      ).join(' UNION ');
      const unmapped = await rows(`
        WITH used AS (${used}), c AS (SELECT * FROM ${t(dir, 'concept')}), r AS (SELECT * FROM ${t(dir, 'concept_relationship')})
        SELECT u.id FROM used u JOIN c ON c.concept_id = u.id
        WHERE u.id <> 0 AND c.standard_concept IS NULL AND NOT EXISTS (
          SELECT 1 FROM r JOIN c c2 ON c2.concept_id = r.concept_id_2
          WHERE r.concept_id_1 = u.id AND r.relationship_id = 'Maps to' AND c2.standard_concept = 'S')`);
      assert.deepEqual(unmapped, [], path.basename(dir));
      // And the mapping agrees with the row's own *_concept_id.
      const disagree = await one<{ n: string }>(`
        SELECT count(*) AS n FROM ${t(dir, 'condition_occurrence')} o JOIN ${t(dir, 'concept')} c ON c.concept_id = o.condition_source_concept_id
        WHERE c.standard_concept IS NULL AND o.condition_concept_id <> 0 AND NOT EXISTS (SELECT 1 FROM ${t(dir, 'concept_relationship')} r
          WHERE r.concept_id_1 = o.condition_source_concept_id AND r.relationship_id = 'Maps to' AND r.concept_id_2 = o.condition_concept_id)`);
      assert.equal(Number(disagree.n), 0);
    }
    // Site B leaves condition_concept_id 0 on some diagnoses whose source code maps; site A never does.
    const zero = await rows<{ site: string; n: string }>(`
      SELECT 'A' AS site, count(*) AS n FROM ${t(dirA, 'condition_occurrence')} WHERE condition_concept_id = 0
      UNION ALL SELECT 'B', count(*) FROM ${t(dirB, 'condition_occurrence')} WHERE condition_concept_id = 0 ORDER BY 1`);
    assert.equal(Number(zero[0].n), 0);
    assert.ok(Number(zero[1].n) > 0);
  });

  it('has "Mapped from" and "Subsumes" for every "Maps to" and "Is a", and drug links to ingredients', async () => {
    const r = t(dirA, 'concept_relationship');
    const { missing } = await one<{ missing: string }>(`
      SELECT count(*) AS missing FROM ${r} a WHERE a.relationship_id IN ('Maps to', 'Is a') AND a.concept_id_1 <> a.concept_id_2
      AND NOT EXISTS (SELECT 1 FROM ${r} b WHERE b.concept_id_1 = a.concept_id_2 AND b.concept_id_2 = a.concept_id_1
        AND b.relationship_id = CASE a.relationship_id WHEN 'Maps to' THEN 'Mapped from' ELSE 'Subsumes' END)`);
    assert.equal(Number(missing), 0);
    const ids = await one<{ n: string }>(`SELECT count(*) AS n FROM ${r} WHERE relationship_id = 'RxNorm has ing' AND concept_id_2 = 1112807`);
    assert.ok(Number(ids.n) >= 4, 'aspirin forms link to the aspirin ingredient');
  });

  it('has CONCEPT_ANCESTOR equal to the closure of the hierarchy, computed here by recursive SQL', async () => {
    const expected = await rows<{ a: string; d: string; mn: string; mx: string }>(`
      WITH RECURSIVE edge AS (
        SELECT concept_id_1 AS child, concept_id_2 AS parent FROM ${t(dirA, 'concept_relationship')}
        WHERE relationship_id IN ('Is a', 'RxNorm has ing', 'Tradename of') AND concept_id_1 <> concept_id_2),
      walk(a, d, lvl) AS (
        SELECT parent, child, 1 FROM edge
        UNION ALL SELECT e.parent, w.d, w.lvl + 1 FROM walk w JOIN edge e ON e.child = w.a)
      SELECT a::BIGINT AS a, d::BIGINT AS d, min(lvl)::BIGINT AS mn, max(lvl)::BIGINT AS mx FROM walk GROUP BY a, d
      UNION ALL SELECT concept_id::BIGINT, concept_id::BIGINT, 0::BIGINT, 0::BIGINT FROM ${t(dirA, 'concept')} WHERE standard_concept IN ('S', 'C')
      ORDER BY a, d`);
    const actual = await rows<{ a: string; d: string; mn: string; mx: string }>(`
      SELECT ancestor_concept_id::BIGINT AS a, descendant_concept_id::BIGINT AS d, min_levels_of_separation::BIGINT AS mn,
        max_levels_of_separation::BIGINT AS mx FROM ${t(dirA, 'concept_ancestor')} ORDER BY a, d`);
    assert.deepEqual(actual, expected);
    // Type 2 diabetes mellitus is a Diabetes mellitus, which is a Clinical finding.
    const dm = await rows(`SELECT ancestor_concept_id AS a FROM ${t(dirA, 'concept_ancestor')} WHERE descendant_concept_id = 201826 ORDER BY 1`);
    assert.deepEqual(dm.map((x) => Number((x as { a: string }).a)), [201820, 201826, 441840]);
  });

  it('has realistic visits: inpatient 9201/262, outpatient 9202, ER 9203, stays of 0-30 days, skewed, some of 7 days or more', async () => {
    const byType = await rows<{ c: string; n: string }>(`SELECT visit_concept_id AS c, count(*) AS n FROM ${t(dirA, 'visit_occurrence')} GROUP BY 1 ORDER BY 1`);
    assert.deepEqual(byType.map((x) => Number(x.c)), [262, 9201, 9202, 9203]);
    const s = await one<{ n: string; mn: string; mx: string; mean: number; median: number; long: number; sameday: string; bad: string }>(`
      WITH ip AS (SELECT datediff('day', visit_start_date, visit_end_date) AS los, visit_start_datetime, visit_end_datetime
        FROM ${t(dirA, 'visit_occurrence')} WHERE visit_concept_id IN (9201, 262))
      SELECT count(*) AS n, min(los) AS mn, max(los) AS mx, avg(los) AS mean, median(los) AS median, avg((los >= 7)::INT) AS long,
        sum((los = 0)::INT) AS sameday, sum((visit_end_datetime < visit_start_datetime)::INT) AS bad FROM ip`);
    assert.ok(Number(s.n) > 500, `inpatient stays: ${s.n}`);
    assert.equal(Number(s.mn), 0);
    assert.ok(Number(s.mx) <= 31 && Number(s.mx) >= 20, `longest stay ${s.mx}`);
    assert.ok(s.mean > s.median, 'right-skewed length of stay');
    assert.ok(s.long > 0.05 && s.long < 0.4, `share of stays >= 7 days: ${s.long}`);
    assert.ok(Number(s.sameday) > 0);
    assert.equal(Number(s.bad), 0);
    const ages = await one<{ mn: number; mx: number; adults: number }>(`
      SELECT min(age) AS mn, max(age) AS mx, avg((age >= 18)::INT) AS adults FROM (
        SELECT datediff('year', make_date(p.year_of_birth, p.month_of_birth, p.day_of_birth), v.visit_start_date) AS age
        FROM ${t(dirA, 'visit_occurrence')} v JOIN ${t(dirA, 'person')} p USING (person_id))`);
    assert.ok(ages.mn >= 0 && ages.mn < 3 && ages.mx <= 100 && ages.mx >= 85, `ages ${ages.mn}-${ages.mx}`);
    assert.ok(ages.adults > 0.8, `share of adult visits ${ages.adults}`);
  });

  it('attaches every condition, drug, measurement and procedure to a visit of the same person, inside it', async () => {
    for (const [table, dateCol] of [['condition_occurrence', 'condition_start_datetime'], ['drug_exposure', 'drug_exposure_start_datetime'],
      ['measurement', 'measurement_datetime'], ['procedure_occurrence', 'procedure_datetime']]) {
      const { bad } = await one<{ bad: string }>(`
        SELECT count(*) AS bad FROM ${t(dirA, table)} x LEFT JOIN ${t(dirA, 'visit_occurrence')} v USING (visit_occurrence_id)
        WHERE v.person_id IS DISTINCT FROM x.person_id OR x.${dateCol} < v.visit_start_datetime OR x.${dateCol} > v.visit_end_datetime`);
      assert.equal(Number(bad), 0, table);
    }
    const { outside } = await one<{ outside: string }>(`
      SELECT count(*) AS outside FROM ${t(dirA, 'visit_occurrence')} v JOIN ${t(dirA, 'observation_period')} o USING (person_id)
      WHERE v.visit_start_date < o.observation_period_start_date OR v.visit_end_date > o.observation_period_end_date`);
    assert.equal(Number(outside), 0, 'visits inside the observation period');
  });

  it('records deaths inside an inpatient stay (on its last day), at a plausible rate, and nothing after them', async () => {
    const d = await one<{ deaths: string; inside: string; stays: string; after: string }>(`
      WITH ip AS (SELECT * FROM ${t(dirA, 'visit_occurrence')} WHERE visit_concept_id IN (9201, 262))
      SELECT (SELECT count(*) FROM ${t(dirA, 'death')}) AS deaths,
        (SELECT count(*) FROM ${t(dirA, 'death')} d WHERE EXISTS (SELECT 1 FROM ip WHERE ip.person_id = d.person_id
          AND d.death_datetime BETWEEN ip.visit_start_datetime AND ip.visit_end_datetime AND d.death_date = ip.visit_end_date)) AS inside,
        (SELECT count(*) FROM ip) AS stays,
        (SELECT count(*) FROM ${t(dirA, 'visit_occurrence')} v JOIN ${t(dirA, 'death')} d USING (person_id) WHERE v.visit_start_datetime > d.death_datetime) AS after`);
    assert.ok(Number(d.deaths) > 10, `deaths ${d.deaths}`);
    assert.equal(d.inside, d.deaths);
    const rate = Number(d.deaths) / Number(d.stays);
    assert.ok(rate > 0.02 && rate < 0.15, `in-hospital mortality ${rate}`);
    assert.equal(Number(d.after), 0);
    const { badCause } = await one<{ badCause: string }>(`
      SELECT count(*) AS badCause FROM ${t(dirA, 'death')} d LEFT JOIN ${t(dirA, 'concept')} c ON c.concept_id = d.cause_concept_id
      WHERE c.domain_id IS DISTINCT FROM 'Condition' OR c.standard_concept IS DISTINCT FROM 'S'`);
    assert.equal(Number(badCause), 0, 'every cause of death is a standard condition concept');
  });

  it('has readmissions within 30 days of a discharge for some stays, not for most', async () => {
    const r = await one<{ share: number; n: string }>(`
      WITH ip AS (SELECT person_id, visit_start_date, visit_end_date,
        lead(visit_start_date) OVER (PARTITION BY person_id ORDER BY visit_start_datetime) AS next_start
        FROM ${t(dirA, 'visit_occurrence')} WHERE visit_concept_id IN (9201, 262))
      SELECT avg(coalesce(datediff('day', visit_end_date, next_start) BETWEEN 1 AND 30, false)::INT) AS share, count(*) AS n FROM ip`);
    assert.ok(r.share > 0.05 && r.share < 0.4, `30-day readmission share ${r.share}`);
  });

  it('writes numeric measurements with UCUM units, a few without a value and a few without a unit', async () => {
    const m = await one<{ n: string; valued: string; novalue: string; nounit: string; badunit: string }>(`
      SELECT count(*) AS n, count(value_as_number) AS valued, sum((value_as_number IS NULL)::INT) AS novalue,
        sum((value_as_number IS NOT NULL AND unit_concept_id IS NULL)::INT) AS nounit,
        sum((unit_concept_id IS NOT NULL AND (c.vocabulary_id IS DISTINCT FROM 'UCUM' OR c.concept_code <> m.unit_source_value))::INT) AS badunit
      FROM ${t(dirA, 'measurement')} m LEFT JOIN ${t(dirA, 'concept')} c ON c.concept_id = m.unit_concept_id`);
    assert.ok(Number(m.valued) / Number(m.n) > 0.95);
    assert.ok(Number(m.novalue) > 0 && Number(m.novalue) / Number(m.n) < 0.05);
    assert.ok(Number(m.nounit) > 0 && Number(m.nounit) / Number(m.n) < 0.1);
    assert.equal(Number(m.badunit), 0);
    const units = await rows<{ u: string }>(`SELECT DISTINCT unit_concept_id AS u FROM ${t(dirA, 'measurement')} WHERE unit_concept_id IS NOT NULL`);
    for (const u of [8840, 8713, 8554, 8876, 8541]) assert.ok(units.some((x) => Number(x.u) === u), `unit ${u}`);
    // HbA1c is measured, in percent, higher in persons with a diabetes diagnosis.
    const a1c = await rows<{ diabetic: boolean; v: number }>(`
      SELECT EXISTS (SELECT 1 FROM ${t(dirA, 'condition_occurrence')} c WHERE c.person_id = m.person_id AND c.condition_concept_id = 201826) AS diabetic,
        avg(value_as_number) AS v FROM ${t(dirA, 'measurement')} m WHERE measurement_concept_id = 3004410 GROUP BY 1 ORDER BY 1`);
    assert.equal(a1c.length, 2);
    assert.ok(a1c[1].v > a1c[0].v + 1, `HbA1c ${a1c[0].v} vs ${a1c[1].v}`);
  });

  it('makes outcomes learnable: stays that end in death have worse admission labs than survivors', async () => {
    const labs = await rows<{ died: boolean; bun: number; spo2: number; n: string }>(`
      WITH ip AS (SELECT v.visit_occurrence_id, v.visit_start_date, EXISTS (SELECT 1 FROM ${t(dirA, 'death')} d
          WHERE d.person_id = v.person_id AND d.death_date = v.visit_end_date) AS died
        FROM ${t(dirA, 'visit_occurrence')} v WHERE visit_concept_id IN (9201, 262))
      SELECT died, avg(CASE WHEN measurement_concept_id = 3004295 THEN value_as_number END) AS bun,
        avg(CASE WHEN measurement_concept_id = 3016502 THEN value_as_number END) AS spo2, count(DISTINCT ip.visit_occurrence_id) AS n
      FROM ip JOIN ${t(dirA, 'measurement')} m USING (visit_occurrence_id) WHERE m.measurement_date = ip.visit_start_date
      GROUP BY died ORDER BY died`);
    assert.equal(labs.length, 2);
    const [alive, dead] = labs;
    assert.ok(dead.bun > alive.bun * 1.15, `BUN ${alive.bun} vs ${dead.bun}`);
    assert.ok(dead.spo2 < alive.spo2, `SpO2 ${alive.spo2} vs ${dead.spo2}`);
  });

  it('codes the HCUP-CCS phenotypes as dotted, non-standard ICD9CM source concepts mapped to SNOMED', async () => {
    const csv = fs.readFileSync(HCUP_CSV, 'utf8').trim().split('\n').slice(1);
    const codes = csv.flatMap((line) => line.split(',').at(-1)!.trim().split(/\s+/));
    const icd9 = await rows<{ concept_code: string; standard_concept: string | null }>(
      `SELECT concept_code, standard_concept FROM ${t(dirA, 'concept')} WHERE vocabulary_id = 'ICD9CM'`,
    );
    const byCode = new Map(icd9.map((c) => [c.concept_code, c]));
    for (const code of codes) {
      const c = byCode.get(dottedIcd9(code));
      assert.ok(c, `ICD-9-CM ${code}`);
      assert.equal(c.standard_concept, null);
    }
    assert.ok(byCode.has('428.0') && byCode.has('V45.11') && byCode.has('250.00'));
    // Conditions carry them as source concepts, for most of the 24 phenotypes even in a small set.
    const phenos = await one<{ n: string }>(`
      SELECT count(DISTINCT c.concept_id) AS n FROM ${t(dirA, 'condition_occurrence')} o JOIN ${t(dirA, 'concept')} c
      ON c.concept_id = o.condition_source_concept_id WHERE c.vocabulary_id = 'ICD9CM'`);
    assert.ok(Number(phenos.n) >= 40, `distinct ICD-9 source codes in use: ${phenos.n}`);
  });

  it('has in-hospital UTI, sepsis, pneumonia, MI and closed fractures inside stays of >= 2 days, some after the admission day', async () => {
    const lists = JSON.parse(fs.readFileSync(EVENT_JSON, 'utf8')) as Record<string, number[]>;
    for (const dir of [dirA, dirB]) {
      const fx = await rows<{ concept_id: string }>(
        `SELECT concept_id FROM ${t(dir, 'concept')} WHERE vocabulary_id = 'SNOMED' AND domain_id = 'Condition' AND regexp_matches(lower(concept_name), 'closed.*fracture')`,
      );
      const sets: Record<string, number[]> = { ...lists, Fx: fx.map((x) => Number(x.concept_id)) };
      for (const [key, ids] of Object.entries(sets)) {
        const r = await one<{ n: string; later: string }>(`
          SELECT count(*) AS n, sum((o.condition_start_date > v.visit_start_date)::INT) AS later
          FROM ${t(dir, 'condition_occurrence')} o JOIN ${t(dir, 'visit_occurrence')} v USING (visit_occurrence_id)
          WHERE o.condition_concept_id IN (${ids.join(',')}) AND v.visit_concept_id IN (9201, 262)
            AND datediff('day', v.visit_start_date, v.visit_end_date) >= 2`);
        assert.ok(Number(r.later) > 0, `${path.basename(dir)} ${key}: ${r.n} in long stays, ${r.later} after the admission day`);
      }
    }
  });

  it('site B codes the same drugs with other concept ids that reach the same ingredients', async () => {
    // Same seed: the same patients and facts, written with site B's codes.
    for (const table of CLINICAL_OUT_TABLES) assert.equal(summaryB.rows[table], summaryA.rows[table], table);
    const ingredients = (dir: string) => `(SELECT x.drug_exposure_id, x.drug_concept_id, x.drug_source_concept_id,
        list(a.ancestor_concept_id ORDER BY a.ancestor_concept_id) AS ing
      FROM ${t(dir, 'drug_exposure')} x JOIN ${t(dir, 'concept_ancestor')} a ON a.descendant_concept_id = x.drug_concept_id
      JOIN ${t(dir, 'concept')} c ON c.concept_id = a.ancestor_concept_id AND c.concept_class_id = 'Ingredient' GROUP BY ALL)`;
    const r = await one<{ n: string; differ: string; same_ing: string }>(`
      SELECT count(*) AS n, sum((a.drug_concept_id <> b.drug_concept_id)::INT) AS differ, sum((a.ing = b.ing)::INT) AS same_ing
      FROM ${ingredients(dirA)} a JOIN ${ingredients(dirB)} b USING (drug_exposure_id)`);
    assert.equal(Number(r.n), summaryA.rows.drug_exposure, 'every drug reaches an ingredient at both sites');
    assert.equal(r.same_ing, r.n);
    assert.ok(Number(r.differ) / Number(r.n) > 0.8, `share coded differently: ${Number(r.differ) / Number(r.n)}`);
    // The paper's example: aspirin 81 MG Oral Tablet at A; other aspirin products at B, through NDC codes.
    const aspirin = await rows<{ site: string; id: string; cls: string; src: string }>(`
      SELECT 'A' AS site, c.concept_id AS id, c.concept_class_id AS cls, s.vocabulary_id AS src FROM ${t(dirA, 'drug_exposure')} x
        JOIN ${t(dirA, 'concept')} c ON c.concept_id = x.drug_concept_id JOIN ${t(dirA, 'concept')} s ON s.concept_id = x.drug_source_concept_id
        JOIN ${t(dirA, 'concept_ancestor')} a ON a.descendant_concept_id = x.drug_concept_id AND a.ancestor_concept_id = 1112807
      UNION SELECT 'B', c.concept_id, c.concept_class_id, s.vocabulary_id FROM ${t(dirB, 'drug_exposure')} x
        JOIN ${t(dirB, 'concept')} c ON c.concept_id = x.drug_concept_id JOIN ${t(dirB, 'concept')} s ON s.concept_id = x.drug_source_concept_id
        JOIN ${t(dirB, 'concept_ancestor')} a ON a.descendant_concept_id = x.drug_concept_id AND a.ancestor_concept_id = 1112807
      ORDER BY 1, 2`);
    assert.deepEqual(aspirin.filter((x) => x.site === 'A').map((x) => Number(x.id)), [19059056]);
    const b = aspirin.filter((x) => x.site === 'B');
    assert.ok(b.length >= 2 && b.every((x) => Number(x.id) !== 19059056 && x.src === 'NDC'));
    assert.ok(b.some((x) => x.cls === 'Branded Drug'));
  });

  it('site B codes conditions and labs with related but different concepts, and ships the same vocabulary', async () => {
    assert.equal(fileHashes(dirA)['concept.csv'], fileHashes(dirB)['concept.csv']);
    const labs = await one<{ n: string; differ: string; related: string }>(`
      SELECT count(*) AS n, sum((a.measurement_concept_id <> b.measurement_concept_id)::INT) AS differ,
        sum((a.measurement_concept_id = b.measurement_concept_id OR EXISTS (
          SELECT 1 FROM ${t(dirA, 'concept_ancestor')} x JOIN ${t(dirA, 'concept_ancestor')} y USING (ancestor_concept_id)
          WHERE x.descendant_concept_id = a.measurement_concept_id AND y.descendant_concept_id = b.measurement_concept_id
            AND x.min_levels_of_separation = 1 AND y.min_levels_of_separation = 1))::INT) AS related
      FROM ${t(dirA, 'measurement')} a JOIN ${t(dirB, 'measurement')} b USING (measurement_id)`);
    assert.equal(labs.related, labs.n, 'each site B lab is the same concept or a sibling under one parent');
    assert.ok(Number(labs.differ) > 0);
    const cond = await one<{ differ: string; n: string }>(`
      SELECT count(*) AS n, sum((a.condition_source_concept_id <> b.condition_source_concept_id)::INT) AS differ
      FROM ${t(dirA, 'condition_occurrence')} a JOIN ${t(dirB, 'condition_occurrence')} b USING (condition_occurrence_id)`);
    assert.ok(Number(cond.differ) / Number(cond.n) > 0.8);
  });

  it('writes Parquet with typed columns and the same rows as the CSV form', async () => {
    const dirP = path.join(root, 'parquet');
    const pq = await generateSynthetic({ persons: 300, seed: 7, out: dirP, format: 'parquet', site: 'A', hcupCsv: HCUP_CSV });
    const cs = await generateSynthetic({ persons: 300, seed: 7, out: path.join(root, 'csv300'), format: 'csv', site: 'A', hcupCsv: HCUP_CSV });
    assert.deepEqual(pq.rows, cs.rows);
    for (const [table, n] of Object.entries(pq.rows)) {
      const r = await one<{ n: string }>(`SELECT count(*) AS n FROM read_parquet(${lit(path.join(dirP, `${table}.parquet`))})`);
      assert.equal(Number(r.n), n, table);
    }
    const types = await rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet(${lit(path.join(dirP, 'measurement.parquet'))})`);
    const typeOf = new Map(types.map((x) => [x.column_name, x.column_type]));
    assert.equal(typeOf.get('measurement_id'), 'BIGINT');
    assert.equal(typeOf.get('measurement_date'), 'DATE');
    assert.equal(typeOf.get('measurement_datetime'), 'TIMESTAMP');
    assert.equal(typeOf.get('value_as_number'), 'DOUBLE');
    // Same values as the CSV, row for row.
    const { diff } = await one<{ diff: string }>(`
      SELECT count(*) AS diff FROM (SELECT * FROM read_parquet(${lit(path.join(dirP, 'measurement.parquet'))})
        EXCEPT SELECT * FROM ${t(path.join(root, 'csv300'), 'measurement')})`);
    assert.equal(Number(diff), 0);
  });

  it('works without the HCUP csv, from its built-in codes', async () => {
    const dir = path.join(root, 'builtin');
    const s = await generateSynthetic({ persons: 100, seed: 3, out: dir, format: 'csv', site: 'A', hcupCsv: null });
    assert.equal(s.icd9Source, 'builtin');
    const r = await one<{ n: string }>(`SELECT count(*) AS n FROM ${t(dir, 'concept')} WHERE vocabulary_id = 'ICD9CM'`);
    assert.ok(Number(r.n) >= 48 && Number(r.n) < 60, `built-in ICD-9 codes: ${r.n}`);
  });

  it('injects invalid rows on request, which the row schemas reject by column', async () => {
    const dir = path.join(root, 'errors');
    const s = await generateSynthetic({ persons: 50, seed: 5, out: dir, format: 'csv', site: 'A', hcupCsv: HCUP_CSV, injectErrors: true });
    assert.equal(s.injected.length, 5);
    for (const e of s.injected) {
      const all = await rows(`SELECT * FROM read_csv(${lit(path.join(dir, `${e.table}.csv`))}, header = true, all_varchar = true)`);
      const row = all[e.row - 1];
      if (e.column === 'drug_concept_id') {
        const known = await one<{ n: string }>(`SELECT count(*) AS n FROM ${t(dir, 'concept')} WHERE concept_id = ${Number(row.drug_concept_id)}`);
        assert.equal(Number(known.n), 0);
        continue;
      }
      const problems = rowValidator(tableSpec(e.table as ClinicalTable)).check(row);
      assert.ok(problems.some((p) => p.column === e.column), `${e.table} row ${e.row}: ${JSON.stringify(problems)}`);
      // Only the injected rows are invalid.
      const bad = all.filter((x) => rowValidator(tableSpec(e.table as ClinicalTable)).check(x).length > 0).length;
      assert.equal(bad, s.injected.filter((x) => x.table === e.table && x.column !== 'drug_concept_id').length);
    }
  });

  it('sizes a data set by clinical rows with personsForRows', async () => {
    const target = 60_000;
    const dir = path.join(root, 'sized');
    const s = await generateSynthetic({ persons: personsForRows(target), seed: 99, out: dir, format: 'csv', site: 'A', hcupCsv: HCUP_CSV });
    assert.ok(Math.abs(s.clinicalRows - target) / target < 0.15, `${s.clinicalRows} rows for a target of ${target}`);
  });

  it('parses the command line, reports progress and rejects bad options with a clear message', async () => {
    const dir = path.join(root, 'cli');
    const write = process.stdout.write.bind(process.stdout);
    let printed = '';
    process.stdout.write = ((chunk: string) => { printed += chunk; return true; }) as typeof process.stdout.write;
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await runCommandLine(['synth', '--persons', '40', '--seed', '9', '--out', dir, '--site', 'B']);
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
    }
    assert.match(printed, /site B, seed 9: 40 persons -> \S+ \(csv\)/);
    await assert.rejects(runCommandLine(['synth', '--persons', 'ten', '--out', dir]), /^UserError: medrep synth: --persons must be an integer, got "ten"$/);
    await assert.rejects(runCommandLine(['synth', '--persons', '5']), /medrep synth: --out is required/);
    await assert.rejects(runCommandLine(['synth', '--out', dir, '--format', 'xlsx']), /--format must be csv or parquet/);
    await assert.rejects(runCommandLine(['synth', '--out', dir, '--bogus']), /unknown option --bogus/);
    // A folder with tables of the other format is refused rather than mixed.
    await assert.rejects(runCommandLine(['synth', '--out', dir, '--format', 'parquet']), /already holds person\.csv.*from another run/);
  });
});
