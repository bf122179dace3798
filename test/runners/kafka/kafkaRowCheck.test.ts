// One row check on every path: rows produced raw to omop.<table> by a producer that is not
// `medrep produce` (ids as JSON numbers beyond 2^53, every kind of bad value) go through the same
// schema as the local runner's readers. Both runners keep the same rows and set aside the same
// rejects (table, row, column, reason); input rows = events + rejects, per table.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Partitioners } from 'kafkajs';
import { generateSynthetic } from '../../../synth';
import { runLocal } from '../../../runners/local/localRunner';
import { silentLogger } from '../../../common/progress';
import { ensureLoadTopics, sendEndOfLoad } from '../../../runners/kafka/omopLoad';
import { TopicNames } from '../../../runners/kafka/topics';
import { runStream } from '../../../runners/kafka/streamRunner';
import { testKafka, uniquePrefix } from '../../helpers/kafka';
import { lit, sql, tempDir } from '../../helpers';
import { assertSameRows, kafkaOpts } from '../../helpers/streamCompare';
import { assertIdsExact } from '../../helpers/idChecks';

const PARTITIONS = 3;
const TABLES = ['person', 'visit_occurrence', 'condition_occurrence', 'drug_exposure', 'measurement', 'procedure_occurrence', 'death'];
const EVENT_TABLE: Record<string, string> = {
  visit_occurrence: 'visit', condition_occurrence: 'condition', drug_exposure: 'drug', measurement: 'measurement', procedure_occurrence: 'procedure', death: 'death',
};

/** A row as a raw producer writes it: numbers as JSON numbers (ids with every digit), the rest (codes such as 038.9 too) as strings. */
function rawJson(row: Record<string, string | null>, rowNumber: number): string {
  const parts = Object.entries(row).map(([k, v]) => `${JSON.stringify(k)}:${v === null ? 'null' : /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(v) ? v : JSON.stringify(v)}`);
  return `{${[...parts, `"__row":${rowNumber}`].join(',')}}`;
}

interface RejectKey {
  table: string;
  row: number;
  column: string;
  reason: string;
}

function rejectsOf(out: string): RejectKey[] {
  const dir = path.join(out, 'rejects');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').trim().split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as RejectKey)
    .map((r) => ({ table: r.table, row: r.row, column: r.column, reason: r.reason }))
    .sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : a.row - b.row));
}

type Rows = Record<string, Record<string, string | null>[]>;

async function readRows(omop: string): Promise<Rows> {
  const rows: Rows = {};
  for (const t of TABLES) rows[t] = await sql<Record<string, string | null>>(`SELECT * FROM read_csv(${lit(path.join(omop, `${t}.csv`))}, header = true, all_varchar = true)`);
  return rows;
}

/** Writes the tables back as CSV (the header of the first row), rows as given. */
function writeRows(omop: string, rows: Rows): void {
  for (const [t, list] of Object.entries(rows)) {
    const header = Object.keys(list[0]);
    fs.writeFileSync(path.join(omop, `${t}.csv`), [header.join(','), ...list.map((r) => header.map((h) => r[h] ?? '').join(','))].join('\n') + '\n');
  }
}

/**
 * A producer of its own: every row as JSON with its source row number, keyed by person_id, the
 * tables in `order` (a table, or a table's rows [from, to) ); then the end-of-load markers and a
 * stream run over the local run's artifacts.
 */
async function streamRaw(dir: string, omop: string, rows: Rows, order: (string | [string, number, number])[], localOut: string, meds = false) {
  const prefix = uniquePrefix();
  const client = testKafka();
  const names = new TopicNames(prefix);
  await ensureLoadTopics(client, names, PARTITIONS);
  const producer = client.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  for (const part of order) {
    const [t, from, to] = typeof part === 'string' ? [part, 0, rows[part].length] : part;
    const messages = rows[t].map((r, i) => ({ key: r.person_id ?? null, value: rawJson(r, i + 1) })).slice(from, to);
    for (let i = 0; i < messages.length; i += 2000) await producer.send({ topic: names.omop(t), messages: messages.slice(i, i + 2000) });
  }
  await producer.disconnect();
  const watermark = Date.parse(JSON.parse(fs.readFileSync(path.join(localOut, 'manifest.json'), 'utf8')).counts.label_watermark);
  await sendEndOfLoad(client, names, PARTITIONS, watermark);
  return runStream({
    kafka: kafkaOpts(prefix), client, out: path.join(dir, 'stream'), vocab: omop, artifacts: path.join(localOut, 'artifacts'),
    exitWhenIdleMs: 2000, healthIntervalMs: 0, handleSignals: false, log: silentLogger, meds,
  });
}

