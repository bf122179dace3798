// The clinical process of the synthetic hospital, one person at a time.
//
// Each person has a latent frailty z ~ N(0, 1). Together with age it drives which chronic
// conditions they carry, how often they are admitted, and, per admission, a stay acuity that
// drives the length of stay, in-hospital events (UTI, sepsis, pneumonia, MI, fracture), in-hospital
// death, readmission within 30 days and how abnormal the labs and vital signs are. Nothing marks
// an outcome directly: a model has to learn them from ages, diagnoses, drugs and values.
//
// Two random streams per person: `rng` for the clinical facts and `pick` for how the site codes
// them, so site A and site B with the same seed describe the same patients with other codes.
import { ETHNICITIES, GENDER, RACES, VISIT } from './catalogue';
import { sigmoid } from './prng';
import { InpatientStays } from './inpatientStay';
import { ADMISSION_PANEL, DAY, MIN, Person, LabContext, VITALS } from './siteRecorder';
import { dayOf } from './writers';

const OBS_FIRST_DAY = dayOf(2014, 1, 1);
const OBS_LAST_START = dayOf(2021, 12, 31);

/** Chronic phenotypes: prevalence logit = base + age * (age - 60) / 15 + frailty * z. */
const CHRONIC: Array<{ name: string; base: number; age: number; frailty: number; burden: number }> = [
  { name: 'Essential hypertension', base: -0.8, age: 0.9, frailty: 0.3, burden: 0 },
  { name: 'Hypertension with complications', base: -3.0, age: 0.8, frailty: 0.7, burden: 0.5 },
  { name: 'Disorders of lipid metabolism', base: -0.9, age: 0.6, frailty: 0.2, burden: 0 },
  { name: 'Diabetes mellitus without complication', base: -2.0, age: 0.5, frailty: 0.4, burden: 0.2 },
  { name: 'Diabetes mellitus with complications', base: -3.4, age: 0.5, frailty: 0.7, burden: 0.6 },
  { name: 'Coronary atherosclerosis and related', base: -2.6, age: 1.0, frailty: 0.6, burden: 0.6 },
  { name: 'Congestive heart failure; nonhypertensive', base: -3.5, age: 1.0, frailty: 0.9, burden: 1.0 },
  { name: 'Cardiac dysrhythmias', base: -3.0, age: 1.1, frailty: 0.6, burden: 0.5 },
  { name: 'Chronic kidney disease', base: -3.3, age: 0.9, frailty: 0.8, burden: 0.8 },
  { name: 'Chronic obstructive pulmonary disease', base: -3.0, age: 0.7, frailty: 0.7, burden: 0.8 },
  { name: 'Conduction disorders', base: -3.9, age: 0.8, frailty: 0.4, burden: 0.2 },
  { name: 'Other liver diseases', base: -3.7, age: 0.2, frailty: 0.7, burden: 0.8 },
  { name: 'Other upper respiratory disease', base: -2.3, age: -0.3, frailty: 0, burden: 0 },
];

const OUTPATIENT_LABS = ['glucose', 'creatinine', 'sodium', 'potassium', 'hemoglobin', 'wbc', 'platelets'];

export class ClinicalProcess extends InpatientStays {
  /** Generate every row of one person. */
  person(personId: number): void {
    this.startPerson(personId);
    const { person, age, a, obsStart, obsEnd } = this.drawPerson(personId);
    const { admitDays, ambulatory } = this.drawVisitDays(person, age, a, obsStart, obsEnd);
    const { deathTime, lastDay } = this.visits(person, a, obsStart, admitDays, ambulatory);
    const endDay = deathTime !== null ? Math.floor(deathTime / DAY) : Math.max(obsEnd, lastDay);
    this.sink.observationPeriod(personId, obsStart, endDay);
  }

  /** Sex, frailty, observation period, age and conditions; writes the person row. */
  private drawPerson(personId: number): { person: Person; age: number; a: number; obsStart: number; obsEnd: number } {
    const rng = this.rng;
    const female = rng.chance(0.52);
    const z = rng.normal();
    const obsStart = rng.int(OBS_FIRST_DAY, OBS_LAST_START);
    const obsEnd = obsStart + rng.int(365, 6 * 365);
    const age = rng.chance(0.07) ? rng.int(0, 17) : Math.min(90, Math.max(18, Math.round(54 + 17 * rng.normal())));
    const birthDay = obsStart - age * 365 - rng.int(0, 364);
    const person: Person = { id: personId, female, z, birthDay, chronic: new Set(), other: new Set(), burden: 0 };
    const a = (age - 60) / 15;
    for (const c of CHRONIC) {
      if (rng.chance(sigmoid(c.base + c.age * a + c.frailty * z))) {
        person.chronic.add(c.name);
        person.burden += c.burden;
      }
    }
    if (rng.chance(female ? 0.09 : 0.03)) person.other.add('hypothyroidism');
    if (rng.chance(0.07)) person.other.add('asthma');
    if (rng.chance(sigmoid(-2.5 + 1.0 * a))) person.other.add('osteoarthritis');
    if (female && rng.chance(sigmoid(-3.2 + 1.2 * a))) person.other.add('osteoporosis');
    if (rng.chance(sigmoid(-5.5 + 1.6 * a))) person.other.add('alzheimer');

    this.sink.person(
      personId, female ? GENDER.female : GENDER.male, birthDay, RACES[rng.weighted([0.7, 0.2, 0.1])],
      ETHNICITIES[rng.weighted([0.85, 0.15])], `P${personId}`,
    );
    return { person, age, a, obsStart, obsEnd };
  }

