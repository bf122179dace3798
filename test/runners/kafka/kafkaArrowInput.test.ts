// The second input contract of omop.<table> (runners/kafka/README.md "Contract for any producer"):
// rows as Arrow record batches (`medrep produce --message-format arrow`) give the same shards as
// the same rows as JSON, every 64-bit id exact; a bad row inside an Arrow batch is set aside with
// the same reason as that row sent as JSON, and an unreadable batch is a dead letter (real broker).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { generateSynthetic } from '../../../synth';
import { runLocal } from '../../../runners/local/localRunner';
import { silentLogger } from '../../../common/progress';
import { produceOmop, sendEndOfLoad } from '../../../runners/kafka/omopLoad';
import { TopicNames } from '../../../runners/kafka/topics';
import { runStream } from '../../../runners/kafka/streamRunner';
import { decodeOmopMessage, encodeOmopRows, OMOP_ROWS_ARROW } from '../../../runners/kafka/omopInputCodec';
import { tableSpec } from '../../../schemas/omop';
import { STREAM_SCHEMA_HEADER } from '../../../schemas/streamSchemas';
import { readAll, testKafka, uniquePrefix } from '../../helpers/kafka';
import { tempDir } from '../../helpers';
import { assertSameRows, kafkaOpts } from '../../helpers/streamCompare';
import { assertIdsExact } from '../../helpers/idChecks';

const PARTITIONS = 3;

/** Two measurement rows of person 1 that no check lets through: an unreadable date, and another person's row under this key. */
const BAD_ROWS = [
  { person_id: 1n, measurement_id: 5n, measurement_concept_id: 3000963n, measurement_date: 'yesterday', measurement_type_concept_id: 0n },
  { person_id: 2n, measurement_id: 6n, measurement_concept_id: 3000963n, measurement_date: '2020-01-01', measurement_type_concept_id: 0n },
];

function badRowsArrow(): Buffer {
  const col = (name: keyof (typeof BAD_ROWS)[0], type: arrow.DataType) => arrow.vectorFromArray(BAD_ROWS.map((r) => r[name]), type as never);
  const table = new arrow.Table({
    person_id: col('person_id', new arrow.Int64()), measurement_id: col('measurement_id', new arrow.Int64()),
    measurement_concept_id: col('measurement_concept_id', new arrow.Int64()),
    // A date as text is allowed (the same text the JSON form holds); the check judges it.
    measurement_date: col('measurement_date', new arrow.Utf8()), measurement_type_concept_id: col('measurement_type_concept_id', new arrow.Int64()),
  });
  return Buffer.from(arrow.tableToIPC(table, 'stream'));
}

const badRowsJson = () => `[${BAD_ROWS.map((r) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? Number(v) : v))).join(',')}]`;

/** produce in `format`, the bad rows (and, for Arrow, unreadable batches) after them, the end of the load, then the stream. */
async function produceAndStream(omop: string, artifacts: string, out: string, format: 'json' | 'arrow', watermark: number) {
  const prefix = uniquePrefix();
  const kafka = kafkaOpts(prefix);
  const client = testKafka();
  const names = new TopicNames(prefix);
  const produced = await produceOmop({ omop, kafka, client, partitions: PARTITIONS, log: silentLogger, endOfLoad: false, messageFormat: format });
  const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const arrowHeader = { [STREAM_SCHEMA_HEADER]: OMOP_ROWS_ARROW };
  const messages = format === 'json'
    ? [{ partition: 0, key: '1', value: badRowsJson() }]
    : [
      { partition: 0, key: '1', value: badRowsArrow(), headers: arrowHeader },
      { partition: 0, key: '1', value: Buffer.from('not an arrow stream'), headers: arrowHeader },
      { partition: 0, key: '1', value: badRowsArrow(), headers: { [STREAM_SCHEMA_HEADER]: 'omop-rows.arrow.v9' } },
    ];
  await producer.send({ topic: names.omop('measurement'), messages });
  await producer.disconnect();
  await sendEndOfLoad(client, names, PARTITIONS, watermark);
  const stream = await runStream({
    kafka, client, out, vocab: omop, artifacts, exitWhenIdleMs: 2000, healthIntervalMs: 0, handleSignals: false, log: silentLogger, meds: false,
  });
  const dlq = (await readAll(client, names.dlq)).filter((m) => m.headers.stage === 'canonicalize');
  return { produced, stream, dlq };
}

