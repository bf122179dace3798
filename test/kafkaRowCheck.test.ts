// One row check on every path: rows produced raw to omop.<table> by a producer that is not
// `medrep produce` (ids as JSON numbers beyond 2^53, every kind of bad value) go through the same
// schema as the local runner's readers. Both runners keep the same rows and set aside the same
// rejects (table, row, column, reason); input rows = events + rejects, per table.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Partitioners } from 'kafkajs';
import { generateSynthetic } from '../pipelines/synth';
import { runLocal } from '../pipelines/localRunner';
import { silentLogger } from '../pipelines/progress';
import { ensureLoadTopics, sendEndOfLoad } from '../pipelines/kafka/omopLoad';
import { TopicNames } from '../pipelines/kafka/topics';
import { runStream } from '../pipelines/kafka/streamRunner';
import { testKafka, uniquePrefix } from './kafkaTestUtil';
import { lit, sql, tempDir } from './helpers';
import { assertSameRows, kafkaOpts } from './helpers/streamCompare';
import { assertIdsExact } from './helpers/idChecks';

const PARTITIONS = 3;
const TABLES = ['person', 'visit_occurrence', 'condition_occurrence', 'drug_exposure', 'measurement', 'procedure_occurrence', 'death'];
const EVENT_TABLE: Record<string, string> = {
  visit_occurrence: 'visit', condition_occurrence: 'condition', drug_exposure: 'drug', measurement: 'measurement', procedure_occurrence: 'procedure', death: 'death',
};

/** A row as a raw producer writes it: numbers as JSON numbers (ids with every digit), the rest as strings. */
function rawJson(row: Record<string, string | null>, rowNumber: number): string {
  const parts = Object.entries(row).map(([k, v]) => `${JSON.stringify(k)}:${v === null ? 'null' : /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(v) ? v : JSON.stringify(v)}`);
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

describe('one row check: bad rows produced raw to omop.<table> give the same rows and rejects in both runners (real broker)', function () {
  this.timeout(300_000);

  it('impossible date, non-numeric number, 1e39, NaN, Infinity, ids beyond 2^63, a duplicate person: same verdicts, input = events + rejects', async () => {
    const dir = tempDir('rowcheck');
    const omop = path.join(dir, 'omop');
    await generateSynthetic({ persons: 40, seed: 3, out: omop, format: 'csv', site: 'A', ids: 'hashed' });
    const rows: Record<string, Record<string, string | null>[]> = {};
    for (const t of TABLES) rows[t] = await sql<Record<string, string | null>>(`SELECT * FROM read_csv(${lit(path.join(omop, `${t}.csv`))}, header = true, all_varchar = true)`);
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

    // A producer of its own: every row as JSON with its source row number, keyed by person_id.
    const prefix = uniquePrefix();
    const kafka = kafkaOpts(prefix);
    const client = testKafka();
    const names = new TopicNames(prefix);
    await ensureLoadTopics(client, names, PARTITIONS);
    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    for (const t of TABLES) {
      const messages = rows[t].map((r, i) => ({ key: r.person_id ?? null, value: rawJson(r, i + 1) }));
      for (let i = 0; i < messages.length; i += 2000) await producer.send({ topic: names.omop(t), messages: messages.slice(i, i + 2000) });
    }
    await producer.disconnect();
    const watermark = Date.parse(JSON.parse(fs.readFileSync(path.join(local.out, 'manifest.json'), 'utf8')).counts.label_watermark);
    await sendEndOfLoad(client, names, PARTITIONS, watermark);
    const stream = await runStream({
      kafka, client, out: path.join(dir, 'stream'), vocab: omop, artifacts: path.join(local.out, 'artifacts'),
      exitWhenIdleMs: 2000, healthIntervalMs: 0, handleSignals: false, log: silentLogger, meds: false,
    });

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
    const events = async (out: string) =>
      Object.fromEntries((await sql<{ t: string; n: bigint }>(`SELECT "table" AS t, count(*) AS n FROM read_parquet(${lit(path.join(out, 'events', '*.parquet'))}) GROUP BY 1`)).map((r) => [r.t, Number(r.n)]));
    for (const [out, rejects] of [[local.out, localRejects], [stream.out, streamRejects]] as const) {
      const ev = await events(out);
      for (const t of TABLES.filter((x) => x !== 'person')) {
        assert.equal((ev[EVENT_TABLE[t]] ?? 0) + rejects.filter((r) => r.table === t).length, rows[t].length, `${path.basename(out)}: ${t} rows = events + rejects`);
      }
    }
    assert.equal(local.persons + localRejects.filter((r) => r.table === 'person').length, rows.person.length, 'person rows = persons + rejects');
  });
});
