// The concepts of the synthetic hospital: what each clinical fact is, and how site A and site B
// code it. Ids, names and codes are real OMOP/Athena ones where they are known (e.g. 201826 Type 2
// diabetes mellitus, 1112807 aspirin, 3004410 HbA1c); concepts made up for the hierarchy or for
// site B get ids above 2,000,000,000, the range OMOP reserves for local concepts.
// ICD-9-CM source concepts get ids derived from their code (icd9ConceptId), so that they are the
// same whether or not ../shared/tasks/hcup_ccs_phenotypes_icd9.csv is present.

export interface Concept {
  id: number;
  name: string;
  domain: string;
  vocabulary: string;
  conceptClass: string;
  /** 'S' standard, 'C' classification, '' non-standard. */
  standard: 'S' | 'C' | '';
  code: string;
}

export type Site = 'A' | 'B';

/** One way of writing a clinical fact in a row: the *_concept_id and the *_source_concept_id. */
export interface Coding {
  conceptId: number;
  sourceConceptId: number;
  /** The code as the site's system wrote it (*_source_value). */
  sourceValue: string;
}

export class ConceptRegistry {
  readonly concepts = new Map<number, Concept>();
  /** Forward relationships; the vocabulary builder adds the reverse ones. */
  readonly relationships: Array<[number, number, string]> = [];
  private nextLocal = 2_000_000_001;

  add(c: Omit<Concept, 'id'> & { id?: number }): number {
    const id = c.id ?? this.nextLocal++;
    const prev = this.concepts.get(id);
    if (prev && prev.name !== c.name) throw new Error(`synthetic vocabulary: concept ${id} defined twice (${prev.name} / ${c.name})`);
    if (!prev) this.concepts.set(id, { ...c, id });
    return id;
  }

  relate(from: number, to: number, relationship: string): void {
    this.relationships.push([from, to, relationship]);
  }
}

export const ROOT_CLINICAL_FINDING = 441840;

/** SNOMED codes of the real standard concepts named in the phenotype table below. */
export const SNOMED_CODES: Record<number, string> = {
  132797: '91302008', 255848: '233604007', 4329847: '22298006', 312327: '57054005', 201826: '44054006',
  201820: '73211009', 316866: '38341003', 320128: '59621000', 319835: '42343007', 316139: '84114007',
  313217: '49436004', 432867: '55822004', 437827: '190774002', 192671: '74474003', 255573: '13645005',
  261325: '87433001', 46271022: '709044004', 197320: '14669001', 443454: '432504007', 381316: '230690007',
  317576: '53741008', 4185932: '414545008', 44784217: '698247007', 194984: '235856003', 4280726: '367498001',
  40486433: '446096008', 319049: '65710008',
};
export const TYPE_EHR = 32817;
/** Cause of death recorded when the stay had no principal diagnosis or event to name. */
export const CARDIAC_ARREST = { id: 321042, name: 'Cardiac arrest', code: '410429000' } as const;
export const VISIT = { inpatient: 9201, outpatient: 9202, emergency: 9203, emergencyInpatient: 262 } as const;
export const GENDER = { male: 8507, female: 8532 } as const;
export const RACES = [8527, 8516, 8515] as const;
export const ETHNICITIES = [38003564, 38003563] as const;

// ---------------------------------------------------------------- conditions: 24 HCUP phenotypes

interface Named {
  id?: number;
  name: string;
}

export interface PhenotypeDef {
  /** As in the Phenotype column of hcup_ccs_phenotypes_icd9.csv. */
  name: string;
  ccs: number;
  /** Standard SNOMED concept the site A codes map to, the one site B codes map to, their parent. */
  stdA: Named;
  stdB: Named & { isA?: 'A' };
  parent: Named;
  /** ICD-9-CM codes (dots removed, as in the csv) with their names: site A's and site B's. */
  codesA: Array<[string, string]>;
  codesB: Array<[string, string]>;
}

const L = (name: string): Named => ({ name });
const R = (id: number, name: string): Named => ({ id, name });

