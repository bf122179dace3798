// Columnar builder of canonical events (schemas/canonicalEvent.ts) into the shard layout
// (schemas/records.ts EVENT_FIELDS). Text columns are kept as codes of the batch's own
// dictionaries (an event's table and unit repeat; its origin is a table prefix and two integers):
// toTable() writes the text, toShard() lets DuckDB write it (sinks/duckShardWriter.ts) without a
// call per value.
import * as arrow from 'apache-arrow';
import { EVENT_FIELDS } from '../schemas/records';
import { Int64Column, NumberColumn, StringColumn, tableOf } from './columns';
import { CanonicalEvent } from '../schemas/canonicalEvent';
import { int64Reader } from '../schemas/ids';
import { sqlString } from '../common/sql';
import { StagedShard } from './shards';

const encoder = new TextEncoder();

/** A DuckDB list of `values` (parenthesized, to be indexed by code + 1). */
const sqlList = (values: string[]): string => (values.length ? `([${values.map(sqlString).join(', ')}])` : '([]::VARCHAR[])');

/** Strings numbered in the order first seen (the same rows give the same codes). */
class Dictionary {
  readonly values: string[] = [];
  private readonly codes = new Map<string, number>();
  // Runs of one value (a person's measurements in one unit) skip the map.
  private last: string | null = null;
  private lastCode = -1;
  code(s: string): number {
    if (s === this.last) return this.lastCode;
    let c = this.codes.get(s);
    if (c === undefined) {
      c = this.values.length;
      this.values.push(s);
      this.codes.set(s, c);
    }
    this.last = s;
    this.lastCode = c;
    return c;
  }
  clear(): void {
    this.values.length = 0;
    this.codes.clear();
    this.last = null;
  }
}

export class EventBatch {
  readonly personId = new Int64Column();
  readonly timeUs = new Int64Column();
  private readonly tableCode = new NumberColumn(Int8Array);
  readonly domain = new NumberColumn(Int8Array);
  readonly conceptId = new Int64Column();
  readonly sourceConceptId = new Int64Column();
  readonly decile = new NumberColumn(Int8Array, true);
  readonly value = new NumberColumn(Float64Array, true);
  private readonly unitCode = new NumberColumn(Int32Array, true);
  readonly visitId = new Int64Column(true);
  private readonly originCode = new NumberColumn(Int8Array);
  private readonly rowId = new Int64Column();
  private readonly rowNumbers = new NumberColumn(Float64Array);
  private readonly tables = new Dictionary();
  private readonly units = new Dictionary();
  /** OMOP tables, whose names prefix an event's origin. */
  private readonly omopTables = new Dictionary();

  get length(): number {
    return this.personId.length;
  }

  /** Empty again, its buffers kept: once its shard is written, the next batch reuses memory already touched. */
  clear(): this {
    for (const c of [this.personId, this.timeUs, this.tableCode, this.domain, this.conceptId, this.sourceConceptId, this.decile,
      this.value, this.unitCode, this.visitId, this.originCode, this.rowId, this.rowNumbers]) c.clear();
    for (const d of [this.tables, this.units, this.omopTables]) d.clear();
    return this;
  }

  push(e: CanonicalEvent): void {
    this.personId.push(e.personId);
    this.timeUs.push(e.timeMs * 1000);
    this.tableCode.push(this.tables.code(e.table));
    this.domain.push(e.domain);
    this.conceptId.push(e.conceptId);
    this.sourceConceptId.push(e.sourceConceptId);
    if (e.decile < 0) this.decile.pushNull();
    else this.decile.push(e.decile);
    if (e.value === null) this.value.pushNull();
    else this.value.push(e.value);
    if (e.unit === null) this.unitCode.pushNull();
    else this.unitCode.push(this.units.code(e.unit));
    if (e.visitId === null) this.visitId.pushNull();
    else this.visitId.push(e.visitId);
    this.originCode.push(this.omopTables.code(e.omopTable));
    this.rowId.push(e.rowId);
    this.rowNumbers.push(e.row);
  }

  private fixedWidth() {
    const t = (name: string) => EVENT_FIELDS.find((x) => x.name === name)!.type;
    return {
      person_id: this.personId.data(t('person_id')),
      time: this.timeUs.data(t('time')),
      domain: this.domain.data(t('domain')),
      concept_id: this.conceptId.data(t('concept_id')),
      source_concept_id: this.sourceConceptId.data(t('source_concept_id')),
      decile: this.decile.data(t('decile')),
      value: this.value.data(t('value')),
      visit_occurrence_id: this.visitId.data(t('visit_occurrence_id')),
    };
  }

  /** The events as an Arrow table of the shard layout. */
  toTable(): arrow.Table {
    const n = this.length;
    const tableCodes = this.tableCode.data(new arrow.Int8()).values;
    const unitData = this.unitCode.data(new arrow.Int32());
    const originCodes = this.originCode.data(new arrow.Int8()).values;
    const rowNumbers = this.rowNumbers.data(new arrow.Float64()).values;
    const rowIdAt = int64Reader(this.rowId.data(new arrow.Int64()).values);
    const tableBytes = this.tables.values.map((s) => encoder.encode(s));
    const unitBytes = this.units.values.map((s) => encoder.encode(s));
    const prefixes = this.omopTables.values.map((s) => encoder.encode(`${s}:`));
    const table = new StringColumn();
    const unit = new StringColumn(true);
    const origin = new StringColumn();
    for (let i = 0; i < n; i++) {
      table.pushBytes(tableBytes[tableCodes[i]]);
      if (unitData.getValid(i)) unit.pushBytes(unitBytes[unitData.values[i]]);
      else unit.pushNull();
      origin.pushPrefixedIntegerPair(prefixes[originCodes[i]], rowIdAt(i), rowNumbers[i]);
    }
    return tableOf(EVENT_FIELDS, { ...this.fixedWidth(), table: table.data(), unit: unit.data(), origin: origin.data() });
  }

  /** The events as numbers, with the SELECT that makes the shard layout of them (text included). */
  toShard(): StagedShard {
    const f = (name: string, type: arrow.DataType, nullable = false) => new arrow.Field(name, type, nullable);
    const fields = [
      ...EVENT_FIELDS.filter((x) => !arrow.DataType.isUtf8(x.type)),
      f('table_code', new arrow.Int8()), f('unit_code', new arrow.Int32(), true), f('origin_code', new arrow.Int8()),
      f('row_id', new arrow.Int64()), f('row', new arrow.Float64()),
    ];
    const staging = tableOf(fields, {
      ...this.fixedWidth(),
      table_code: this.tableCode.data(new arrow.Int8()),
      unit_code: this.unitCode.data(new arrow.Int32()),
      origin_code: this.originCode.data(new arrow.Int8()),
      row_id: this.rowId.data(new arrow.Int64()),
      row: this.rowNumbers.data(new arrow.Float64()),
    });
    const text: Record<string, string> = {
      table: `${sqlList(this.tables.values)}[table_code + 1]`,
      unit: `${sqlList(this.units.values)}[unit_code + 1]`,
      // An origin as toTable writes it: the table's prefix, the row id, ':', the row number.
      origin: `${sqlList(this.omopTables.values.map((t) => `${t}:`))}[origin_code + 1] || CAST(row_id AS VARCHAR) || ':' || CAST(CAST("row" AS BIGINT) AS VARCHAR)`,
    };
    const select = EVENT_FIELDS.map((x) => (text[x.name] ? `${text[x.name]} AS "${x.name}"` : `"${x.name}"`)).join(', ');
    return { staging, select, toTable: () => this.toTable() };
  }
}
