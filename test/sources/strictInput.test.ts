import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { UNBALANCED_QUOTE } from '../../sources/csvRecords';
import { runLocal } from '../../runners/local/localRunner';
import { silentLogger } from '../../common/progress';
import { OMOP, lit, sql, tempDir } from '../helpers';
import { GOOD_MEASUREMENTS, MEASUREMENT_HEADER, smallHospital } from '../helpers/smallHospital';

const BIN = path.resolve(__dirname, '../../../bin/medrep.js');

interface RejectLine {
  file: string;
  row: number;
  line?: number;
  column: string;
  reason: string;
}

function rejectsOf(out: string, table: string): RejectLine[] {
  const f = path.join(out, 'rejects', `${table}.jsonl`);
  if (!fs.existsSync(f)) return [];
  return fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RejectLine).sort((a, b) => a.row - b.row);
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** Every input row is an event or a reject: persons, visits and measurements of the small hospital. */
function assertBalanced(out: string, measurementRecords: number): void {
  const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  assert.equal(m.counts.persons + rejectsOf(out, 'person').length, 3, 'person rows = persons + rejects');
  assert.equal(m.counts.events_out.visit + rejectsOf(out, 'visit_occurrence').length, 3, 'visit rows = events + rejects');
  assert.equal((m.counts.events_out.measurement ?? 0) + rejectsOf(out, 'measurement').length, measurementRecords, 'measurement records = events + rejects');
  assert.equal(m.counts.rows_in.measurement, measurementRecords, 'rows in counts every record read');
}

function medrepRun(omop: string): { status: number | null; stderr: string; out: string } {
  const out = path.join(tempDir('run'), 'out');
  const r = spawnSync(process.execPath, [BIN, 'run', '--omop', omop, '--out', out, '--tasks', 'none'], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, out };
}

describe('values the outputs cannot hold are rejects at the check', () => {
  it('1e39, NaN, Infinity and an impossible datetime from a CSV: a full run with a manifest and rejects naming the column', () => {
    const bad = [
      '4,1,3004410,2020-01-04,,1e39,%,HbA1c,10',
      '5,1,3004410,2020-01-04,,NaN,%,HbA1c,10',
      '6,2,3004410,2021-03-01,,Infinity,%,HbA1c,11',
      '7,2,3004410,2021-03-01,,-1e39,%,HbA1c,11',
      '8,1,3004410,2020-01-04,2020-01-04 25:00:00,1.0,%,HbA1c,10',
      '9,3,3004410,2021-03-01,,1.0,%,HbA1c,12',
    ];
    const dir = smallHospital([...GOOD_MEASUREMENTS, ...bad].join('\n') + '\n');
    const r = medrepRun(dir);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(r.out, 'manifest.json')), 'the run ends with a manifest');
    assert.ok(fs.readdirSync(path.join(r.out, 'meds', 'data')).length > 0, 'the MEDS export is written');
    assert.deepEqual(filesUnder(r.out).filter((f) => /\.tmp/.test(f)), [], 'no temporary file is left');
    const rejects = rejectsOf(r.out, 'measurement');
    assert.deepEqual(rejects.map((x) => [x.row, x.column]), [
      [4, 'value_as_number'], [5, 'value_as_number'], [6, 'value_as_number'], [7, 'value_as_number'], [8, 'measurement_datetime'], [9, 'person_id'],
    ]);
    assert.match(rejects[0].reason, /^outside the float32 range of MEDS numeric_value/);
    assert.match(rejects[3].reason, /^outside the float32 range/);
    for (const x of rejects.slice(1, 3)) assert.equal(x.reason, 'not a finite number (NaN and Infinity are not numbers)');
    assert.equal(rejects[4].reason, 'not a valid datetime (YYYY-MM-DD[ HH:MM[:SS]], years 1800-2300)');
    assert.equal(rejects[5].reason, 'person rejected (year_of_birth: out of range (must be >= 1800))');
    assert.deepEqual(rejectsOf(r.out, 'visit_occurrence').map((x) => [x.row, x.reason]), [[3, 'person rejected (year_of_birth: out of range (must be >= 1800))']]);
    assertBalanced(r.out, GOOD_MEASUREMENTS.length + bad.length);
  });

  it('NaN, Infinity and 1e39 stored as DOUBLE in Parquet are rejects too', async () => {
    const dir = smallHospital([...GOOD_MEASUREMENTS, '4,1,3004410,2020-01-04,,nan,%,HbA1c,10', '5,1,3004410,2020-01-04,,inf,%,HbA1c,10', '6,2,3004410,2021-03-01,,1e39,%,HbA1c,11'].join('\n') + '\n');
    const csv = path.join(dir, 'measurement.csv');
    await sql(`COPY (SELECT * REPLACE (TRY_CAST(value_as_number AS DOUBLE) AS value_as_number) FROM read_csv(${lit(csv)}, all_varchar = true))
               TO ${lit(path.join(dir, 'measurement.parquet'))} (FORMAT parquet)`);
    fs.rmSync(csv);
    const s = await runLocal({ omop: dir, out: path.join(tempDir('parquet'), 'out'), tasks: 'none', log: silentLogger });
    assert.deepEqual(rejectsOf(s.out, 'measurement').map((x) => [x.row, x.column, x.reason.split(' (')[0]]), [
      [4, 'value_as_number', 'not a finite number'],
      [5, 'value_as_number', 'not a finite number'],
      [6, 'value_as_number', 'outside the float32 range of MEDS numeric_value'],
    ]);
    assert.equal(s.eventsOut.measurement, 3);
    assertBalanced(s.out, 6);
  });
});

