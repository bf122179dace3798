import { strict as assert } from 'node:assert';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { DuckDBConnection } from '@duckdb/node-api';
import { idColumn, numericColumn, openDuck, queryRows, streamChunks, stringColumn } from '../../sources/duck';
import { Id, parseId } from '../../schemas/ids';

/** Every row of `sql` through the chunk readers, as plain values. */
async function readThroughChunks(conn: DuckDBConnection, sql: string) {
  const out: { s: string | null; id: Id | null; x: number | null }[] = [];
  for await (const chunk of streamChunks(conn, sql)) {
    const s = stringColumn(chunk, 0);
    const id = idColumn(chunk, 1);
    const x = numericColumn(chunk, 2);
    for (let i = 0; i < chunk.rowCount; i++) out.push({ s: s(i), id: id.isNull(i) ? null : id.get(i), x: x.isNull(i) ? null : x.values[i] });
  }
  return out;
}

describe('DuckDB chunk column readers', () => {
  // Strings of every inline length (0..12 bytes) and longer ones, multi-byte UTF-8, strings that
  // differ only in their last inline byte, and nulls at positions around 32- and 64-bit words.
  const SQL = `
    WITH words(w) AS (VALUES (''), ('a'), ('mg'), ('mg/dL'), ('mmol/L'), ('µmol/L'), ('10*3/uL'), ('abcdefghijk'),
                             ('abcdefghijkl'), ('abcdefghijkm'), ('abcdefghijklm'), ('a much longer unit text'), ('日本語'), ('ab'), ('ac'))
    SELECT CASE WHEN i % 37 IN (0, 31, 32, 63) THEN NULL ELSE (SELECT list(w) FROM words)[1 + (i * 7) % 15] END AS s,
           CASE WHEN i % 64 IN (5, 33, 64 - 1) THEN NULL WHEN i % 11 = 0 THEN 9223372036854775807 - i ELSE i * 1000003 END AS id,
           CASE WHEN i % 32 IN (0, 31) THEN NULL ELSE i / 4 END AS x
    FROM range(5000) t(i) ORDER BY i`;

  it('reads strings, 64-bit ids and doubles with their nulls as the row API does, across chunks', async () => {
    const conn = await openDuck();
    try {
      const fast = await readThroughChunks(conn, SQL);
      const rows = await queryRows<{ s: string | null; id: bigint | null; x: number | null }>(conn, SQL);
      assert.equal(fast.length, 5000);
      const expected = rows.map((r) => ({ s: r.s, id: r.id === null ? null : parseId(r.id), x: r.x }));
      assert.deepEqual(fast, expected);
      // The readers saw every kind of value, not only one.
      assert.ok(fast.some((r) => r.s === 'abcdefghijkl') && fast.some((r) => r.s === 'abcdefghijkm') && fast.some((r) => r.s === 'µmol/L'));
      assert.ok(fast.some((r) => r.s === '') && fast.some((r) => r.s === null) && fast.some((r) => r.s === 'a much longer unit text'));
      assert.ok(fast.some((r) => typeof r.id === 'bigint') && fast.some((r) => r.id === null) && fast.some((r) => r.x === null));
    } finally {
      conn.closeSync();
    }
  });

  it('readers stay valid after their chunk is dropped and collected (its native memory freed)', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const conn = await openDuck();
    try {
      const sql = `SELECT 'a row of more than twelve bytes, number ' || i AS s, i::BIGINT * 3 AS id, i / 2 AS x FROM range(20000) t(i) ORDER BY i`;
      const readers: { s: (i: number) => string | null; id: (i: number) => Id; x: ArrayLike<number>; n: number }[] = [];
      // Readers only: no chunk is referenced once its readers are made, and later chunks reuse freed memory.
      for await (const chunk of streamChunks(conn, sql)) readers.push({ s: stringColumn(chunk, 0), id: idColumn(chunk, 1).get, x: numericColumn(chunk, 2).values, n: chunk.rowCount });
      for (let k = 0; k < 3; k++) {
        gc();
        await new Promise((r) => setImmediate(r));
      }
      // Fill the memory the freed chunks held with other rows.
      await queryRows(conn, `SELECT repeat('z', 40 + i % 7) AS junk, i * 7 AS y FROM range(50000) t(i)`);
      let row = 0;
      for (const r of readers) {
        for (let i = 0; i < r.n; i++, row++) {
          assert.equal(r.s(i), `a row of more than twelve bytes, number ${row}`);
          assert.equal(r.id(i), row * 3);
          assert.equal(r.x[i], row / 2);
        }
      }
      assert.equal(row, 20000);
    } finally {
      conn.closeSync();
    }
  });
});