export const PHENOTYPES: PhenotypeDef[] = [
  {
    name: 'Acute and unspecified renal failure', ccs: 157,
    stdA: R(197320, 'Acute renal failure syndrome'), stdB: L('Acute tubular necrosis'), parent: L('Renal failure syndrome'),
    codesA: [['5849', 'Acute kidney failure, unspecified']], codesB: [['5845', 'Acute kidney failure with lesion of tubular necrosis']],
  },
  {
    name: 'Acute cerebrovascular disease', ccs: 109,
    stdA: R(443454, 'Cerebral infarction'), stdB: L('Intracerebral hemorrhage'), parent: R(381316, 'Cerebrovascular accident'),
    codesA: [['43491', 'Cerebral artery occlusion, unspecified, with cerebral infarction']], codesB: [['431', 'Intracerebral hemorrhage']],
  },
  {
    name: 'Acute myocardial infarction', ccs: 100,
    stdA: R(312327, 'Acute myocardial infarction'), stdB: L('Acute myocardial infarction of anterior wall'), parent: R(4329847, 'Myocardial infarction'),
    codesA: [['41091', 'Acute myocardial infarction of unspecified site, initial episode of care']],
    codesB: [['41011', 'Acute myocardial infarction of other anterior wall, initial episode of care']],
  },
  {
    name: 'Cardiac dysrhythmias', ccs: 106,
    stdA: R(313217, 'Atrial fibrillation'), stdB: L('Atrial flutter'), parent: R(44784217, 'Cardiac arrhythmia'),
    codesA: [['42731', 'Atrial fibrillation']], codesB: [['42732', 'Atrial flutter']],
  },
  {
    name: 'Chronic kidney disease', ccs: 158,
    stdA: R(46271022, 'Chronic kidney disease'), stdB: { name: 'Chronic kidney disease stage 3', isA: 'A' }, parent: L('Kidney disease'),
    codesA: [['5859', 'Chronic kidney disease, unspecified']], codesB: [['5853', 'Chronic kidney disease, Stage III (moderate)']],
  },
  {
    name: 'Chronic obstructive pulmonary disease', ccs: 127,
    stdA: R(255573, 'Chronic obstructive lung disease'), stdB: R(261325, 'Pulmonary emphysema'), parent: L('Chronic disease of respiratory system'),
    codesA: [['496', 'Chronic airway obstruction, not elsewhere classified']], codesB: [['4928', 'Other emphysema']],
  },
  {
    name: 'Complications of surgical/medical care', ccs: 238,
    stdA: L('Complication of procedure'), stdB: L('Postoperative infection'), parent: L('Complication of care'),
    codesA: [['99889', 'Other specified complications of procedures, not elsewhere classified']], codesB: [['99859', 'Other postoperative infection']],
  },
  {
    name: 'Conduction disorders', ccs: 105,
    stdA: L('Left bundle branch block'), stdB: L('Complete atrioventricular block'), parent: L('Disorder of cardiac conduction'),
    codesA: [['4263', 'Other left bundle branch block']], codesB: [['4260', 'Atrioventricular block, complete']],
  },
  {
    name: 'Congestive heart failure; nonhypertensive', ccs: 108,
    stdA: R(319835, 'Congestive heart failure'), stdB: L('Chronic systolic heart failure'), parent: R(316139, 'Heart failure'),
    codesA: [['4280', 'Congestive heart failure, unspecified']], codesB: [['42822', 'Chronic systolic heart failure']],
  },
  {
    name: 'Coronary atherosclerosis and related', ccs: 101,
    stdA: R(317576, 'Coronary arteriosclerosis'), stdB: L('Angina pectoris'), parent: R(4185932, 'Ischemic heart disease'),
    codesA: [['41401', 'Coronary atherosclerosis of native coronary artery']], codesB: [['4139', 'Other and unspecified angina pectoris']],
  },
  {
    name: 'Diabetes mellitus with complications', ccs: 50,
    stdA: L('Type 2 diabetes mellitus with renal complication'), stdB: L('Type 2 diabetes mellitus with neurological complication'),
    parent: R(201820, 'Diabetes mellitus'),
    codesA: [['25040', 'Diabetes with renal manifestations, type II or unspecified type, not stated as uncontrolled']],
    codesB: [['25060', 'Diabetes with neurological manifestations, type II or unspecified type, not stated as uncontrolled']],
  },
  {
    name: 'Diabetes mellitus without complication', ccs: 49,
    stdA: R(201826, 'Type 2 diabetes mellitus'), stdB: { name: 'Type 2 diabetes mellitus without complication', isA: 'A' },
    parent: R(201820, 'Diabetes mellitus'),
    codesA: [['25000', 'Diabetes mellitus without mention of complication, type II or unspecified type, not stated as uncontrolled']],
    codesB: [['25002', 'Diabetes mellitus without mention of complication, type II or unspecified type, uncontrolled']],
  },
  {
    name: 'Disorders of lipid metabolism', ccs: 53,
    stdA: R(432867, 'Hyperlipidemia'), stdB: R(437827, 'Pure hypercholesterolemia'), parent: L('Disorder of lipid metabolism'),
    codesA: [['2724', 'Other and unspecified hyperlipidemia']], codesB: [['2720', 'Pure hypercholesterolemia']],
  },
  {
    name: 'Essential hypertension', ccs: 98,
    stdA: R(320128, 'Essential hypertension'), stdB: { name: 'Benign essential hypertension', isA: 'A' }, parent: R(316866, 'Hypertensive disorder'),
    codesA: [['4019', 'Unspecified essential hypertension']], codesB: [['4011', 'Benign essential hypertension']],
  },
  {
    name: 'Fluid and electrolyte disorders', ccs: 55,
    stdA: L('Hyponatremia'), stdB: L('Hypokalemia'), parent: L('Electrolyte imbalance'),
    codesA: [['2761', 'Hyposmolality and/or hyponatremia']], codesB: [['2768', 'Hypopotassemia']],
  },
  {
    name: 'Gastrointestinal hemorrhage', ccs: 153,
    stdA: R(192671, 'Gastrointestinal hemorrhage'), stdB: { name: 'Hematemesis', isA: 'A' }, parent: L('Disorder of digestive system'),
    codesA: [['5789', 'Hemorrhage of gastrointestinal tract, unspecified']], codesB: [['5780', 'Hematemesis']],
  },
  {
    name: 'Hypertension with complications', ccs: 99,
    stdA: L('Hypertensive heart disease'), stdB: L('Hypertensive renal disease'), parent: R(316866, 'Hypertensive disorder'),
    codesA: [['40291', 'Unspecified hypertensive heart disease with heart failure']],
    codesB: [['40390', 'Hypertensive chronic kidney disease, unspecified, with chronic kidney disease stage I through stage IV, or unspecified']],
  },
  {
    name: 'Other liver diseases', ccs: 151,
    stdA: L('Cirrhosis of liver'), stdB: L('Steatosis of liver'), parent: R(194984, 'Disease of liver'),
    codesA: [['5715', 'Cirrhosis of liver without mention of alcohol']], codesB: [['5718', 'Other chronic nonalcoholic liver disease']],
  },
  {
    name: 'Other lower respiratory disease', ccs: 133,
    stdA: L('Dyspnea'), stdB: L('Disorder of lung'), parent: L('Disorder of lower respiratory system'),
    codesA: [['78605', 'Shortness of breath']], codesB: [['51889', 'Other diseases of lung, not elsewhere classified']],
  },
  {
    name: 'Other upper respiratory disease', ccs: 134,
    stdA: R(4280726, 'Seasonal allergic rhinitis'), stdB: R(40486433, 'Perennial allergic rhinitis'), parent: L('Allergic rhinitis'),
    codesA: [['4779', 'Allergic rhinitis, cause unspecified']], codesB: [['4778', 'Allergic rhinitis due to other allergen']],
  },
  {
    name: 'Pleurisy; pneumothorax; pulmonary collapse', ccs: 130,
    stdA: L('Pleural effusion'), stdB: L('Atelectasis'), parent: L('Disorder of pleura and pleural cavity'),
    codesA: [['5119', 'Unspecified pleural effusion']], codesB: [['5180', 'Pulmonary collapse']],
  },
  {
    name: 'Pneumonia', ccs: 122,
    stdA: R(255848, 'Pneumonia'), stdB: { name: 'Bacterial pneumonia', isA: 'A' }, parent: L('Lower respiratory tract infection'),
    codesA: [['486', 'Pneumonia, organism unspecified']], codesB: [['4829', 'Bacterial pneumonia, unspecified']],
  },
  {
    name: 'Respiratory failure; insufficiency; arrest', ccs: 131,
    stdA: R(319049, 'Acute respiratory failure'), stdB: L('Respiratory insufficiency'), parent: L('Respiratory failure'),
    codesA: [['51881', 'Acute respiratory failure']], codesB: [['51882', 'Pulmonary insufficiency, not elsewhere classified']],
  },
  {
    name: 'Septicemia (except in labor)', ccs: 2,
    stdA: R(132797, 'Sepsis'), stdB: { name: 'Streptococcal sepsis', isA: 'A' }, parent: L('Systemic infection'),
    codesA: [['0389', 'Unspecified septicemia']], codesB: [['0380', 'Streptococcal septicemia']],
  },
];

