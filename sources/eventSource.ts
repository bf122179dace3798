// Streams every clinical row that becomes an event, from all tables at once, sorted by person and
// time (DuckDB sorts, spilling to disk beyond its memory limit), as columnar chunks. Rows that fail
// the schema come along flagged, with their values as read, so the runner can set them aside.
import { DuckDBConnection } from '@duckdb/node-api';
import { CLINICAL_TABLES, ColumnType, EventMapping, TableSpec } from '../schemas/omop';
import { INTEGER_TYPES, q } from '../schemas/sqlChecks';
import { DuckDBDataChunk } from '@duckdb/node-api';
import { idColumn, numericColumn, prefetchedChunks, startQuery, streamChunks, stringColumn } from './duck';
import { Id, compareIds } from '../schemas/ids';
import { OmopInput, SourceTable, col } from './omopSource';
import { checkedRowsSql } from './omopViews';
import { PERSON_KEY } from './csvRead';

export const EVENT_SPECS: TableSpec[] = CLINICAL_TABLES.filter((t) => t.events);

/** Position of a table in EVENT_SPECS: its code in the stream and its rank among equal times. */
export const tableCode = (table: string): number => EVENT_SPECS.findIndex((t) => t.table === table);

/** A typed value of a source column (NULL when absent or not of the type). */
export function typedValue(t: SourceTable, name: string | null | undefined, type: ColumnType): string {
  if (!name || !t.columns.has(name)) return 'NULL';
  const c = `s.${col(t, name)}`;
  const srcType = t.types.get(name) ?? 'VARCHAR';
  switch (type) {
    case 'integer':
      // BIGINT, exact: ids beyond 2^53 are common (hashed ids of real conversions).
      return INTEGER_TYPES.has(srcType) ? `TRY_CAST(${c} AS BIGINT)` : `TRY_CAST(CAST(${c} AS VARCHAR) AS BIGINT)`;
    case 'number':
      return srcType === 'DOUBLE' || srcType === 'FLOAT' ? `CAST(${c} AS DOUBLE)` : `TRY_CAST(CAST(${c} AS VARCHAR) AS DOUBLE)`;
    case 'string':
      return `CAST(${c} AS VARCHAR)`;
    case 'date':
      return srcType === 'DATE' ? `CAST(${c} AS TIMESTAMP)` : `CAST(TRY_CAST(CAST(${c} AS VARCHAR) AS DATE) AS TIMESTAMP)`;
    case 'datetime':
      return srcType.startsWith('TIMESTAMP') ? `CAST(${c} AS TIMESTAMP)` : `TRY_CAST(CAST(${c} AS VARCHAR) AS TIMESTAMP)`;
  }
}

/** The rows of a range's persons, as a condition on a person id column. */
function inRangeSql(column: string, range: PersonRange): string {
  const conds: string[] = [];
  if (range.from !== null) conds.push(`${column} >= ${range.from}`);
  if (range.to !== null) conds.push(`${column} < ${range.to}`);
  const where = `(${conds.length ? conds.join(' AND ') : 'true'})`;
  return range.withNulls ? `${where} OR ${column} IS NULL` : where;
}

/** The persons of a range as a condition on a staged copy's person key (null: every row). */
function personKeyFilter(t: SourceTable, range: PersonRange): string | null {
  if (!t.stagedPersonKey || (range.from === null && range.to === null)) return null;
  return `(${inRangeSql(PERSON_KEY, range)})`;
}

function tableSelect(spec: TableSpec, t: SourceTable, range: PersonRange): string {
  const ev = spec.events as EventMapping;
  const time = `coalesce(${typedValue(t, ev.datetimeColumn, 'datetime')}, ${typedValue(t, ev.dateColumn, 'date')})`;
  // A staged CSV copy's rows of other persons are skipped by its person key's statistics (the
  // WHERE of eventStreamSql, on the typed person_id, still decides: the key is the same cast).
  const keyed = personKeyFilter(t, range);
  return `SELECT CAST(${tableCode(spec.table)} AS TINYINT) AS tcode,
      CAST(s.__row AS DOUBLE) AS rn,
      CAST(s.__ok AS TINYINT) AS ok,
      CASE WHEN s.__ok THEN NULL ELSE CAST(to_json(s) AS VARCHAR) END AS raw,
      ${typedValue(t, 'person_id', 'integer')} AS person_id,
      CAST(epoch_ms(${time}) AS DOUBLE) AS t,
      coalesce(${typedValue(t, ev.conceptColumn, 'integer')}, 0) AS concept_id,
      coalesce(${typedValue(t, ev.sourceConceptColumn, 'integer')}, 0) AS source_concept_id,
      ${typedValue(t, ev.valueColumn, 'number')} AS value,
      coalesce(${typedValue(t, ev.unitConceptColumn, 'integer')}, 0) AS unit_concept_id,
      ${typedValue(t, ev.unitSourceColumn, 'string')} AS unit_source,
      ${typedValue(t, ev.visitColumn, 'integer')} AS visit_id,
      coalesce(${typedValue(t, ev.idColumn, 'integer')}, CAST(s.__row AS BIGINT)) AS row_id
    FROM ${keyed === null ? q('checked_' + spec.table) : `(${checkedRowsSql(spec, t, keyed)})`} s`;
}

