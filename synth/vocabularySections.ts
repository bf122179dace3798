// The sections of the synthetic vocabulary, one per domain, each adding its concepts and
// relationships to one registry and returning the codings the sites use. Concepts without a
// catalogue id take the registry's next id, so the sections run in a fixed order (buildVocabulary).
import {
  CARDIAC_ARREST, Coding, ConceptRegistry, DRUGS, DrugForm, ETHNICITIES, EventDef, GENDER, IN_HOSPITAL_EVENTS, LABS,
  OTHER_CONDITIONS, PHENOTYPES, PROCEDURES, RACES, ROOT_CLINICAL_FINDING, Site, TYPE_EHR, UNITS, UnitKey,
  SNOMED_CODES, VALUELESS_MEASUREMENTS, VISIT, dottedIcd9, icd9ConceptId,
} from './catalogue';
import type { LabCoding, PhenotypeCodings } from './vocabulary';

/** The registry and the code counters shared by the sections. */
export class VocabularyBuilder {
  readonly reg = new ConceptRegistry();
  // Made-up SNOMED-style codes for local concepts.
  private snomedLocal = 900_000_001;

  snomed(n: { id?: number; name: string }, code?: string, domain = 'Condition', cls = 'Clinical Finding'): number {
    const reg = this.reg;
    if (n.id !== undefined && reg.concepts.has(n.id)) return reg.add({ ...reg.concepts.get(n.id)!, name: n.name });
    const known = n.id !== undefined ? SNOMED_CODES[n.id] : undefined;
    return reg.add({ id: n.id, name: n.name, domain, vocabulary: 'SNOMED', conceptClass: cls, standard: 'S', code: code ?? known ?? String(this.snomedLocal++) });
  }

  coding(conceptId: number, sourceConceptId: number): Coding {
    return { conceptId, sourceConceptId, sourceValue: this.reg.concepts.get(sourceConceptId)!.code };
  }

  icd9(code: string, name: string): number {
    const digits = code.replace(/^[VE]/, '').length + (/^[VE]/.test(code) ? 1 : 0);
    return this.reg.add({
      id: icd9ConceptId(code), name, domain: 'Condition', vocabulary: 'ICD9CM',
      conceptClass: `${Math.min(digits, 5)}-dig billing code`, standard: '', code: dottedIcd9(code),
    });
  }

  mapsTo(source: number, target: number): void {
    this.reg.relate(source, target, 'Maps to');
  }
}

/** Metadata, type, visit, gender, race, ethnicity and unit concepts. */
export function addFixedConcepts(b: VocabularyBuilder): void {
  const reg = b.reg;
  reg.add({ id: 0, name: 'No matching concept', domain: 'Metadata', vocabulary: 'None', conceptClass: 'Undefined', standard: '', code: 'No matching concept' });
  reg.add({ id: TYPE_EHR, name: 'EHR', domain: 'Type Concept', vocabulary: 'Type Concept', conceptClass: 'Type Concept', standard: 'S', code: 'OMOP4976890' });
  const visit = (id: number, name: string, code: string) =>
    reg.add({ id, name, domain: 'Visit', vocabulary: 'Visit', conceptClass: 'Visit', standard: 'S', code });
  visit(VISIT.inpatient, 'Inpatient Visit', 'IP');
  visit(VISIT.outpatient, 'Outpatient Visit', 'OP');
  visit(VISIT.emergency, 'Emergency Room Visit', 'ER');
  visit(VISIT.emergencyInpatient, 'Emergency Room and Inpatient Visit', 'ERIP');
  reg.add({ id: GENDER.male, name: 'MALE', domain: 'Gender', vocabulary: 'Gender', conceptClass: 'Gender', standard: 'S', code: 'M' });
  reg.add({ id: GENDER.female, name: 'FEMALE', domain: 'Gender', vocabulary: 'Gender', conceptClass: 'Gender', standard: 'S', code: 'F' });
  const raceNames: Record<number, [string, string]> = { 8527: ['White', '5'], 8516: ['Black or African American', '3'], 8515: ['Asian', '2'] };
  for (const id of RACES) reg.add({ id, name: raceNames[id][0], domain: 'Race', vocabulary: 'Race', conceptClass: 'Race', standard: 'S', code: raceNames[id][1] });
  const ethNames: Record<number, [string, string]> = { 38003564: ['Not Hispanic or Latino', 'Not Hispanic'], 38003563: ['Hispanic or Latino', 'Hispanic'] };
  for (const id of ETHNICITIES) reg.add({ id, name: ethNames[id][0], domain: 'Ethnicity', vocabulary: 'Ethnicity', conceptClass: 'Ethnicity', standard: 'S', code: ethNames[id][1] });
  for (const u of Object.values(UNITS)) reg.add({ id: u.id, name: u.name, domain: 'Unit', vocabulary: 'UCUM', conceptClass: 'Unit', standard: 'S', code: u.code });
}