/** ICD-9-CM code as written in Athena: 'V4511' -> 'V45.11', 'E8889' -> 'E888.9', '4280' -> '428.0'. */
export function dottedIcd9(code: string): string {
  const head = code.startsWith('E') ? 4 : 3;
  return code.length > head ? `${code.slice(0, head)}.${code.slice(head)}` : code;
}

/** A stable concept id for an ICD-9-CM code (local range), independent of which codes are loaded. */
export function icd9ConceptId(code: string): number {
  const prefix = code.startsWith('V') ? 1 : code.startsWith('E') ? 2 : 0;
  const digits = prefix ? code.slice(1) : code;
  if (!/^\d{1,5}$/.test(digits)) throw new Error(`not an ICD-9-CM code: ${code}`);
  return 2_100_000_000 + prefix * 10_000_000 + digits.length * 1_000_000 + Number(digits.padEnd(5, '0'));
}

// ---------------------------------------------------------------- other conditions (SNOMED; site B via ICD-10-CM)

export interface ConditionDef {
  key: string;
  snomed: Named & { code: string };
  /** Site B's source code (ICD-10-CM, non-standard, "Maps to" the SNOMED concept). */
  icd10: [string, string];
}

export const OTHER_CONDITIONS: ConditionDef[] = [
  { key: 'pharyngitis', snomed: { id: 4112343, name: 'Acute viral pharyngitis', code: '195662009' }, icd10: ['J02.9', 'Acute pharyngitis, unspecified'] },
  { key: 'strep', snomed: { id: 28060, name: 'Streptococcal sore throat', code: '43878008' }, icd10: ['J02.0', 'Streptococcal pharyngitis'] },
  { key: 'bronchitis', snomed: { id: 260139, name: 'Acute bronchitis', code: '10509002' }, icd10: ['J20.9', 'Acute bronchitis, unspecified'] },
  { key: 'otitis', snomed: { id: 372328, name: 'Otitis media', code: '65363002' }, icd10: ['H66.90', 'Otitis media, unspecified, unspecified ear'] },
  { key: 'ankleSprain', snomed: { id: 81151, name: 'Sprain of ankle', code: '44465007' }, icd10: ['S93.409A', 'Sprain of unspecified ligament of unspecified ankle, initial encounter'] },
  { key: 'wristSprain', snomed: { id: 78272, name: 'Sprain of wrist', code: '70704007' }, icd10: ['S63.509A', 'Unspecified sprain of unspecified wrist, initial encounter'] },
  { key: 'osteoarthritis', snomed: { id: 80180, name: 'Osteoarthritis', code: '396275006' }, icd10: ['M19.90', 'Unspecified osteoarthritis, unspecified site'] },
  { key: 'hypothyroidism', snomed: { id: 140673, name: 'Hypothyroidism', code: '40930008' }, icd10: ['E03.9', 'Hypothyroidism, unspecified'] },
  { key: 'asthma', snomed: { id: 317009, name: 'Asthma', code: '195967001' }, icd10: ['J45.909', 'Unspecified asthma, uncomplicated'] },
  { key: 'anemia', snomed: { id: 439777, name: 'Anemia', code: '271737000' }, icd10: ['D64.9', 'Anemia, unspecified'] },
  { key: 'osteoporosis', snomed: { id: 80502, name: 'Osteoporosis', code: '64859006' }, icd10: ['M81.0', 'Age-related osteoporosis without current pathological fracture'] },
  { key: 'alzheimer', snomed: { id: 378419, name: "Alzheimer's disease", code: '26929004' }, icd10: ['G30.9', "Alzheimer's disease, unspecified"] },
  // Presenting complaints, coded first in a stay (before the diagnoses the phenotype task predicts).
  { key: 'chestPain', snomed: { id: 77670, name: 'Chest pain', code: '29857009' }, icd10: ['R07.9', 'Chest pain, unspecified'] },
  { key: 'dyspnea', snomed: { id: 312437, name: 'Dyspnea', code: '267036007' }, icd10: ['R06.00', 'Dyspnea, unspecified'] },
  { key: 'fever', snomed: { id: 437663, name: 'Fever', code: '386661006' }, icd10: ['R50.9', 'Fever, unspecified'] },
  { key: 'abdominalPain', snomed: { id: 200219, name: 'Abdominal pain', code: '21522001' }, icd10: ['R10.9', 'Unspecified abdominal pain'] },
  { key: 'cough', snomed: { id: 254761, name: 'Cough', code: '49727002' }, icd10: ['R05', 'Cough'] },
  { key: 'syncope', snomed: { id: 135360, name: 'Syncope', code: '271594007' }, icd10: ['R55', 'Syncope and collapse'] },
];