  /** Admissions: a Poisson process over the observation period; outpatient and emergency visits beside them. */
  private drawVisitDays(person: Person, age: number, a: number, obsStart: number, obsEnd: number): { admitDays: number[]; ambulatory: Array<[number, 'op' | 'er']> } {
    const rng = this.rng;
    const z = person.z;
    const years = (obsEnd - obsStart) / 365;
    const admitRate = Math.exp(-2.4 + 0.8 * z + 0.35 * Math.max(a, -1.5) + 0.3 * person.burden);
    const admitDays: number[] = [];
    for (let i = rng.poisson(admitRate * years); i > 0; i--) admitDays.push(rng.int(obsStart, obsEnd));
    admitDays.sort((x, y) => x - y);

    const nChronic = person.chronic.size + person.other.size;
    const opDays: number[] = [];
    for (let i = rng.poisson((1.2 + 0.6 * nChronic + (age > 65 ? 0.8 : 0)) * years); i > 0; i--) opDays.push(rng.int(obsStart, obsEnd));
    const erDays: number[] = [];
    for (let i = rng.poisson((0.15 + 0.05 * Math.max(0, z + 1)) * years); i > 0; i--) erDays.push(rng.int(obsStart, obsEnd));
    const ambulatory: Array<[number, 'op' | 'er']> = [...opDays.map((d) => [d, 'op'] as [number, 'op']), ...erDays.map((d) => [d, 'er'] as [number, 'er'])];
    ambulatory.sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
    return { admitDays, ambulatory };
  }

  /**
   * The visits in time order: ambulatory ones up to each admission, the stay, possibly a
   * readmission within 30 days, until the person dies or the days run out.
   */
  private visits(person: Person, a: number, obsStart: number, admitDays: number[], ambulatory: Array<[number, 'op' | 'er']>): { deathTime: number | null; lastDay: number } {
    const rng = this.rng;
    let amb = 0;
    let lastDay = obsStart;
    let deathTime: number | null = null;
    let busyUntil = -Infinity;
    const ambulatoryUntil = (day: number) => {
      while (amb < ambulatory.length && ambulatory[amb][0] < day) {
        const [d, kind] = ambulatory[amb++];
        if (d <= busyUntil) continue;
        lastDay = Math.max(lastDay, kind === 'op' ? this.outpatient(person, d) : this.emergency(person, d));
      }
    };
    const queue = admitDays.map((d) => ({ day: d, readmission: false }));
    while (queue.length && deathTime === null) {
      const next = queue.shift()!;
      const startDay = Math.max(next.day, busyUntil + 1);
      ambulatoryUntil(startDay);
      const stay = this.planStay(person, startDay, next.readmission, a);
      const result = this.inpatient(person, stay, a);
      busyUntil = stay.start + stay.los;
      lastDay = Math.max(lastDay, busyUntil);
      if (result.deathTime !== null) {
        deathTime = result.deathTime;
        break;
      }
      if (rng.chance(sigmoid(-3.1 + 0.7 * person.z + 0.5 * stay.acuity + 0.25 * person.burden))) {
        // Readmission within 30 days, earlier ones more likely.
        const gap = 1 + Math.floor(29 * Math.pow(rng.next(), 1.6));
        queue.push({ day: busyUntil + gap, readmission: true });
        queue.sort((x, y) => x.day - y.day);
      }
    }
    if (deathTime === null) ambulatoryUntil(Infinity);
    return { deathTime, lastDay };
  }

  // ------------------------------------------------------------------ ambulatory visits

