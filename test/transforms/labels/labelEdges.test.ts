// Hand-built cases at the edges of every task rule, and the incremental behaviour of the
// labeler: emission only once determined, each sample once, corrections for late records within
// the allowed lateness, late records beyond it counted and not applied.
import { strict as assert } from 'node:assert';
import { shippedTasks } from '../../../sources/taskFiles';
import {
  compileTask,
  CompiledTask,
  dayEnd,
  dayOf,
  IncrementalLabeler,
  LabelInput,
  LabelRecord,
  labelRecords,
} from '../../../transforms/labels';

const DAY = 86_400_000;
const ms = (isoDay: string) => Date.parse(`${isoDay}T00:00:00Z`);
const endOf = (isoDay: string) => dayEnd(dayOf(ms(isoDay)));

const UTI = 81902; // in the shipped UTI list
const PHENO_A = 501;
const PHENO_B = 502;
const OTHER = 999;

function task(name: string): CompiledTask {
  const def = shippedTasks([name])[0].def;
  if (def.label.rule === 'event_during_stay') return compileTask(def, [{ name: 'event', conceptIds: [UTI] }]);
  if (def.label.rule === 'codes_during_stay')
    return compileTask(def, [
      { name: 'A', conceptIds: [PHENO_A] },
      { name: 'B', conceptIds: [PHENO_B] },
    ]);
  return compileTask(def, []);
}

const person = (personId: number, birth: string): LabelInput => ({ table: 'person', personId, birthMs: ms(birth), genderConceptId: 8507 });
const visit = (personId: number, visitId: number, start: string, end: string | null, conceptId = 9201): LabelInput => ({
  table: 'visit',
  personId,
  visitId,
  conceptId,
  startMs: ms(start),
  endMs: end === null ? null : ms(end),
});
const death = (personId: number, day: string): LabelInput => ({ table: 'death', personId, timeMs: ms(day) });
const cond = (personId: number, conceptId: number, time: string): LabelInput => ({
  table: 'condition',
  personId,
  conceptId,
  timeMs: Date.parse(time.length === 10 ? `${time}T00:00:00Z` : `${time}Z`),
  visitId: null,
});

/** Batch-labels the records with the data ending on `lastDay`. */
function batch(t: CompiledTask, records: LabelInput[], lastDay = '2030-12-31') {
  const { samples, summary } = labelRecords([t], records, endOf(lastDay));
  return { samples, s: summary.tasks[0], byPerson: new Map(samples.map((x) => [x.person_id, x])) };
}

