// Builds the vocabulary of the synthetic hospital from the catalogue: the CONCEPT,
// CONCEPT_RELATIONSHIP and CONCEPT_ANCESTOR rows (the same for both sites, as a full Athena
// download would be), and the codings each site uses for each clinical fact.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createHash } from 'node:crypto';
import {
  CARDIAC_ARREST, Coding, Concept, ConceptRegistry, DRUGS, DrugForm, ETHNICITIES, EventDef, GENDER, IN_HOSPITAL_EVENTS, LABS,
  OTHER_CONDITIONS, PHENOTYPES, PROCEDURES, PhenotypeDef, RACES, ROOT_CLINICAL_FINDING, Site, TYPE_EHR, UNITS, UnitKey,
  SNOMED_CODES, VALUELESS_MEASUREMENTS, VISIT, dottedIcd9, icd9ConceptId,
} from './catalogue';

/**
 * Where the generator looks for the HCUP-CCS phenotype codes when not told: ../shared/tasks/ from
 * the working directory, then from the project root (this file is dist/pipelines/synth/*.js).
 */
export function defaultHcupCsv(): string | null {
  const rel = '../shared/tasks/hcup_ccs_phenotypes_icd9.csv';
  for (const candidate of [resolve(rel), resolve(__dirname, '../../..', rel)]) if (existsSync(candidate)) return candidate;
  return null;
}

export interface PhenotypeCodings {
  def: PhenotypeDef;
  /** The site's own codes (most of its rows) and the other codes of the phenotype from the csv. */
  main: Record<Site, Coding[]>;
  extra: Record<Site, Coding[]>;
}

export interface LabCoding {
  key: string;
  coding: Record<Site, Coding>;
  unitConceptId: number | null;
  unitSource: string;
}

export interface SynthVocabulary {
  concepts: Map<number, Concept>;
  relationships: Array<[number, number, string]>;
  phenotypes: PhenotypeCodings[];
  phenotypeByName: Map<string, PhenotypeCodings>;
  otherConditions: Map<string, Record<Site, Coding>>;
  events: Map<EventDef['key'], Record<Site, Coding>>;
  drugs: Map<string, Record<Site, Coding[]>>;
  labs: Map<string, LabCoding>;
  valueless: Map<string, Coding>;
  procedures: Map<string, Record<Site, Coding>>;
  /** 'csv:<sha256>' when the HCUP csv was read, 'builtin' otherwise. */
  icd9Source: string;
}

const REVERSE: Record<string, string> = {
  'Maps to': 'Mapped from',
  'Is a': 'Subsumes',
  'RxNorm has ing': 'RxNorm ing of',
  'Tradename of': 'Has tradename',
};

/** Relationships that make the hierarchy from which CONCEPT_ANCESTOR is derived (child -> parent). */
const HIERARCHICAL = new Set(['Is a', 'RxNorm has ing', 'Tradename of']);

/** Phenotype name -> ICD-9 codes (dots removed), or null when the csv is absent. */
export function readHcupCsv(path: string): { codes: Map<string, string[]>; sha256: string } {
  if (!existsSync(path)) throw new Error(`synth: HCUP phenotype csv not found: ${path}`);
  const text = readFileSync(path, 'utf8');
  const codes = new Map<string, string[]>();
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  for (let i = 1; i < lines.length; i++) {
    // Phenotype names contain ';' but no ','; the last two fields are the CCS number and the codes.
    const parts = lines[i].split(',');
    if (parts.length < 3) throw new Error(`${path}: line ${i + 1}: expected Phenotype,CCS,ICD9`);
    const list = parts[parts.length - 1].trim().split(/\s+/).filter(Boolean);
    codes.set(parts.slice(0, parts.length - 2).join(','), list);
  }
  return { codes, sha256: createHash('sha256').update(text).digest('hex') };
}

