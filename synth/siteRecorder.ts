// How the synthetic site records clinical facts: which of its codes it writes for a phenotype,
// drug or lab, a lab value given the person and the visit, and the row helpers every visit kind
// uses. Two random streams per person: `rng` for the clinical facts and `pick` for how the site
// codes them, so site A and site B with the same seed describe the same patients with other codes.
import { Coding, LABS, LabDef, Site } from './catalogue';
import { Prng } from './prng';
import { CdmCsvSink } from './sink';
import { LabCoding, PhenotypeCodings, SynthVocabulary } from './vocabulary';
import { SECONDS_PER_DAY } from './writers';

export const DAY = SECONDS_PER_DAY;
export const MIN = 60;

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

/** In-hospital events: logit = base + 0.7 * acuity + extra; they start on day 1 or later, sometimes day 0. */
export const EVENTS = [
  { key: 'UTI', base: -3.0 },
  { key: 'Sepsis', base: -3.9 },
  { key: 'PNA', base: -3.6 },
  { key: 'MI', base: -4.3 },
  { key: 'Fx', base: -4.6 },
] as const;
export type EventKey = (typeof EVENTS)[number]['key'];

export const ADMISSION_PANEL = ['glucose', 'creatinine', 'sodium', 'potassium', 'bun', 'hemoglobin', 'wbc', 'platelets'];
export const VITALS = ['heartRate', 'systolic', 'diastolic', 'respRate', 'temperature', 'spo2'];

const LAB_DEFS = new Map<string, LabDef>(LABS.map((l) => [l.key, l]));

export interface Person {
  id: number;
  female: boolean;
  z: number;
  birthDay: number;
  chronic: Set<string>;
  other: Set<string>;
  burden: number;
}

/** What a person's labs are shifted by in one visit. */
export interface LabContext {
  acuity: number;
  reason: string | null;
  events: Set<EventKey>;
}

export abstract class SiteRecorder {
  protected rng!: Prng;
  protected pick!: Prng;

  constructor(
    protected readonly vocab: SynthVocabulary,
    protected readonly sink: CdmCsvSink,
    protected readonly seed: number,
    protected readonly site: Site,
  ) {}

  /** Starts a person's two random streams. */
  protected startPerson(personId: number): void {
    this.rng = new Prng(this.seed, personId, 1);
    this.pick = new Prng(this.seed, personId, this.site === 'A' ? 2 : 3);
  }

  // ------------------------------------------------------------------ codings

  protected phenotype(name: string): PhenotypeCodings {
    const p = this.vocab.phenotypeByName.get(name);
    if (!p) throw new Error(`synthetic catalogue: unknown phenotype ${name}`);
    return p;
  }

  /** How this site writes a phenotype diagnosis: mostly its usual code, sometimes another of the group. */
  protected phenotypeCoding(name: string): Coding {
    const p = this.phenotype(name);
    const extra = p.extra[this.site];
    if (extra.length && this.pick.chance(0.15)) return this.pick.pick(extra);
    return this.pick.pick(p.main[this.site]);
  }

  protected drugCoding(key: string): Coding {
    return this.pick.pick(this.vocab.drugs.get(key)![this.site]);
  }

  protected lab(key: string): LabCoding {
    return this.vocab.labs.get(key)!;
  }

  // ------------------------------------------------------------------ row helpers

  /** A time on day `k` of a visit running from `start` to `end` (seconds), to the minute. */
  protected timeIn(start: number, end: number, k: number): number {
    const dayStart = (Math.floor(start / DAY) + k) * DAY;
    const lo = Math.max(start, dayStart);
    const hi = Math.min(end, dayStart + DAY - MIN);
    if (hi <= lo) return lo;
    return lo + MIN * this.rng.int(0, Math.floor((hi - lo) / MIN));
  }

  protected measure(p: Person, key: string, t: number, visitId: number, ctx: LabContext): void {
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
  protected condition(personId: number, c: Coding, t: number, endDay: number | null, visitId: number): void {
    const unmapped = this.site === 'B' && c.sourceConceptId !== c.conceptId && this.pick.chance(0.08);
    this.sink.condition(personId, unmapped ? { ...c, conceptId: 0 } : c, t, endDay, visitId);
  }

  protected prescribe(p: Person, key: string, t: number, endDay: number, quantity: number, daysSupply: number, visitId: number): void {
    this.sink.drug(p.id, this.drugCoding(key), t, endDay, quantity, daysSupply, visitId);
  }

  protected chronicDrugs(p: Person): string[] {
    const out = new Set<string>();
    for (const c of [...p.chronic, ...p.other]) for (const d of CHRONIC_DRUGS[c] ?? []) out.add(d);
    return [...out];
  }
}
