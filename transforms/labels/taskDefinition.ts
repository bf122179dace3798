// Task definitions as data (schemas/task.schema.json): the types of a task file, its validation,
// and its compiled form, the definition plus the concept ids its concept sets resolved to.
import Ajv from 'ajv';
import { contentHash } from '../hashing';
import taskSchema from '../../schemas/task.schema.json';

export type ExclusionRule =
  | 'starts_on_or_after_death'
  | 'died_during_stay'
  | 'event_on_admission_day'
  | 'too_few_record_ranks'
  | 'code_in_first_record_ranks';

/** Rules every task applies, before its listed exclusions. */
export type BaseRule = 'no_person' | 'age_out_of_range' | 'no_end_date' | 'stay_shorter_than_min';
export type RuleName = BaseRule | ExclusionRule;
export const BASE_RULES: BaseRule[] = ['no_person', 'age_out_of_range', 'no_end_date', 'stay_shorter_than_min'];
/** Rules about the index stay only: a stay they exclude still counts as a readmission. */
export const INDEX_ONLY_RULES: ReadonlySet<ExclusionRule> = new Set<ExclusionRule>([
  'died_during_stay',
  'event_on_admission_day',
  'too_few_record_ranks',
  'code_in_first_record_ranks',
]);

export type SelectRule = 'latest' | 'seeded_draw' | 'latest_with_event_else_latest';
export type PredictionRule = 'admission_day_plus_1' | 'discharge_day_plus_1' | 'day_before_occurrence' | 'record_rank';
export type LabelRule =
  | 'death_during_stay'
  | 'stay_length_at_least'
  | 'readmission_within'
  | 'codes_during_stay'
  | 'event_during_stay';

export type ConceptSetSource =
  | { from: 'ids'; name: string; ids: number[] }
  | { from: 'ids_json'; name: string; file: string; key: string }
  | { from: 'icd9_csv'; file: string; nameColumn: string; codesColumn: string }
  | { from: 'icd9_codes'; name: string; codes: string[] }
  | { from: 'name_regex'; name: string; pattern: string; vocabularies?: string[]; domains?: string[] };

export interface TaskDefinition {
  name: string;
  description: string;
  seed?: number;
  cohort: {
    indexVisitConcepts: number[];
    age: { min: number; max: number };
    minStayDays: number;
    exclusions?: ExclusionRule[];
    select: SelectRule;
  };
  predictionTime: { rule: PredictionRule; rank?: number };
  label: { rule: LabelRule; days?: number };
  conceptSets?: ConceptSetSource[];
}

export interface ResolvedConceptSet {
  name: string;
  conceptIds: number[];
}

export interface CompiledTask {
  def: TaskDefinition;
  name: string;
  seed: number;
  indexConcepts: ReadonlySet<number>;
  /** Concept sets in definition order; for multi-label tasks, one label per set. */
  sets: { name: string; ids: ReadonlySet<number> }[];
  /** Every concept of every set. */
  anyCode: ReadonlySet<number>;
  multiLabel: boolean;
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(taskSchema);

/** Checks a parsed task file against the schema and the rule combinations the labeler supports. */
export function validateTaskDefinition(json: unknown, source: string): TaskDefinition {
  if (!validate(json)) {
    const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new Error(`${source}: invalid task definition: ${errors}`);
  }
  const def = json as unknown as TaskDefinition;
  const fail = (msg: string): never => {
    throw new Error(`${source}: task "${def.name}": ${msg}`);
  };
  if (def.cohort.age.min > def.cohort.age.max) fail(`cohort.age.min ${def.cohort.age.min} > max ${def.cohort.age.max}`);
  const label = def.label.rule;
  const pred = def.predictionTime.rule;
  if ((label === 'event_during_stay') !== (pred === 'day_before_occurrence'))
    fail('label rule event_during_stay goes with prediction rule day_before_occurrence, and only with it');
  if ((label === 'codes_during_stay') !== (pred === 'record_rank'))
    fail('label rule codes_during_stay goes with prediction rule record_rank, and only with it');
  if ((def.cohort.select === 'latest_with_event_else_latest') !== (label === 'event_during_stay'))
    fail('select latest_with_event_else_latest goes with label rule event_during_stay, and only with it');
  for (const r of def.cohort.exclusions ?? []) {
    if (r === 'event_on_admission_day' && label !== 'event_during_stay') fail(`exclusion ${r} needs label rule event_during_stay`);
    if ((r === 'too_few_record_ranks' || r === 'code_in_first_record_ranks') && pred !== 'record_rank')
      fail(`exclusion ${r} needs prediction rule record_rank`);
  }
  if (pred === 'record_rank' && !(def.cohort.exclusions ?? []).includes('too_few_record_ranks'))
    fail('prediction rule record_rank needs the exclusion too_few_record_ranks (a stay without that rank has no prediction time)');
  return def;
}

/** The definition with its concept sets resolved (see sources/labelInputs.ts for the resolution). */
export function compileTask(def: TaskDefinition, sets: ResolvedConceptSet[]): CompiledTask {
  if (def.label.rule === 'event_during_stay' && sets.length !== 1)
    throw new Error(`task "${def.name}": event_during_stay needs exactly one concept set, got ${sets.length}`);
  if (def.label.rule === 'codes_during_stay' && sets.length === 0)
    throw new Error(`task "${def.name}": codes_during_stay needs at least one concept set`);
  const names = new Set<string>();
  for (const s of sets) {
    if (names.has(s.name)) throw new Error(`task "${def.name}": concept set "${s.name}" defined twice`);
    names.add(s.name);
  }
  const anyCode = new Set<number>();
  for (const s of sets) for (const id of s.conceptIds) anyCode.add(id);
  return {
    def,
    name: def.name,
    seed: def.seed ?? 0,
    indexConcepts: new Set(def.cohort.indexVisitConcepts),
    sets: sets.map((s) => ({ name: s.name, ids: new Set(s.conceptIds) })),
    anyCode,
    multiLabel: def.label.rule === 'codes_during_stay',
  };
}

/** What a run records of a task (OUT/artifacts/): its definition, resolved concept ids, and their hash. */
export interface TaskArtifact {
  name: string;
  definition: TaskDefinition;
  conceptSets: ResolvedConceptSet[];
  hash: string;
}

export function taskArtifact(task: CompiledTask): TaskArtifact {
  const conceptSets = task.sets.map((s) => ({ name: s.name, conceptIds: Array.from(s.ids).sort((a, b) => a - b) }));
  return { name: task.name, definition: task.def, conceptSets, hash: contentHash({ definition: task.def, conceptSets }) };
}
