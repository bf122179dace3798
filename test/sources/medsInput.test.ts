// MEDS datasets as input (`medrep run --meds DIR`): medrep's own MEDS output read back gives the
// events it was written from, and a folder in the shape of EHRSHOT's MEDS release (codes as
// vocabulary/code strings, Gender/F, MEDS_BIRTH, an unknown code, a bad time) resolves, places and
// sets aside its rows with their file and row.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runLocal, RunSummary } from '../../runners/local/localRunner';
import { silentLogger } from '../../common/progress';
import { UNRESOLVED_FORM, UNRESOLVED_NOT_FOUND } from '../../sources/medsSource';
import { OMOP, lit, sql, tempDir } from '../helpers';

const BIN = path.resolve(__dirname, '../../../bin/medrep.js');
const manifestOf = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
const rejectsOf = (out: string, table: string) =>
  fs.readFileSync(path.join(out, 'rejects', `${table}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

/** Event columns that a MEDS round trip keeps: the value as MEDS holds it (float32). */
const EVENT_FACTS = `"table", person_id, time, concept_id, CAST(value AS FLOAT) AS value, decile, unit, visit_occurrence_id`;

async function eventDifference(a: string, b: string): Promise<{ rows: number; onlyA: number; onlyB: number }> {
  const ev = (out: string) => `(SELECT ${EVENT_FACTS} FROM read_parquet(${lit(path.join(out, 'events/*.parquet'))}))`;
  const [r] = await sql<{ rows: number; onlyA: number; onlyB: number }>(
    `SELECT (SELECT count(*) FROM ${ev(a)})::DOUBLE AS rows,
            (SELECT count(*) FROM (SELECT * FROM ${ev(a)} EXCEPT ALL SELECT * FROM ${ev(b)}))::DOUBLE AS "onlyA",
            (SELECT count(*) FROM (SELECT * FROM ${ev(b)} EXCEPT ALL SELECT * FROM ${ev(a)}))::DOUBLE AS "onlyB"`,
  );
  return r;
}

/** Pretraining tokens per person as a sorted multiset of (concept, decile, age, segment, record rank, domain). */
async function tokenDifference(a: string, b: string): Promise<{ persons: number; differ: number }> {
  const tokens = (out: string) => `(SELECT person_id, chunk, list_sort(list_transform(range(1, len(concept_ids) + 1),
      i -> [concept_ids[i]::VARCHAR, deciles[i]::VARCHAR, ages[i]::VARCHAR, segments[i]::VARCHAR, record_ranks[i]::VARCHAR, domains[i]::VARCHAR])) AS t, split
      FROM read_parquet(${lit(path.join(out, 'pretrain/*.parquet'))}))`;
  const [r] = await sql<{ persons: number; differ: number }>(
    `SELECT (SELECT count(DISTINCT person_id) FROM ${tokens(a)})::DOUBLE AS persons,
            (SELECT count(*) FROM (SELECT * FROM ${tokens(a)} EXCEPT ALL SELECT * FROM ${tokens(b)}))::DOUBLE
          + (SELECT count(*) FROM (SELECT * FROM ${tokens(b)} EXCEPT ALL SELECT * FROM ${tokens(a)}))::DOUBLE AS differ`,
  );
  return r;
}

/** GiBleed's vocabulary without its clinical concepts: medrep's MEDS then codes them OMOP_CONCEPT/<id>. */
async function visitAndGenderVocabulary(): Promise<string> {
  const dir = tempDir('meds-rt-vocab');
  await sql(`COPY (SELECT * FROM read_csv(${lit(path.join(OMOP.gibleed, 'concept.csv'))}, all_varchar = true) WHERE domain_id IN ('Visit', 'Gender'))
             TO ${lit(path.join(dir, 'concept.csv'))} (HEADER, DELIMITER ',')`);
  return dir;
}

/** `conceptCodes`: the MEDS codes of clinical rows are concept ids (OMOP_CONCEPT/<id>) rather than vocabulary/code. */
const ROUND_TRIPS: { name: string; omop: string; vocab: () => Promise<string>; conceptCodes: boolean }[] = [
  { name: 'Synthea27Nj', omop: OMOP.synthea, vocab: async () => OMOP.synthea, conceptCodes: false },
  { name: 'GiBleed', omop: OMOP.gibleed, vocab: async () => OMOP.gibleed, conceptCodes: false },
  // Concepts outside the vocabulary have no domain: they go back to the table their rows name.
  { name: 'GiBleed with a visit-and-gender vocabulary', omop: OMOP.gibleed, vocab: visitAndGenderVocabulary, conceptCodes: true },
];

for (const { name, omop, vocab: vocabOf, conceptCodes } of ROUND_TRIPS) {
  describe(`MEDS round trip on ${name}: medrep's own MEDS output as input gives the same events`, function () {
    this.timeout(240_000);
    let first: RunSummary;
    let second: RunSummary;
    before(async () => {
      const vocab = await vocabOf();
      first = await runLocal({ omop, vocab, out: path.join(tempDir('meds-rt-omop'), 'out'), log: silentLogger });
      // Small person ranges: the event pass reads the MEDS input's views on both DuckDB connections.
      second = await runLocal({ medsInput: path.join(first.out, 'meds'), vocab, out: path.join(tempDir('meds-rt-meds'), 'out'), log: silentLogger, rowsPerRange: 5_000 });
    });

    it('resolves every code, sets nothing aside and reads the same persons and rows per table', async () => {
      const [codes] = await sql<{ concept: number; vocabulary: number }>(
        `SELECT count(*) FILTER (code LIKE 'OMOP_CONCEPT/%')::DOUBLE AS concept, count(*) FILTER (code ~ '^(SNOMED|RxNorm|LOINC)/.*')::DOUBLE AS vocabulary
           FROM read_parquet(${lit(path.join(first.out, 'meds/data/*.parquet'))})`,
      );
      assert.ok(conceptCodes ? codes.concept > 1000 && codes.vocabulary === 0 : codes.concept === 0 && codes.vocabulary > 1000, JSON.stringify(codes));
      const counts = manifestOf(second.out).counts.meds_input;
      assert.equal(counts.unresolved.rows, 0);
      assert.deepEqual(counts.not_read, {});
      assert.equal(second.rejectsTotal, 0);
      assert.equal(second.persons, first.persons);
      assert.deepEqual(second.rowsIn, first.rowsIn);
      assert.deepEqual(second.eventsOut, first.eventsOut);
      assert.deepEqual(second.mapping, first.mapping);
    });

    it('gives equal multisets of events: table, person, time, concept, value (float32), decile, unit, visit id', async () => {
      const d = await eventDifference(first.out, second.out);
      assert.ok(d.rows > 1000, `${d.rows} events`);
      assert.deepEqual({ onlyFirst: d.onlyA, onlySecond: d.onlyB }, { onlyFirst: 0, onlySecond: 0 });
      assert.equal(second.measurementsBinned, first.measurementsBinned);
      assert.equal(second.decileGroups, first.decileGroups);
    });

    it('gives every person the same pretraining tokens (ages, segments, ranks, deciles) up to the order of equal-time events', async () => {
      const d = await tokenDifference(first.out, second.out);
      assert.equal(d.persons, first.persons);
      assert.equal(d.differ, 0);
      assert.equal(second.pretrainTokens, first.pretrainTokens);
    });

    it('takes visit ends from the events linked to each visit (medrep writes no visit end), so stays can be shorter', () => {
      const ends = manifestOf(second.out).counts.meds_input.visit_ends;
      assert.equal((ends['linked events'] ?? 0) + (ends.unknown ?? 0), first.eventsOut.visit);
      assert.ok(ends['linked events'] > 0);
      assert.equal(ends['end column'], undefined);
    });
  });
}