/** The presenting complaint most typical of an admission reason (a phenotype name). */
export function presentingComplaint(reason: string | null): string {
  if (!reason) return 'syncope';
  if (/myocardial|coronary|chest/i.test(reason)) return 'chestPain';
  if (/dysrhythm/i.test(reason)) return 'syncope';
  if (/heart failure|pulmonary|respiratory|lung|bronch/i.test(reason)) return 'dyspnea';
  if (/sept|infect|pneumonia|urinary/i.test(reason)) return 'fever';
  if (/gastro|liver|hepat|intestin|bleed/i.test(reason)) return 'abdominalPain';
  return 'cough';
}

// ---------------------------------------------------------------- in-hospital events

/**
 * Events that start inside a stay (../shared/tasks/in_hospital_event_concepts.json; fracture by the
 * name rule /closed.*fracture/). Site A codes them in SNOMED; site B writes an ICD-9-CM source code
 * that "Maps to" a standard concept of the same list.
 */
export interface EventDef {
  key: 'UTI' | 'Sepsis' | 'PNA' | 'MI' | 'Fx';
  a: Named & { code: string };
  b: { icd9: [string, string]; standard: Named & { code?: string; isA?: 'A' } };
}

export const IN_HOSPITAL_EVENTS: EventDef[] = [
  {
    key: 'UTI', a: { id: 81902, name: 'Urinary tract infectious disease', code: '68566005' },
    b: { icd9: ['5990', 'Urinary tract infection, site not specified'], standard: { id: 81902, name: 'Urinary tract infectious disease' } },
  },
  {
    key: 'Sepsis', a: { id: 132797, name: 'Sepsis', code: '91302008' },
    b: { icd9: ['0389', 'Unspecified septicemia'], standard: { id: 132797, name: 'Sepsis' } },
  },
  {
    key: 'PNA', a: { id: 255848, name: 'Pneumonia', code: '233604007' },
    b: { icd9: ['486', 'Pneumonia, organism unspecified'], standard: { id: 255848, name: 'Pneumonia' } },
  },
  {
    key: 'MI', a: { id: 4329847, name: 'Myocardial infarction', code: '22298006' },
    b: { icd9: ['41091', 'Acute myocardial infarction of unspecified site, initial episode of care'], standard: { id: 312327, name: 'Acute myocardial infarction' } },
  },
  {
    key: 'Fx', a: { id: 4230399, name: 'Closed fracture of hip', code: '359817006' },
    b: { icd9: ['8208', 'Closed fracture of unspecified part of neck of femur'], standard: { name: 'Closed fracture of neck of femur', isA: 'A' } },
  },
];

