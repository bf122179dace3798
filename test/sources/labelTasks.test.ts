// Task definitions as files: the shipped ones validate, a user's new file is a new task with no
// code change, bad files fail with the file and the field named, and concept sets resolve
// through the vocabulary as the issue says.
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { labelBatch } from '../../sources/labelInputs';
import { resolveConceptSets } from '../../sources/conceptSets';
import { readTaskDir, readTaskFile, shippedTasks } from '../../sources/taskFiles';
import { compileTask, taskArtifact } from '../../transforms/labels';
import { openDataset, SHARED, SHARED_TASKS } from '../helpers/labelData';
import { createSyntheticOmop, SYNTH_VOCAB } from '../helpers/syntheticOmop';
import { tempDir } from '../helpers';

const SHIPPED = ['fracture', 'long_stay', 'mi', 'mortality', 'phenotypes', 'pneumonia', 'readmission', 'sepsis', 'uti'];

function tempTaskFile(name: string, body: unknown): string {
  const dir = tempDir('tasks');
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(body, null, 2));
  return file;
}

describe('labels: task definition files', function () {
  this.timeout(60_000);

  it('ships one valid file per task of the paper', () => {
    assert.deepEqual(
      shippedTasks().map((t) => t.def.name),
      SHIPPED,
    );
  });

  it('a new task is a new file: long stay >= 3 days for persons 40-100, no code change', async () => {
    const base = shippedTasks(['long_stay'])[0].def;
    const file = tempTaskFile('long_stay_3d_40plus', {
      ...base,
      name: 'long_stay_3d_40plus',
      description: 'Stay of 3 days or more, persons 40 to 100.',
      cohort: { ...base.cohort, age: { min: 40, max: 100 } },
      label: { rule: 'stay_length_at_least', days: 3 },
    });
    const tasks = readTaskDir(path.dirname(file));
    assert.deepEqual(tasks.map((t) => t.def.name), ['long_stay_3d_40plus']);
    const conn = await openDataset(path.join(SHARED, 'omop', 'gibleed'));
    const { summary, samples } = await labelBatch(conn, tasks);
    // Independent count: latest eligible inpatient stay of persons 40-100, length >= 3 days.
    const expected = (
      await conn.runAndReadAll(`
        WITH s AS (
          SELECT v.person_id, v.visit_start_date AS s, v.visit_end_date AS e, v.visit_occurrence_id AS id
          FROM visit_occurrence v JOIN person p USING (person_id)
          WHERE v.visit_concept_id IN (9201, 262) AND v.visit_end_date > v.visit_start_date
            AND datepart('year', age(CAST(v.visit_start_date AS TIMESTAMP), CAST(p.birth_datetime AS TIMESTAMP))) BETWEEN 40 AND 100
          QUALIFY row_number() OVER (PARTITION BY v.person_id ORDER BY s DESC, e DESC, id DESC) = 1)
        SELECT count(*)::DOUBLE, sum((e - s >= 3)::INTEGER)::DOUBLE FROM s`)
    ).getRowsJS()[0] as number[];
    assert.equal(summary.tasks[0].cohort, expected[0]);
    assert.equal(summary.tasks[0].positives, expected[1]);
    assert.ok(expected[1] > 0 && expected[1] < expected[0], 'both labels occur');
    assert.ok(samples.every((s) => s.task === 'long_stay_3d_40plus'));
  });

  it('rejects a file that does not match the schema, naming the file and the field', () => {
    const file = tempTaskFile('broken', { name: 'broken', description: 'x', cohort: { indexVisitConcepts: [9201] }, label: { rule: 'death_during_stay' } });
    assert.throws(() => readTaskFile(file), (e: Error) => e.message.includes(file) && /cohort.*age|predictionTime/.test(e.message));
  });

  it('rejects unknown rules, bad combinations and a name that differs from the file', () => {
    const base = shippedTasks(['mortality'])[0].def;
    const unknown = tempTaskFile('unknown_rule', { ...base, name: 'unknown_rule', label: { rule: 'death_within_year' } });
    assert.throws(() => readTaskFile(unknown), /unknown_rule\.json: invalid task definition: \/label\/rule/);
    const combo = tempTaskFile('combo', { ...base, name: 'combo', predictionTime: { rule: 'day_before_occurrence' } });
    assert.throws(() => readTaskFile(combo), /combo\.json: task "combo": label rule event_during_stay goes with prediction rule day_before_occurrence/);
    const noDays = tempTaskFile('no_days', { ...base, name: 'no_days', label: { rule: 'readmission_within' } });
    assert.throws(() => readTaskFile(noDays), /no_days\.json: invalid task definition: .*days/);
    const renamed = tempTaskFile('file_name', { ...base, name: 'other_name' });
    assert.throws(() => readTaskFile(renamed), /task name "other_name" differs from the file name "file_name"/);
    const ages = tempTaskFile('ages', { ...base, name: 'ages', cohort: { ...base.cohort, age: { min: 90, max: 18 } } });
    assert.throws(() => readTaskFile(ages), /cohort\.age\.min 90 > max 18/);
  });

  it('resolves concept sets: ICD-9 codes without dots -> Maps to -> descendants; names by regex; id lists', async () => {
    const conn = await (await DuckDBInstance.create(':memory:')).connect();
    await createSyntheticOmop(conn, { persons: 1, seed: 1, eventConcepts: { UTI: [81902] } });
    const V = SYNTH_VOCAB;
    const pheno = await resolveConceptSets(conn, shippedTasks(['phenotypes'])[0]);
    assert.equal(pheno.length, 24);
    const byName = new Map(pheno.map((s) => [s.name, s.conceptIds]));
    // 584.5 is listed as 5845; its invalid "Maps to" is not followed.
    assert.deepEqual(byName.get('Acute and unspecified renal failure'), [V.icd9RenalFailure, V.renalStandard, V.renalChild].sort((a, b) => a - b));
    assert.deepEqual(byName.get('Essential hypertension'), [V.icd9Hypertension, V.hypertensionStandard]);
    assert.deepEqual(byName.get('Pneumonia'), []);
    const fx = await resolveConceptSets(conn, shippedTasks(['fracture'])[0]);
    assert.deepEqual(fx, [{ name: 'Fx', conceptIds: [V.fractureClosed] }]);
    const uti = await resolveConceptSets(conn, shippedTasks(['uti'])[0]);
    assert.deepEqual(uti[0].conceptIds.slice(0, 2), [77340, 81902]);
    assert.equal(uti[0].conceptIds.length, 6);
  });

  it('records a task artifact whose hash follows the definition and the resolved concepts', () => {
    const def = shippedTasks(['uti'])[0].def;
    const a = taskArtifact(compileTask(def, [{ name: 'UTI', conceptIds: [3, 1, 2] }]));
    const b = taskArtifact(compileTask(JSON.parse(JSON.stringify(def)), [{ name: 'UTI', conceptIds: [1, 2, 3] }]));
    const c = taskArtifact(compileTask(def, [{ name: 'UTI', conceptIds: [1, 2] }]));
    const d = taskArtifact(compileTask({ ...def, seed: 1 }, [{ name: 'UTI', conceptIds: [1, 2, 3] }]));
    assert.equal(a.hash, b.hash);
    assert.notEqual(a.hash, c.hash);
    assert.notEqual(a.hash, d.hash);
    assert.deepEqual(a.conceptSets, [{ name: 'UTI', conceptIds: [1, 2, 3] }]);
  });

  it('names the missing view or column before labelling', async () => {
    const conn = await (await DuckDBInstance.create(':memory:')).connect();
    await createSyntheticOmop(conn, { persons: 1, seed: 1, eventConcepts: { UTI: [81902] } });
    await conn.run('ALTER TABLE death RENAME COLUMN death_date TO date_of_death');
    await assert.rejects(labelBatch(conn, shippedTasks(['mortality'])), /labels: death lacks column\(s\) death_date/);
    await conn.run('ALTER TABLE death RENAME COLUMN date_of_death TO death_date');
    await conn.run('DROP TABLE concept_ancestor');
    await assert.rejects(labelBatch(conn, shippedTasks(['mortality'])), /labels: no table or view named concept_ancestor/);
  });

  it('names the file and key when a concept list is missing', async () => {
    const base = shippedTasks(['uti'])[0].def;
    const file = tempTaskFile('uti_missing', {
      ...base,
      name: 'uti_missing',
      conceptSets: [{ from: 'ids_json', name: 'X', file: path.join(SHARED_TASKS, 'in_hospital_event_concepts.json'), key: 'NoSuchKey' }],
    });
    const conn = await (await DuckDBInstance.create(':memory:')).connect();
    await createSyntheticOmop(conn, { persons: 1, seed: 1, eventConcepts: { UTI: [81902] } });
    await assert.rejects(resolveConceptSets(conn, readTaskFile(file)), /uti_missing\.json: conceptSets\[0\]: .* no list of integer concept ids under "NoSuchKey"/);
  });
});
