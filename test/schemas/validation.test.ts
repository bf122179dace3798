import { strict as assert } from 'node:assert';
import { ColumnSpec, ColumnType, tableSpec } from '../../schemas/omop';
import { rowValidator } from '../../schemas/rowSchemas';
import { columnCheckSql } from '../../schemas/sqlChecks';
import { openDuck, parseDuckJson, queryRows } from '../../sources/duck';

// The bulk SQL check and the ajv schema must give every value the same verdict.
const CASES: Record<ColumnType, (string | null)[]> = {
  integer: ['12', '-7', ' 12', '12.0', '1e3', '1.5', 'abc', '', null, '9007199254740991', '9007199254740993', '0x10',
    '9223372036854775807', '-9223372036854775808', '9223372036854775808', '-9223372036854775809', '99999999999999999999999'],
  number: ['1.5', '-2', '1e-3', 'NaN', 'abc', '', null, 'inf', 'Infinity', '-Infinity', '1e39', '-1e39', '3.4028234663852886e38', '3.5e38', '1e400', '1e-50'],
  string: ['x', '', null],
  date: ['2020-01-31', '2020-02-30', '1799-12-31', '1800-01-01', '2300-12-31', '2301-01-01', '2020/01/01', '20200101', '', null],
  datetime: [
    '2020-01-31 10:11:12', '2020-01-31T10:11:12Z', '2020-01-31', '2020-01-31 25:00:00', '3020-01-01 00:00:00', 'yesterday', '', null,
    '2020-01-31 10:11:12.123456', '2020-01-31 24:00:00', '2020-01-31 24:00', '2020-02-30 10:00:00', '2020-01-31 10:60:00',
  ],
};

// Columns that Parquet or DuckDB already store typed: the SQL check reads the type, ajv the row's to_json.
const TYPED_CASES: { type: ColumnType; sourceType: string; values: string[] }[] = [
  { type: 'number', sourceType: 'DOUBLE', values: ['1.5', "'nan'::DOUBLE", "'inf'::DOUBLE", "'-inf'::DOUBLE", '1e39', '-1e39', '3.4028234663852886e38', 'NULL::DOUBLE'] },
  { type: 'number', sourceType: 'FLOAT', values: ['1.5::FLOAT', "'nan'::FLOAT", "'inf'::FLOAT", '3.4e38::FLOAT'] },
  { type: 'number', sourceType: 'DECIMAL(38,0)', values: ['12::DECIMAL(38,0)', '99999999999999999999999999999999999999::DECIMAL(38,0)'] },
  { type: 'date', sourceType: 'DATE', values: ["DATE '2020-02-29'", "DATE '1799-12-31'", "DATE '2301-01-01'"] },
  { type: 'datetime', sourceType: 'TIMESTAMP', values: ["TIMESTAMP '2020-02-29 23:59:59'", "TIMESTAMP '3000-01-01 00:00:00'"] },
];

