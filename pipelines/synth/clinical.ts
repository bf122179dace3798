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
import { CARDIAC_ARREST, Coding, ETHNICITIES, GENDER, LABS, LabDef, RACES, Site, VISIT, presentingComplaint } from './catalogue';
import { Prng, sigmoid } from './prng';
import { CdmCsvSink } from './sink';
import { LabCoding, PhenotypeCodings, SynthVocabulary } from './vocabulary';
import { SECONDS_PER_DAY, dayOf } from './writers';

const DAY = SECONDS_PER_DAY;
const MIN = 60;
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

/** Drugs a chronic condition is treated with. */
const CHRONIC_DRUGS: Record<string, string[]> = {
  'Essential hypertension': ['lisinopril', 'amlodipine'],
  'Hypertension with complications': ['lisinopril', 'amlodipine'],
  'Disorders of lipid metabolism': ['atorvastatin'],
  'Diabetes mellitus without complication': ['metformin'],
  'Diabetes mellitus with complications': ['metformin'],
  'Coronary atherosclerosis and related': ['aspirin', 'clopidogrel', 'metoprolol'],
  'Congestive heart failure; nonhypertensive': ['furosemide', 'metoprolol'],
  'Cardiac dysrhythmias': ['warfarin', 'metoprolol'],
  'Chronic obstructive pulmonary disease': ['albuterol'],
  hypothyroidism: ['levothyroxine'],
  asthma: ['albuterol'],
};

/** Reasons for an admission: the principal diagnosis (a phenotype) and how it shifts the stay. */
interface Reason {
  phenotype: string | null;
  weight: number;
  requires?: string;
  acuity: number;
  los: number;
  death: number;
}
const REASONS: Reason[] = [
  { phenotype: 'Pneumonia', weight: 14, acuity: 0.2, los: 0.1, death: 0.3 },
  { phenotype: 'Septicemia (except in labor)', weight: 8, acuity: 0.7, los: 0.35, death: 1.0 },
  { phenotype: 'Acute myocardial infarction', weight: 7, acuity: 0.4, los: 0.1, death: 0.6 },
  { phenotype: 'Acute cerebrovascular disease', weight: 6, acuity: 0.4, los: 0.3, death: 0.7 },
  { phenotype: 'Gastrointestinal hemorrhage', weight: 6, acuity: 0.2, los: 0, death: 0.3 },
  { phenotype: 'Acute and unspecified renal failure', weight: 5, acuity: 0.3, los: 0.15, death: 0.4 },
  { phenotype: 'Respiratory failure; insufficiency; arrest', weight: 4, acuity: 0.8, los: 0.4, death: 1.1 },
  { phenotype: 'Fluid and electrolyte disorders', weight: 5, acuity: 0, los: -0.2, death: -0.2 },
  { phenotype: 'Complications of surgical/medical care', weight: 5, acuity: 0.1, los: 0.3, death: 0 },
  { phenotype: 'Other lower respiratory disease', weight: 8, acuity: -0.2, los: -0.3, death: -0.4 },
  { phenotype: 'Pleurisy; pneumothorax; pulmonary collapse', weight: 3, acuity: 0, los: 0.1, death: 0 },
  { phenotype: 'Congestive heart failure; nonhypertensive', weight: 12, requires: 'Congestive heart failure; nonhypertensive', acuity: 0.3, los: 0.1, death: 0.4 },
  { phenotype: 'Chronic obstructive pulmonary disease', weight: 10, requires: 'Chronic obstructive pulmonary disease', acuity: 0.2, los: 0, death: 0.2 },
  { phenotype: 'Coronary atherosclerosis and related', weight: 10, requires: 'Coronary atherosclerosis and related', acuity: -0.3, los: -0.4, death: -0.8 },
  { phenotype: null, weight: 12, acuity: -0.6, los: -0.3, death: -1.0 },
];

/** In-hospital events: logit = base + 0.7 * acuity + extra; they start on day 1 or later, sometimes day 0. */
const EVENTS = [
  { key: 'UTI', base: -3.0 },
  { key: 'Sepsis', base: -3.9 },
  { key: 'PNA', base: -3.6 },
  { key: 'MI', base: -4.3 },
  { key: 'Fx', base: -4.6 },
] as const;
type EventKey = (typeof EVENTS)[number]['key'];

