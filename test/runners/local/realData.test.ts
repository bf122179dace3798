// Real OMOP conversions as they arrive: partial vocabularies, concept sets that resolve to
// nothing, inputs with nothing usable, date-only facts of an admission day, and provenance that
// names no path of this machine.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runLocal, RunSummary } from '../../../runners/local/localRunner';
import { Logger, silentLogger } from '../../../common/progress';
import { formatSummary } from '../../../runners/local/summary';
import { OMOP, SHARED, lit, sql, tempDir } from '../../helpers';
import { handMade } from '../../helpers/handMadeOmop';

const BIN = path.resolve(__dirname, '../../../../bin/medrep.js');
const TOKEN_TABLES = ['condition_occurrence', 'drug_exposure', 'measurement', 'procedure_occurrence'];

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const manifestOf = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));

/** A logger that keeps the warnings. */
function recording(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { info: () => undefined, warn: (m) => warnings.push(m), warnings };
}

/** GiBleed's vocabulary cut to its visit, gender, race and ethnicity concepts: no clinical concept, no relationship. */
async function partialVocabulary(): Promise<string> {
  const dir = tempDir('partial-vocab');
  await sql(`COPY (SELECT * FROM read_csv(${lit(path.join(OMOP.gibleed, 'concept.csv'))}, all_varchar = true)
                   WHERE domain_id IN ('Visit', 'Gender', 'Race', 'Ethnicity'))
             TO ${lit(path.join(dir, 'concept.csv'))} (HEADER, DELIMITER ',')`);
  fs.writeFileSync(path.join(dir, 'concept_relationship.csv'), 'concept_id_1,concept_id_2,relationship_id,valid_start_date,valid_end_date,invalid_reason\n');
  fs.writeFileSync(path.join(dir, 'concept_ancestor.csv'), 'ancestor_concept_id,descendant_concept_id,min_levels_of_separation,max_levels_of_separation\n');
  return dir;
}

describe('partial vocabularies: rows whose concept the vocabulary lacks stay as tokens', function () {
  this.timeout(180_000);
  let full: RunSummary;
  let partial: RunSummary;
  let vocab: string;
  const log = recording();
  before(async () => {
    vocab = await partialVocabulary();
    full = await runLocal({ omop: OMOP.gibleed, out: path.join(tempDir('gib-full'), 'out'), log: silentLogger });
    partial = await runLocal({ omop: OMOP.gibleed, vocab, out: path.join(tempDir('gib-partial'), 'out'), log });
  });

  it('keeps every row, with its own concept id, and counts it as not_in_vocabulary per table', async () => {
    assert.deepEqual(partial.eventsOut, full.eventsOut, 'no row lost');
    assert.equal(partial.rejectsTotal, 0);
    for (const t of TOKEN_TABLES) {
      assert.ok(full.rowsIn[t] > 0, t);
      assert.equal(partial.notInVocabulary[t], full.rowsIn[t], `${t}: every row's concept is missing from the cut vocabulary`);
      assert.equal(partial.mapping[t].not_in_vocabulary, full.rowsIn[t], t);
    }
    assert.equal(partial.notInVocabulary.visit_occurrence, undefined, 'visit concepts are in the vocabulary');
    assert.deepEqual(manifestOf(partial.out).counts.not_in_vocabulary, partial.notInVocabulary);
    // The same events, concept for concept (GiBleed's rows are standard, so the full run keeps them as they are).
    const events = (out: string) => lit(path.join(out, 'events/*.parquet'));
    const [d] = await sql<{ a: bigint; b: bigint }>(`SELECT
      (SELECT count(*) FROM (SELECT origin, concept_id FROM read_parquet(${events(full.out)}) EXCEPT ALL SELECT origin, concept_id FROM read_parquet(${events(partial.out)}))) a,
      (SELECT count(*) FROM (SELECT origin, concept_id FROM read_parquet(${events(partial.out)}) EXCEPT ALL SELECT origin, concept_id FROM read_parquet(${events(full.out)}))) b`);
    assert.deepEqual([Number(d.a), Number(d.b)], [0, 0]);
    assert.equal(partial.pretrainTokens, full.pretrainTokens, 'the rows are tokens of the trajectories');
  });

  it('labels see the same rows as the token windows: tasks of concept-id lists label as with the full vocabulary', () => {
    const pick = (s: RunSummary, task: string) => {
      const t = s.tasks.find((x) => x.task === task)!;
      return [t.cohort, t.positives, t.negatives, t.censored];
    };
    for (const task of ['mortality', 'long_stay', 'readmission', 'uti', 'sepsis', 'pneumonia', 'mi']) assert.deepEqual(pick(partial, task), pick(full, task), task);
    assert.deepEqual(partial.tasksSkipped.map((t) => t.task).sort(), ['fracture', 'phenotypes'], 'name and ICD-9 lists need the vocabulary');
  });

  it('warns once, naming the tables and suggesting --vocab', () => {
    const lines = log.warnings.filter((w) => /not in the vocabulary/.test(w));
    assert.equal(lines.length, 1, log.warnings.join('\n'));
    for (const t of TOKEN_TABLES) assert.ok(lines[0].includes(t), `${t} named`);
    assert.match(lines[0], /--vocab/);
    assert.deepEqual(manifestOf(partial.out).counts.warnings.filter((w: string) => /not in the vocabulary/.test(w)), lines);
    assert.deepEqual(log.warnings.filter((w) => /not in the vocabulary/.test(w) === false && !/^task /.test(w)), [], 'no other warning');
  });

  it('the CLI prints the warning once and the counts in the summary', () => {
    const out = path.join(tempDir('gib-partial-cli'), 'out');
    const r = cli(['run', '--omop', OMOP.gibleed, '--vocab', vocab, '--out', out, '--tasks', 'none']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.split('\n').filter((l) => /not in the vocabulary/.test(l)).length, 1, r.stderr);
    assert.match(r.stdout, /not in vocabulary/);
    assert.match(r.stdout, new RegExp(`condition_occurrence\\s+${full.rowsIn.condition_occurrence.toLocaleString('en-US')}.*\\s${full.rowsIn.condition_occurrence.toLocaleString('en-US')}\\n`));
  });
});

