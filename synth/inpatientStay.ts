// Inpatient stays of the synthetic hospital: the reason for admission and the stay's acuity drive
// its length, in-hospital events and death; then the rows of the stay: diagnoses, labs and vital
// signs drifting with the course, drugs and procedures.
import { CARDIAC_ARREST, VISIT, presentingComplaint } from './catalogue';
import { sigmoid } from './prng';
import { ADMISSION_PANEL, DAY, EVENTS, EventKey, LabContext, MIN, Person, SiteRecorder, VITALS } from './siteRecorder';

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

const DAILY_PANEL = ['creatinine', 'sodium', 'potassium', 'hemoglobin', 'wbc'];

export interface Stay {
  start: number;
  los: number;
  acuity: number;
  viaEr: boolean;
  readmission: boolean;
}

/** What the stay's course decided before any row is written. */
interface StayCourse {
  reason: Reason;
  /** The stay's acuity with the reason's shift. */
  acuity: number;
  /** Planned length in days (end date - start date). */
  los: number;
  /** In-hospital events and the day of the stay each starts on. */
  events: Map<EventKey, number>;
  dies: boolean;
}

interface StayVisit {
  start: number;
  end: number;
  endDay: number;
  visitId: number;
}

interface StayDiagnoses {
  /** The cause of death if the person dies: the principal diagnosis or the first event. */
  cause: number;
  eventTimes: Map<EventKey, number>;
  /** The time after the last diagnosis. */
  dxTime: number;
}

export abstract class InpatientStays extends SiteRecorder {
  protected planStay(p: Person, startDay: number, readmission: boolean, a: number): Stay {
    const rng = this.rng;
    const acuity = 0.8 * p.z + 0.25 * a + 0.8 * rng.normal() + (readmission ? 0.3 : 0);
    const viaEr = rng.chance(0.6);
    return { start: startDay, los: 0, acuity, viaEr, readmission };
  }

  /** Writes the rows of one stay; `stay.los` becomes its length in days. */
  protected inpatient(p: Person, stay: Stay, a: number): { deathTime: number | null } {
    const course = this.stayCourse(p, stay, a);
    const visit = this.stayVisit(p, stay, course);
    const dx = this.stayDiagnoses(p, course, visit);
    this.stayMeasurements(p, stay, course, visit, dx);
    this.stayDrugs(p, stay, course, visit, dx.eventTimes);
    this.stayProcedures(p, stay, course, visit, dx.eventTimes);
    if (course.dies) {
      this.sink.death(p.id, visit.end, dx.cause || CARDIAC_ARREST.id);
      return { deathTime: visit.end };
    }
    return { deathTime: null };
  }

  private stayCourse(p: Person, stay: Stay, a: number): StayCourse {
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
    return { reason, acuity: s, los, events, dies };
  }

  private stayVisit(p: Person, stay: Stay, course: StayCourse): StayVisit {
    const rng = this.rng;
    const { los, dies } = course;
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
    return { start, end, endDay, visitId };
  }

  /**
   * The presenting complaint and a second symptom first, then the diagnoses, each at its own
   * time (record ranks 3 and on, as the phenotype task reads them), then events on their day.
   */
  private stayDiagnoses(p: Person, course: StayCourse, visit: StayVisit): StayDiagnoses {
    const rng = this.rng;
    const { reason, acuity: s, dies } = course;
    const { start, end, endDay, visitId } = visit;
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
    for (const [key, day] of course.events) {
      const t = this.timeIn(start, end, day);
      eventTimes.set(key, t);
      const c = this.vocab.events.get(key)![this.site];
      if (!cause && dies) cause = c.conceptId;
      this.condition(p.id, c, t, endDay, visitId);
    }
    return { cause, eventTimes, dxTime };
  }

  /** Labs and vital signs: a full panel at admission, then daily, drifting with the course. */
  private stayMeasurements(p: Person, stay: Stay, course: StayCourse, visit: StayVisit, dx: StayDiagnoses): void {
    const rng = this.rng;
    const { reason, acuity: s, events } = course;
    const { start, end, visitId } = visit;
    const { eventTimes } = dx;
    const trend = course.dies ? 1.0 : -0.4;
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
      this.sink.measurement(p.id, this.vocab.valueless.get('bloodCulture')!, eventTimes.get('Sepsis') ?? dx.dxTime, null, null, '', visitId);
    }
    if (events.has('UTI')) this.sink.measurement(p.id, this.vocab.valueless.get('urineCulture')!, eventTimes.get('UTI')!, null, null, '', visitId);
  }

  /** Drugs: supportive care, the usual chronic drugs, and treatment of what happened. */
  private stayDrugs(p: Person, stay: Stay, course: StayCourse, visit: StayVisit, eventTimes: Map<EventKey, number>): void {
    const rng = this.rng;
    const { reason, acuity: s, los, events } = course;
    const { start, end, endDay, visitId } = visit;
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
  }

  private stayProcedures(p: Person, stay: Stay, course: StayCourse, visit: StayVisit, eventTimes: Map<EventKey, number>): void {
    const rng = this.rng;
    const { reason, acuity: s, los, events } = course;
    const { start, end, visitId } = visit;
    const proc = (key: string, t: number) => this.sink.procedure(p.id, this.vocab.procedures.get(key)![this.site], t, visitId);
    const evDay = (k: EventKey) => Math.floor(eventTimes.get(k)! / DAY);
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
  }
}
