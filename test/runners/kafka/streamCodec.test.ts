// The codec of the topics between stream stages: every value kind comes back from its Arrow
// record batch (or JSON marker) as it was written, ids beyond 2^53 exact; a message whose schema
// header is missing, of another version, or of a kind its topic does not carry is refused with
// one line naming the schema, and the trajectory stage dead-letters it with that reason.
import { strict as assert } from 'node:assert';
import * as arrow from 'apache-arrow';
import { decodeStreamValue, encodeStreamValue, StreamSchemaError } from '../../../runners/kafka/streamCodec';
import { EventsBatchValue, PersonsBatchValue, PretrainBatchValue, SamplesBatchValue, StreamValue } from '../../../runners/kafka/streamValues';
import { trajectoryTransform } from '../../../runners/kafka/trajectoryStage';
import { STREAM_SCHEMA_HEADER } from '../../../schemas/streamSchemas';
import { StageContext, StageMessage } from '../../../runners/kafka/stage';

const BIG = 9_007_199_254_740_993n; // 2^53 + 1: a double would round it
const NEG = -4_611_686_018_427_387_905n;
const versions = { deciles: 'dec-1', vocabulary: 'voc-2' };

const roundTrip = (topic: string, v: StreamValue) => decodeStreamValue({ topic, ...encodeStreamValue(v) });

const events = (): EventsBatchValue => ({
  k: 'events', table: 'measurement', versions,
  personId: [1, BIG, NEG], timeMs: [1_600_000_000_000, -86_400_000, 0], conceptId: [3004410, BIG, 0], sourceConceptId: [0, 44, NEG], decile: [-1, 0, 9],
  value: [null, 1.5, -0.25], unit: ['mg/dL', null, 'mg/dL'], visitId: [null, BIG, 12], rowId: [BIG, 2, 3], row: [1, 2, 3_000_000_000],
  givenConceptId: [3004410, BIG, 0], startDateMs: [null, 1_600_000_000_000, null], endDateMs: [null, null, 1_600_086_400_000],
});