describe('labels: rule edges', () => {
  it('same-day stays are not index admissions; the stay before one is', () => {
    const { byPerson, s } = batch(task('mortality'), [
      person(1, '1970-01-01'),
      visit(1, 10, '2020-01-01', '2020-01-05'),
      visit(1, 11, '2020-03-01', '2020-03-01'), // same day: excluded
      person(2, '1970-01-01'),
      visit(2, 20, '2020-03-01', '2020-03-01'),
    ]);
    assert.equal(byPerson.get(1)?.index_visit_id, 10);
    assert.equal(byPerson.get(1)?.prediction_time, ms('2020-01-02'));
    assert.equal(byPerson.has(2), false);
    assert.equal(s.excluded.stay_shorter_than_min, 2);
    assert.equal(s.cohort, 1);
  });

  it('death on the admission day excludes the stay; death on the discharge day is in-hospital; the day after is not', () => {
    const t = task('mortality');
    const { byPerson, s } = batch(t, [
      person(1, '1970-01-01'),
      visit(1, 10, '2020-01-10', '2020-01-15'),
      death(1, '2020-01-10'),
      person(2, '1970-01-01'),
      visit(2, 20, '2020-01-10', '2020-01-15'),
      death(2, '2020-01-15'),
      person(3, '1970-01-01'),
      visit(3, 30, '2020-01-10', '2020-01-15'),
      death(3, '2020-01-16'),
    ]);
    assert.equal(byPerson.has(1), false);
    assert.equal(s.excluded.starts_on_or_after_death, 1);
    assert.equal(byPerson.get(2)?.label, 1);
    assert.equal(byPerson.get(3)?.label, 0);
    // Readmission: the person who died in the stay has no index.
    const ra = batch(task('readmission'), [person(2, '1970-01-01'), visit(2, 20, '2020-01-10', '2020-01-15'), death(2, '2020-01-15')]);
    assert.equal(ra.samples.length, 0);
    assert.equal(ra.s.excluded.died_during_stay, 1);
  });

  it('age 17 and 101 on the admission day are out of the cohort; 18 and 100 are in', () => {
    const { byPerson, s } = batch(task('long_stay'), [
      person(1, '2002-06-15'),
      visit(1, 10, '2020-06-14', '2020-06-20'), // 17, one day before the 18th birthday
      person(2, '2002-06-15'),
      visit(2, 20, '2020-06-15', '2020-06-25'), // 18 on the day
      person(3, '1919-01-01'),
      visit(3, 30, '2020-01-01', '2020-01-03'), // 101
      person(4, '1919-01-01'),
      visit(4, 40, '2019-12-31', '2020-01-03'), // 100
    ]);
    assert.deepEqual([...byPerson.keys()].sort(), [2, 4]);
    assert.equal(s.excluded.age_out_of_range, 2);
    assert.equal(byPerson.get(2)?.label, 1); // 10 days
    assert.equal(byPerson.get(4)?.label, 0); // 3 days
  });

  it('readmission starting 30 days after the discharge day is positive, 31 days is negative', () => {
    // The later admission ends in death, so it cannot be an index itself but still counts as a readmission.
    const t = task('readmission');
    const { byPerson } = batch(t, [
      person(1, '1970-01-01'),
      visit(1, 10, '2020-01-01', '2020-01-31'),
      visit(1, 11, '2020-03-01', '2020-03-05'), // Jan 31 + 30 days (2020 is a leap year)
      death(1, '2020-03-05'),
      person(2, '1970-01-01'),
      visit(2, 20, '2020-01-01', '2020-01-31'),
      visit(2, 21, '2020-03-02', '2020-03-05'), // + 31 days
      death(2, '2020-03-05'),
      person(3, '1970-01-01'),
      visit(3, 30, '2020-01-01', '2020-01-31'),
      visit(3, 31, '2020-01-31', '2020-02-05'), // starts on the discharge day: not a readmission
      death(3, '2020-02-05'),
    ]);
    assert.equal(byPerson.get(1)?.label, 1);
    assert.equal(byPerson.get(1)?.prediction_time, ms('2020-02-01'));
    assert.equal(byPerson.get(2)?.label, 0);
    assert.equal(byPerson.get(3)?.label, 0);
  });

  it('a readmission window the data do not cover is censored: counted, not emitted', () => {
    const r = batch(task('readmission'), [person(1, '1970-01-01'), visit(1, 10, '2020-01-01', '2020-01-31')], '2020-02-29');
    assert.equal(r.samples.length, 0);
    assert.equal(r.s.censored, 1);
    assert.equal(r.s.cohort, 1);
    // One more day of data decides it.
    const d = batch(task('readmission'), [person(1, '1970-01-01'), visit(1, 10, '2020-01-01', '2020-01-31')], '2020-03-01');
    assert.equal(d.samples[0]?.label, 0);
    assert.equal(d.s.censored, 0);
  });

  it('phenotypes: a code on record rank 1 or 2 excludes the stay; a code from rank 3 on is a label', () => {
    const t = task('phenotypes');
    const { byPerson, s } = batch(t, [
      person(1, '1970-01-01'),
      visit(1, 10, '2020-01-01', '2020-01-05'),
      cond(1, OTHER, '2020-01-01T08:00:00'), // rank 1
      cond(1, PHENO_A, '2020-01-01T09:00:00'), // rank 2: the answer would be in the input
      cond(1, OTHER, '2020-01-02'),
      person(2, '1970-01-01'),
      visit(2, 20, '2020-01-01', '2020-01-05'),
      cond(2, OTHER, '2020-01-01T08:00:00'), // rank 1
      cond(2, OTHER, '2020-01-01T09:00:00'), // rank 2
      cond(2, OTHER, '2020-01-01T10:00:00'), // rank 3: prediction time
      cond(2, PHENO_B, '2020-01-01T10:00:00'), // same timestamp: rank 3
      cond(2, PHENO_A, '2020-01-04'), // rank 4
      cond(2, PHENO_A, '2020-01-06'), // after discharge: not in the stay
      person(3, '1970-01-01'),
      visit(3, 30, '2020-01-01', '2020-01-05'),
      cond(3, PHENO_A, '2020-01-02'), // two ranks only
      cond(3, PHENO_A, '2020-01-03'),
    ]);
    assert.equal(byPerson.has(1), false);
    assert.equal(byPerson.get(2)?.prediction_time, Date.parse('2020-01-01T10:00:00Z'));
    assert.deepEqual(byPerson.get(2)?.labels, [1, 1]);
    assert.equal(byPerson.has(3), false);
    assert.deepEqual(s.excluded, { code_in_first_record_ranks: 1, too_few_record_ranks: 1 });
    assert.deepEqual(s.positivesPerLabel, [1, 1]);
    // The code after discharge alone does not make a label.
    const late = batch(t, [
      person(4, '1970-01-01'),
      visit(4, 40, '2020-01-01', '2020-01-05'),
      cond(4, OTHER, '2020-01-01'),
      cond(4, OTHER, '2020-01-02'),
      cond(4, OTHER, '2020-01-03'),
      cond(4, PHENO_A, '2020-01-06'),
    ]);
    assert.deepEqual(late.byPerson.get(4)?.labels, [0, 0]);
    assert.equal(late.byPerson.get(4)?.prediction_time, ms('2020-01-03'));
  });

  it('in-hospital events: a code on the admission day excludes the stay; on day 2 it is a case predicted at 00:00 the day before', () => {
    const t = task('uti');
    const { byPerson, s } = batch(t, [
      person(1, '1970-01-01'),
      visit(1, 10, '2020-01-01', '2020-01-05'),
      cond(1, UTI, '2020-01-01T15:00:00'),
      person(2, '1970-01-01'),
      visit(2, 20, '2020-01-01', '2020-01-05'),
      cond(2, UTI, '2020-01-02T15:00:00'),
      cond(2, UTI, '2020-01-04'),
      person(3, '1970-01-01'),
      visit(3, 30, '2020-01-01', '2020-01-05'),
      cond(3, OTHER, '2020-01-02'),
      person(4, '1970-01-01'),
      visit(4, 40, '2020-01-01', '2020-01-02'), // one day: shorter than 2
      cond(4, UTI, '2020-01-02'),
    ]);
    assert.equal(byPerson.has(1), false);
    assert.equal(byPerson.get(2)?.label, 1);
    assert.equal(byPerson.get(2)?.prediction_time, ms('2020-01-01'));
    const control = byPerson.get(3);
    assert.equal(control?.label, 0);
    const p = control?.prediction_time as number;
    assert.ok(p >= ms('2020-01-01') && p <= ms('2020-01-04') && p % DAY === 0, 'control predicted at 00:00 of a day of the stay before discharge');
    assert.equal(byPerson.has(4), false);
    assert.deepEqual(s.excluded, { event_on_admission_day: 1, stay_shorter_than_min: 1 });
  });

  it('in-hospital events: a case stay wins over a later stay without the event', () => {
    const { byPerson } = batch(task('uti'), [
      person(1, '1970-01-01'),
      visit(1, 10, '2020-01-01', '2020-01-05'),
      cond(1, UTI, '2020-01-03'),
      visit(1, 11, '2020-06-01', '2020-06-05'),
    ]);
    assert.equal(byPerson.get(1)?.index_visit_id, 10);
    assert.equal(byPerson.get(1)?.prediction_time, ms('2020-01-02'));
  });
});

