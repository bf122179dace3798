// Records the pipeline emits: JSON Schemas (for Kafka messages, tests and docs) and the Arrow
// column layout of every shard kind. Shards store tokens as OMOP concept ids and deciles, never
// as one model's vocabulary ids, so a shard from one hospital reads at another.
import * as arrow from 'apache-arrow';

export const SCHEMA_VERSION = '1.0.0';

export const EVENT_TABLES = ['condition', 'drug', 'measurement', 'procedure', 'visit', 'death'] as const;
export type EventTable = (typeof EVENT_TABLES)[number];

const i64 = () => new arrow.Int64();
const i32 = () => new arrow.Int32();
const i16 = () => new arrow.Int16();
const i8 = () => new arrow.Int8();
const f64 = () => new arrow.Float64();
const utf8 = () => new arrow.Utf8();
const tsUs = () => new arrow.TimestampMicrosecond();
const list = (t: arrow.DataType) => new arrow.List(new arrow.Field('item', t, true));
const field = (name: string, type: arrow.DataType, nullable = false) => new arrow.Field(name, type, nullable);

/** Canonical event (DESIGN.md section 4). */
export const EVENT_FIELDS = [
  field('person_id', i64()),
  field('time', tsUs()),
  field('table', utf8()),
  field('domain', i8()),
  field('concept_id', i64()),
  field('source_concept_id', i64()),
  field('decile', i8(), true),
  field('value', f64(), true),
  field('unit', utf8(), true),
  field('visit_occurrence_id', i64(), true),
  field('origin', utf8()),
];

/** Shard columns whose every row holds its own value (a dictionary of them only costs). */
export const ROW_UNIQUE_COLUMNS: readonly string[] = ['origin'];

/** Pretraining chunk of one person's trajectory. */
export const PRETRAIN_FIELDS = [
  field('person_id', i64()),
  field('chunk', i32()),
  field('concept_ids', list(i64())),
  field('deciles', list(i8())),
  field('ages', list(i16())),
  field('segments', list(i32())),
  field('record_ranks', list(i32())),
  field('domains', list(i8())),
  field('split', utf8()),
];

/** Special tokens as they appear in shards' concept_ids: negative, so they never meet an OMOP id. */
export const SHARD_CLS = -3;
export const SHARD_SEP = -4;

export const eventJsonSchema = {
  $id: 'medrep/event.json',
  title: 'medrep canonical event',
  type: 'object',
  required: ['person_id', 'time', 'table', 'domain', 'concept_id', 'source_concept_id', 'origin'],
  properties: {
    person_id: { type: 'integer' },
    time: { type: 'string', description: 'ISO 8601 timestamp, microsecond precision' },
    table: { enum: [...EVENT_TABLES] },
    domain: { type: 'integer', minimum: 0, maximum: 4 },
    concept_id: { type: 'integer' },
    source_concept_id: { type: 'integer' },
    decile: { type: ['integer', 'null'], minimum: 0, maximum: 9 },
    value: { type: ['number', 'null'] },
    unit: { type: ['string', 'null'] },
    visit_occurrence_id: { type: ['integer', 'null'] },
    origin: { type: 'string', description: '<omop table>:<row id>:<row> of the source row (row: 1-based in its file; row ids may repeat)' },
  },
} as const;

const intList = { type: 'array', items: { type: 'integer' } };

export const sequenceJsonSchema = {
  $id: 'medrep/sequence.json',
  title: 'medrep sequence (pretraining chunk; labelled samples add prediction_time and label columns)',
  type: 'object',
  required: ['person_id', 'concept_ids', 'deciles', 'ages', 'segments', 'record_ranks', 'domains', 'split'],
  properties: {
    person_id: { type: 'integer' },
    chunk: { type: 'integer', minimum: 0 },
    prediction_time: { type: 'string' },
    concept_ids: { ...intList, description: 'OMOP concept ids; [CLS] = -3, then the gender concept id' },
    deciles: { type: 'array', items: { type: ['integer', 'null'], minimum: 0, maximum: 9 } },
    ages: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 119 } },
    segments: intList,
    record_ranks: intList,
    domains: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 4 } },
    split: { enum: ['pretrain_train', 'pretrain_val', 'finetune_train', 'finetune_val', 'finetune_test'] },
  },
} as const;

export const rejectJsonSchema = {
  $id: 'medrep/reject.json',
  title: 'a row set aside, with where it came from and why',
  type: 'object',
  required: ['file', 'table', 'row', 'column', 'reason'],
  properties: {
    file: { type: 'string' },
    table: { type: 'string' },
    row: { type: 'integer', description: '1-based data row in the file (CSV line = row + 1 with a header)' },
    column: { type: 'string' },
    reason: { type: 'string' },
    values: { type: 'object', description: 'the row as read, so nothing is lost' },
  },
} as const;