// ---------------------------------------------------------------- drugs (RxNorm)

export interface DrugForm {
  id?: number;
  name: string;
  cls: 'Clinical Drug' | 'Branded Drug' | 'Quant Clinical Drug';
  code?: string;
  /** A branded drug is the tradename of this clinical drug. */
  tradenameOf?: { id?: number; name: string; code?: string };
}

export interface DrugDef {
  key: string;
  ingredients: Array<{ id: number; name: string; code: string }>;
  a: DrugForm;
  /** Site B's forms (tablet vs capsule vs branded, as in the MedRep paper's aspirin example). */
  b: DrugForm[];
}

const ing = (id: number, name: string, code: string) => ({ id, name, code });

export const DRUGS: DrugDef[] = [
  {
    key: 'aspirin', ingredients: [ing(1112807, 'aspirin', '1191')],
    a: { id: 19059056, name: 'aspirin 81 MG Oral Tablet', cls: 'Clinical Drug', code: '243670' },
    b: [
      { name: 'aspirin 325 MG Oral Capsule', cls: 'Clinical Drug' },
      { name: 'aspirin 81 MG Delayed Release Oral Tablet [Ecotrin]', cls: 'Branded Drug', tradenameOf: { name: 'aspirin 81 MG Delayed Release Oral Tablet' } },
    ],
  },
  {
    key: 'metformin', ingredients: [ing(1503297, 'metformin', '6809')],
    a: { name: 'metformin hydrochloride 500 MG Oral Tablet', cls: 'Clinical Drug' },
    b: [{ name: '24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet', cls: 'Clinical Drug' }],
  },
  {
    key: 'lisinopril', ingredients: [ing(1308216, 'lisinopril', '29046')],
    a: { id: 19080128, name: 'lisinopril 10 MG Oral Tablet', cls: 'Clinical Drug', code: '314076' },
    b: [{ id: 19080129, name: 'lisinopril 20 MG Oral Tablet', cls: 'Clinical Drug', code: '314077' }],
  },
  {
    key: 'amlodipine', ingredients: [ing(1332418, 'amlodipine', '17767')],
    a: { id: 1332419, name: 'amlodipine 5 MG Oral Tablet', cls: 'Clinical Drug', code: '197361' },
    b: [{ id: 19073094, name: 'amlodipine 2.5 MG Oral Tablet', cls: 'Clinical Drug', code: '308136' }],
  },
  {
    key: 'atorvastatin', ingredients: [ing(1545958, 'atorvastatin', '83367')],
    a: { id: 1545959, name: 'atorvastatin 80 MG Oral Tablet', cls: 'Clinical Drug', code: '259255' },
    b: [{ name: 'atorvastatin 40 MG Oral Tablet [Lipitor]', cls: 'Branded Drug', tradenameOf: { name: 'atorvastatin 40 MG Oral Tablet' } }],
  },
  {
    key: 'clopidogrel', ingredients: [ing(1322184, 'clopidogrel', '32968')],
    a: { id: 19075601, name: 'clopidogrel 75 MG Oral Tablet', cls: 'Clinical Drug', code: '309362' },
    b: [{ name: 'clopidogrel 75 MG Oral Tablet [Plavix]', cls: 'Branded Drug', tradenameOf: { id: 19075601, name: 'clopidogrel 75 MG Oral Tablet', code: '309362' } }],
  },
  {
    key: 'warfarin', ingredients: [ing(1310149, 'warfarin', '11289')],
    a: { id: 40163554, name: 'warfarin sodium 5 MG Oral Tablet', cls: 'Clinical Drug', code: '855332' },
    b: [{ name: 'warfarin sodium 5 MG Oral Tablet [Coumadin]', cls: 'Branded Drug', tradenameOf: { id: 40163554, name: 'warfarin sodium 5 MG Oral Tablet', code: '855332' } }],
  },
  {
    key: 'metoprolol', ingredients: [ing(1307046, 'metoprolol', '6918')],
    a: { name: 'metoprolol tartrate 25 MG Oral Tablet', cls: 'Clinical Drug' },
    b: [{ name: '24 HR metoprolol succinate 50 MG Extended Release Oral Tablet', cls: 'Clinical Drug' }],
  },
  {
    key: 'furosemide', ingredients: [ing(956874, 'furosemide', '4603')],
    a: { id: 957136, name: 'furosemide 40 MG Oral Tablet', cls: 'Clinical Drug', code: '313988' },
    b: [{ id: 35603224, name: '10 ML furosemide 10 MG/ML Injection', cls: 'Quant Clinical Drug', code: '1719286' }],
  },
  {
    key: 'albuterol', ingredients: [ing(1154343, 'albuterol', '435')],
    a: { id: 1511248, name: 'NDA020503 200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler', cls: 'Clinical Drug', code: '2123111' },
    b: [{ id: 1154380, name: 'albuterol 5 MG/ML Inhalation Solution', cls: 'Clinical Drug', code: '245314' }],
  },
  {
    key: 'levothyroxine', ingredients: [ing(1501700, 'levothyroxine', '10582')],
    a: { id: 40174880, name: 'levothyroxine sodium 0.075 MG Oral Tablet', cls: 'Clinical Drug', code: '966222' },
    b: [{ name: 'levothyroxine sodium 0.075 MG Oral Tablet [Synthroid]', cls: 'Branded Drug', tradenameOf: { id: 40174880, name: 'levothyroxine sodium 0.075 MG Oral Tablet', code: '966222' } }],
  },
  {
    key: 'heparin', ingredients: [ing(1367571, 'heparin', '5224')],
    a: { id: 46275507, name: '1 ML heparin sodium, porcine 5000 UNT/ML Injection', cls: 'Quant Clinical Drug', code: '1659263' },
    b: [{ name: 'heparin sodium, porcine 5000 UNT/ML Injectable Solution', cls: 'Clinical Drug' }],
  },
  {
    key: 'saline', ingredients: [ing(967823, 'sodium chloride', '9863')],
    a: { id: 19079524, name: 'sodium chloride 9 MG/ML Injectable Solution', cls: 'Clinical Drug', code: '313002' },
    b: [{ name: '1000 ML sodium chloride 9 MG/ML Injection', cls: 'Quant Clinical Drug' }],
  },
  {
    key: 'acetaminophen', ingredients: [ing(1125315, 'acetaminophen', '161')],
    a: { id: 1127433, name: 'acetaminophen 325 MG Oral Tablet', cls: 'Clinical Drug', code: '313782' },
    b: [{ id: 19041324, name: 'acetaminophen 325 MG Oral Tablet [Tylenol]', cls: 'Branded Drug', code: '209387', tradenameOf: { id: 1127433, name: 'acetaminophen 325 MG Oral Tablet', code: '313782' } }],
  },
  {
    key: 'morphine', ingredients: [ing(1110410, 'morphine', '7052')],
    a: { id: 35605858, name: '1 ML morphine sulfate 5 MG/ML Injection', cls: 'Quant Clinical Drug', code: '1732136' },
    b: [{ name: 'morphine sulfate 2 MG/ML Injectable Solution', cls: 'Clinical Drug' }],
  },
  {
    key: 'ondansetron', ingredients: [ing(1000560, 'ondansetron', '26225')],
    a: { id: 35605482, name: '2 ML ondansetron 2 MG/ML Injection', cls: 'Quant Clinical Drug', code: '1740467' },
    b: [{ name: 'ondansetron 4 MG Disintegrating Oral Tablet', cls: 'Clinical Drug' }],
  },
  {
    key: 'piptazo', ingredients: [ing(1746114, 'piperacillin', '8339'), ing(1741122, 'tazobactam', '37617')],
    a: { id: 46275444, name: 'piperacillin 4000 MG / tazobactam 500 MG Injection', cls: 'Clinical Drug', code: '1659149' },
    b: [{ id: 46275427, name: 'piperacillin 2000 MG / tazobactam 250 MG Injection', cls: 'Clinical Drug', code: '1659131' }],
  },
  {
    key: 'vancomycin', ingredients: [ing(1707687, 'vancomycin', '11124')],
    a: { id: 40221355, name: 'vancomycin 1000 MG Injection', cls: 'Clinical Drug', code: '1807513' },
    b: [{ id: 1707772, name: 'vancomycin 50 MG/ML Injectable Solution', cls: 'Clinical Drug', code: '313572' }],
  },
  {
    key: 'ceftriaxone', ingredients: [ing(1777806, 'ceftriaxone', '2193')],
    a: { name: 'ceftriaxone 1000 MG Injection', cls: 'Clinical Drug' },
    b: [{ name: 'ceftriaxone 500 MG Injection', cls: 'Clinical Drug' }],
  },
  {
    key: 'nitrofurantoin', ingredients: [ing(920293, 'nitrofurantoin', '7454')],
    a: { id: 920334, name: 'nitrofurantoin, macrocrystals 50 MG Oral Capsule', cls: 'Clinical Drug', code: '311995' },
    b: [{ id: 920300, name: 'nitrofurantoin 5 MG/ML Oral Suspension', cls: 'Clinical Drug', code: '311989' }],
  },
  {
    key: 'amoxicillin', ingredients: [ing(1713332, 'amoxicillin', '723')],
    a: { id: 19073188, name: 'amoxicillin 500 MG Oral Tablet', cls: 'Clinical Drug', code: '308192' },
    b: [{ id: 19073183, name: 'amoxicillin 250 MG Oral Capsule', cls: 'Clinical Drug', code: '308182' }],
  },
  {
    key: 'ibuprofen', ingredients: [ing(1177480, 'ibuprofen', '5640')],
    a: { id: 19078461, name: 'ibuprofen 200 MG Oral Tablet', cls: 'Clinical Drug', code: '310965' },
    b: [{ id: 19019979, name: 'ibuprofen 100 MG Oral Tablet', cls: 'Clinical Drug', code: '198405' }],
  },
];