describe('CSV records are read strictly', () => {
  it('a shifted row, missing and extra fields, an unbalanced quote and a latin-1 byte are rejects with file and line; the rest is read', async () => {
    const lines: (string | Buffer)[] = [
      GOOD_MEASUREMENTS[0],
      '4,1,3004410,2020-01-04,,4.4,mg,dL,HbA1c,10', // line 3: unquoted comma, every later column shifted by one
      '5,1,3004410,2020-01-04', // line 4: missing fields
      '6,1,3004410,2020-01-04,,1.0,%,HbA1c,10,extra', // line 5: an extra field
      GOOD_MEASUREMENTS[1],
      '7,1,3004410,2020-01-04,,"2.5,%,HbA1c,10', // line 7: a quote that never closes
      Buffer.from('8,2,3004410,2021-03-01,,3.0,%,caf\xe9,11', 'latin1'), // line 8: latin-1, not UTF-8
      GOOD_MEASUREMENTS[2],
      '9,2,3004410,2021-03-01,,3.5,%,"HbA1c, ""Lab""",11', // line 10: a quoted comma and quote, a good record
    ];
    const body = Buffer.concat(lines.flatMap((l) => [Buffer.isBuffer(l) ? l : Buffer.from(l), Buffer.from('\n')]));
    const dir = smallHospital(body);
    const s = await runLocal({ omop: dir, out: path.join(tempDir('strict'), 'out'), tasks: 'none', log: silentLogger });
    const rejects = rejectsOf(s.out, 'measurement');
    assert.ok(rejects.every((x) => x.file === path.join(dir, 'measurement.csv')), 'each reject names the file');
    assert.deepEqual(rejects.map((x) => [x.line, x.row, x.column, x.reason]), [
      [3, 2, '(row)', '10 fields where the header has 9'],
      [4, 3, '(row)', '4 fields where the header has 9'],
      [5, 4, '(row)', '10 fields where the header has 9'],
      [7, 6, 'value_as_number', UNBALANCED_QUOTE],
      [8, 7, 'measurement_source_value', 'bytes that are not UTF-8 (the file must be UTF-8 encoded)'],
    ]);
    assert.equal(s.eventsOut.measurement, 4, 'the good records before and after the bad ones');
    const events = await sql<{ origin: string; value: number; visit: number }>(
      `SELECT origin, value, CAST(visit_occurrence_id AS INTEGER) AS visit FROM read_parquet(${lit(path.join(s.out, 'events/*.parquet'))}) WHERE "table" = 'measurement' ORDER BY origin`,
    );
    assert.deepEqual(events.map((e) => [e.origin, e.value, e.visit]), [
      ['measurement:1:1', 5.5, 10], ['measurement:2:5', 6.1, 10], ['measurement:3:8', 7.2, 11], ['measurement:9:9', 3.5, 11],
    ], 'no value moved to another column');
    assertBalanced(s.out, lines.length);
  });

  it('a clean gzipped CSV is read as before', async () => {
    const dir = smallHospital(GOOD_MEASUREMENTS.join('\n') + '\n', 'measurement.csv.gz');
    const s = await runLocal({ omop: dir, out: path.join(tempDir('gz'), 'out'), tasks: 'none', log: silentLogger });
    assert.equal(s.eventsOut.measurement, 3);
    assertBalanced(s.out, 3);
  });
});

