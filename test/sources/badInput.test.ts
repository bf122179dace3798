import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { UserError } from '../../common/errors';
import { runLocal } from '../../runners/local/localRunner';
import { silentLogger } from '../../common/progress';
import { lit, sql, tempDir, writeCsv } from '../helpers';

/** A tiny hospital with one bad row of every kind; the vocabulary in Athena's TSV layout, gzipped. */
function miniOmop(): { dir: string; vocab: string } {
  const dir = tempDir('mini');
  const vocab = tempDir('athena');
  writeCsv(path.join(dir, 'PERSON.csv'), ['PERSON_ID', 'GENDER_CONCEPT_ID', 'YEAR_OF_BIRTH', 'MONTH_OF_BIRTH', 'DAY_OF_BIRTH', 'BIRTH_DATETIME'], [
    [1, 8507, 1980, 5, 20, null],
    [2, 8532, 1990, null, null, null],
    [3, 8532, 1750, 1, 1, null], // row 3: year of birth out of range
    [1, 8507, 1981, 1, 1, null], // row 4: duplicate person
  ]);
  writeCsv(path.join(dir, 'visit_occurrence.csv'), ['visit_occurrence_id', 'person_id', 'visit_concept_id', 'visit_start_date', 'visit_end_date'], [
    [10, 1, 9201, '2020-01-01', '2020-01-05'],
    [11, 2, 9202, '2021-03-01', '2021-03-01'],
  ]);
  writeCsv(path.join(dir, 'condition_occurrence.csv'), ['condition_occurrence_id', 'person_id', 'condition_concept_id', 'condition_start_date', 'condition_start_datetime', 'condition_source_concept_id', 'visit_occurrence_id'], [
    [100, 1, 201826, '2020-01-02', '2020-01-02 10:00:00', 0, 10], // standard
    [101, 1, 0, '2020-01-03', null, 44826460, 10], // ICD10 source -> Maps to 201826
    [102, 'abc', 201826, '2020-01-03', null, 0, 10], // row 3: bad type
    [103, 1, 201826, '2020-02-30', null, 0, 10], // row 4: impossible date
    [104, 1, 999999999, '2020-01-04', null, 0, 10], // row 5: a concept the vocabulary lacks: kept as a token
    [105, 77, 201826, '2020-01-04', null, 0, null], // row 6: unknown person
    [106, 2, 316866, '2350-01-01', null, 0, 11], // row 7: year out of range
    [107, 2, 316866, '2021-03-01', null, 0, 11],
  ]);
  const tsv = (file: string, header: string[], rows: (string | number)[][]) =>
    fs.writeFileSync(path.join(vocab, file), zlib.gzipSync([header.join('\t'), ...rows.map((r) => r.join('\t'))].join('\n') + '\n'));
  tsv('CONCEPT.csv.gz', ['concept_id', 'concept_name', 'domain_id', 'vocabulary_id', 'concept_class_id', 'standard_concept', 'concept_code', 'valid_start_date', 'valid_end_date', 'invalid_reason'], [
    [201826, 'Type 2 diabetes mellitus', 'Condition', 'SNOMED', 'Clinical Finding', 'S', '44054006', '20020131', '20991231', ''],
    [316866, 'Hypertensive disorder', 'Condition', 'SNOMED', 'Clinical Finding', 'S', '38341003', '20020131', '20991231', ''],
    [44826460, 'Type 2 diabetes mellitus "without" complications', 'Condition', 'ICD10CM', '4-char billing code', '', 'E11.9', '20071001', '20991231', ''],
    [9201, 'Inpatient Visit', 'Visit', 'Visit', 'Visit', 'S', 'IP', '19700101', '20991231', ''],
    [9202, 'Outpatient Visit', 'Visit', 'Visit', 'Visit', 'S', 'OP', '19700101', '20991231', ''],
  ]);
  tsv('CONCEPT_RELATIONSHIP.csv.gz', ['concept_id_1', 'concept_id_2', 'relationship_id', 'valid_start_date', 'valid_end_date', 'invalid_reason'], [
    [44826460, 201826, 'Maps to', '20071001', '20991231', ''],
  ]);
  return { dir, vocab };
}

