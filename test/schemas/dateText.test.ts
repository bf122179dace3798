// The date checks and the row time read the common text shapes (YYYY-MM-DD, YYYY-MM-DD HH:MM:SS)
// by hand and everything else by regex; both must give what the regexes alone give.
import { strict as assert } from 'node:assert';
import { isOmopDate, isOmopDatetime } from '../../schemas/rowSchemas';
import { MAX_YEAR, MIN_YEAR } from '../../schemas/omop';
import { timeMs } from '../../runners/kafka/rowFields';

// The regex-only readings, as they were before the hand-read shapes.
function validDate(y: number, m: number, d: number): boolean {
  if (y < MIN_YEAR || y > MAX_YEAR || m < 1 || m > 12 || d < 1) return false;
  return d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
}
function refDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  return !!m && validDate(+m[1], +m[2], +m[3]);
}
function refDatetime(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/.exec(s);
  if (!m || !validDate(+m[1], +m[2], +m[3])) return false;
  return !(m[4] !== undefined && (+m[4] > 23 || +m[5] > 59 || (m[6] !== undefined && +m[6] > 59)));
}
function refTimeMs(v: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?/.exec(v);
  if (!m) return null;
  const ms = m[7] ? Math.floor(Number((m[7] + '000').slice(0, 3))) : 0;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], m[4] ? +m[4] : 0, m[5] ? +m[5] : 0, m[6] ? +m[6] : 0, ms);
}

const DATES = [
  '2019-01-01', '2020-02-29', '2019-02-29', '1900-02-29', '2000-02-29', '2100-02-29', '2019-04-31', '2019-12-31',
  '2019-13-01', '2019-00-10', '2019-01-00', '1799-12-31', '1800-01-01', '2300-12-31', '2301-01-01', '2019-1a-01',
  '20190101xx', '2019/01/01', '2019-01-1 ', ' 019-01-01', '0099-01-01', '9999-99-99', '2019-01-01x',
];
const TIMES = ['00:00:00', '23:59:59', '24:00:00', '23:60:00', '23:59:60', '1a:00:00', '10:00:0x', '10-00-00', '10:00'];

describe('date text read by hand and by regex', () => {
  it('isOmopDate, isOmopDatetime and the row time agree with the regexes on dates and datetimes, valid or not', () => {
    const texts = [...DATES];
    for (const d of DATES.slice(0, 12)) for (const t of TIMES) for (const sep of [' ', 'T', 'X']) texts.push(`${d}${sep}${t}`);
    texts.push('2019-01-01 10:00:00Z', '2019-01-01T10:00:00.123', '2019-01-01 10:00:00+02:00', '2019-01-01 10:00');
    let checked = 0;
    for (const s of texts) {
      assert.equal(isOmopDate(s), refDate(s), `isOmopDate(${JSON.stringify(s)})`);
      assert.equal(isOmopDatetime(s), refDatetime(s), `isOmopDatetime(${JSON.stringify(s)})`);
      assert.equal(timeMs(s), refTimeMs(s), `timeMs(${JSON.stringify(s)})`);
      checked++;
    }
    assert.ok(checked > 300);
    // The shapes the hand reading takes, to show the comparison covers both outcomes of each.
    assert.ok(isOmopDate('2020-02-29') && !isOmopDate('2019-02-29') && isOmopDatetime('2019-01-01 23:59:59') && !isOmopDatetime('2019-01-01 24:00:00'));
  });
});
