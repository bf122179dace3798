// The OMOP CDM tables medrep reads, as one declarative spec per table. From each spec come the
// JSON Schema of a row (ajv), the SQL that type-checks rows in bulk, and the column list the
// sources select. One source of truth for what an OMOP row must look like.

/** Integer columns hold signed 64-bit integers (ids are exact everywhere: schemas/ids.ts). */
export { INT64_MIN, INT64_MAX } from './ids';
/** De-identified datasets shift dates far into the future; these years are still valid. */
export const MIN_YEAR = 1800;
export const MAX_YEAR = 2300;

/**
 * The largest magnitude of a `number` column: the largest float32, since MEDS writes
 * numeric_value as float32. A value beyond it is a reject at the check, never a writer's crash.
 */
export const MAX_FLOAT32 = 3.4028234663852886e38;

export type ColumnType = 'integer' | 'number' | 'string' | 'date' | 'datetime';

export interface ColumnSpec {
  name: string;
  type: ColumnType;
  /** Must be present and non-null for the row to be usable. */
  required?: boolean;
  /** Inclusive bounds of an integer column. */
  min?: number;
  max?: number;
}

export type ClinicalTable =
  | 'person'
  | 'visit_occurrence'
  | 'condition_occurrence'
  | 'drug_exposure'
  | 'measurement'
  | 'procedure_occurrence'
  | 'death'
  | 'observation_period';

export type VocabularyTable = 'concept' | 'concept_relationship' | 'concept_ancestor';

/** How a clinical table becomes canonical events (see DESIGN.md section 4). */
export interface EventMapping {
  /** Value of the events' `table` column. */
  eventTable: 'condition' | 'drug' | 'measurement' | 'procedure' | 'visit' | 'death';
  /** MedRep domain id: 1 condition, 2 drug, 3 measurement, 4 procedure; 0 for visits and deaths. */
  domain: number;
  idColumn: string | null;
  conceptColumn: string;
  sourceConceptColumn: string | null;
  dateColumn: string;
  datetimeColumn: string | null;
  valueColumn?: string;
  unitConceptColumn?: string;
  unitSourceColumn?: string;
  visitColumn?: string;
}

export interface TableSpec {
  table: ClinicalTable;
  required: boolean;
  columns: ColumnSpec[];
  events?: EventMapping;
}

const int = (name: string, required = false): ColumnSpec => ({ name, type: 'integer', required });
const num = (name: string): ColumnSpec => ({ name, type: 'number' });
const str = (name: string): ColumnSpec => ({ name, type: 'string' });
const date = (name: string, required = false): ColumnSpec => ({ name, type: 'date', required });
const datetime = (name: string): ColumnSpec => ({ name, type: 'datetime' });

