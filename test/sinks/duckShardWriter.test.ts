// The DuckDB shard writer: what it writes reads back as the rows it was given (every shard type:
// 64-bit ids beyond 2^53, nulls, booleans, text, lists whose items cross the 2,048-row chunks,
// several record batches), the same rows as parquet-wasm writes, the same bytes on a second run;
// the events shard sent as codes gives the rows of its Arrow form, also from a batch cleared and
// filled again; a failed write leaves no file.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { DuckDBConnection } from '@duckdb/node-api';
import { DuckShardWriter } from '../../sinks/duckShardWriter';
import { EventBatch } from '../../sinks/eventShards';
import { writeParquetAtomic } from '../../sinks/parquet';
import { ShardData } from '../../sinks/shards';
import { Int64Column, ListColumn, NumberColumn, StringColumn, tableOf } from '../../sinks/columns';
import { emptyCanonicalEvent } from '../../schemas/canonicalEvent';
import { openDuckInstance } from '../../sources/duck';
import { lit, sql, tempDir } from '../helpers';

const parquetWasm = require('parquet-wasm/node') as typeof import('parquet-wasm/node/parquet_wasm');

const BIG = 9_007_199_254_740_993n; // 2^53 + 1: not a JavaScript number

/** A table of every type shards use, `n` rows, with nulls and lists of varying length. */
function everyType(n: number, seed: number): arrow.Table {
  const id = new Int64Column();
  const time = new Int64Column(true);
  const small = new NumberColumn(Int8Array, true);
  const age = new NumberColumn(Int16Array);
  const rank = new NumberColumn(Int32Array);
  const value = new NumberColumn(Float64Array, true);
  const flag: boolean[] = [];
  const text = new StringColumn(true);
  const concepts = new ListColumn(new Int64Column());
  const deciles = new ListColumn(new NumberColumn(Int8Array, true));
  for (let i = 0; i < n; i++) {
    id.push(i % 7 === 0 ? BIG + BigInt(i) : -(i * 1_000_003 + seed));
    if (i % 5 === 0) time.pushNull();
    else time.push(1_600_000_000_000_000 + i * 1_000_000);
    if (i % 3 === 0) small.pushNull();
    else small.push((i % 250) - 125);
    age.push(i % 30_000);
    rank.push(i * 3 - 7);
    if (i % 4 === 0) value.pushNull();
    else value.push(i / 7);
    flag.push(i % 3 === 1);
    if (i % 6 === 0) text.pushNull();
    else text.push(i % 2 ? `mg/dL ${i % 4}` : `µmol/L "x" 'y'`);
    // Lists of 0 to 12 items: the items of a chunk of rows start anywhere, not on a byte boundary.
    for (let k = 0; k < (i * 5 + seed) % 13; k++) {
      concepts.child.push(k % 4 === 0 ? BIG * 2n + BigInt(k) : 3_000_000 + k);
      if ((i + k) % 3 === 0) deciles.child.pushNull();
      else deciles.child.push((i + k) % 10);
    }
    concepts.endRow();
    deciles.endRow();
  }
  const fields = [
    new arrow.Field('id', new arrow.Int64(), false), new arrow.Field('time', new arrow.TimestampMicrosecond(), true),
    new arrow.Field('small', new arrow.Int8(), true), new arrow.Field('age', new arrow.Int16(), false),
    new arrow.Field('rank', new arrow.Int32(), false), new arrow.Field('value', new arrow.Float64(), true),
    new arrow.Field('flag', new arrow.Bool(), false), new arrow.Field('text', new arrow.Utf8(), true),
    new arrow.Field('concepts', new arrow.List(new arrow.Field('item', new arrow.Int64(), true)), false),
    new arrow.Field('deciles', new arrow.List(new arrow.Field('item', new arrow.Int8(), true)), false),
  ];
  const flags = arrow.vectorFromArray(flag, new arrow.Bool()).data[0];
  return tableOf(fields, {
    id: id.data(new arrow.Int64()), time: time.data(new arrow.TimestampMicrosecond()), small: small.data(new arrow.Int8()),
    age: age.data(new arrow.Int16()), rank: rank.data(new arrow.Int32()), value: value.data(new arrow.Float64()), flag: flags,
    text: text.data(), concepts: concepts.data(new arrow.Int64()), deciles: deciles.data(new arrow.Int8()),
  });
}