// ---------------------------------------------------------------- measurements (LOINC) and units (UCUM)

export const UNITS = {
  mgdl: { id: 8840, code: 'mg/dL', name: 'milligram per deciliter' },
  gdl: { id: 8713, code: 'g/dL', name: 'gram per deciliter' },
  pct: { id: 8554, code: '%', name: 'percent' },
  mmhg: { id: 8876, code: 'mm[Hg]', name: 'millimeter mercury column' },
  perMin: { id: 8541, code: '/min', name: 'per minute' },
  mmoll: { id: 8753, code: 'mmol/L', name: 'millimole per liter' },
  kul: { id: 8848, code: '10*3/uL', name: 'thousand per microliter' },
  pgml: { id: 8845, code: 'pg/mL', name: 'picogram per milliliter' },
  cel: { id: 586323, code: 'Cel', name: 'degree Celsius' },
} as const;

export type UnitKey = keyof typeof UNITS;

export interface LabDef {
  key: string;
  a: Named & { code: string };
  /** Site B's concept when it differs (a sibling LOINC code under the same parent). */
  b?: Named & { code: string };
  /** Shared parent of the A and B concepts. */
  parent?: string;
  /** null: reported without a unit (e.g. a pain score). */
  unit: UnitKey | null;
  mean: number;
  sd: number;
  decimals: number;
  min: number;
  max: number;
  /** Shift of the mean, in sd, per unit of stay acuity (the latent risk of the admission). */
  acuity: number;
}