describe('omop.<table> Arrow rows: read as their JSON form', () => {
  const header = { [STREAM_SCHEMA_HEADER]: OMOP_ROWS_ARROW };

  it('int64 within 2^53 as numbers and beyond as exact bigints, dates and timestamps as OMOP text, nulls as null', () => {
    const big = -4611686018427387905n;
    const rows = [
      { person_id: big, visit_occurrence_id: 7, visit_concept_id: 9201, visit_start_date: '2020-02-29', visit_start_datetime: '2020-02-29 13:05:09', visit_end_date: null, visit_source_concept_id: '44818517', __row: 3 },
    ];
    const back = decodeOmopMessage({ value: encodeOmopRows(tableSpec('visit_occurrence'), rows), headers: header }) as Record<string, unknown>[];
    assert.equal(back.length, 1);
    const r = back[0];
    assert.equal(r.person_id, big);
    assert.equal(r.visit_occurrence_id, 7);
    assert.equal(r.visit_concept_id, 9201);
    assert.equal(r.visit_source_concept_id, 44818517);
    assert.equal(r.visit_start_date, '2020-02-29');
    assert.equal(r.visit_start_datetime, '2020-02-29 13:05:09');
    assert.equal(r.visit_end_date, null);
    assert.equal(r.__row, 3);
  });

  it('without the header a value is JSON; other bytes or versions under it are not-arrow errors', () => {
    assert.deepEqual(decodeOmopMessage({ value: Buffer.from('{"person_id":12345678901234567890}') }), { person_id: 12345678901234567890n });
    assert.throws(() => decodeOmopMessage({ value: Buffer.from('{oops') }), (e: Error & { kind?: string }) => e.kind === 'not-json');
    assert.throws(() => decodeOmopMessage({ value: Buffer.from('xyz'), headers: header }), (e: Error & { kind?: string }) => e.kind === 'not-arrow' && /not an Arrow IPC stream/.test(e.message));
    assert.throws(() => decodeOmopMessage({ value: Buffer.from('xyz'), headers: { [STREAM_SCHEMA_HEADER]: 'omop-rows.arrow.v2' } }), /unknown schema version: medrep-schema omop-rows.arrow.v2/);
  });
});

describe('kafka runner: Arrow record batches as omop.<table> input (real broker)', function () {
  this.timeout(300_000);

  it('Arrow input gives the rows of JSON input and of runLocal, ids beyond 2^53 exact; bad rows in a batch are dead-lettered as their JSON form is', async () => {
    const dir = tempDir('arrow-input');
    const omop = path.join(dir, 'omop');
    await generateSynthetic({ persons: 100, seed: 23, out: omop, format: 'parquet', site: 'A', ids: 'hashed' });
    const local = await runLocal({ omop, out: path.join(dir, 'local'), log: silentLogger, meds: false });
    const artifacts = path.join(local.out, 'artifacts');
    const watermark = Date.parse(JSON.parse(fs.readFileSync(path.join(local.out, 'manifest.json'), 'utf8')).counts.label_watermark);
    const json = await produceAndStream(omop, artifacts, path.join(dir, 'json'), 'json', watermark);
    const arr = await produceAndStream(omop, artifacts, path.join(dir, 'arrow'), 'arrow', watermark);

    assert.equal(arr.produced.rows, json.produced.rows);
    assert.ok(arr.produced.rows > 5000, `rows produced: ${arr.produced.rows}`);
    await assertSameRows(json.stream.out, arr.stream.out);
    await assertSameRows(local.out, arr.stream.out);
    const ids = await assertIdsExact(omop, arr.stream.out, { meds: false });
    assert.ok(ids.beyondSafe > 90, `persons beyond 2^53: ${ids.beyondSafe}`);

    // The rows of a batch: each dead-lettered alone, named by its index, with its JSON form's reason.
    const rowLetters = (dlq: typeof json.dlq) => dlq.filter((m) => /#\d+$/.test(m.headers.source)).map((m) => `${m.headers.source.replace(/^.*#/, '#')} ${m.headers.reason}`).sort();
    assert.deepEqual(rowLetters(arr.dlq), rowLetters(json.dlq));
    assert.equal(rowLetters(arr.dlq).length, 2);
    assert.match(rowLetters(arr.dlq)[0], /^#0 invalid-row: column measurement_date: not a valid date/);
    assert.match(rowLetters(arr.dlq)[1], /^#1 invalid-row: column person_id: 2 differs from the message key/);
    // A dead-lettered row of a batch carries the row as JSON text, ids exact.
    assert.ok(arr.dlq.some((m) => m.value === '{"person_id":1,"measurement_id":5,"measurement_concept_id":3000963,"measurement_date":"yesterday","measurement_type_concept_id":0}'), arr.dlq.map((m) => m.value).join(' | '));
    // Whole batches that cannot be read: the message as it came.
    const whole = arr.dlq.filter((m) => !/#\d+$/.test(m.headers.source)).map((m) => m.headers.reason).sort();
    assert.equal(whole.length, 2, whole.join(' | '));
    assert.match(whole[0], /^not-arrow: not an Arrow IPC stream/);
    assert.match(whole[1], /^not-arrow: unknown schema version: medrep-schema omop-rows\.arrow\.v9/);
    // They end in the rejects folder as the JSON ones do.
    const rejects = (out: string) => fs.readFileSync(path.join(out, 'rejects', 'measurement.jsonl'), 'utf8').trim().split('\n').length;
    assert.equal(rejects(json.stream.out), 2);
    assert.equal(rejects(arr.stream.out), 4);
  });
});