/** Event rows per OMOP table of an output. */
async function eventsByTable(out: string): Promise<Record<string, number>> {
  const rows = await sql<{ t: string; n: bigint }>(`SELECT "table" AS t, count(*) AS n FROM read_parquet(${lit(path.join(out, 'events', '*.parquet'))}) GROUP BY 1`);
  const omopTable = Object.fromEntries(Object.entries(EVENT_TABLE).map(([t, e]) => [e, t]));
  return Object.fromEntries(rows.map((r) => [omopTable[r.t], Number(r.n)]));
}

function assertBalanced(out: string, rows: Rows, events: Record<string, number>, rejects: RejectKey[]): void {
  for (const t of TABLES.filter((x) => x !== 'person')) {
    assert.equal((events[t] ?? 0) + rejects.filter((r) => r.table === t).length, rows[t].length, `${path.basename(out)}: ${t} rows = events + rejects`);
  }
}

describe('one row check: bad rows produced raw to omop.<table> give the same rows and rejects in both runners (real broker)', function () {
  this.timeout(300_000);

  it('impossible date, non-numeric number, 1e39, NaN, Infinity, ids beyond 2^63, a duplicate person: same verdicts, input = events + rejects', async () => {
    const dir = tempDir('rowcheck');
    const omop = path.join(dir, 'omop');
    await generateSynthetic({ persons: 40, seed: 3, out: omop, format: 'csv', site: 'A', ids: 'hashed' });
    const rows = await readRows(omop);
    const person = rows.person[0].person_id!;
    const m = rows.measurement.find((r) => r.person_id === person && r.value_as_number !== null) ?? rows.measurement[0];
    const c = rows.condition_occurrence[0];
    // Every kind of bad value, each in a row that is otherwise valid.
    const bad: Record<string, Record<string, string | null>[]> = {
      measurement: [
        { ...m, measurement_id: '9100000000000000001', measurement_date: '2024-13-45', measurement_datetime: '2024-13-45 10:00:00' },
        { ...m, measurement_id: '9100000000000000002', value_as_number: 'abc' },
        { ...m, measurement_id: '9100000000000000003', value_as_number: '1e39' },
        { ...m, measurement_id: '9100000000000000004', value_as_number: 'NaN' },
        { ...m, measurement_id: '9100000000000000005', value_as_number: 'Infinity' },
        { ...m, measurement_id: '9223372036854775808' },
        { ...m, measurement_id: '-9223372036854775808' },
      ],
      condition_occurrence: [{ ...c, condition_occurrence_id: '9100000000000000006', person_id: '-9223372036854775809' }],
      person: [{ ...rows.person[0], year_of_birth: '1961', birth_datetime: '1961-03-04 00:00:00' }],
    };
    for (const [t, list] of Object.entries(bad)) {
      const header = Object.keys(rows[t][0]);
      fs.appendFileSync(path.join(omop, `${t}.csv`), list.map((r) => header.map((h) => r[h] ?? '').join(',') + '\n').join(''));
      rows[t].push(...list);
    }

    const local = await runLocal({ omop, out: path.join(dir, 'local'), log: silentLogger, meds: false });

    const stream = await streamRaw(dir, omop, rows, TABLES, local.out);

    await assertSameRows(local.out, stream.out);
    await assertIdsExact(omop, stream.out, { meds: false });
    const localRejects = rejectsOf(local.out);
    const streamRejects = rejectsOf(stream.out);
    assert.deepEqual(streamRejects, localRejects, 'the same rejects: table, row, column, reason');
    // Every bad row, and nothing else, is a reject (1e39 goes the same way in both, whichever it is).
    const badRows = Object.entries(bad).flatMap(([t, list]) => list.map((r) => ({ t, row: rows[t].indexOf(r) + 1 })));
    const expected = badRows.filter((b) => !(b.t === 'measurement' && rows.measurement[b.row - 1].value_as_number === '1e39') && rows[b.t][b.row - 1].measurement_id !== '-9223372036854775808');
    for (const b of expected) assert.ok(localRejects.some((r) => r.table === b.t && r.row === b.row), `${b.t} row ${b.row} is a reject`);
    assert.ok(localRejects.length <= badRows.length, JSON.stringify(localRejects));
    const byKind = (reason: RegExp, column: string) => assert.ok(localRejects.some((r) => r.column === column && reason.test(r.reason)), `${column}: ${reason}`);
    byKind(/./, 'measurement_date');
    byKind(/./, 'value_as_number');
    byKind(/signed 64-bit/, 'measurement_id');
    byKind(/signed 64-bit/, 'person_id');
    assert.ok(localRejects.some((r) => r.table === 'person' && r.reason === 'duplicate person_id' && r.row === rows.person.length), 'the later person row is the duplicate');

    // Input rows = events + rejects, per table, in both runners.
    assertBalanced(local.out, rows, await eventsByTable(local.out), localRejects);
    assertBalanced(stream.out, rows, await eventsByTable(stream.out), streamRejects);
    assert.equal(local.persons + localRejects.filter((r) => r.table === 'person').length, rows.person.length, 'person rows = persons + rejects');
  });

  it('rows of a person absent from person.csv or whose person row is rejected: the same rejects in both runners, in no shard, whenever the person row comes', async () => {
    const dir = tempDir('rowcheck-persons');
    const omop = path.join(dir, 'omop');
    await generateSynthetic({ persons: 40, seed: 5, out: omop, format: 'csv', site: 'A', ids: 'hashed' });
    const rows = await readRows(omop);
    // Three persons with rows in several tables: one without a person row, two whose row is rejected.
    const busy = rows.person.map((p) => p.person_id!).filter((id) => ['condition_occurrence', 'measurement', 'visit_occurrence'].every((t) => rows[t].some((r) => r.person_id === id)));
    assert.ok(busy.length >= 3);
    const [absent, badYear, badText] = busy;
    rows.person = rows.person
      .filter((p) => p.person_id !== absent)
      .map((p) => (p.person_id === badYear ? { ...p, year_of_birth: '1700' } : p.person_id === badText ? { ...p, gender_concept_id: 'male' } : p));
    writeRows(omop, rows);
    const local = await runLocal({ omop, out: path.join(dir, 'local'), log: silentLogger, meds: false });
    // Half the person rows before the clinical rows, half after (those rows wait for their person).
    const half = Math.floor(rows.person.length / 2);
    const clinical = TABLES.filter((t) => t !== 'person');
    const stream = await streamRaw(dir, omop, rows, [['person', 0, half], ...clinical, ['person', half, rows.person.length]], local.out, true);

    await assertSameRows(local.out, stream.out);
    const localRejects = rejectsOf(local.out);
    const streamRejects = rejectsOf(stream.out);
    assert.deepEqual(streamRejects, localRejects, 'the same rejects: table, row, column, reason');
    const reasons = (rejects: RejectKey[]) => {
      const n: Record<string, number> = {};
      for (const r of rejects) n[`${r.table}.${r.column}: ${r.reason}`] = (n[`${r.table}.${r.column}: ${r.reason}`] ?? 0) + 1;
      return n;
    };
    const rowsOf = (id: string) => clinical.reduce((a, t) => a + rows[t].filter((r) => r.person_id === id).length, 0);
    const local_ = reasons(localRejects);
    assert.equal(Object.entries(local_).filter(([k]) => k.endsWith('person_id: person_id not in the person table')).reduce((a, [, n]) => a + n, 0), rowsOf(absent));
    assert.equal(Object.entries(local_).filter(([k]) => /person_id: person rejected \(year_of_birth: /.test(k)).reduce((a, [, n]) => a + n, 0), rowsOf(badYear));
    assert.equal(Object.entries(local_).filter(([k]) => /person_id: person rejected \(gender_concept_id: /.test(k)).reduce((a, [, n]) => a + n, 0), rowsOf(badText));
    assert.deepEqual(reasons(streamRejects), local_, 'the same rejects per table and reason');
    // The persons without a person row are in no shard of either runner, nor in the stream's MEDS data.
    const ids = [absent, badYear, badText].join(', ');
    for (const out of [local.out, stream.out]) {
      for (const kind of ['events', 'pretrain']) {
        const [r] = await sql<{ n: bigint }>(`SELECT count(*) AS n FROM read_parquet(${lit(path.join(out, kind, '*.parquet'))}) WHERE person_id IN (${ids})`);
        assert.equal(Number(r.n), 0, `${path.basename(out)}: no ${kind} row of those persons`);
      }
    }
    const [meds] = await sql<{ n: bigint; all: bigint }>(`SELECT count(*) FILTER (WHERE subject_id IN (${ids})) AS n, count(*) AS all FROM read_parquet(${lit(path.join(stream.out, 'meds', 'data', '**', '*.parquet'))})`);
    assert.ok(Number(meds.all) > 0);
    assert.equal(Number(meds.n), 0, 'no MEDS row of those persons');
    assertBalanced(local.out, rows, await eventsByTable(local.out), localRejects);
    assertBalanced(stream.out, rows, await eventsByTable(stream.out), streamRejects);
  });
});