/** Column order of the stream. */
export const STREAM_COLUMNS = [
  'tcode', 'rn', 'ok', 'raw', 'person_id', 't', 'concept_id', 'source_concept_id', 'value',
  'unit_concept_id', 'unit_source', 'visit_id', 'row_id',
] as const;

/** A range of person ids [from, to); `withNulls` adds the rows whose person_id is unreadable. */
export interface PersonRange {
  from: Id | null;
  to: Id | null;
  withNulls: boolean;
}

export const ALL_PERSONS: PersonRange = { from: null, to: null, withNulls: true };

export function eventStreamSql(input: OmopInput, range: PersonRange = ALL_PERSONS, tables: TableSpec[] = EVENT_SPECS): string {
  const parts = tables.filter((s) => input.tables.has(s.table)).map((s) => tableSelect(s, input.tables.get(s.table)!, range));
  if (!parts.length) return `SELECT ${STREAM_COLUMNS.map((c) => `NULL AS ${c}`).join(', ')} WHERE false`;
  return `SELECT * FROM (${parts.join('\nUNION ALL\n')}) WHERE ${inRangeSql('person_id', range)}
    ORDER BY person_id NULLS LAST, t NULLS LAST, tcode, row_id, rn`;
}

/**
 * Person-id ranges of about equal size, from the person table's quantiles. Each range is sorted
 * by its own query, so DuckDB sorts the next range while JavaScript transforms the current one.
 */
export function personRanges(cuts: Id[]): PersonRange[] {
  const uniq = [...new Set(cuts)].sort(compareIds);
  const out: PersonRange[] = [];
  let from: Id | null = null;
  for (const c of uniq) {
    out.push({ from, to: c, withNulls: false });
    from = c;
  }
  out.push({ from, to: null, withNulls: true });
  return out;
}

/** One chunk of the stream, as arrays and accessors. */
export interface EventChunk {
  length: number;
  tcode: ArrayLike<number>;
  rn: ArrayLike<number>;
  /** 1 when the row passed the schema check. */
  ok: ArrayLike<number>;
  raw: (i: number) => string | null;
  personId: (i: number) => Id;
  personNull: (i: number) => boolean;
  t: ArrayLike<number>;
  tNull: (i: number) => boolean;
  conceptId: (i: number) => Id;
  sourceConceptId: (i: number) => Id;
  value: ArrayLike<number>;
  valueNull: (i: number) => boolean;
  unitConceptId: (i: number) => Id;
  unitSource: (i: number) => string | null;
  visitId: (i: number) => Id;
  visitNull: (i: number) => boolean;
  rowId: (i: number) => Id;
}

/** Streams the ranges in order, each sorted query started one range ahead on the other connection. */
export async function* streamEventRanges(conns: [DuckDBConnection, DuckDBConnection], input: OmopInput, ranges: PersonRange[]): AsyncGenerator<EventChunk> {
  let next = startQuery(conns[0], eventStreamSql(input, ranges[0]));
  for (let k = 0; k < ranges.length; k++) {
    const current = next;
    if (k + 1 < ranges.length) next = startQuery(conns[(k + 1) % 2], eventStreamSql(input, ranges[k + 1]));
    yield* eventChunks(prefetchedChunks(current));
  }
}

export async function* streamEvents(conn: DuckDBConnection, sql: string): AsyncGenerator<EventChunk> {
  yield* eventChunks(streamChunks(conn, sql));
}

async function* eventChunks(chunks: AsyncGenerator<DuckDBDataChunk>): AsyncGenerator<EventChunk> {
  for await (const chunk of chunks) {
    const ok = numericColumn(chunk, 2).values;
    const person = idColumn(chunk, 4);
    const t = numericColumn(chunk, 5);
    const value = numericColumn(chunk, 8);
    const visit = idColumn(chunk, 11);
    yield {
      length: chunk.rowCount,
      tcode: numericColumn(chunk, 0).values,
      rn: numericColumn(chunk, 1).values,
      ok,
      raw: stringColumn(chunk, 3),
      personId: person.get,
      personNull: person.isNull,
      t: t.values,
      tNull: t.isNull,
      conceptId: idColumn(chunk, 6).get,
      sourceConceptId: idColumn(chunk, 7).get,
      value: value.values,
      valueNull: value.isNull,
      unitConceptId: idColumn(chunk, 9).get,
      unitSource: stringColumn(chunk, 10),
      visitId: visit.get,
      visitNull: visit.isNull,
      rowId: idColumn(chunk, 12).get,
    };
  }
}