describe('concept sets that resolve to nothing in the vocabulary', function () {
  this.timeout(120_000);
  for (const [name, omop] of [['Synthea27Nj', OMOP.synthea], ['GiBleed', OMOP.gibleed]] as const) {
    it(`${name} (no ICD9CM concepts): the phenotype task is skipped with one warning, not emitted`, async () => {
      const log = recording();
      const s = await runLocal({ omop, out: path.join(tempDir(`skip-${name}`), 'out'), log });
      const lines = log.warnings.filter((w) => /phenotypes/.test(w));
      assert.equal(lines.length, 1, log.warnings.join('\n'));
      assert.match(lines[0], /^task phenotypes skipped: all 24 ICD-9-CM lists of hcup_ccs_phenotypes_icd9\.csv resolve to no concept: the vocabulary has no ICD9CM concepts/);
      assert.deepEqual(s.tasksSkipped.map((t) => t.task), ['phenotypes']);
      assert.ok(!s.tasks.some((t) => t.task === 'phenotypes'));
      assert.ok(s.tasks.some((t) => t.task === 'mortality' && t.cohort > 0), 'the other tasks run');
      assert.ok(!fs.existsSync(path.join(s.out, 'samples/phenotypes')), 'no samples');
      assert.ok(!fs.existsSync(path.join(s.out, 'meds/labels/phenotypes')), 'no MEDS labels');
      assert.ok(!fs.existsSync(path.join(s.out, 'artifacts/tasks/phenotypes.json')));
      const m = manifestOf(s.out);
      assert.deepEqual(m.counts.tasks_skipped.map((t: { task: string }) => t.task), ['phenotypes']);
      assert.ok(!m.shards.some((x: { path: string }) => x.path.includes('phenotypes')));
      assert.match(formatSummary(s), /\n\s+phenotypes\s+skipped: its concept sets resolve to no concept in this vocabulary\n/, 'Table 1 shows it as skipped');
    });
  }
});

const conditions: [string[], (string | number | null)[][]] = [
  ['condition_occurrence_id', 'person_id', 'condition_concept_id', 'condition_start_date', 'condition_start_datetime', 'condition_source_concept_id', 'visit_occurrence_id'],
  [[1, 1, 201826, '2020-01-02', null, 0, null], [2, 2, 316866, '2020-01-03', null, 0, null]],
];