export const LABS: LabDef[] = [
  { key: 'glucose', a: { id: 3000483, name: 'Glucose [Mass/volume] in Blood', code: '2339-0' }, b: { id: 3004501, name: 'Glucose [Mass/volume] in Serum or Plasma', code: '2345-7' }, parent: 'Glucose measurement', unit: 'mgdl', mean: 98, sd: 16, decimals: 0, min: 30, max: 900, acuity: 0.4 },
  { key: 'creatinine', a: { id: 3051825, name: 'Creatinine [Mass/volume] in Blood', code: '38483-4' }, b: { id: 3016723, name: 'Creatinine [Mass/volume] in Serum or Plasma', code: '2160-0' }, parent: 'Creatinine measurement', unit: 'mgdl', mean: 0.95, sd: 0.22, decimals: 2, min: 0.2, max: 15, acuity: 0.7 },
  { key: 'sodium', a: { id: 3000285, name: 'Sodium [Moles/volume] in Blood', code: '2947-0' }, b: { id: 3019550, name: 'Sodium [Moles/volume] in Serum or Plasma', code: '2951-2' }, parent: 'Sodium measurement', unit: 'mmoll', mean: 139, sd: 2.8, decimals: 0, min: 110, max: 165, acuity: -0.5 },
  { key: 'potassium', a: { id: 3005456, name: 'Potassium [Moles/volume] in Blood', code: '6298-4' }, b: { id: 3023103, name: 'Potassium [Moles/volume] in Serum or Plasma', code: '2823-3' }, parent: 'Potassium measurement', unit: 'mmoll', mean: 4.2, sd: 0.4, decimals: 1, min: 2, max: 8, acuity: 0.3 },
  { key: 'bun', a: { id: 3004295, name: 'Urea nitrogen [Mass/volume] in Blood', code: '6299-2' }, b: { id: 3013682, name: 'Urea nitrogen [Mass/volume] in Serum or Plasma', code: '3094-0' }, parent: 'Urea nitrogen measurement', unit: 'mgdl', mean: 15, sd: 4.5, decimals: 0, min: 2, max: 180, acuity: 0.7 },
  { key: 'hemoglobin', a: { id: 3000963, name: 'Hemoglobin [Mass/volume] in Blood', code: '718-7' }, unit: 'gdl', mean: 13.8, sd: 1.4, decimals: 1, min: 4, max: 20, acuity: -0.6 },
  { key: 'wbc', a: { id: 3000905, name: 'Leukocytes [#/volume] in Blood by Automated count', code: '6690-2' }, b: { id: 3010813, name: 'Leukocytes [#/volume] in Blood', code: '26464-8' }, parent: 'White blood cell count', unit: 'kul', mean: 7.4, sd: 1.9, decimals: 1, min: 0.5, max: 60, acuity: 0.6 },
  { key: 'platelets', a: { id: 3024929, name: 'Platelets [#/volume] in Blood by Automated count', code: '777-3' }, b: { id: 3007461, name: 'Platelets [#/volume] in Blood', code: '26515-7' }, parent: 'Platelet count', unit: 'kul', mean: 250, sd: 60, decimals: 0, min: 5, max: 900, acuity: -0.3 },
  { key: 'albumin', a: { id: 3024561, name: 'Albumin [Mass/volume] in Serum or Plasma', code: '1751-7' }, unit: 'gdl', mean: 4.0, sd: 0.35, decimals: 1, min: 1, max: 5.5, acuity: -0.7 },
  { key: 'hba1c', a: { id: 3004410, name: 'Hemoglobin A1c/Hemoglobin.total in Blood', code: '4548-4' }, unit: 'pct', mean: 5.4, sd: 0.35, decimals: 1, min: 3.5, max: 16, acuity: 0 },
  { key: 'troponin', a: { id: 36306105, name: 'Troponin I.cardiac [Mass/volume] in Serum or Plasma by High sensitivity method', code: '89579-7' }, unit: 'pgml', mean: 6, sd: 3, decimals: 1, min: 0.5, max: 50000, acuity: 0.3 },
  { key: 'heartRate', a: { id: 3027018, name: 'Heart rate', code: '8867-4' }, unit: 'perMin', mean: 78, sd: 11, decimals: 0, min: 30, max: 200, acuity: 0.5 },
  { key: 'systolic', a: { id: 3004249, name: 'Systolic blood pressure', code: '8480-6' }, unit: 'mmhg', mean: 124, sd: 14, decimals: 0, min: 60, max: 240, acuity: -0.35 },
  { key: 'diastolic', a: { id: 3012888, name: 'Diastolic blood pressure', code: '8462-4' }, unit: 'mmhg', mean: 78, sd: 9, decimals: 0, min: 30, max: 140, acuity: -0.25 },
  { key: 'respRate', a: { id: 3024171, name: 'Respiratory rate', code: '9279-1' }, unit: 'perMin', mean: 15, sd: 2.2, decimals: 0, min: 6, max: 50, acuity: 0.6 },
  { key: 'temperature', a: { id: 3020891, name: 'Body temperature', code: '8310-5' }, unit: 'cel', mean: 36.9, sd: 0.35, decimals: 1, min: 34, max: 42, acuity: 0.3 },
  { key: 'spo2', a: { id: 3016502, name: 'Oxygen saturation in Arterial blood', code: '2708-6' }, unit: 'pct', mean: 97, sd: 1.5, decimals: 0, min: 60, max: 100, acuity: -0.6 },
  { key: 'pain', a: { id: 43055141, name: 'Pain severity - 0-10 verbal numeric rating [Score] - Reported', code: '72514-3' }, unit: null, mean: 2, sd: 2, decimals: 0, min: 0, max: 10, acuity: 0.3 },
];