export interface ConditionCodings {
  phenotypes: PhenotypeCodings[];
  otherConditions: Map<string, Record<Site, Coding>>;
  events: Map<EventDef['key'], Record<Site, Coding>>;
}

/**
 * Phenotypes (site A's and site B's ICD-9 codes mapping to related SNOMED concepts, plus the
 * csv's other codes split between the sites), other conditions and the in-hospital events.
 */
export function addConditions(b: VocabularyBuilder, csv: { codes: Map<string, string[]> } | null, csvPath: string | null): ConditionCodings {
  const reg = b.reg;
  const root = b.snomed({ id: ROOT_CLINICAL_FINDING, name: 'Clinical finding' }, '404684003');
  const builtinIcd9 = new Set<string>();
  for (const p of PHENOTYPES) for (const [c] of [...p.codesA, ...p.codesB]) builtinIcd9.add(c);
  for (const e of IN_HOSPITAL_EVENTS) builtinIcd9.add(e.b.icd9[0]);

  reg.relate(b.snomed(CARDIAC_ARREST, CARDIAC_ARREST.code), root, 'Is a');

  const phenotypes: PhenotypeCodings[] = [];
  for (const p of PHENOTYPES) {
    const parent = b.snomed(p.parent);
    reg.relate(parent, root, 'Is a');
    const stdA = b.snomed(p.stdA);
    const stdB = b.snomed(p.stdB);
    reg.relate(stdA, parent, 'Is a');
    reg.relate(stdB, p.stdB.isA === 'A' ? stdA : parent, 'Is a');
    const main: Record<Site, Coding[]> = { A: [], B: [] };
    for (const [site, codes, std] of [['A', p.codesA, stdA], ['B', p.codesB, stdB]] as const) {
      for (const [code, name] of codes) {
        const src = b.icd9(code, name);
        b.mapsTo(src, std);
        main[site].push(b.coding(std, src));
      }
    }
    const extra: Record<Site, Coding[]> = { A: [], B: [] };
    const csvCodes = csv?.codes.get(p.name);
    if (csv && !csvCodes) throw new Error(`${csvPath}: no row for phenotype "${p.name}"`);
    let i = 0;
    for (const code of csvCodes ?? []) {
      if (builtinIcd9.has(code)) continue;
      const site: Site = i++ % 2 === 0 ? 'A' : 'B';
      const std = site === 'A' ? stdA : stdB;
      const src = b.icd9(code, `${p.name} (ICD-9-CM ${dottedIcd9(code)})`);
      b.mapsTo(src, std);
      extra[site].push(b.coding(std, src));
    }
    phenotypes.push({ def: p, main, extra });
  }

  const otherConditions = new Map<string, Record<Site, Coding>>();
  for (const c of OTHER_CONDITIONS) {
    const std = b.snomed(c.snomed, c.snomed.code);
    reg.relate(std, root, 'Is a');
    const src = reg.add({
      name: c.icd10[1], domain: 'Condition', vocabulary: 'ICD10CM', conceptClass: `${c.icd10[0].replace('.', '').length}-char billing code`,
      standard: '', code: c.icd10[0],
    });
    b.mapsTo(src, std);
    otherConditions.set(c.key, { A: b.coding(std, std), B: b.coding(std, src) });
  }

  const events = new Map<EventDef['key'], Record<Site, Coding>>();
  for (const e of IN_HOSPITAL_EVENTS) {
    const a = b.snomed(e.a, e.a.code);
    if (e.key === 'Fx') {
      const fxParent = b.snomed({ name: 'Fracture of hip' });
      reg.relate(fxParent, root, 'Is a');
      reg.relate(a, fxParent, 'Is a');
    } else if (e.key === 'UTI') {
      reg.relate(a, root, 'Is a');
    }
    const bStd = b.snomed(e.b.standard, e.b.standard.code);
    if (e.b.standard.isA === 'A') reg.relate(bStd, a, 'Is a');
    const src = b.icd9(e.b.icd9[0], e.b.icd9[1]);
    b.mapsTo(src, bStd);
    events.set(e.key, { A: b.coding(a, a), B: b.coding(bStd, src) });
  }
  return { phenotypes, otherConditions, events };
}