describe('inputs with nothing usable end with a manifest and exit 0', function () {
  this.timeout(60_000);

  it('an empty person table: exit 0, a manifest, a one-line summary and a warning', () => {
    const omop = handMade('empty-person', { condition_occurrence: conditions });
    const out = path.join(tempDir('empty-person-out'), 'out');
    const r = cli(['run', '--omop', omop, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1, r.stdout);
    assert.match(r.stdout, /nothing usable, the person table is empty/);
    assert.match(r.stderr, /warning: the person table is empty/);
    assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
    const m = manifestOf(out);
    assert.equal(m.counts.persons, 0);
    assert.equal(m.counts.nothing_usable, 'the person table is empty');
    assert.equal(m.counts.label_watermark !== undefined, true);
    assert.equal(Object.values(m.counts.events_out as Record<string, number>).reduce((a, b) => a + b, 0), 0);
    assert.equal(m.counts.rejects['condition_occurrence.person_id: person_id not in the person table'], 2, 'the clinical rows are set aside, counted');
  });

  it('every row rejected: exit 0, a manifest, a one-line summary', () => {
    const omop = handMade('all-rejected', {
      person: [['person_id', 'gender_concept_id', 'year_of_birth', 'month_of_birth', 'day_of_birth', 'birth_datetime'], [['p1', 8507, 1980, 1, 1, null], [2, 8507, 1700, 1, 1, null]]],
      condition_occurrence: [conditions[0], [[1, 'x', 201826, '2020-01-02', null, 0, null], [2, 2, 316866, '2020-02-30', null, 0, null]]],
    });
    const out = path.join(tempDir('all-rejected-out'), 'out');
    const r = cli(['run', '--omop', omop, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1, r.stdout);
    assert.match(r.stdout, /nothing usable, all 2 person rows were rejected \(4 rows set aside in rejects\/\)/);
    assert.match(r.stderr, /warning: all 2 person rows were rejected/);
    const m = manifestOf(out);
    assert.equal(m.counts.persons, 0);
    assert.equal(m.rejects.reduce((a: number, x: { rows: number }) => a + x.rows, 0), 4);
    assert.equal(m.counts.label_watermark, null, 'no record read: no watermark');
  });
});

describe('date-only facts of an admission day', function () {
  this.timeout(60_000);
  it('a date-only condition on the day a visit starts is in that visit\'s segment, a timed one before the admission is not', async () => {
    // Visits: 2020-03-01 10:00 and 2020-03-10 08:00 (inpatient). Conditions: one date-only on
    // Mar 10 (the admission day), one timed Mar 10 06:00 (before the admission), one timed Mar 10 09:00.
    const omop = handMade('admission-day', {
      person: [['person_id', 'gender_concept_id', 'year_of_birth', 'month_of_birth', 'day_of_birth', 'birth_datetime'], [[1, 8507, 1970, 5, 5, null]]],
      visit_occurrence: [
        ['visit_occurrence_id', 'person_id', 'visit_concept_id', 'visit_start_date', 'visit_start_datetime', 'visit_end_date', 'visit_end_datetime'],
        [[10, 1, 9201, '2020-03-01', '2020-03-01 10:00:00', '2020-03-03', '2020-03-03 12:00:00'], [11, 1, 9201, '2020-03-10', '2020-03-10 08:00:00', '2020-03-14', '2020-03-14 12:00:00']],
      ],
      condition_occurrence: [conditions[0], [
        [100, 1, 201826, '2020-03-02', '2020-03-02 11:00:00', 0, 10],
        [101, 1, 316866, '2020-03-10', null, 0, 11],
        [102, 1, 201826, '2020-03-10', '2020-03-10 06:00:00', 0, null],
        [103, 1, 316866, '2020-03-10', '2020-03-10 09:00:00', 0, 11],
      ]],
    });
    const s = await runLocal({ omop, out: path.join(tempDir('admission-day-out'), 'out'), log: silentLogger, tasks: 'none' });
    const [seq] = await sql<{ c: number[]; s: number[]; r: number[] }>(
      `SELECT list_transform(concept_ids, x -> x::DOUBLE) c, segments s, record_ranks r FROM read_parquet(${lit(path.join(s.out, 'pretrain/*.parquet'))})`,
    );
    // [CLS], gender, then Mar 2 11:00, Mar 10 00:00 (date-only), Mar 10 06:00, Mar 10 09:00.
    assert.deepEqual(Array.from(seq.c), [-3, 8507, 201826, 316866, 201826, 316866]);
    assert.deepEqual(Array.from(seq.s), [0, 0, 1, 2, 1, 2], 'the date-only fact joins the visit of its day');
    assert.deepEqual(Array.from(seq.r), [0, 0, 1, 1, 2, 2]);
  });
});

/** Every string of a JSON value that looks like an absolute path of two or more parts (a unit such as "/min" is not). */
function absolutePaths(v: unknown): string[] {
  if (typeof v === 'string') return /^\/[^/]+\//.test(v) ? [v] : [];
  if (Array.isArray(v)) return v.flatMap(absolutePaths);
  if (v && typeof v === 'object') return Object.values(v).flatMap(absolutePaths);
  return [];
}

describe('provenance names no path of this machine', function () {
  this.timeout(120_000);
  it('manifest and artifacts record input files relative to the input folder; the vocabulary version is its content', async () => {
    const csv = await runLocal({ omop: OMOP.synthea, out: path.join(tempDir('prov-csv'), 'out'), log: silentLogger, tasks: 'none', meds: false });
    const parquet = await runLocal({ omop: OMOP.syntheaParquet, out: path.join(tempDir('prov-parquet'), 'out'), log: silentLogger, tasks: 'none', meds: false });
    for (const s of [csv, parquet]) {
      for (const f of ['manifest.json', 'artifacts/vocabulary.json', 'artifacts/deciles.json']) {
        const text = fs.readFileSync(path.join(s.out, f), 'utf8');
        assert.ok(!text.includes(SHARED) && !text.includes(s.out), `${f} names no input or output folder`);
        assert.deepEqual(absolutePaths(JSON.parse(text)), [], `${f} holds no absolute path`);
      }
      const m = manifestOf(s.out);
      assert.ok(m.input.files.length >= 8);
      for (const f of m.input.files) assert.ok(fs.existsSync(path.join(s.input.path, f.file)) && /^[0-9a-f]{64}$/.test(f.sha256), f.file);
    }
    const vocab = (s: RunSummary) => JSON.parse(fs.readFileSync(path.join(s.out, 'artifacts/vocabulary.json'), 'utf8'));
    assert.deepEqual(vocab(csv).files.map((f: { file: string }) => f.file), ['CONCEPT.csv', 'CONCEPT_ANCESTOR.csv', 'CONCEPT_RELATIONSHIP.csv']);
    assert.notDeepEqual(vocab(csv).files.map((f: { sha256: string }) => f.sha256), vocab(parquet).files.map((f: { sha256: string }) => f.sha256), 'other files');
    assert.equal(vocab(csv).version, vocab(parquet).version, 'one vocabulary, one version');
    assert.equal(manifestOf(csv.out).artifacts.vocabulary.version, manifestOf(parquet.out).artifacts.vocabulary.version);
    const gib = await runLocal({ omop: OMOP.gibleed, out: path.join(tempDir('prov-gib'), 'out'), log: silentLogger, tasks: 'none', meds: false });
    const duck = await runLocal({ omop: OMOP.gibleedDuckdb, out: path.join(tempDir('prov-duck'), 'out'), log: silentLogger, tasks: 'none', meds: false });
    assert.equal(vocab(gib).version, vocab(duck).version, 'CSV and DuckDB: one version');
    assert.notEqual(vocab(gib).version, vocab(csv).version, 'another vocabulary, another version');
    assert.deepEqual(vocab(duck).files.map((f: { file: string }) => f.file), ['GiBleed_5.3.duckdb']);
  });

  it('duplicate row ids (GiBleed) keep a unique origin: table, row id and row', async () => {
    const [dups] = await sql<{ n: bigint }>(`SELECT count(*) - count(DISTINCT drug_exposure_id) n FROM read_csv(${lit(path.join(OMOP.gibleed, 'drug_exposure.csv'))})`);
    assert.ok(Number(dups.n) > 0, 'GiBleed repeats drug_exposure ids');
    const s = await runLocal({ omop: OMOP.gibleed, out: path.join(tempDir('origin-gib'), 'out'), log: silentLogger, tasks: 'none', meds: false });
    const [r] = await sql<{ n: bigint; u: bigint; bad: bigint }>(`SELECT count(*) n, count(DISTINCT origin) u,
        count(*) FILTER (WHERE NOT regexp_matches(origin, '^[a-z_]+:-?[0-9]+:[0-9]+$')) bad FROM read_parquet(${lit(path.join(s.out, 'events/*.parquet'))})`);
    assert.equal(Number(r.u), Number(r.n), 'every origin unique');
    assert.equal(Number(r.bad), 0);
    // The row part is the 1-based data row of the file.
    const [d] = await sql<{ o: string; id: bigint }>(`
      WITH src AS (SELECT drug_exposure_id AS id, row_number() OVER () AS rn FROM read_csv(${lit(path.join(OMOP.gibleed, 'drug_exposure.csv'))}))
      SELECT 'drug_exposure:' || id || ':' || rn AS o, id FROM src QUALIFY count(*) OVER (PARTITION BY id) > 1 ORDER BY rn LIMIT 1`);
    const [hit] = await sql<{ n: bigint }>(`SELECT count(*) n FROM read_parquet(${lit(path.join(s.out, 'events/*.parquet'))}) WHERE origin = ${lit(d.o)}`);
    assert.equal(Number(hit.n), 1, d.o);
  });
});