/** Measurements recorded without a value (a result that is a finding, not a number). */
export const VALUELESS_MEASUREMENTS = {
  throatCulture: { id: 4024958, name: 'Throat culture', code: '117015009' },
  bloodCulture: { name: 'Blood culture', code: '30088009' },
  urineCulture: { name: 'Urine culture', code: '117010004' },
} as const;

// ---------------------------------------------------------------- procedures (SNOMED)

export interface ProcedureDef {
  key: string;
  a: Named & { code: string };
  /** Site B's concept: a more specific procedure that "Is a" site A's. */
  b?: Named;
}

export const PROCEDURES: ProcedureDef[] = [
  { key: 'ecg', a: { id: 4163951, name: 'Electrocardiographic procedure', code: '29303009' }, b: L('12 lead electrocardiogram') },
  { key: 'chestXray', a: { id: 4163872, name: 'Plain chest X-ray', code: '399208008' }, b: L('Radiography of chest, two views') },
  { key: 'intubation', a: { id: 4202832, name: 'Intubation', code: '52765003' }, b: L('Insertion of endotracheal tube') },
  { key: 'pci', a: { id: 4216130, name: 'Percutaneous coronary intervention', code: '415070008' } },
  { key: 'transfusion', a: { id: 4108705, name: 'Intravenous blood transfusion of packed cells', code: '180207008' } },
  { key: 'bloodDraw', a: { id: 4218408, name: 'Collection of blood specimen for laboratory', code: '82078001' } },
  { key: 'exam', a: { id: 4037675, name: 'Brief general examination', code: '162676008' }, b: L('Limited general examination') },
  { key: 'medRec', a: { id: 4326177, name: 'Medication Reconciliation', code: '430193006' } },
  { key: 'immobilization', a: { id: 4170947, name: 'Bone immobilization', code: '274474001' } },
  { key: 'hipFixation', a: { name: 'Open reduction of fracture of femur with internal fixation', code: '179097005' } },
  { key: 'ctHead', a: { name: 'Computed tomography of head', code: '303653007' }, b: L('Computed tomography of head without contrast') },
  { key: 'dialysis', a: { name: 'Hemodialysis', code: '302497006' } },
  { key: 'endoscopy', a: { name: 'Upper gastrointestinal endoscopy', code: '386831001' } },
];