/** The clinical tables, in the order events of equal time are ordered. */
export const CLINICAL_TABLES: TableSpec[] = [
  {
    table: 'person',
    required: true,
    columns: [
      int('person_id', true),
      int('gender_concept_id', true),
      { ...int('year_of_birth', true), min: MIN_YEAR, max: MAX_YEAR },
      { ...int('month_of_birth'), min: 1, max: 12 },
      { ...int('day_of_birth'), min: 1, max: 31 },
      datetime('birth_datetime'),
    ],
  },
  {
    table: 'visit_occurrence',
    required: true,
    columns: [
      int('visit_occurrence_id', true),
      int('person_id', true),
      int('visit_concept_id', true),
      date('visit_start_date', true),
      datetime('visit_start_datetime'),
      date('visit_end_date'),
      datetime('visit_end_datetime'),
      int('visit_source_concept_id'),
    ],
    events: {
      eventTable: 'visit', domain: 0, idColumn: 'visit_occurrence_id', conceptColumn: 'visit_concept_id',
      sourceConceptColumn: 'visit_source_concept_id', dateColumn: 'visit_start_date',
      datetimeColumn: 'visit_start_datetime', visitColumn: 'visit_occurrence_id',
    },
  },
  {
    table: 'condition_occurrence',
    required: false,
    columns: [
      int('condition_occurrence_id', true),
      int('person_id', true),
      int('condition_concept_id', true),
      date('condition_start_date', true),
      datetime('condition_start_datetime'),
      int('condition_source_concept_id'),
      int('visit_occurrence_id'),
    ],
    events: {
      eventTable: 'condition', domain: 1, idColumn: 'condition_occurrence_id', conceptColumn: 'condition_concept_id',
      sourceConceptColumn: 'condition_source_concept_id', dateColumn: 'condition_start_date',
      datetimeColumn: 'condition_start_datetime', visitColumn: 'visit_occurrence_id',
    },
  },
  {
    table: 'drug_exposure',
    required: false,
    columns: [
      int('drug_exposure_id', true),
      int('person_id', true),
      int('drug_concept_id', true),
      date('drug_exposure_start_date', true),
      datetime('drug_exposure_start_datetime'),
      int('drug_source_concept_id'),
      int('visit_occurrence_id'),
    ],
    events: {
      eventTable: 'drug', domain: 2, idColumn: 'drug_exposure_id', conceptColumn: 'drug_concept_id',
      sourceConceptColumn: 'drug_source_concept_id', dateColumn: 'drug_exposure_start_date',
      datetimeColumn: 'drug_exposure_start_datetime', visitColumn: 'visit_occurrence_id',
    },
  },
  {
    table: 'measurement',
    required: false,
    columns: [
      int('measurement_id', true),
      int('person_id', true),
      int('measurement_concept_id', true),
      date('measurement_date', true),
      datetime('measurement_datetime'),
      num('value_as_number'),
      int('unit_concept_id'),
      str('unit_source_value'),
      int('measurement_source_concept_id'),
      int('visit_occurrence_id'),
    ],
    events: {
      eventTable: 'measurement', domain: 3, idColumn: 'measurement_id', conceptColumn: 'measurement_concept_id',
      sourceConceptColumn: 'measurement_source_concept_id', dateColumn: 'measurement_date',
      datetimeColumn: 'measurement_datetime', valueColumn: 'value_as_number', unitConceptColumn: 'unit_concept_id',
      unitSourceColumn: 'unit_source_value', visitColumn: 'visit_occurrence_id',
    },
  },
  {
    table: 'procedure_occurrence',
    required: false,
    columns: [
      int('procedure_occurrence_id', true),
      int('person_id', true),
      int('procedure_concept_id', true),
      date('procedure_date', true),
      datetime('procedure_datetime'),
      int('procedure_source_concept_id'),
      int('visit_occurrence_id'),
    ],
    events: {
      eventTable: 'procedure', domain: 4, idColumn: 'procedure_occurrence_id', conceptColumn: 'procedure_concept_id',
      sourceConceptColumn: 'procedure_source_concept_id', dateColumn: 'procedure_date',
      datetimeColumn: 'procedure_datetime', visitColumn: 'visit_occurrence_id',
    },
  },
  {
    table: 'death',
    required: false,
    columns: [int('person_id', true), date('death_date', true), datetime('death_datetime'), int('cause_concept_id')],
    events: {
      eventTable: 'death', domain: 0, idColumn: null, conceptColumn: 'cause_concept_id',
      sourceConceptColumn: null, dateColumn: 'death_date', datetimeColumn: 'death_datetime',
    },
  },
  {
    table: 'observation_period',
    required: false,
    columns: [
      int('observation_period_id', true),
      int('person_id', true),
      date('observation_period_start_date', true),
      date('observation_period_end_date', true),
    ],
  },
];

export const VOCABULARY_TABLES: Record<VocabularyTable, ColumnSpec[]> = {
  concept: [
    int('concept_id', true),
    str('concept_name'),
    str('domain_id'),
    str('vocabulary_id'),
    str('concept_class_id'),
    str('standard_concept'),
    str('concept_code'),
    str('invalid_reason'),
  ],
  concept_relationship: [int('concept_id_1', true), int('concept_id_2', true), str('relationship_id'), str('invalid_reason')],
  concept_ancestor: [int('ancestor_concept_id', true), int('descendant_concept_id', true)],
};

export function tableSpec(table: ClinicalTable): TableSpec {
  const spec = CLINICAL_TABLES.find((t) => t.table === table);
  if (!spec) throw new Error(`unknown OMOP table ${table}`);
  return spec;
}

export const OMOP_SCHEMA_VERSION = 'omop-cdm-5.3+5.4';