describe('stream codec (Arrow record batches between stages)', () => {
  it('round-trips an events batch with exact int64 ids, nulls and units', () => {
    const v = events();
    const enc = encodeStreamValue(v);
    assert.equal(String(enc.headers[STREAM_SCHEMA_HEADER]), 'events.arrow.v1');
    // The value is an Arrow IPC stream with int64 id columns.
    const table = arrow.tableFromIPC(enc.value);
    assert.equal(table.numRows, 3);
    assert.equal(String(table.schema.fields.find((f) => f.name === 'p')!.type), 'Int64');
    assert.deepEqual(roundTrip('x.medrep.canonical', v), v);
  });

  it('compresses the batch bodies (LZ4 frames): a batch of one person takes a fraction of its 101 bytes a row', () => {
    const n = 2000;
    const rows = Array.from({ length: n }, (_, i) => i);
    const v: EventsBatchValue = {
      k: 'events', table: 'measurement', versions, personId: rows.map(() => 123456), timeMs: rows.map((i) => 1_600_000_000_000 + i * 3_600_000), conceptId: rows.map((i) => 3000000 + (i % 40)),
      sourceConceptId: rows.map(() => 0), decile: rows.map((i) => i % 10), value: rows.map((i) => (i % 3 ? null : i / 4)), unit: rows.map((i) => (i % 3 ? null : 'mg/dL')), visitId: rows.map((i) => 900 + (i >> 4)),
      rowId: rows.map((i) => 5_000_000 + i), row: rows.map((i) => i + 2), givenConceptId: rows.map((i) => 3000000 + (i % 40)), startDateMs: rows.map(() => null), endDateMs: rows.map(() => null),
    };
    const enc = encodeStreamValue(v);
    assert.ok(enc.value.length < (n * 101) / 3, `${enc.value.length} bytes for ${n} rows`);
    assert.deepEqual(decodeStreamValue({ topic: 'medrep.canonical', ...enc }), v);
  });

  it('round-trips a released events batch that carries no labeler fields', () => {
    const v = { ...events(), givenConceptId: [], startDateMs: [], endDateMs: [] };
    assert.deepEqual(roundTrip('x.medrep.events', v), v);
  });

  it('round-trips persons with and without persons set aside', () => {
    const plain: PersonsBatchValue = { k: 'persons', p: [1, BIG], b: [-1e12, 0], g: [8507, 8532], n: [1, 2] };
    assert.deepEqual(roundTrip('medrep.canonical', plain), plain);
    const rejected: PersonsBatchValue = { ...plain, rp: [NEG], rw: ['year_of_birth: not an integer'] };
    assert.deepEqual(roundTrip('medrep.canonical', rejected), rejected);
  });

  it('round-trips pretraining sequences and samples (corrections too)', () => {
    const seq = { conceptIds: [BIG, 5, 6], deciles: [null, 3, 0], ages: [0, 40.5, 41], segments: [1, 1, 2], recordRanks: [0, 1, 2], domains: [1, 2, 3] };
    const pre: PretrainBatchValue = { k: 'pretrain', versions, rows: [{ p: BIG, chunk: 0, split: 'train', ...seq }, { p: 2, chunk: 1, split: 'test', conceptIds: [], deciles: [], ages: [], segments: [], recordRanks: [], domains: [] }] };
    assert.deepEqual(roundTrip('medrep.pretrain', pre), pre);
    const samples: SamplesBatchValue = {
      k: 'samples', versions, rows: [
        { task: 'mortality', p: BIG, chunk: 0, split: 'val', pt: 1_600_000_000_000, iv: BIG, label: 1, labels: null, ...seq },
        { task: 'phenotypes', p: 3, chunk: 0, split: 'train', pt: 0, iv: null, label: null, labels: [0, 1, 0], ...seq },
        { task: 'mortality', p: 4, chunk: 0, split: 'train', pt: 5, iv: 7, label: 0, labels: null, ...seq, kind: 'correction', version: 2, retracted: true },
      ],
    };
    assert.deepEqual(roundTrip('medrep.samples', samples), samples);
  });

  it('keeps end-of-load markers as JSON with their own schema name', () => {
    const end: StreamValue = { k: 'end', table: 'samples', watermark: 1_600_000_000_000, tasks: [] };
    const enc = encodeStreamValue(end);
    assert.equal(String(enc.headers[STREAM_SCHEMA_HEADER]), 'end.json.v1');
    assert.deepEqual(roundTrip('medrep.samples', end), end);
  });

  it('refuses a missing header, an unknown version and a kind the topic does not carry', () => {
    const enc = encodeStreamValue(events());
    assert.throws(() => decodeStreamValue({ topic: 'medrep.events', value: enc.value, headers: {} }), (e: Error) => e instanceof StreamSchemaError && /no medrep-schema header/.test(e.message));
    assert.throws(
      () => decodeStreamValue({ topic: 'medrep.events', value: enc.value, headers: { [STREAM_SCHEMA_HEADER]: 'events.arrow.v9' } }),
      (e: Error) => e instanceof StreamSchemaError && e.message === 'unknown schema version: medrep-schema events.arrow.v9 (this build reads events.arrow.v1, persons.arrow.v1, pretrain.arrow.v1, samples.arrow.v1, end.json.v1)',
    );
    const persons = encodeStreamValue({ k: 'persons', p: [1], b: [0], g: [0], n: [1] });
    assert.throws(() => decodeStreamValue({ topic: 'p.medrep.events', ...persons }), /schema persons\.arrow\.v1 is not one that p\.medrep\.events carries/);
  });

  it('the trajectory stage turns a message of an unknown version into an error naming it (dead-lettered by the worker)', () => {
    const transform = trajectoryTransform({ maxEvents: 512, eventsTopic: 'medrep.events', pretrainTopic: 'medrep.pretrain', samplesTopic: 'medrep.samples', tasks: [], versions });
    const m: StageMessage = { topic: 'medrep.canonical', partition: 0, offset: '0', timestamp: '0', key: null, value: encodeStreamValue(events()).value, headers: { [STREAM_SCHEMA_HEADER]: 'events.arrow.v0' } };
    const store = () => ({ get: () => undefined, set: () => undefined, delete: () => undefined, keys: () => [] });
    const ctx = { topic: m.topic, partition: 0, store, appendStore: () => ({ get: () => undefined, append: () => undefined }), rowsRead: () => undefined, deadLetter: () => undefined } as unknown as StageContext;
    // The stage drains the transform's output as it sends it: the error comes as the message is read.
    assert.throws(() => [...(transform([m], ctx) as Iterable<unknown>)], /unknown schema version: medrep-schema events\.arrow\.v0/);
  });
});