const CODES = {
  condition: 'SNOMED/263102004', // Fracture subluxation of wrist, 4134304
  lab: 'LOINC/8331-1', // Oral temperature, 3006322
  drug: 'RxNorm/4337', // Fentanyl, 1154029
  observation: 'SNOMED/300913006', // Shellfish allergy: Observation domain, not read
  icd10: 'ICD10CM/K92.2', // non-standard, "Maps to" 192671
};
/** 2^53 + 1: exact only as a 64-bit integer. */
const BIG_SUBJECT = '9007199254740993';

/** Rows of a MEDS data file: subject_id, time, code, numeric_value, unit, visit_id, end (EHRSHOT's meds_etl columns). */
type MedsRow = [string, string | null, string, number | null, string | null, number | null, string | null];

async function writeMedsFile(file: string, rows: MedsRow[]): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const v = (x: string | number | null, type: string) => (x === null ? `NULL::${type}` : typeof x === 'number' ? `${x}::${type}` : `${lit(x)}::${type}`);
  const values = rows.map((r) => `(${v(r[0], 'BIGINT')}, ${v(r[1], 'TIMESTAMP')}, ${v(r[2], 'VARCHAR')}, ${v(r[3], 'FLOAT')}, NULL::VARCHAR, ${v(r[4], 'VARCHAR')}, ${v(r[5], 'BIGINT')}, ${v(r[6], 'TIMESTAMP')})`);
  await sql(`COPY (SELECT * FROM (VALUES ${values.join(', ')}) t(subject_id, time, code, numeric_value, text_value, unit, visit_id, "end"))
             TO ${lit(file)} (FORMAT parquet)`);
}