const ADMISSION_PANEL = ['glucose', 'creatinine', 'sodium', 'potassium', 'bun', 'hemoglobin', 'wbc', 'platelets'];
const DAILY_PANEL = ['creatinine', 'sodium', 'potassium', 'hemoglobin', 'wbc'];
const VITALS = ['heartRate', 'systolic', 'diastolic', 'respRate', 'temperature', 'spo2'];
const OUTPATIENT_LABS = ['glucose', 'creatinine', 'sodium', 'potassium', 'hemoglobin', 'wbc', 'platelets'];

const LAB_DEFS = new Map<string, LabDef>(LABS.map((l) => [l.key, l]));

interface Person {
  id: number;
  female: boolean;
  z: number;
  birthDay: number;
  chronic: Set<string>;
  other: Set<string>;
  burden: number;
}

interface Stay {
  start: number;
  los: number;
  acuity: number;
  viaEr: boolean;
  readmission: boolean;
}

/** What a person's labs are shifted by in one visit. */
interface LabContext {
  acuity: number;
  reason: string | null;
  events: Set<EventKey>;
}

export class ClinicalProcess {
  private rng!: Prng;
  private pick!: Prng;

  constructor(
    private readonly vocab: SynthVocabulary,
    private readonly sink: CdmCsvSink,
    private readonly seed: number,
    private readonly site: Site,
  ) {}