describe('labels: incremental behaviour', () => {
  const mortality = task('mortality');
  const readmission = task('readmission');

  it('emits a negative only when the watermark passes the discharge day, and each sample once', () => {
    const lab = new IncrementalLabeler([mortality]);
    lab.add(person(1, '1970-01-01'));
    lab.add(visit(1, 10, '2020-01-01', '2020-01-05'));
    assert.deepEqual(lab.advanceWatermark(ms('2020-01-05')), []); // a death dated Jan 5 may still come
    const out = lab.advanceWatermark(endOf('2020-01-05'));
    assert.equal(out.length, 1);
    assert.deepEqual(
      { v: out[0].version, kind: out[0].kind, label: out[0].label, t: out[0].prediction_time },
      { v: 1, kind: 'sample', label: 0, t: ms('2020-01-02') },
    );
    assert.deepEqual(lab.advanceWatermark(endOf('2020-02-05')), []);
    lab.add(cond(1, OTHER, '2020-02-10')); // an unrelated record changes nothing
    assert.deepEqual(lab.advanceWatermark(endOf('2020-02-10')), []);
  });

  it('emits a readmission positive once the readmission is in, a negative 30 days after discharge', () => {
    const lab = new IncrementalLabeler([readmission]);
    lab.add(person(1, '1970-01-01'));
    lab.add(visit(1, 10, '2020-01-01', '2020-01-31'));
    lab.add(person(2, '1970-01-01'));
    lab.add(visit(2, 20, '2020-01-01', '2020-01-31'));
    assert.deepEqual(lab.advanceWatermark(endOf('2020-02-10')), []);
    lab.add(death(1, '2020-02-20'));
    lab.add(visit(1, 11, '2020-02-15', '2020-02-20')); // readmitted, died there: not an index itself
    const pos = lab.advanceWatermark(endOf('2020-02-20'));
    assert.deepEqual(pos.map((r) => [r.person_id, r.label]), [[1, 1]]);
    assert.deepEqual(lab.advanceWatermark(endOf('2020-02-29')), []); // day 29 after discharge
    const neg = lab.advanceWatermark(endOf('2020-03-01')); // day 30 passed
    assert.deepEqual(neg.map((r) => [r.person_id, r.label]), [[2, 0]]);
  });

  function emittedNegativeMortality(lateness: number): { lab: IncrementalLabeler; first: LabelRecord } {
    const lab = new IncrementalLabeler([mortality], { allowedLatenessMs: lateness });
    lab.add(person(1, '1970-01-01'));
    lab.add(visit(1, 10, '2020-01-01', '2020-01-05'));
    const [first] = lab.advanceWatermark(endOf('2020-01-06'));
    assert.equal(first.label, 0);
    return { lab, first };
  }

  it('a late death inside the allowed lateness emits a versioned correction', () => {
    const { lab } = emittedNegativeMortality(10 * DAY);
    assert.equal(lab.add(death(1, '2020-01-04')), 'late_applied');
    const out = lab.flush();
    assert.equal(out.length, 1);
    assert.deepEqual(
      { v: out[0].version, kind: out[0].kind, label: out[0].label, visit: out[0].index_visit_id, retracted: out[0].retracted },
      { v: 2, kind: 'correction', label: 1, visit: 10, retracted: false },
    );
    assert.equal(lab.summary().corrections, 1);
    assert.equal(lab.summary().tasks[0].positives, 1);
  });

  it('a late death beyond the allowed lateness is counted and not applied', () => {
    const { lab } = emittedNegativeMortality(10 * DAY);
    lab.advanceWatermark(endOf('2020-01-20'));
    assert.equal(lab.add(death(1, '2020-01-04')), 'dropped');
    assert.deepEqual(lab.flush(), []);
    const s = lab.summary();
    assert.deepEqual(s.lateDropped, { visit: 0, death: 1, condition: 0 });
    assert.equal(s.tasks[0].negatives, 1);
    assert.equal(lab.currentSamples()[0].label, 0);
  });

  it('a late readmission inside the allowed lateness corrects a negative; beyond it, it is counted', () => {
    for (const [lateness, expectLabel] of [
      [30 * DAY, 1],
      [5 * DAY, 0],
    ] as const) {
      const lab = new IncrementalLabeler([readmission], { allowedLatenessMs: lateness });
      lab.add(person(1, '1970-01-01'));
      lab.add(visit(1, 10, '2020-01-01', '2020-01-31'));
      const [neg] = lab.advanceWatermark(endOf('2020-03-10'));
      assert.equal(neg.label, 0);
      lab.add(death(1, '2020-02-20'));
      lab.add(visit(1, 11, '2020-02-15', '2020-02-20'));
      const out = lab.flush();
      const final = lab.currentSamples()[0];
      assert.equal(final.label, expectLabel);
      if (expectLabel === 1) {
        assert.deepEqual(out.map((r) => [r.version, r.kind, r.label]), [[2, 'correction', 1]]);
      } else {
        assert.deepEqual(out, []);
        assert.deepEqual(lab.summary().lateDropped, { visit: 1, death: 1, condition: 0 });
      }
    }
  });

  it('a new later admission withdraws the emitted index and emits the new one once determined', () => {
    const lab = new IncrementalLabeler([mortality]);
    lab.add(person(1, '1970-01-01'));
    lab.add(visit(1, 10, '2020-01-01', '2020-01-05'));
    lab.advanceWatermark(endOf('2020-01-05'));
    lab.add(visit(1, 11, '2020-03-01', '2020-03-03'));
    const withdrawn = lab.advanceWatermark(endOf('2020-03-02'));
    assert.deepEqual(withdrawn.map((r) => [r.version, r.retracted]), [[2, true]]);
    const next = lab.advanceWatermark(endOf('2020-03-03'));
    assert.deepEqual(next.map((r) => [r.version, r.kind, r.index_visit_id, r.prediction_time]), [[3, 'correction', 11, ms('2020-03-02')]]);
  });
});

describe('labels: calendar arithmetic', () => {
  it('ageYears and ymdOfDay agree with Date over 1800-2300, leap days included', async () => {
    const { ageYears, ymdOfDay } = await import('../../../transforms/labels/time');
    for (let day = dayOf(Date.UTC(1800, 0, 1)); day < dayOf(Date.UTC(2300, 0, 1)); day += 37) {
      const d = new Date(day * DAY);
      assert.equal(ymdOfDay(day), d.getUTCFullYear() * 10000 + (d.getUTCMonth() + 1) * 100 + d.getUTCDate());
    }
    assert.equal(ageYears(ms('2000-02-29'), ms('2001-02-28')), 0);
    assert.equal(ageYears(ms('2000-02-29'), ms('2001-03-01')), 1);
    assert.equal(ageYears(ms('2002-06-15'), ms('2020-06-14')), 17);
    assert.equal(ageYears(ms('2002-06-15'), ms('2020-06-15')), 18);
    assert.equal(ageYears(ms('1850-12-31'), Date.parse('1851-12-31T23:00:00Z')), 1);
    assert.equal(ageYears(ms('2020-01-02'), ms('2020-01-01')), -1);
  });
});
