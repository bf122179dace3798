// Columnar builder of canonical events (schemas/canonicalEvent.ts) into the shard layout
// (schemas/records.ts EVENT_FIELDS).
import * as arrow from 'apache-arrow';
import { EVENT_FIELDS } from '../schemas/records';
import { Int64Column, NumberColumn, StringColumn, tableOf } from './columns';
import { CanonicalEvent } from '../schemas/canonicalEvent';

const encoder = new TextEncoder();

export class EventBatch {
  readonly personId = new Int64Column();
  readonly timeUs = new Int64Column();
  readonly table = new StringColumn();
  readonly domain = new NumberColumn(Int8Array);
  readonly conceptId = new Int64Column();
  readonly sourceConceptId = new Int64Column();
  readonly decile = new NumberColumn(Int8Array, true);
  readonly value = new NumberColumn(Float64Array, true);
  readonly unit = new StringColumn(true);
  readonly visitId = new Int64Column(true);
  readonly origin = new StringColumn();
  private readonly prefixes = new Map<string, Uint8Array>();

  get length(): number {
    return this.personId.length;
  }

  push(e: CanonicalEvent): void {
    this.personId.push(e.personId);
    this.timeUs.push(e.timeMs * 1000);
    this.table.push(e.table);
    this.domain.push(e.domain);
    this.conceptId.push(e.conceptId);
    this.sourceConceptId.push(e.sourceConceptId);
    if (e.decile < 0) this.decile.pushNull();
    else this.decile.push(e.decile);
    if (e.value === null) this.value.pushNull();
    else this.value.push(e.value);
    if (e.unit === null) this.unit.pushNull();
    else this.unit.push(e.unit);
    if (e.visitId === null) this.visitId.pushNull();
    else this.visitId.push(e.visitId);
    let prefix = this.prefixes.get(e.omopTable);
    if (!prefix) {
      prefix = encoder.encode(`${e.omopTable}:`);
      this.prefixes.set(e.omopTable, prefix);
    }
    this.origin.pushPrefixedIntegerPair(prefix, e.rowId, e.row);
  }

  toTable(): arrow.Table {
    const f = EVENT_FIELDS;
    const t = (name: string) => f.find((x) => x.name === name)!.type;
    return tableOf(f, {
      person_id: this.personId.data(t('person_id')),
      time: this.timeUs.data(t('time')),
      table: this.table.data(),
      domain: this.domain.data(t('domain')),
      concept_id: this.conceptId.data(t('concept_id')),
      source_concept_id: this.sourceConceptId.data(t('source_concept_id')),
      decile: this.decile.data(t('decile')),
      value: this.value.data(t('value')),
      unit: this.unit.data(),
      visit_occurrence_id: this.visitId.data(t('visit_occurrence_id')),
      origin: this.origin.data(),
    });
  }
}