/** Rows of a Parquet file as JSON text, in file order (bigints as digits). */
function rowsOf(file: string): string[] {
  const table = arrow.tableFromIPC(parquetWasm.readParquet(fs.readFileSync(file)).intoIPCStream());
  const json = (v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v instanceof arrow.Vector ? [...v].map(json) : v);
  return [...table].map((r) => JSON.stringify(Object.fromEntries(Object.entries(r.toJSON()).map(([k, v]) => [k, json(v)]))));
}

async function withWriter<T>(body: (w: DuckShardWriter, conn: DuckDBConnection) => Promise<T>): Promise<T> {
  const instance = await openDuckInstance({ threads: 2 });
  const conn = await instance.connect();
  const w = new DuckShardWriter(conn);
  try {
    return await body(w, conn);
  } finally {
    await w.terminate();
    conn.closeSync();
    instance.closeSync();
  }
}

async function written(w: DuckShardWriter, file: string, data: ShardData) {
  const { done } = await w.write(file, data);
  return done;
}

/** `n` events into `batch`; `shift` moves which rows have nulls, which units and tables they get. */
function fillEvents(batch: EventBatch, n: number, shift: number): EventBatch {
  const units = ['mg/dL', "O'Brien units", 'µg', null];
  for (let j = 0; j < n; j++) {
    const i = j + shift;
    const e = emptyCanonicalEvent();
    Object.assign(e, {
      personId: i % 9 === 0 ? BIG : 1 + (i % 37), timeMs: 1_600_000_000_000 + i * 60_000, table: ['measurement', 'condition', 'visit'][i % 3], omopTable: ['measurement', 'condition_occurrence', 'visit_occurrence'][i % 3],
      domain: i % 5, conceptId: 3_000_000 + (i % 11), sourceConceptId: i % 5, decile: i % 3 === 0 ? i % 10 : -1, value: i % 3 === 0 ? i / 7 : null,
      unit: i % 3 === 0 ? units[i % 4] : null, visitId: i % 4 ? 900 + (i % 13) : null, rowId: i % 11 === 0 ? -BIG - BigInt(i) : 10_000 + i, row: i + 1,
    });
    batch.push(e);
  }
  return batch;
}