/** An EHRSHOT-shaped MEDS folder: two split folders, metadata beside them. */
async function ehrshotLike(): Promise<string> {
  const dir = tempDir('ehrshot-like');
  await writeMedsFile(path.join(dir, 'data/held_out/0.parquet'), [
    // No MEDS_BIRTH: the person cannot be placed in time, so its rows are set aside with the person.
    ['-5', null, 'Gender/M', null, null, null, null],
    ['-5', '2019-06-01 09:00:00', CODES.condition, null, null, null, null],
  ]);
  await writeMedsFile(path.join(dir, 'data/train/0.parquet'), [
    [BIG_SUBJECT, null, 'Gender/F', null, null, null, null], // row 1
    [BIG_SUBJECT, '1950-03-04 00:00:00', 'MEDS_BIRTH', null, null, null, null], // row 2
    [BIG_SUBJECT, '2020-01-01 08:00:00', 'Visit/IP', null, null, 100, '2020-01-06 12:00:00'], // row 3
    [BIG_SUBJECT, '2020-01-02 10:00:00', CODES.lab, 37.9, 'Cel', 100, null], // row 4
    [BIG_SUBJECT, '2020-01-02 11:00:00', CODES.drug, null, null, 100, null], // row 5
    [BIG_SUBJECT, '2020-01-03 00:00:00', CODES.icd10, null, null, 100, null], // row 6
    [BIG_SUBJECT, '2020-01-03 00:00:00', CODES.observation, null, null, 100, null], // row 7
    [BIG_SUBJECT, '2020-01-03 00:00:00', 'STANFORD_OBS/pain_score', 4, null, 100, null], // row 8: unknown code
    [BIG_SUBJECT, '2020-01-04 00:00:00', 'DISCHARGE_NOTE', null, null, 100, null], // row 9: not a vocabulary/code string
    [BIG_SUBJECT, '2400-01-04 10:00:00', CODES.lab, 38.2, 'Cel', 100, null], // row 10: a time beyond the year 2300
    [BIG_SUBJECT, null, CODES.condition, null, null, null, null], // row 11: a clinical code without a time
    [BIG_SUBJECT, '2020-01-05 00:00:00', CODES.condition, null, null, 100, null], // row 12
    [BIG_SUBJECT, '2020-01-06 12:00:00', 'MEDS_DEATH', null, null, null, null], // row 13
  ]);
  fs.mkdirSync(path.join(dir, 'metadata'));
  fs.writeFileSync(path.join(dir, 'metadata/dataset.json'), JSON.stringify({ dataset_name: 'ehrshot-like', meds_version: '0.4.1' }));
  await sql(`COPY (SELECT ${BIG_SUBJECT}::BIGINT AS subject_id, 'train' AS split UNION ALL SELECT -5, 'held_out') TO ${lit(path.join(dir, 'metadata/subject_splits.parquet'))} (FORMAT parquet)`);
  return dir;
}

