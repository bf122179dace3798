// Columnar builder of sequences: pretraining chunks (schemas/records.ts PRETRAIN_FIELDS) and,
// with extra columns, labelled samples.
import * as arrow from 'apache-arrow';
import { PRETRAIN_FIELDS } from '../schemas/records';
import { Sequence } from '../transforms/trajectory';
import { Int64Column, ListColumn, NumberColumn, StringColumn, tableOf } from './columns';
import { Id } from '../schemas/ids';

export class SequenceBatch {
  readonly personId = new Int64Column();
  readonly chunk = new NumberColumn(Int32Array);
  readonly conceptIds = new ListColumn(new Int64Column(false, 4096));
  readonly deciles = new ListColumn(new NumberColumn(Int8Array, true, 4096));
  readonly ages = new ListColumn(new NumberColumn(Int16Array, false, 4096));
  readonly segments = new ListColumn(new NumberColumn(Int32Array, false, 4096));
  readonly recordRanks = new ListColumn(new NumberColumn(Int32Array, false, 4096));
  readonly domains = new ListColumn(new NumberColumn(Int8Array, false, 4096));
  readonly split = new StringColumn();
  tokens = 0;

  get length(): number {
    return this.personId.length;
  }

  push(personId: Id, chunk: number, seq: Sequence, split: string): void {
    this.personId.push(personId);
    this.chunk.push(chunk);
    const n = seq.conceptIds.length;
    this.conceptIds.child.pushAll(seq.conceptIds);
    this.deciles.child.pushAllNullable(seq.deciles);
    this.ages.child.pushAll(seq.ages);
    this.segments.child.pushAll(seq.segments);
    this.recordRanks.child.pushAll(seq.recordRanks);
    this.domains.child.pushAll(seq.domains);
    for (const l of [this.conceptIds, this.deciles, this.ages, this.segments, this.recordRanks, this.domains]) l.endRow();
    this.split.push(split);
    this.tokens += n;
  }

  columns(): Record<string, arrow.Data> {
    return {
      person_id: this.personId.data(new arrow.Int64()),
      chunk: this.chunk.data(new arrow.Int32()),
      concept_ids: this.conceptIds.data(new arrow.Int64()),
      deciles: this.deciles.data(new arrow.Int8()),
      ages: this.ages.data(new arrow.Int16()),
      segments: this.segments.data(new arrow.Int32()),
      record_ranks: this.recordRanks.data(new arrow.Int32()),
      domains: this.domains.data(new arrow.Int8()),
      split: this.split.data(),
    };
  }

  toTable(): arrow.Table {
    return tableOf(PRETRAIN_FIELDS, this.columns());
  }
}
