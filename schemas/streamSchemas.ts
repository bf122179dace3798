// What the topics between the stages of `medrep stream` carry, per message kind: an Arrow record
// batch (Arrow IPC stream format, one batch per message) of a declared schema, or a small JSON
// marker. Every message names its schema and version in the header STREAM_SCHEMA_HEADER; a reader
// takes only the versions declared here and dead-letters any other, since guessing a layout would
// turn a writer's change into silently wrong rows. Ids are int64 columns (exact to 2^63).
// A change of a layout is a new version; the reader keeps the old one while topics still hold it.
import * as arrow from 'apache-arrow';
import type { CanonicalEventColumns } from './eventColumns';

export const STREAM_SCHEMA_HEADER = 'medrep-schema';

const f = (name: string, type: arrow.DataType, nullable = false) => new arrow.Field(name, type, nullable);
const list = (name: string, item: arrow.DataType) => f(name, new arrow.List(new arrow.Field('item', item, true)));

/**
 * Events batch: the columns of CanonicalEventColumns (schemas/eventColumns.ts) under their v1
 * names: person, time (ms), concept, source concept, decile (-1 none), value, unit, visit, row id,
 * source row; for the labeler the concept as given and visit start/end or death dates (all null
 * where a batch carries none: metadata `labeler` = `0`). Metadata: `table`, `deciles`,
 * `vocabulary` (the artifact versions). Wire order is this object's order.
 */
export const EVENTS_COLUMNS: { readonly [K in keyof CanonicalEventColumns]: arrow.Field } = {
  personId: f('p', new arrow.Int64()), timeMs: f('t', new arrow.Float64()), conceptId: f('c', new arrow.Int64()), sourceConceptId: f('s', new arrow.Int64()),
  decile: f('d', new arrow.Int8()), value: f('x', new arrow.Float64(), true), unit: f('u', new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32()), true),
  visitId: f('v', new arrow.Int64(), true), rowId: f('r', new arrow.Int64()), row: f('n', new arrow.Float64()),
  givenConceptId: f('rc', new arrow.Int64(), true), startDateMs: f('sd', new arrow.Float64(), true), endDateMs: f('ed', new arrow.Float64(), true),
};

export const EVENTS_FIELDS = Object.values(EVENTS_COLUMNS);

/** Persons batch: person, birth (ms), gender concept, source row. Metadata `rejected`: persons set aside and why (JSON). */
export const PERSONS_FIELDS = [f('p', new arrow.Int64()), f('b', new arrow.Float64()), f('g', new arrow.Int64()), f('n', new arrow.Float64())];

/** A pretraining sequence per row. Metadata: `deciles`, `vocabulary`. */
export const PRETRAIN_FIELDS = [
  f('p', new arrow.Int64()), f('chunk', new arrow.Float64()), f('split', new arrow.Utf8()),
  list('c', new arrow.Int64()), list('d', new arrow.Float64()), list('a', new arrow.Float64()),
  list('s', new arrow.Float64()), list('r', new arrow.Float64()), list('m', new arrow.Float64()),
];

/** A labelled sample (or a correction: `kind` set) per row. Metadata: `deciles`, `vocabulary`. */
export const SAMPLES_FIELDS = [
  f('task', new arrow.Utf8()), ...PRETRAIN_FIELDS, f('pt', new arrow.Float64()), f('iv', new arrow.Int64(), true),
  f('label', new arrow.Float64(), true), f('labels', new arrow.List(new arrow.Field('item', new arrow.Float64(), true)), true),
  f('kind', new arrow.Utf8(), true), f('version', new arrow.Float64(), true), f('retracted', new arrow.Bool(), true),
];

/** Schema names with their version, as the header writes them. */
export const STREAM_SCHEMAS = {
  events: 'events.arrow.v1',
  persons: 'persons.arrow.v1',
  pretrain: 'pretrain.arrow.v1',
  samples: 'samples.arrow.v1',
  /** End-of-load markers: a JSON object (a few per load, no rows). */
  end: 'end.json.v1',
} as const;

export type StreamSchemaKind = keyof typeof STREAM_SCHEMAS;

/** The schemas each topic between the stages may carry (topic name without its prefix). */
export const STREAM_TOPIC_SCHEMAS: Record<'canonical' | 'events' | 'pretrain' | 'samples', readonly StreamSchemaKind[]> = {
  canonical: ['events', 'persons', 'end'],
  events: ['events', 'end'],
  pretrain: ['pretrain', 'end'],
  samples: ['samples', 'end'],
};