/** `hcupCsvPath` null: the built-in codes only; a path that does not exist: an error. */
export function buildVocabulary(hcupCsvPath: string | null = defaultHcupCsv()): SynthVocabulary {
  const reg = new ConceptRegistry();
  const csv = hcupCsvPath ? readHcupCsv(hcupCsvPath) : null;

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

  // Conditions ---------------------------------------------------------------------------
  let snomedLocal = 900_000_001; // made-up SNOMED-style codes for local concepts
  const snomed = (n: { id?: number; name: string }, code?: string, domain = 'Condition', cls = 'Clinical Finding'): number => {
    if (n.id !== undefined && reg.concepts.has(n.id)) return reg.add({ ...reg.concepts.get(n.id)!, name: n.name });
    const known = n.id !== undefined ? SNOMED_CODES[n.id] : undefined;
    return reg.add({ id: n.id, name: n.name, domain, vocabulary: 'SNOMED', conceptClass: cls, standard: 'S', code: code ?? known ?? String(snomedLocal++) });
  };
  const coding = (conceptId: number, sourceConceptId: number): Coding => ({
    conceptId, sourceConceptId, sourceValue: reg.concepts.get(sourceConceptId)!.code,
  });
  const root = snomed({ id: ROOT_CLINICAL_FINDING, name: 'Clinical finding' }, '404684003');
  const icd9 = (code: string, name: string): number => {
    const digits = code.replace(/^[VE]/, '').length + (/^[VE]/.test(code) ? 1 : 0);
    return reg.add({
      id: icd9ConceptId(code), name, domain: 'Condition', vocabulary: 'ICD9CM',
      conceptClass: `${Math.min(digits, 5)}-dig billing code`, standard: '', code: dottedIcd9(code),
    });
  };
  const mapsTo = (source: number, target: number) => reg.relate(source, target, 'Maps to');

  const builtinIcd9 = new Set<string>();
  for (const p of PHENOTYPES) for (const [c] of [...p.codesA, ...p.codesB]) builtinIcd9.add(c);
  for (const e of IN_HOSPITAL_EVENTS) builtinIcd9.add(e.b.icd9[0]);

  reg.relate(snomed(CARDIAC_ARREST, CARDIAC_ARREST.code), root, 'Is a');

  const phenotypes: PhenotypeCodings[] = [];
  for (const p of PHENOTYPES) {
    const parent = snomed(p.parent);
    reg.relate(parent, root, 'Is a');
    const stdA = snomed(p.stdA);
    const stdB = snomed(p.stdB);
    reg.relate(stdA, parent, 'Is a');
    reg.relate(stdB, p.stdB.isA === 'A' ? stdA : parent, 'Is a');
    const main: Record<Site, Coding[]> = { A: [], B: [] };
    for (const [site, codes, std] of [['A', p.codesA, stdA], ['B', p.codesB, stdB]] as const) {
      for (const [code, name] of codes) {
        const src = icd9(code, name);
        mapsTo(src, std);
        main[site].push(coding(std, src));
      }
    }
    const extra: Record<Site, Coding[]> = { A: [], B: [] };
    const csvCodes = csv?.codes.get(p.name);
    if (csv && !csvCodes) throw new Error(`${hcupCsvPath}: no row for phenotype "${p.name}"`);
    let i = 0;
    for (const code of csvCodes ?? []) {
      if (builtinIcd9.has(code)) continue;
      const site: Site = i++ % 2 === 0 ? 'A' : 'B';
      const std = site === 'A' ? stdA : stdB;
      const src = icd9(code, `${p.name} (ICD-9-CM ${dottedIcd9(code)})`);
      mapsTo(src, std);
      extra[site].push(coding(std, src));
    }
    phenotypes.push({ def: p, main, extra });
  }

  const otherConditions = new Map<string, Record<Site, Coding>>();
  for (const c of OTHER_CONDITIONS) {
    const std = snomed(c.snomed, c.snomed.code);
    reg.relate(std, root, 'Is a');
    const src = reg.add({
      name: c.icd10[1], domain: 'Condition', vocabulary: 'ICD10CM', conceptClass: `${c.icd10[0].replace('.', '').length}-char billing code`,
      standard: '', code: c.icd10[0],
    });
    mapsTo(src, std);
    otherConditions.set(c.key, { A: coding(std, std), B: coding(std, src) });
  }

  const events = new Map<EventDef['key'], Record<Site, Coding>>();
  for (const e of IN_HOSPITAL_EVENTS) {
    const a = snomed(e.a, e.a.code);
    if (e.key === 'Fx') {
      const fxParent = snomed({ name: 'Fracture of hip' });
      reg.relate(fxParent, root, 'Is a');
      reg.relate(a, fxParent, 'Is a');
    } else if (e.key === 'UTI') {
      reg.relate(a, root, 'Is a');
    }
    const bStd = snomed(e.b.standard, e.b.standard.code);
    if (e.b.standard.isA === 'A') reg.relate(bStd, a, 'Is a');
    const src = icd9(e.b.icd9[0], e.b.icd9[1]);
    mapsTo(src, bStd);
    events.set(e.key, { A: coding(a, a), B: coding(bStd, src) });
  }

  // Drugs --------------------------------------------------------------------------------
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
    const b = d.b.map((f) => {
      const rx = formId(f);
      // Site B's pharmacy records NDC package codes; they map to the RxNorm drug.
      const ndc = reg.add({
        name: f.name, domain: 'Drug', vocabulary: 'NDC', conceptClass: '11-digit NDC', standard: '',
        code: `70000${String(ndcLocal++).padStart(4, '0')}01`,
      });
      mapsTo(ndc, rx);
      return coding(rx, ndc);
    });
    drugs.set(d.key, { A: [coding(a, a)], B: b });
  }

  // Measurements -------------------------------------------------------------------------
  const labRoot = snomed({ name: 'Laboratory test' }, undefined, 'Measurement', 'Procedure');
  const vitalRoot = snomed({ name: 'Vital signs measurement' }, undefined, 'Measurement', 'Procedure');
  const VITALS = new Set(['heartRate', 'systolic', 'diastolic', 'respRate', 'temperature', 'spo2', 'pain']);
  const loinc = (n: { id?: number; name: string; code: string }, vital: boolean): number =>
    reg.add({ id: n.id, name: n.name, domain: 'Measurement', vocabulary: 'LOINC', conceptClass: vital ? 'Clinical Observation' : 'Lab Test', standard: 'S', code: n.code });
  const labs = new Map<string, LabCoding>();
  for (const l of LABS) {
    const vital = VITALS.has(l.key);
    const a = loinc(l.a, vital);
    let b = a;
    if (l.b && l.parent) {
      b = loinc(l.b, vital);
      const parent = snomed({ name: l.parent }, undefined, 'Measurement', 'Procedure');
      reg.relate(parent, labRoot, 'Is a');
      reg.relate(a, parent, 'Is a');
      reg.relate(b, parent, 'Is a');
    } else {
      reg.relate(a, vital ? vitalRoot : labRoot, 'Is a');
    }
    const unit = l.unit === null ? null : UNITS[l.unit as UnitKey];
    labs.set(l.key, {
      key: l.key,
      coding: { A: coding(a, a), B: coding(b, b) },
      unitConceptId: unit ? unit.id : null,
      unitSource: unit ? unit.code : '',
    });
  }
  const valueless = new Map<string, Coding>();
  for (const [key, m] of Object.entries(VALUELESS_MEASUREMENTS)) {
    const id = snomed(m, m.code, 'Measurement', 'Procedure');
    reg.relate(id, labRoot, 'Is a');
    valueless.set(key, coding(id, id));
  }

  // Procedures ---------------------------------------------------------------------------
  const procRoot = snomed({ name: 'Procedure' }, '71388002', 'Procedure', 'Procedure');
  const procedures = new Map<string, Record<Site, Coding>>();
  for (const p of PROCEDURES) {
    const a = snomed(p.a, p.a.code, 'Procedure', 'Procedure');
    reg.relate(a, procRoot, 'Is a');
    let b = a;
    if (p.b) {
      b = snomed(p.b, undefined, 'Procedure', 'Procedure');
      reg.relate(b, a, 'Is a');
    }
    procedures.set(p.key, { A: coding(a, a), B: coding(b, b) });
  }

  // Standard concepts map to themselves, as in Athena.
  for (const c of reg.concepts.values()) if (c.standard === 'S') reg.relate(c.id, c.id, 'Maps to');

  return {
    concepts: reg.concepts,
    relationships: reg.relationships,
    phenotypes,
    phenotypeByName: new Map(phenotypes.map((p) => [p.def.name, p])),
    otherConditions,
    events,
    drugs,
    labs,
    valueless,
    procedures,
    icd9Source: csv ? `csv:${csv.sha256}` : 'builtin',
  };
}