describe('a corrupt .gz input', () => {
  const corrupt = (name: string, bytes: Buffer) => {
    const dir = smallHospital(GOOD_MEASUREMENTS.join('\n') + '\n');
    fs.rmSync(path.join(dir, 'measurement.csv'));
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes);
    return { dir, file };
  };

  it('that is no gzip at all: one line naming the file, exit 2, no stack trace', () => {
    const { dir, file } = corrupt('measurement.csv.gz', Buffer.from('this is not gzip data\n'));
    const r = medrepRun(dir);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `medrep: ${file}: not a readable gzip file (incorrect header check)\n`);
  });

  it('that is cut short: one line naming the file, exit 2, no stack trace', () => {
    const rows = Array.from({ length: 20000 }, (_, i) => `${i + 10},1,3004410,2020-01-02,,${i},%,HbA1c,10`).join('\n');
    const whole = zlib.gzipSync(MEASUREMENT_HEADER + '\n' + rows + '\n');
    const { dir, file } = corrupt('measurement.csv.gz', whole.subarray(0, Math.floor(whole.length / 2)));
    const r = medrepRun(dir);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `medrep: ${file}: not a readable gzip file (unexpected end of file)\n`);
  });

  it('that is cut short between two lines (DuckDB alone reads it as a shorter file): the same one line', () => {
    const rows = Array.from({ length: 20000 }, (_, i) => `${i + 10},1,3004410,2020-01-02,,${i},%,HbA1c,10`).join('\n');
    const whole = zlib.gzipSync(MEASUREMENT_HEADER + '\n' + rows + '\n');
    const { dir, file } = corrupt('measurement.csv.gz', whole.subarray(0, whole.length - 8)); // the trailer (CRC, size) is gone
    const r = medrepRun(dir);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `medrep: ${file}: not a readable gzip file (unexpected end of file)\n`);
  });
});

describe('a vocabulary .gz cut in the middle', function () {
  this.timeout(120_000);
  // A copy of a real vocabulary (GiBleed's), its CONCEPT_ANCESTOR gzipped and cut at half its bytes.
  const cutVocabulary = () => {
    const vocab = tempDir('vocab-cut');
    for (const t of ['concept', 'concept_relationship']) fs.copyFileSync(path.join(OMOP.gibleed, `${t}.csv`), path.join(vocab, `${t}.csv`));
    const whole = zlib.gzipSync(fs.readFileSync(path.join(OMOP.gibleed, 'concept_ancestor.csv')));
    const file = path.join(vocab, 'concept_ancestor.csv.gz');
    fs.writeFileSync(file, whole.subarray(0, Math.floor(whole.length / 2)));
    return { vocab, file };
  };

  it('medrep run --vocab: one line naming the file, exit 2, no stack trace, no output written', () => {
    const { vocab, file } = cutVocabulary();
    const omop = smallHospital(GOOD_MEASUREMENTS.join('\n') + '\n');
    const out = path.join(tempDir('run'), 'out');
    const r = spawnSync(process.execPath, [BIN, 'run', '--omop', omop, '--vocab', vocab, '--out', out, '--tasks', 'none'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr, `medrep: ${file}: not a readable gzip file (unexpected end of file)\n`);
    assert.ok(!fs.existsSync(path.join(out, 'manifest.json')));
  });

  it('medrep stream --vocab: the same line before any broker is asked', async () => {
    const { vocab, file } = cutVocabulary();
    const local = await runLocal({ omop: smallHospital(GOOD_MEASUREMENTS.join('\n') + '\n'), out: path.join(tempDir('run'), 'out'), tasks: 'none', log: silentLogger });
    // A port nothing listens on: the vocabulary is read first, so the error is the file's.
    const r = spawnSync(process.execPath, [BIN, 'stream', '--brokers', '127.0.0.1:1', '--out', path.join(tempDir('stream'), 'out'), '--vocab', vocab, '--artifacts', path.join(local.out, 'artifacts'), '--exit-when-idle', '1'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').pop(), `medrep: ${file}: not a readable gzip file (unexpected end of file)`);
    assert.ok(!/^\s+at /m.test(r.stderr), r.stderr);
  });
});

describe('inputs that cannot be read are one line', () => {
  it('a CSV that is a dangling link: exit 2, one line naming the file', () => {
    const dir = smallHospital(GOOD_MEASUREMENTS.join('\n') + '\n');
    const file = path.join(dir, 'measurement.csv');
    fs.rmSync(file);
    fs.symlinkSync(path.join(dir, 'no-such-file.csv'), file);
    const r = medrepRun(dir);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `medrep: cannot read ${file}: no such file or directory (or a link to none)\n`);
  });

  it('a DuckDB database without a person table names the table, not a file', async () => {
    const db = path.join(tempDir('db'), 'omop.duckdb');
    await sql(`ATTACH ${lit(db)} AS omop_db; CREATE TABLE omop_db.visit_occurrence (visit_occurrence_id BIGINT, person_id BIGINT); DETACH omop_db`);
    const r = medrepRun(db);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `medrep: ${db}: required OMOP table person not found (no table named person in any schema of the database (any case))\n`);
  });
});