/** RxNorm ingredients and drugs (site A), NDC package codes mapping to them (site B). */
export function addDrugs(b: VocabularyBuilder): Map<string, Record<Site, Coding[]>> {
  const reg = b.reg;
  let rxLocal = 9_000_001;
  let ndcLocal = 1;
  const drugs = new Map<string, Record<Site, Coding[]>>();
  for (const d of DRUGS) {
    const ingIds = d.ingredients.map((i) =>
      reg.add({ id: i.id, name: i.name, domain: 'Drug', vocabulary: 'RxNorm', conceptClass: 'Ingredient', standard: 'S', code: i.code }),
    );
    const form = (f: DrugForm | NonNullable<DrugForm['tradenameOf']>, cls: string): number => {
      const id = reg.add({ id: f.id, name: f.name, domain: 'Drug', vocabulary: 'RxNorm', conceptClass: cls, standard: 'S', code: f.code ?? String(rxLocal++) });
      for (const ingId of ingIds) reg.relate(id, ingId, 'RxNorm has ing');
      return id;
    };
    const formId = (f: DrugForm): number => {
      const id = form(f, f.cls);
      if (f.tradenameOf) reg.relate(id, form(f.tradenameOf, 'Clinical Drug'), 'Tradename of');
      return id;
    };
    const a = formId(d.a);
    const bCodings = d.b.map((f) => {
      const rx = formId(f);
      // Site B's pharmacy records NDC package codes; they map to the RxNorm drug.
      const ndc = reg.add({
        name: f.name, domain: 'Drug', vocabulary: 'NDC', conceptClass: '11-digit NDC', standard: '',
        code: `70000${String(ndcLocal++).padStart(4, '0')}01`,
      });
      b.mapsTo(ndc, rx);
      return b.coding(rx, ndc);
    });
    drugs.set(d.key, { A: [b.coding(a, a)], B: bCodings });
  }
  return drugs;
}

const VITALS = new Set(['heartRate', 'systolic', 'diastolic', 'respRate', 'temperature', 'spo2', 'pain']);

/** LOINC labs and vitals (site B's variants of some labs share a parent with site A's) and valueless measurements. */
export function addMeasurements(b: VocabularyBuilder): { labs: Map<string, LabCoding>; valueless: Map<string, Coding> } {
  const reg = b.reg;
  const labRoot = b.snomed({ name: 'Laboratory test' }, undefined, 'Measurement', 'Procedure');
  const vitalRoot = b.snomed({ name: 'Vital signs measurement' }, undefined, 'Measurement', 'Procedure');
  const loinc = (n: { id?: number; name: string; code: string }, vital: boolean): number =>
    reg.add({ id: n.id, name: n.name, domain: 'Measurement', vocabulary: 'LOINC', conceptClass: vital ? 'Clinical Observation' : 'Lab Test', standard: 'S', code: n.code });
  const labs = new Map<string, LabCoding>();
  for (const l of LABS) {
    const vital = VITALS.has(l.key);
    const a = loinc(l.a, vital);
    let bId = a;
    if (l.b && l.parent) {
      bId = loinc(l.b, vital);
      const parent = b.snomed({ name: l.parent }, undefined, 'Measurement', 'Procedure');
      reg.relate(parent, labRoot, 'Is a');
      reg.relate(a, parent, 'Is a');
      reg.relate(bId, parent, 'Is a');
    } else {
      reg.relate(a, vital ? vitalRoot : labRoot, 'Is a');
    }
    const unit = l.unit === null ? null : UNITS[l.unit as UnitKey];
    labs.set(l.key, {
      key: l.key,
      coding: { A: b.coding(a, a), B: b.coding(bId, bId) },
      unitConceptId: unit ? unit.id : null,
      unitSource: unit ? unit.code : '',
    });
  }
  const valueless = new Map<string, Coding>();
  for (const [key, m] of Object.entries(VALUELESS_MEASUREMENTS)) {
    const id = b.snomed(m, m.code, 'Measurement', 'Procedure');
    reg.relate(id, labRoot, 'Is a');
    valueless.set(key, b.coding(id, id));
  }
  return { labs, valueless };
}

/** SNOMED procedures; site B's are children of site A's where they differ. */
export function addProcedures(b: VocabularyBuilder): Map<string, Record<Site, Coding>> {
  const procRoot = b.snomed({ name: 'Procedure' }, '71388002', 'Procedure', 'Procedure');
  const procedures = new Map<string, Record<Site, Coding>>();
  for (const p of PROCEDURES) {
    const a = b.snomed(p.a, p.a.code, 'Procedure', 'Procedure');
    b.reg.relate(a, procRoot, 'Is a');
    let bId = a;
    if (p.b) {
      bId = b.snomed(p.b, undefined, 'Procedure', 'Procedure');
      b.reg.relate(bId, a, 'Is a');
    }
    procedures.set(p.key, { A: b.coding(a, a), B: b.coding(bId, bId) });
  }
  return procedures;
}