describe('DuckDB shard writer', () => {
  it('writes every shard type so that it reads back as given, the same rows as parquet-wasm, the same bytes twice', async () => {
    const dir = tempDir('duck-shards');
    // Two record batches of 5,000 and 3,001 rows: chunks of 2,048 rows, the last ones short.
    const table = new arrow.Table([...everyType(5000, 1).batches, ...everyType(3001, 2).batches]);
    assert.equal(table.batches.length, 2);
    const [a, b] = await withWriter(async (w) => [await written(w, path.join(dir, 'a.parquet'), table), await written(w, path.join(dir, 'b.parquet'), table)]);
    assert.equal(a.rows, 8001);
    assert.equal(a.sha256, b.sha256, 'the same table gives the same bytes');
    writeParquetAtomic(path.join(dir, 'wasm.parquet'), table);
    const ours = rowsOf(path.join(dir, 'a.parquet'));
    const wasm = rowsOf(path.join(dir, 'wasm.parquet'));
    assert.equal(ours.length, 8001);
    for (let i = 0; i < ours.length; i++) assert.equal(ours[i], wasm[i], `row ${i}`);
    // Spot checks against the values put in, so that both writers being wrong alike fails too.
    const first = JSON.parse(ours[0]);
    assert.equal(first.id, BIG.toString());
    assert.equal(first.time, null);
    assert.equal(first.text, null);
    const row7 = JSON.parse(ours[7]);
    assert.deepEqual([row7.id, row7.small, row7.flag, row7.text], [(BIG + 7n).toString(), 7 - 125, true, 'mg/dL 3']);
    const [types] = await sql<{ t: string }>(`SELECT string_agg(column_type, ',' ORDER BY column_name) AS t FROM (DESCRIBE SELECT * FROM read_parquet(${lit(path.join(dir, 'a.parquet'))}))`);
    assert.equal(types.t, 'SMALLINT,BIGINT[],TINYINT[],BOOLEAN,BIGINT,INTEGER,TINYINT,VARCHAR,TIMESTAMP,DOUBLE');
  });

  it('writes an events shard sent as codes with the rows of its Arrow form', async () => {
    const dir = tempDir('duck-events');
    const batch = fillEvents(new EventBatch(), 4500, 0);
    const staged = await withWriter((w) => written(w, path.join(dir, 'staged.parquet'), batch.toShard()));
    assert.equal(staged.rows, 4500);
    writeParquetAtomic(path.join(dir, 'arrow.parquet'), batch.toTable());
    const ours = rowsOf(path.join(dir, 'staged.parquet'));
    const arrowForm = rowsOf(path.join(dir, 'arrow.parquet'));
    for (let i = 0; i < ours.length; i++) assert.equal(ours[i], arrowForm[i], `row ${i}`);
    const r11 = JSON.parse(ours[11]);
    assert.equal(r11.origin, `visit_occurrence:${-BIG - 11n}:12`);
    assert.equal(JSON.parse(ours[9]).unit, "O'Brien units");
  });

  it('an events batch cleared and filled again writes the rows of a fresh batch (no null, unit or table of the first fill left)', async () => {
    const dir = tempDir('duck-events-reused');
    // The first fill is longer and its nulls fall on other rows, so leftover bits or codes would show.
    const reused = fillEvents(new EventBatch(), 6000, 1).clear();
    assert.equal(reused.length, 0);
    fillEvents(reused, 4500, 0);
    const fresh = fillEvents(new EventBatch(), 4500, 0);
    await withWriter(async (w) => {
      await written(w, path.join(dir, 'reused.parquet'), reused.toShard());
      await written(w, path.join(dir, 'fresh.parquet'), fresh.toShard());
    });
    assert.deepEqual(rowsOf(path.join(dir, 'reused.parquet')), rowsOf(path.join(dir, 'fresh.parquet')));
    writeParquetAtomic(path.join(dir, 'reused-arrow.parquet'), reused.toTable());
    assert.deepEqual(rowsOf(path.join(dir, 'reused-arrow.parquet')), rowsOf(path.join(dir, 'fresh.parquet')));
  });

  it('a failed write rejects with the error and leaves neither the file nor its temporary', async () => {
    const dir = tempDir('duck-fail');
    const blocker = path.join(dir, 'not-a-dir');
    fs.writeFileSync(blocker, 'a file where the shard folder would be');
    await withWriter(async (w) => {
      await assert.rejects(written(w, path.join(blocker, 'part-00000.parquet'), everyType(10, 3)));
      // The writer goes on with the next shard.
      const ok = await written(w, path.join(dir, 'ok', 'part-00000.parquet'), everyType(10, 3));
      assert.equal(ok.rows, 10);
    });
    assert.deepEqual(fs.readdirSync(dir).sort(), ['not-a-dir', 'ok']);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'ok')), ['part-00000.parquet']);
  });

  it('refuses a column type shards do not use, before anything is written', async () => {
    const dir = tempDir('duck-type');
    const t = new arrow.Table({ u: arrow.vectorFromArray([1, 2, 3], new arrow.Uint32()) });
    await withWriter((w) => assert.rejects(w.write(path.join(dir, 'x.parquet'), t), /no DuckDB type for Uint32/));
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