/** CONCEPT rows sorted by id. */
export function conceptRows(v: SynthVocabulary): Concept[] {
  return [...v.concepts.values()].sort((a, b) => a.id - b.id);
}

/** CONCEPT_RELATIONSHIP rows with their reverse relationships, deduplicated and sorted. */
export function relationshipRows(v: SynthVocabulary): Array<[number, number, string]> {
  const seen = new Set<string>();
  const out: Array<[number, number, string]> = [];
  const push = (a: number, b: number, r: string) => {
    const k = `${a}|${b}|${r}`;
    if (seen.has(k)) return;
    seen.add(k);
    out.push([a, b, r]);
  };
  for (const [a, b, r] of v.relationships) {
    push(a, b, r);
    if (a !== b) push(b, a, REVERSE[r] ?? r);
  }
  return out.sort((x, y) => x[0] - y[0] || x[1] - y[1] || (x[2] < y[2] ? -1 : x[2] > y[2] ? 1 : 0));
}

/**
 * CONCEPT_ANCESTOR rows: the transitive closure of the hierarchy ("Is a", and for drugs
 * "RxNorm has ing" and "Tradename of"), with the shortest and longest path length, and a row of
 * level 0 for each standard concept with itself, as Athena has.
 */
export function ancestorRows(v: SynthVocabulary): Array<[number, number, number, number]> {
  const parents = new Map<number, Set<number>>();
  for (const [a, b, r] of v.relationships) {
    if (!HIERARCHICAL.has(r) || a === b) continue;
    let s = parents.get(a);
    if (!s) parents.set(a, (s = new Set()));
    s.add(b);
  }
  const memo = new Map<number, Map<number, [number, number]>>();
  const visiting = new Set<number>();
  const up = (id: number): Map<number, [number, number]> => {
    const cached = memo.get(id);
    if (cached) return cached;
    if (visiting.has(id)) throw new Error(`synthetic vocabulary: hierarchy cycle at concept ${id}`);
    visiting.add(id);
    const result = new Map<number, [number, number]>();
    for (const p of parents.get(id) ?? []) {
      const add = (anc: number, min: number, max: number) => {
        const cur = result.get(anc);
        result.set(anc, cur ? [Math.min(cur[0], min), Math.max(cur[1], max)] : [min, max]);
      };
      add(p, 1, 1);
      for (const [anc, [mn, mx]] of up(p)) add(anc, mn + 1, mx + 1);
    }
    visiting.delete(id);
    memo.set(id, result);
    return result;
  };
  const rows: Array<[number, number, number, number]> = [];
  for (const c of v.concepts.values()) {
    if (c.standard !== 'S' && c.standard !== 'C') continue;
    rows.push([c.id, c.id, 0, 0]);
    for (const [anc, [mn, mx]] of up(c.id)) rows.push([anc, c.id, mn, mx]);
  }
  return rows.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
}