describe('row validation: SQL bulk check agrees with the ajv schema', () => {
  for (const [type, values] of Object.entries(CASES) as [ColumnType, (string | null)[]][]) {
    for (const required of [false, true]) {
      it(`${type} ${required ? 'required' : 'optional'}`, async () => {
        const conn = await openDuck();
        const col: ColumnSpec = { name: 'v', type, required };
        const spec = { table: 'person' as const, required: false, columns: [col] };
        const validator = rowValidator({ ...spec, table: `t_${type}_${required}` as never });
        for (const v of values) {
          const sql = `SELECT ${columnCheckSql(col)} AS ok FROM (SELECT ${v === null ? 'NULL::VARCHAR' : `'${v}'`} AS v)`;
          const [{ ok }] = await queryRows<{ ok: boolean }>(conn, sql);
          const ajvOk = validator.check({ v }).length === 0;
          assert.equal(ok, ajvOk, `value ${JSON.stringify(v)}: SQL says ${ok}, ajv says ${ajvOk}`);
        }
        conn.closeSync();
      });
    }
  }

  for (const { type, sourceType, values } of TYPED_CASES) {
    it(`${type} stored as ${sourceType}`, async () => {
      const conn = await openDuck();
      const col: ColumnSpec = { name: 'v', type };
      const validator = rowValidator({ table: `typed_${type}_${sourceType}` as never, required: false, columns: [col] });
      for (const v of values) {
        const [{ ok, j }] = await queryRows<{ ok: boolean; j: string }>(conn, `SELECT ${columnCheckSql(col, sourceType)} AS ok, CAST(to_json(s) AS VARCHAR) AS j FROM (SELECT ${v} AS v) s`);
        const ajvOk = validator.check(parseDuckJson(j)).length === 0;
        assert.equal(ok, ajvOk, `${v}: SQL says ${ok}, ajv says ${ajvOk}`);
      }
      conn.closeSync();
    });
  }

  it('reasons say what is wrong with the value', () => {
    const reasons = (row: Record<string, unknown>) => Object.fromEntries(rowValidator(tableSpec('measurement')).check(row).map((p) => [p.column, p.reason]));
    const base = { measurement_id: '1', person_id: '1', measurement_concept_id: '3004410', measurement_date: '2020-01-01' };
    assert.deepEqual(reasons({ ...base, measurement_datetime: '2020-01-01 25:00' }), {
      measurement_datetime: 'not a valid datetime (YYYY-MM-DD[ HH:MM[:SS]], years 1800-2300)',
    });
    assert.deepEqual(reasons({ ...base, measurement_date: '2020-02-30' }), { measurement_date: 'not a valid date (YYYY-MM-DD, years 1800-2300)' });
    assert.deepEqual(reasons({ ...base, value_as_number: '1e39' }), {
      value_as_number: 'outside the float32 range of MEDS numeric_value (|value| <= 3.4028234663852886e+38)',
    });
    for (const v of ['NaN', 'Infinity', '-Infinity', 'abc']) {
      assert.deepEqual(reasons({ ...base, value_as_number: v }), { value_as_number: 'not a finite number (NaN and Infinity are not numbers)' }, v);
    }
    assert.deepEqual(reasons({ ...base, person_id: 'abc' }), { person_id: 'not an integer' });
  });

  it('DuckDB JSON with non-finite doubles parses, strings left as they are', () => {
    assert.deepEqual(parseDuckJson('{"a":NaN,"b":-Infinity,"c":"x:NaN,\\"Infinity","d":Infinity,"e":1e39}'), { a: 'NaN', b: '-Infinity', c: 'x:NaN,"Infinity', d: 'Infinity', e: 1e39 });
  });

  it('ajv names the column and the reason', () => {
    const problems = rowValidator(tableSpec('measurement')).check({
      measurement_id: '1', person_id: 'abc', measurement_concept_id: '3004410', measurement_date: '2020-13-01', value_as_number: '1.2',
    });
    assert.deepEqual(problems.map((p) => p.column).sort(), ['measurement_date', 'person_id']);
    assert.match(problems.find((p) => p.column === 'measurement_date')!.reason, /not a valid date/);
    const missing = rowValidator(tableSpec('person')).check({ person_id: '1', year_of_birth: '1980' });
    assert.deepEqual(missing, [{ column: 'gender_concept_id', reason: 'required value is missing' }]);
  });

  it('ids are exact signed 64-bit integers: beyond 2^53 valid, beyond 2^63 a reject naming the column', async () => {
    const v = rowValidator(tableSpec('visit_occurrence'));
    const row = (visit: unknown, person: unknown) => ({ visit_occurrence_id: visit, person_id: person, visit_concept_id: '9201', visit_start_date: '2020-01-01' });
    assert.deepEqual(v.check(row('9223372036854775807', '-9223372036854775808')), []);
    assert.deepEqual(v.check(row(-4611686018427387905n, 9007199254740993n)), []);
    assert.deepEqual(v.check(row('9223372036854775808', '1')), [{ column: 'visit_occurrence_id', reason: 'out of range (must be a signed 64-bit integer)' }]);
    // A JSON number beyond 2^53 may have been rounded already: it is not taken as an id.
    assert.equal(v.check(row(9007199254740994, '1'))[0].column, 'visit_occurrence_id');
    assert.deepEqual(v.check(row('1', '1e3')), [{ column: 'person_id', reason: 'not an integer' }]);
    // Typed sources (Parquet, DuckDB) go through the same bounds.
    const conn = await openDuck();
    const col: ColumnSpec = { name: 'v', type: 'integer', required: true };
    const [r] = await queryRows<{ a: boolean; b: boolean; c: boolean }>(conn, `SELECT ${columnCheckSql(col, 'BIGINT').replace(/"v"/g, '(-9223372036854775808)::BIGINT')} AS a,
      ${columnCheckSql(col, 'HUGEINT').replace(/"v"/g, '(9223372036854775808)::HUGEINT')} AS b, ${columnCheckSql(col, 'UBIGINT').replace(/"v"/g, '(9223372036854775807)::UBIGINT')} AS c`);
    assert.deepEqual(r, { a: true, b: false, c: true });
    conn.closeSync();
  });
});
