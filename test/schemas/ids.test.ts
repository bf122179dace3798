// Ids as exact signed 64-bit integers in JavaScript (schemas/ids.ts) and in JSON (schemas/exactJson.ts).
import { strict as assert } from 'node:assert';
import { compareIds, int64Reader, parseId } from '../../schemas/ids';
import { parseJsonExact, stringifyJsonExact } from '../../schemas/exactJson';
import { Int64Column } from '../../sinks/columns';
import * as arrow from 'apache-arrow';

describe('64-bit ids in JavaScript and JSON', () => {
  it('parseId: a number when safe, else a bigint; one form per value; out of range or not an integer is null', () => {
    assert.equal(parseId('12'), 12);
    assert.equal(parseId(' -7.00 '), -7);
    assert.equal(parseId('9007199254740991'), 9007199254740991);
    assert.equal(parseId('9007199254740992'), 9007199254740992n);
    assert.equal(parseId(9007199254740992n), 9007199254740992n);
    assert.equal(parseId(12n), 12);
    assert.equal(parseId('-9223372036854775808'), -9223372036854775808n);
    for (const bad of ['9223372036854775808', '-9223372036854775809', '1e3', '1.5', 'abc', '', 9007199254740992, 1.5, null]) assert.equal(parseId(bad), null, String(bad));
    assert.deepEqual([3n ** 39n, -5, 9007199254740993n, 0].sort(compareIds), [-5, 0, 9007199254740993n, 3n ** 39n]);
  });

  it('int64Reader gives the exact Id of every value, safe ones as numbers, at the 2^53 edges too', () => {
    const values = [0n, -1n, 1n, (1n << 53n) - 1n, 1n << 53n, -(1n << 53n) + 1n, -(1n << 53n), (1n << 63n) - 1n, -(1n << 63n), 4294967295n, -4294967296n, (1n << 52n) + 12345n];
    const read = int64Reader(BigInt64Array.from(values));
    values.forEach((v, i) => assert.equal(read(i), parseId(v), v.toString()));
  });

  it('Int64Column writes numbers and bigints exactly into one int64 column', () => {
    const c = new Int64Column(true);
    const ids = [1, -9223372036854775808n, 9007199254740993n, -42, null, 9223372036854775807n];
    for (const id of ids) if (id === null) c.pushNull(); else c.push(id);
    const v = arrow.makeVector(c.data(new arrow.Int64()));
    assert.deepEqual(v.toArray().length, ids.length);
    assert.deepEqual([...v].map((x, i) => (ids[i] === null ? null : x)), ids.map((x) => (x === null ? null : BigInt(x))));
  });

  it('parseJsonExact keeps every digit of big integer literals; strings and doubles are untouched', () => {
    const text = '{"p":-9223372036854775808,"q":9007199254740993,"s":"12345678901234567890 \\" 98765432109876543210","x":1.5e300,"y":12345678901234567.5,"z":[1,-2]}';
    const v = parseJsonExact(text) as Record<string, unknown>;
    assert.deepEqual(v, { p: -9223372036854775808n, q: 9007199254740993n, s: '12345678901234567890 " 98765432109876543210', x: 1.5e300, y: 12345678901234568, z: [1, -2] });
    assert.equal(stringifyJsonExact(v), '{"p":-9223372036854775808,"q":9007199254740993,"s":"12345678901234567890 \\" 98765432109876543210","x":1.5e+300,"y":1.2345678901234568e+16,"z":[1,-2]}', 'an integral double beyond 2^53 in exponent form');
  });

  it('stringifyJsonExact round-trips: a bigint comes back a bigint, an integral double beyond 2^53 a double', () => {
    const v = { id: 2n ** 62n, value: 1e20, negative: -(2n ** 60n), list: [9007199254740993n, 3], text: 'x' };
    const back = parseJsonExact(stringifyJsonExact(v));
    assert.deepEqual(back, v);
    assert.equal(typeof (back as { value: unknown }).value, 'number');
    assert.equal(stringifyJsonExact({ a: 1, b: 'c' }), JSON.stringify({ a: 1, b: 'c' }));
  });
});