  /** An outpatient visit on `day`; returns its last day. */
  private outpatient(p: Person, day: number): number {
    const rng = this.rng;
    const start = day * DAY + rng.int(8, 16) * 3600 + rng.int(0, 59) * MIN;
    const end = start + rng.int(15, 60) * MIN;
    const visitId = this.sink.visit(p.id, VISIT.outpatient, 'OP', start, end);
    const t = start + 5 * MIN;
    const ctx: LabContext = { acuity: 0.3 * p.z, reason: null, events: new Set() };
    for (const name of p.chronic) if (rng.chance(0.4)) this.condition(p.id, this.phenotypeCoding(name), t, null, visitId);
    for (const key of p.other) if (rng.chance(0.4)) this.condition(p.id, this.vocab.otherConditions.get(key)![this.site], t, null, visitId);
    let acute: string | null = null;
    if (rng.chance(0.3)) {
      const child = (day - p.birthDay) / 365 < 18;
      const options = child ? ['otitis', 'pharyngitis', 'strep', 'bronchitis', 'ankleSprain'] : ['pharyngitis', 'strep', 'bronchitis', 'ankleSprain', 'wristSprain'];
      acute = options[rng.int(0, options.length - 1)];
      this.condition(p.id, this.vocab.otherConditions.get(acute)![this.site], t, day + rng.int(5, 14), visitId);
    }
    if (rng.chance(0.85)) for (const key of ['heartRate', 'systolic', 'diastolic']) this.measure(p, key, t, visitId, ctx);
    if (rng.chance(0.3)) this.measure(p, 'pain', t, visitId, ctx);
    const labs = rng.chance(0.3);
    if (labs) {
      for (const key of OUTPATIENT_LABS) if (rng.chance(0.8)) this.measure(p, key, t + 10 * MIN, visitId, ctx);
      this.sink.procedure(p.id, this.vocab.procedures.get('bloodDraw')![this.site], t + 10 * MIN, visitId);
    }
    const diabetic = p.chronic.has('Diabetes mellitus without complication') || p.chronic.has('Diabetes mellitus with complications');
    if (rng.chance(diabetic ? 0.6 : 0.05)) this.measure(p, 'hba1c', t + 10 * MIN, visitId, ctx);
    if (acute === 'pharyngitis' || acute === 'strep') this.sink.measurement(p.id, this.vocab.valueless.get('throatCulture')!, t, null, null, '', visitId);
    for (const key of this.chronicDrugs(p)) if (rng.chance(0.5)) this.prescribe(p, key, end - 5 * MIN, day + 90, 90, 90, visitId);
    if (acute === 'strep' || acute === 'otitis' || (acute === 'bronchitis' && rng.chance(0.3))) this.prescribe(p, 'amoxicillin', end - 5 * MIN, day + 10, 20, 10, visitId);
    if (acute === 'ankleSprain' || acute === 'wristSprain' || (p.other.has('osteoarthritis') && rng.chance(0.3))) this.prescribe(p, 'ibuprofen', end - 5 * MIN, day + 14, 28, 14, visitId);
    if (rng.chance(0.6)) this.sink.procedure(p.id, this.vocab.procedures.get('exam')![this.site], t, visitId);
    if (rng.chance(0.2)) this.sink.procedure(p.id, this.vocab.procedures.get('medRec')![this.site], t, visitId);
    if ((p.chronic.has('Cardiac dysrhythmias') || p.chronic.has('Coronary atherosclerosis and related')) && rng.chance(0.25)) {
      this.sink.procedure(p.id, this.vocab.procedures.get('ecg')![this.site], t, visitId);
    }
    return day;
  }

  /** An emergency room visit that does not lead to admission; returns its last day. */
  private emergency(p: Person, day: number): number {
    const rng = this.rng;
    const start = day * DAY + rng.int(0, 23) * 3600 + rng.int(0, 59) * MIN;
    const end = start + rng.int(90, 480) * MIN;
    const visitId = this.sink.visit(p.id, VISIT.emergency, 'ER', start, end);
    const t = start + 10 * MIN;
    const ctx: LabContext = { acuity: 0.5 * p.z, reason: null, events: new Set() };
    const choice = rng.int(0, 3);
    if (choice === 0) this.condition(p.id, this.vocab.otherConditions.get(rng.chance(0.5) ? 'ankleSprain' : 'wristSprain')![this.site], t, null, visitId);
    else if (choice === 1) this.condition(p.id, this.phenotypeCoding('Other lower respiratory disease'), t, null, visitId);
    else if (choice === 2) this.condition(p.id, this.vocab.otherConditions.get('bronchitis')![this.site], t, null, visitId);
    else this.condition(p.id, this.vocab.otherConditions.get('pharyngitis')![this.site], t, null, visitId);
    for (const key of VITALS) this.measure(p, key, t, visitId, ctx);
    this.measure(p, 'pain', t, visitId, ctx);
    if (rng.chance(0.5)) for (const key of ADMISSION_PANEL) this.measure(p, key, t + 20 * MIN, visitId, ctx);
    if (choice === 0) this.prescribe(p, 'ibuprofen', end - 10 * MIN, day + 7, 14, 7, visitId);
    else if (rng.chance(0.5)) this.prescribe(p, 'acetaminophen', end - 10 * MIN, day + 3, 6, 3, visitId);
    if (choice === 1 || rng.chance(0.2)) this.sink.procedure(p.id, this.vocab.procedures.get('chestXray')![this.site], t + 30 * MIN, visitId);
    if (choice === 1 || rng.chance(0.2)) this.sink.procedure(p.id, this.vocab.procedures.get('ecg')![this.site], t + 15 * MIN, visitId);
    return Math.floor(end / DAY);
  }
}