describe('bad input', () => {
  it('sets bad rows aside with file, row, column and reason, and goes on', async () => {
    const { dir, vocab } = miniOmop();
    const s = await runLocal({ omop: dir, vocab, out: path.join(tempDir('mini-out'), 'out'), log: silentLogger });
    assert.equal(s.persons, 2);
    assert.equal(s.eventsOut.condition, 4, 'the standard, the mapped, the one not in the vocabulary and the valid row of person 2');
    assert.equal(s.mapping.condition_occurrence.mapped, 1);
    assert.equal(s.mapping.condition_occurrence.not_in_vocabulary, 1);
    assert.deepEqual(s.notInVocabulary, { condition_occurrence: 1 });
    const lines = (f: string) => fs.readFileSync(path.join(s.out, 'rejects', f), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const cond = lines('condition_occurrence.jsonl').map((r) => ({ row: r.row, column: r.column, reason: r.reason, file: path.basename(r.file) }));
    cond.sort((a, b) => a.row - b.row);
    assert.deepEqual(cond.map((r) => [r.row, r.column]), [
      [3, 'person_id'],
      [4, 'condition_start_date'],
      [6, 'person_id'],
      [7, 'condition_start_date'],
    ]);
    assert.ok(cond.every((r) => r.file === 'condition_occurrence.csv'));
    assert.match(cond[0].reason, /integer/);
    assert.match(cond[1].reason, /not a valid date/);
    assert.match(cond[2].reason, /not in the person table/);
    const persons = lines('person.jsonl').map((r) => [r.row, r.column, r.reason]);
    assert.deepEqual(persons.map((p) => p.slice(0, 2)).sort(), [[3, 'year_of_birth'], [4, 'person_id']]);
    assert.equal(s.rejectsTotal, 6);
    assert.equal(Object.values(s.rejects).reduce((a, b) => a + b, 0), 6, 'every reject counted under a reason');
    const rejectedValues = lines('condition_occurrence.jsonl').find((r) => r.row === 3).values;
    assert.equal(rejectedValues.person_id, 'abc', 'the row is kept as read');
    const [ev] = await sql<{ n: bigint }>(`SELECT count(*) n FROM read_parquet(${lit(path.join(s.out, 'events/*.parquet'))}) WHERE source_concept_id = 44826460 AND concept_id = 201826`);
    assert.equal(Number(ev.n), 1, 'the mapped row keeps its source concept');
  });

  it('a missing required column is one clear error naming the file and the column', async () => {
    const { dir, vocab } = miniOmop();
    writeCsv(path.join(dir, 'measurement.csv'), ['measurement_id', 'person_id', 'measurement_date'], [[1, 1, '2020-01-01']]);
    await assert.rejects(
      runLocal({ omop: dir, vocab, out: path.join(tempDir('x'), 'out'), log: silentLogger }),
      (e: Error) => e instanceof UserError && /measurement\.csv: missing required column "measurement_concept_id"/.test(e.message),
    );
  });

  it('a missing input folder or vocabulary is a clear error', async () => {
    await assert.rejects(runLocal({ omop: '/no/such/folder', out: tempDir('y'), log: silentLogger }), (e: Error) => e instanceof UserError && /not found: \/no\/such\/folder/.test(e.message));
    const { dir } = miniOmop();
    await assert.rejects(runLocal({ omop: dir, out: tempDir('z'), log: silentLogger }), (e: Error) => e instanceof UserError && /no CONCEPT table/.test(e.message));
  });

  it('the CLI prints one message and exits non-zero, without a stack trace', () => {
    const bin = path.resolve(__dirname, '../../../bin/medrep.js');
    const r = spawnSync(process.execPath, [bin, 'run', '--omop', '/no/such/folder', '--out', tempDir('cli')], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim(), 'medrep: OMOP input not found: /no/such/folder');
    const bad = spawnSync(process.execPath, [bin, 'run', '--omop'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--omop needs a value/);
    const { dir, vocab } = miniOmop();
    const out = path.join(tempDir('cli-ok'), 'out');
    const ok = execFileSync(process.execPath, [bin, 'run', '--omop', dir, '--vocab', vocab, '--out', out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(ok, /rejects\s+6/);
    assert.ok(!/\d{4}-\d{2}-\d{2}/.test(ok), 'the summary prints counts, never row contents');
  });
});
