// Columnar builder of labelled samples: a person's trajectory window before the prediction
// time (the sequence columns of pretraining shards), the prediction time, the index visit and
// the label: `label` (bool) for binary tasks, `labels` (list<bool>) for multi-label ones.
import * as arrow from 'apache-arrow';
import { Sequence } from '../transforms/trajectory';
import { Int64Column, ListColumn, tableOf } from './columns';
import { SequenceBatch } from './sequenceShards';
import { Id } from '../schemas/ids';

export function sampleFields(multiLabel: boolean): arrow.Field[] {
  const list = (t: arrow.DataType) => new arrow.List(new arrow.Field('item', t, true));
  return [
    new arrow.Field('person_id', new arrow.Int64(), false),
    new arrow.Field('prediction_time', new arrow.TimestampMicrosecond(), false),
    new arrow.Field('index_visit_id', new arrow.Int64(), true),
    new arrow.Field('concept_ids', list(new arrow.Int64()), false),
    new arrow.Field('deciles', list(new arrow.Int8()), false),
    new arrow.Field('ages', list(new arrow.Int16()), false),
    new arrow.Field('segments', list(new arrow.Int32()), false),
    new arrow.Field('record_ranks', list(new arrow.Int32()), false),
    new arrow.Field('domains', list(new arrow.Int8()), false),
    new arrow.Field('split', new arrow.Utf8(), false),
    multiLabel ? new arrow.Field('labels', list(new arrow.Bool()), false) : new arrow.Field('label', new arrow.Bool(), false),
  ];
}

/** Booleans as an Arrow bit-packed column. */
class BoolColumn {
  private bits = new Uint8Array(128);
  length = 0;
  push(v: boolean): void {
    const byte = this.length >> 3;
    if (byte >= this.bits.length) {
      const next = new Uint8Array(this.bits.length * 2);
      next.set(this.bits);
      this.bits = next;
    }
    if (v) this.bits[byte] |= 1 << (this.length & 7);
    this.length++;
  }
  data<T extends arrow.DataType>(type: T): arrow.Data<T> {
    return arrow.makeData({ type, length: this.length, data: this.bits.slice(0, (this.length + 7) >> 3), nullCount: 0 } as never) as arrow.Data<T>;
  }
}

export class SampleBatch {
  private readonly seq = new SequenceBatch();
  private readonly predictionUs = new Int64Column();
  private readonly indexVisit = new Int64Column(true);
  private readonly label = new BoolColumn();
  private readonly labels = new ListColumn(new BoolColumn());
  constructor(readonly multiLabel: boolean) {}

  get length(): number {
    return this.seq.length;
  }

  push(personId: Id, seq: Sequence, split: string, predictionMs: number, indexVisitId: Id | null, label: number | null, labels: number[] | null): void {
    this.seq.push(personId, 0, seq, split);
    this.predictionUs.push(predictionMs * 1000);
    if (indexVisitId === null) this.indexVisit.pushNull();
    else this.indexVisit.push(indexVisitId);
    if (this.multiLabel) {
      for (const l of labels ?? []) this.labels.child.push(l === 1);
      this.labels.endRow();
    } else this.label.push(label === 1);
  }

  toTable(): arrow.Table {
    const c = this.seq.columns();
    const fields = sampleFields(this.multiLabel);
    return tableOf(fields, {
      ...c,
      prediction_time: this.predictionUs.data(new arrow.TimestampMicrosecond()),
      index_visit_id: this.indexVisit.data(new arrow.Int64()),
      ...(this.multiLabel ? { labels: this.labels.data(new arrow.Bool()) } : { label: this.label.data(new arrow.Bool()) }),
    });
  }
}

/** MEDS LabelSchema rows: subject_id, prediction_time and the one value column a binary label uses. */
export function medsLabelTable(rows: { subjectId: Id; predictionMs: number; value: boolean }[]): arrow.Table {
  const subject = new Int64Column();
  const time = new Int64Column();
  const value = new BoolColumn();
  for (const r of rows) {
    subject.push(r.subjectId);
    time.push(r.predictionMs * 1000);
    value.push(r.value);
  }
  // MEDS 0.4: the value columns are optional and, when present, never null.
  const fields = [
    new arrow.Field('subject_id', new arrow.Int64(), false),
    new arrow.Field('prediction_time', new arrow.TimestampMicrosecond(), false),
    new arrow.Field('boolean_value', new arrow.Bool(), false),
  ];
  return tableOf(fields, {
    subject_id: subject.data(new arrow.Int64()),
    prediction_time: time.data(new arrow.TimestampMicrosecond()),
    boolean_value: value.data(new arrow.Bool()),
  });
}