  /** Generate every row of one person. */
  person(personId: number): void {
    this.rng = new Prng(this.seed, personId, 1);
    this.pick = new Prng(this.seed, personId, this.site === 'A' ? 2 : 3);
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

    // Admissions: a Poisson process over the observation period, plus readmissions after discharges.
    const years = (obsEnd - obsStart) / 365;
    const admitRate = Math.exp(-2.4 + 0.8 * z + 0.35 * Math.max(a, -1.5) + 0.3 * person.burden);
    const admitDays: number[] = [];
    for (let i = rng.poisson(admitRate * years); i > 0; i--) admitDays.push(rng.int(obsStart, obsEnd));
    admitDays.sort((x, y) => x - y);

    // Outpatient and emergency visits.
    const nChronic = person.chronic.size + person.other.size;
    const opDays: number[] = [];
    for (let i = rng.poisson((1.2 + 0.6 * nChronic + (age > 65 ? 0.8 : 0)) * years); i > 0; i--) opDays.push(rng.int(obsStart, obsEnd));
    const erDays: number[] = [];
    for (let i = rng.poisson((0.15 + 0.05 * Math.max(0, z + 1)) * years); i > 0; i--) erDays.push(rng.int(obsStart, obsEnd));
    const ambulatory: Array<[number, 'op' | 'er']> = [...opDays.map((d) => [d, 'op'] as [number, 'op']), ...erDays.map((d) => [d, 'er'] as [number, 'er'])];
    ambulatory.sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));

    let amb = 0;
    let lastDay = obsStart;
    let deathTime: number | null = null;
    let busyUntil = -Infinity;
    const queue = admitDays.map((d) => ({ day: d, readmission: false }));
    while (queue.length && deathTime === null) {
      const next = queue.shift()!;
      const startDay = Math.max(next.day, busyUntil + 1);
      // Ambulatory visits before this admission.
      while (amb < ambulatory.length && ambulatory[amb][0] < startDay) {
        const [d, kind] = ambulatory[amb++];
        if (d <= busyUntil) continue;
        lastDay = Math.max(lastDay, kind === 'op' ? this.outpatient(person, d) : this.emergency(person, d));
      }
      const stay = this.planStay(person, startDay, next.readmission, a);
      const result = this.inpatient(person, stay, a);
      busyUntil = stay.start + stay.los;
      lastDay = Math.max(lastDay, busyUntil);
      if (result.deathTime !== null) {
        deathTime = result.deathTime;
        break;
      }
      if (rng.chance(sigmoid(-3.1 + 0.7 * z + 0.5 * stay.acuity + 0.25 * person.burden))) {
        // Readmission within 30 days, earlier ones more likely.
        const gap = 1 + Math.floor(29 * Math.pow(rng.next(), 1.6));
        queue.push({ day: busyUntil + gap, readmission: true });
        queue.sort((x, y) => x.day - y.day);
      }
    }
    if (deathTime === null) {
      while (amb < ambulatory.length) {
        const [d, kind] = ambulatory[amb++];
        if (d <= busyUntil) continue;
        lastDay = Math.max(lastDay, kind === 'op' ? this.outpatient(person, d) : this.emergency(person, d));
      }
    }
    const endDay = deathTime !== null ? Math.floor(deathTime / DAY) : Math.max(obsEnd, lastDay);
    this.sink.observationPeriod(personId, obsStart, endDay);
  }

  // ------------------------------------------------------------------ codings

  private phenotype(name: string): PhenotypeCodings {
    const p = this.vocab.phenotypeByName.get(name);
    if (!p) throw new Error(`synthetic catalogue: unknown phenotype ${name}`);
    return p;
  }

  /** How this site writes a phenotype diagnosis: mostly its usual code, sometimes another of the group. */
  private phenotypeCoding(name: string): Coding {
    const p = this.phenotype(name);
    const extra = p.extra[this.site];
    if (extra.length && this.pick.chance(0.15)) return this.pick.pick(extra);
    return this.pick.pick(p.main[this.site]);
  }

  private drugCoding(key: string): Coding {
    return this.pick.pick(this.vocab.drugs.get(key)![this.site]);
  }

  private lab(key: string): LabCoding {
    return this.vocab.labs.get(key)!;
  }

  // ------------------------------------------------------------------ row helpers

  /** A time on day `k` of a visit running from `start` to `end` (seconds), to the minute. */
  private timeIn(start: number, end: number, k: number): number {
    const dayStart = (Math.floor(start / DAY) + k) * DAY;
    const lo = Math.max(start, dayStart);
    const hi = Math.min(end, dayStart + DAY - MIN);
    if (hi <= lo) return lo;
    return lo + MIN * this.rng.int(0, Math.floor((hi - lo) / MIN));
  }

  private measure(p: Person, key: string, t: number, visitId: number, ctx: LabContext): void {
    const def = LAB_DEFS.get(key)!;
    const lab = this.lab(key);
    const rng = this.rng;
    let v = def.mean + def.sd * (rng.normal() * 0.9 + def.acuity * ctx.acuity);
    const chronic = p.chronic;
    switch (key) {
      case 'glucose':
        if (chronic.has('Diabetes mellitus without complication') || chronic.has('Diabetes mellitus with complications')) v += 45 + 25 * rng.normal();
        break;
      case 'hba1c':
        if (chronic.has('Diabetes mellitus without complication') || chronic.has('Diabetes mellitus with complications')) v = 7.6 + 1.2 * rng.normal();
        break;
      case 'creatinine':
        if (chronic.has('Chronic kidney disease')) v *= 2.1;
        if (ctx.reason === 'Acute and unspecified renal failure') v *= 2.4;
        break;
      case 'bun':
        if (chronic.has('Chronic kidney disease') || ctx.reason === 'Acute and unspecified renal failure') v *= 2;
        break;
      case 'hemoglobin':
        if (p.female) v -= 1.2;
        if (ctx.reason === 'Gastrointestinal hemorrhage') v -= 3;
        break;
      case 'wbc':
        if (ctx.events.has('Sepsis') || ctx.events.has('PNA') || ctx.reason === 'Pneumonia' || ctx.reason === 'Septicemia (except in labor)') v += 6 + 2 * rng.normal();
        break;
      case 'temperature':
        if (ctx.events.has('Sepsis') || ctx.events.has('PNA') || ctx.events.has('UTI') || ctx.reason === 'Pneumonia') v += 1.1;
        break;
      case 'sodium':
        if (ctx.reason === 'Fluid and electrolyte disorders') v -= 8;
        break;
      case 'spo2':
        if (chronic.has('Chronic obstructive pulmonary disease')) v -= 3;
        if (ctx.reason === 'Respiratory failure; insufficiency; arrest') v -= 8;
        break;
      case 'systolic':
        if (chronic.has('Essential hypertension') || chronic.has('Hypertension with complications')) v += 14;
        break;
      case 'troponin':
        v = Math.abs(v);
        if (ctx.events.has('MI') || ctx.reason === 'Acute myocardial infarction') v *= 40 * Math.exp(rng.normal());
        break;
    }
    v = Math.min(def.max, Math.max(def.min, v));
    this.sink.measurement(p.id, lab.coding[this.site], t, v.toFixed(def.decimals), lab.unitConceptId, lab.unitSource, visitId);
  }

  /**
   * Site B's ETL left condition_concept_id at 0 for some diagnoses and kept only the source code,
   * which "Maps to" the standard concept: readers must normalize through the vocabulary.
   */
  private condition(personId: number, c: Coding, t: number, endDay: number | null, visitId: number): void {
    const unmapped = this.site === 'B' && c.sourceConceptId !== c.conceptId && this.pick.chance(0.08);
    this.sink.condition(personId, unmapped ? { ...c, conceptId: 0 } : c, t, endDay, visitId);
  }

  private prescribe(p: Person, key: string, t: number, endDay: number, quantity: number, daysSupply: number, visitId: number): void {
    this.sink.drug(p.id, this.drugCoding(key), t, endDay, quantity, daysSupply, visitId);
  }

  private chronicDrugs(p: Person): string[] {
    const out = new Set<string>();
    for (const c of [...p.chronic, ...p.other]) for (const d of CHRONIC_DRUGS[c] ?? []) out.add(d);
    return [...out];
  }

  // ------------------------------------------------------------------ inpatient stays

  private planStay(p: Person, startDay: number, readmission: boolean, a: number): Stay {
    const rng = this.rng;
    const acuity = 0.8 * p.z + 0.25 * a + 0.8 * rng.normal() + (readmission ? 0.3 : 0);
    const viaEr = rng.chance(0.6);
    return { start: startDay, los: 0, acuity, viaEr, readmission };
  }

  private inpatient(p: Person, stay: Stay, a: number): { deathTime: number | null } {
    const rng = this.rng;
    const eligible = REASONS.filter((r) => !r.requires || p.chronic.has(r.requires));
    const reason = eligible[rng.weighted(eligible.map((r) => r.weight))];
    stay.acuity += reason.acuity;
    const s = stay.acuity;
    // Length of stay in days (end date - start date): skewed, median about 3, 0 for same-day stays.
    const los = rng.chance(0.04) ? 0 : Math.min(30, Math.max(1, Math.round(Math.exp(1.0 + 0.3 * s + reason.los + 0.55 * rng.normal()))));
    const events = new Map<EventKey, number>();
    if (los >= 2) {
      for (const e of EVENTS) {
        let logit = e.base + 0.7 * s;
        if (e.key === 'UTI' && p.female) logit += 0.5;
        if (e.key === 'MI' && p.chronic.has('Coronary atherosclerosis and related')) logit += 1.0;
        if (e.key === 'Fx') logit += 0.8 * a;
        if (rng.chance(sigmoid(logit))) events.set(e.key, rng.chance(0.2) ? 0 : rng.int(1, los - 1));
      }
    }
    const dies = rng.chance(sigmoid(-5.1 + 1.1 * s + 0.45 * a + 0.8 * events.size + reason.death));

    const startHour = stay.viaEr ? rng.int(0, 23) : rng.int(7, 11);
    const start = stay.start * DAY + startHour * 3600 + rng.int(0, 59) * MIN;
    const lastDay = stay.start + los;
    let end: number;
    if (dies) {
      const lo = los === 0 ? start + 30 * MIN : lastDay * DAY;
      end = lo + MIN * rng.int(0, Math.max(0, Math.floor((lastDay * DAY + DAY - MIN - lo) / MIN)));
    } else {
      end = lastDay * DAY + rng.int(10, 18) * 3600 + rng.int(0, 59) * MIN;
      if (end <= start) end = start + 4 * 3600;
    }
    // A late same-day stay may end after midnight: the stay runs to the day it ends.
    const endDay = Math.floor(end / DAY);
    stay.los = endDay - stay.start;
    // Site A codes admissions through the emergency room as 262; site B as plain inpatient visits.
    const visitConcept = stay.viaEr && this.site === 'A' ? VISIT.emergencyInpatient : VISIT.inpatient;
    const visitId = this.sink.visit(p.id, visitConcept, visitConcept === VISIT.inpatient ? 'IP' : 'ERIP', start, end);

    // The presenting complaint and a second symptom first, then the diagnoses, each at its own
    // time (record ranks 3 and on, as the phenotype task reads them), then events on their day.
    const admitDx = start + MIN * rng.int(5, 90);
    const complaint = presentingComplaint(reason.phenotype);
    this.condition(p.id, this.vocab.otherConditions.get(complaint)![this.site], Math.min(admitDx, end), null, visitId);
    const second = rng.chance(0.5) ? 'cough' : rng.chance(0.5) ? 'fever' : 'dyspnea';
    this.condition(p.id, this.vocab.otherConditions.get(second === complaint ? 'syncope' : second)![this.site], Math.min(admitDx + MIN * rng.int(10, 50), end), null, visitId);
    let dxTime = Math.min(admitDx + MIN * rng.int(90, 240), end);
    const nextDx = () => {
      const t = dxTime;
      dxTime = Math.min(dxTime + MIN * rng.int(3, 20), end);
      return t;
    };
    let cause = 0;
    if (reason.phenotype) {
      const c = this.phenotypeCoding(reason.phenotype);
      cause = c.conceptId;
      this.condition(p.id, c, nextDx(), endDay, visitId);
    }
    for (const name of p.chronic) if (rng.chance(0.7)) this.condition(p.id, this.phenotypeCoding(name), nextDx(), null, visitId);
    for (const key of p.other) if (rng.chance(0.4)) this.condition(p.id, this.vocab.otherConditions.get(key)![this.site], nextDx(), null, visitId);
    if (s > 1 && rng.chance(0.35)) {
      const extra = ['Acute and unspecified renal failure', 'Fluid and electrolyte disorders', 'Respiratory failure; insufficiency; arrest'][rng.int(0, 2)];
      if (extra !== reason.phenotype) this.condition(p.id, this.phenotypeCoding(extra), nextDx(), endDay, visitId);
    }
    const eventTimes = new Map<EventKey, number>();
    for (const [key, day] of events) {
      const t = this.timeIn(start, end, day);
      eventTimes.set(key, t);
      const c = this.vocab.events.get(key)![this.site];
      if (!cause && dies) cause = c.conceptId;
      this.condition(p.id, c, t, endDay, visitId);
    }

    // Labs and vital signs: a full panel at admission, then daily, drifting with the course.
    const trend = dies ? 1.0 : -0.4;
    const ctx: LabContext = { acuity: s, reason: reason.phenotype, events: new Set() };
    for (let d = 0; d <= stay.los; d++) {
      ctx.acuity = s + (stay.los > 0 ? (trend * d) / stay.los : 0);
      ctx.events.clear();
      for (const [key, t] of eventTimes) if (t <= (stay.start + d + 1) * DAY) ctx.events.add(key);
      const t = this.timeIn(start, end, d);
      const panel = d === 0 ? ADMISSION_PANEL : rng.chance(0.75) ? DAILY_PANEL : [];
      for (const key of panel) this.measure(p, key, t, visitId, ctx);
      if (d === 0 && rng.chance(0.5)) this.measure(p, 'albumin', t, visitId, ctx);
      if (d === 0 && (reason.phenotype === 'Acute myocardial infarction' || rng.chance(0.25))) this.measure(p, 'troponin', t, visitId, ctx);
      const tv = this.timeIn(start, end, d);
      for (const key of VITALS) this.measure(p, key, tv, visitId, ctx);
      if (rng.chance(0.5)) this.measure(p, 'pain', tv, visitId, ctx);
    }
    if (events.has('MI')) {
      ctx.events.add('MI');
      this.measure(p, 'troponin', eventTimes.get('MI')!, visitId, ctx);
    }
    if (reason.phenotype === 'Septicemia (except in labor)' || events.has('Sepsis')) {
      this.sink.measurement(p.id, this.vocab.valueless.get('bloodCulture')!, eventTimes.get('Sepsis') ?? dxTime, null, null, '', visitId);
    }
    if (events.has('UTI')) this.sink.measurement(p.id, this.vocab.valueless.get('urineCulture')!, eventTimes.get('UTI')!, null, null, '', visitId);

    // Drugs: supportive care, the usual chronic drugs, and treatment of what happened.
    const admitRx = Math.min(start + MIN * rng.int(30, 240), end);
    if (rng.chance(0.7)) this.prescribe(p, 'saline', admitRx, endDay, 1, 1, visitId);
    if (los >= 1 && rng.chance(0.6)) this.prescribe(p, 'heparin', admitRx, endDay, los * 3, los, visitId);
    if (rng.chance(0.5)) this.prescribe(p, 'acetaminophen', admitRx, endDay, 2 * (los + 1), los + 1, visitId);
    if (rng.chance(0.25)) this.prescribe(p, 'ondansetron', admitRx, endDay, 2, 1, visitId);
    if (rng.chance(0.2 + 0.1 * Math.max(0, s))) this.prescribe(p, 'morphine', admitRx, endDay, 2, 1, visitId);
    for (const key of this.chronicDrugs(p)) if (rng.chance(0.8)) this.prescribe(p, key, admitRx, endDay, los + 1, los + 1, visitId);
    if (reason.phenotype === 'Septicemia (except in labor)') {
      this.prescribe(p, 'piptazo', admitRx, endDay, 3 * (los + 1), los + 1, visitId);
      this.prescribe(p, 'vancomycin', admitRx, endDay, 2 * (los + 1), los + 1, visitId);
    }
    if (reason.phenotype === 'Pneumonia') this.prescribe(p, s > 1 ? 'piptazo' : 'ceftriaxone', admitRx, endDay, los + 1, los + 1, visitId);
    const evDay = (k: EventKey) => Math.floor(eventTimes.get(k)! / DAY);
    if (events.has('Sepsis')) this.prescribe(p, 'piptazo', this.timeIn(start, end, evDay('Sepsis') - stay.start), endDay, 3, 1, visitId);
    if (events.has('PNA')) this.prescribe(p, 'ceftriaxone', this.timeIn(start, end, evDay('PNA') - stay.start), endDay, 1, 1, visitId);
    if (events.has('UTI')) this.prescribe(p, rng.chance(0.5) ? 'nitrofurantoin' : 'ceftriaxone', this.timeIn(start, end, evDay('UTI') - stay.start), endDay, 4, 1, visitId);
    if (events.has('MI')) this.prescribe(p, 'aspirin', eventTimes.get('MI')!, endDay, 1, 1, visitId);

    // Procedures.
    const proc = (key: string, t: number) => this.sink.procedure(p.id, this.vocab.procedures.get(key)![this.site], t, visitId);
    const admitPx = Math.min(start + MIN * rng.int(10, 180), end);
    if (rng.chance(0.8)) proc('bloodDraw', admitPx);
    if (rng.chance(0.5)) proc('ecg', admitPx);
    if (rng.chance(reason.phenotype === 'Pneumonia' ? 0.95 : 0.35)) proc('chestXray', admitPx);
    if (rng.chance(0.5)) proc('medRec', admitPx);
    if (reason.phenotype === 'Respiratory failure; insufficiency; arrest' ? rng.chance(0.6) : s > 2 && rng.chance(0.3)) proc('intubation', admitPx);
    if ((reason.phenotype === 'Acute myocardial infarction' && rng.chance(0.6)) || (reason.phenotype === null && p.chronic.has('Coronary atherosclerosis and related') && rng.chance(0.5))) {
      proc('pci', this.timeIn(start, end, Math.min(1, los)));
    }
    if (events.has('MI') && rng.chance(0.5)) proc('pci', eventTimes.get('MI')!);
    if (reason.phenotype === 'Gastrointestinal hemorrhage') {
      if (rng.chance(0.7)) proc('endoscopy', this.timeIn(start, end, Math.min(1, los)));
      if (rng.chance(0.6)) proc('transfusion', admitPx);
    }
    if (reason.phenotype === 'Acute cerebrovascular disease') proc('ctHead', admitPx);
    if (reason.phenotype === 'Acute and unspecified renal failure' && rng.chance(0.3)) proc('dialysis', this.timeIn(start, end, Math.min(1, los)));
    if (events.has('Fx')) {
      proc('immobilization', eventTimes.get('Fx')!);
      if (rng.chance(0.6)) proc('hipFixation', this.timeIn(start, end, Math.min(stay.los, evDay('Fx') - stay.start + 1)));
    }

    if (dies) {
      this.sink.death(p.id, end, cause || CARDIAC_ARREST.id);
      return { deathTime: end };
    }
    return { deathTime: null };
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