describe('an EHRSHOT-shaped MEDS folder: codes resolved through the vocabulary, the rest counted and set aside', function () {
  this.timeout(120_000);
  let dir: string;
  let run: RunSummary;
  let counts: Record<string, any>;
  before(async () => {
    dir = await ehrshotLike();
    run = await runLocal({ medsInput: dir, vocab: OMOP.gibleed, out: path.join(tempDir('ehrshot-like-out'), 'out'), log: silentLogger });
    counts = manifestOf(run.out).counts.meds_input;
  });

  it('counts where every row went: resolved rows per OMOP table, domains not read, unresolved codes', () => {
    assert.equal(counts.files, 2);
    assert.equal(counts.rows, 15);
    assert.deepEqual(counts.placed, {
      birth: 1, gender: 2, visit_occurrence: 1, measurement: 2, drug_exposure: 1, condition_occurrence: 4, death: 1,
    });
    assert.deepEqual(counts.not_read, { Observation: 1 });
    assert.deepEqual(counts.unresolved, { rows: 2, codes: 2, by_reason: { [UNRESOLVED_FORM]: 1, [UNRESOLVED_NOT_FOUND]: 1 } });
    assert.deepEqual(counts.visit_ends, { 'end column': 1 });
  });

  it('sets aside each unresolved code with its file, its row in that file and the reason', () => {
    const r = rejectsOf(run.out, 'meds');
    const train = path.join(dir, 'data/train/0.parquet');
    assert.deepEqual(r.map((x) => [x.file, x.row, x.column, x.reason, x.values.code]), [
      [train, 8, 'code', UNRESOLVED_NOT_FOUND, 'STANFORD_OBS/pain_score'],
      [train, 9, 'code', UNRESOLVED_FORM, 'DISCHARGE_NOTE'],
    ]);
    // The subject id is written with every digit.
    assert.match(fs.readFileSync(path.join(run.out, 'rejects/meds.jsonl'), 'utf8'), new RegExp(`"subject_id":${BIG_SUBJECT}\\b`));
  });

  it('holds the placed rows to the OMOP row check: a bad time, a missing time, a person without birth', () => {
    const train = path.join(dir, 'data/train/0.parquet');
    const heldOut = path.join(dir, 'data/held_out/0.parquet');
    const m = rejectsOf(run.out, 'measurement');
    assert.deepEqual(m.map((x) => [x.file, x.row, x.column, x.reason]), [[train, 10, 'measurement_date', 'not a valid date (YYYY-MM-DD, years 1800-2300)']]);
    const c = rejectsOf(run.out, 'condition_occurrence').map((x) => [x.file, x.row, x.column, x.reason]);
    assert.deepEqual(c.sort(), [
      [heldOut, 2, 'person_id', 'person rejected (year_of_birth: required value is missing)'],
      [train, 11, 'condition_start_date', 'required value is missing'],
    ].sort());
    const p = rejectsOf(run.out, 'person');
    assert.deepEqual(p.map((x) => [x.file, x.row, x.column]), [[heldOut, 1, 'year_of_birth']]);
    assert.equal(run.persons, 1);
  });

  it('keeps the 64-bit subject id exact, maps the ICD-10-CM code to its standard concept and keeps unit and value', async () => {
    const rows = await sql<{ person_id: string; table: string; concept_id: number; source_concept_id: number; value: number | null; unit: string | null }>(
      `SELECT CAST(person_id AS VARCHAR) AS person_id, "table", concept_id::DOUBLE AS concept_id, source_concept_id::DOUBLE AS source_concept_id, value, unit
         FROM read_parquet(${lit(path.join(run.out, 'events/*.parquet'))}) ORDER BY time, "table"`,
    );
    assert.deepEqual(rows.map((r) => r.person_id), Array(rows.length).fill(BIG_SUBJECT));
    assert.deepEqual(rows.map((r) => [r.table, r.concept_id, r.source_concept_id]), [
      ['visit', 9201, 9201],
      ['measurement', 3006322, 3006322],
      ['drug', 1154029, 1154029],
      ['condition', 192671, 35208414],
      ['condition', 4134304, 4134304],
      ['death', 0, 0],
    ]);
    assert.equal(rows[1].unit, 'Cel');
    assert.ok(Math.abs((rows[1].value as number) - 37.9) < 1e-5);
    assert.equal(run.mapping.condition_occurrence.mapped, 1);
  });

  it('gives the person gender and birth, and labels the inpatient stay (visit with its end) for mortality', async () => {
    const [seq] = await sql<{ gender: number; first_age: number }>(
      `SELECT concept_ids[2]::DOUBLE AS gender, ages[3]::DOUBLE AS first_age FROM read_parquet(${lit(path.join(run.out, 'pretrain/*.parquet'))})`,
    );
    assert.equal(seq.gender, 8532);
    assert.equal(seq.first_age, 69);
    const mortality = run.tasks.find((t) => t.task === 'mortality')!;
    assert.deepEqual([mortality.cohort, mortality.positives], [1, 1]);
  });

  it('gives byte-identical shards when run again, and records its data files relative to the MEDS folder', async () => {
    const again = await runLocal({ medsInput: dir, vocab: OMOP.gibleed, out: path.join(tempDir('ehrshot-like-again'), 'out'), log: silentLogger });
    const shards = (out: string) => manifestOf(out).shards.map((x: { path: string; sha256: string }) => [x.path, x.sha256]);
    assert.deepEqual(shards(again.out), shards(run.out));
    assert.deepEqual(manifestOf(run.out).input.files.map((f: { file: string }) => f.file), ['data/held_out/0.parquet', 'data/train/0.parquet']);
  });

  it('reads a time with a time zone as UTC, whatever the zone of the machine', async () => {
    const zoned = tempDir('meds-zoned');
    fs.mkdirSync(path.join(zoned, 'data'));
    await sql(`COPY (SELECT 7::BIGINT AS subject_id, t::TIMESTAMPTZ AS time, code, NULL::FLOAT AS numeric_value
                       FROM (VALUES ('1960-01-01 00:00:00+00', 'MEDS_BIRTH'), ('2020-01-01 10:00:00+02', ${lit(CODES.drug)})) v(t, code))
               TO ${lit(path.join(zoned, 'data/0.parquet'))} (FORMAT parquet)`);
    const out = path.join(tempDir('meds-zoned-out'), 'out');
    // A machine in New York: DuckDB would otherwise read the zoned time in its zone (03:00).
    const r = spawnSync(process.execPath, [BIN, 'run', '--meds', zoned, '--vocab', OMOP.gibleed, '--out', out, '--tasks', 'none'], { encoding: 'utf8', env: { ...process.env, TZ: 'America/New_York' } });
    assert.equal(r.status, 0, r.stderr);
    const [ev] = await sql<{ t: string }>(`SELECT CAST(time AS VARCHAR) AS t FROM read_parquet(${lit(path.join(out, 'events/*.parquet'))})`);
    assert.equal(ev.t, '2020-01-01 08:00:00');
  });

  it('runs from the command line, prints the MEDS counts, and refuses --omop with --meds in one line (exit 2)', () => {
    const out = path.join(tempDir('ehrshot-cli'), 'out');
    const ok = spawnSync(process.execPath, [BIN, 'run', '--meds', dir, '--vocab', OMOP.gibleed, '--out', out, '--tasks', 'none'], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /meds input +15 rows in 2 files; placed: birth 1, condition_occurrence 4/);
    assert.match(ok.stdout, /unresolved codes +2 rows, 2 distinct codes/);
    const both = spawnSync(process.execPath, [BIN, 'run', '--meds', dir, '--omop', OMOP.gibleed, '--out', out], { encoding: 'utf8' });
    assert.equal(both.status, 2);
    assert.equal(both.stderr, 'medrep: medrep run: give --omop DIR or --meds DIR, not both\n');
    const neither = spawnSync(process.execPath, [BIN, 'run', '--out', out], { encoding: 'utf8' });
    assert.deepEqual([neither.status, neither.stderr], [2, 'medrep: medrep run: --omop DIR (or --meds DIR) is required\n']);
    const noVocab = spawnSync(process.execPath, [BIN, 'run', '--meds', dir, '--out', path.join(tempDir('ehrshot-cli2'), 'out')], { encoding: 'utf8' });
    assert.equal(noVocab.status, 2);
    assert.match(noVocab.stderr, /^medrep: .*no CONCEPT table found beside the data; pass the Athena vocabulary folder with --vocab DIR\n$/);
    const noData = spawnSync(process.execPath, [BIN, 'run', '--meds', path.join(dir, 'metadata'), '--vocab', OMOP.gibleed, '--out', path.join(tempDir('ehrshot-cli3'), 'out')], { encoding: 'utf8' });
    assert.equal(noData.status, 2);
    assert.match(noData.stderr, /no MEDS data files \(looked for data\/\*\.parquet and data\/<split>\/\*\.parquet\)\n$/);
  });
});
