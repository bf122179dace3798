import { strict as assert } from 'node:assert';
import * as arrow from 'apache-arrow';
import { Int64Column, ListColumn, NumberColumn, tableOf } from '../../sinks/columns';
import { Id } from '../../schemas/ids';

/** The column's values as Arrow reads them back (nulls as null, int64 as bigint). */
function readBack(data: arrow.Data): unknown[] {
  const t = tableOf([new arrow.Field('c', data.type, true)], { c: data });
  return [...t.getChild('c')!].map((v) => (v instanceof arrow.Vector ? [...v] : v));
}

describe('column builders: bulk appends', () => {
  // Lengths that cross the initial capacity (4) several times, with nulls and 64-bit ids.
  const runs: (number | null)[][] = [[1, null, 3], [], [null], [4, 5, 6, 7, 8, 9, 10, 11, null, 12], [-128, 127]];
  const ids: Id[][] = [[1, 2 ** 53 - 1, -(2 ** 53 - 1)], [9223372036854775807n, -9223372036854775808n, 0], [], [7, 8, 9, 10, 11, 12, 13]];

  it('pushAll and pushAllNullable give the same Arrow data as one push per value', () => {
    const bulk = new NumberColumn(Int8Array, true, 4);
    const single = new NumberColumn(Int8Array, true, 4);
    for (const r of runs) {
      bulk.pushAllNullable(r);
      for (const v of r) {
        if (v === null) single.pushNull();
        else single.push(v);
      }
    }
    assert.deepEqual(readBack(bulk.data(new arrow.Int8())), readBack(single.data(new arrow.Int8())));
    assert.deepEqual(readBack(bulk.data(new arrow.Int8())), runs.flat());

    const bulkIds = new Int64Column(false, 4);
    const singleIds = new Int64Column(false, 4);
    for (const r of ids) {
      bulkIds.pushAll(r);
      for (const v of r) singleIds.push(v);
    }
    assert.deepEqual(readBack(bulkIds.data(new arrow.Int64())), readBack(singleIds.data(new arrow.Int64())));
    assert.deepEqual(readBack(bulkIds.data(new arrow.Int64())), ids.flat().map((v) => BigInt(v)));
  });

  it('a list column of bulk-appended rows keeps each row apart', () => {
    const list = new ListColumn(new NumberColumn(Int32Array, false, 4));
    const rows = [[1, 2, 3], [], [4, 5, 6, 7, 8, 9]];
    for (const r of rows) {
      list.child.pushAll(r);
      list.endRow();
    }
    assert.deepEqual(readBack(list.data(new arrow.Int32())), rows);
  });
});
