import { strict as assert } from 'node:assert';
import { ColumnSpec, ColumnType, tableSpec } from '../schemas/omop';
import { rowValidator } from '../schemas/rowSchemas';
import { columnCheckSql } from '../schemas/sqlChecks';
import { openDuck, queryRows } from '../pipelines/duck';

// The bulk SQL check and the ajv schema must give every value the same verdict.
const CASES: Record<ColumnType, (string | null)[]> = {
  integer: ['12', '-7', ' 12', '1e3', '1.5', 'abc', '', null, '9007199254740991', '9007199254740993', '0x10'],
  number: ['1.5', '-2', '1e-3', 'NaN', 'abc', '', null, 'inf'],
  string: ['x', '', null],
  date: ['2020-01-31', '2020-02-30', '1799-12-31', '1800-01-01', '2300-12-31', '2301-01-01', '2020/01/01', '20200101', '', null],
  datetime: ['2020-01-31 10:11:12', '2020-01-31T10:11:12Z', '2020-01-31', '2020-01-31 25:00:00', '3020-01-01 00:00:00', 'yesterday', '', null, '2020-01-31 10:11:12.123456'],
};

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

  it('ajv names the column and the reason', () => {
    const problems = rowValidator(tableSpec('measurement')).check({
      measurement_id: '1', person_id: 'abc', measurement_concept_id: '3004410', measurement_date: '2020-13-01', value_as_number: '1.2',
    });
    assert.deepEqual(problems.map((p) => p.column).sort(), ['measurement_date', 'person_id']);
    assert.match(problems.find((p) => p.column === 'measurement_date')!.reason, /omop-date/);
    const missing = rowValidator(tableSpec('person')).check({ person_id: '1', year_of_birth: '1980' });
    assert.deepEqual(missing, [{ column: 'gender_concept_id', reason: 'required value is missing' }]);
  });
});
