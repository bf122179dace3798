// Small OMOP folders written by hand (CSV, with a small vocabulary beside the data) for tests of
// exact edge cases; `tables` replaces or adds tables to the empty defaults.
import * as path from 'node:path';
import { tempDir, writeCsv } from './index';

export type CsvTable = [string[], (string | number | null)[][]];

/** An OMOP folder of hand-written CSV files with a small vocabulary beside them. */
export function handMade(name: string, tables: Record<string, CsvTable>): string {
  const dir = tempDir(name);
  const base: Record<string, CsvTable> = {
    person: [['person_id', 'gender_concept_id', 'year_of_birth', 'month_of_birth', 'day_of_birth', 'birth_datetime'], []],
    visit_occurrence: [['visit_occurrence_id', 'person_id', 'visit_concept_id', 'visit_start_date', 'visit_start_datetime', 'visit_end_date', 'visit_end_datetime'], []],
    condition_occurrence: [['condition_occurrence_id', 'person_id', 'condition_concept_id', 'condition_start_date', 'condition_start_datetime', 'condition_source_concept_id', 'visit_occurrence_id'], []],
    concept: [['concept_id', 'concept_name', 'domain_id', 'vocabulary_id', 'concept_class_id', 'standard_concept', 'concept_code', 'valid_start_date', 'valid_end_date', 'invalid_reason'], [
      [201826, 'Type 2 diabetes mellitus', 'Condition', 'SNOMED', 'Clinical Finding', 'S', '44054006', '2002-01-31', '2099-12-31', null],
      [316866, 'Hypertensive disorder', 'Condition', 'SNOMED', 'Clinical Finding', 'S', '38341003', '2002-01-31', '2099-12-31', null],
      [9201, 'Inpatient Visit', 'Visit', 'Visit', 'Visit', 'S', 'IP', '1970-01-01', '2099-12-31', null],
      [8507, 'MALE', 'Gender', 'Gender', 'Gender', 'S', 'M', '1970-01-01', '2099-12-31', null],
    ]],
    concept_relationship: [['concept_id_1', 'concept_id_2', 'relationship_id', 'valid_start_date', 'valid_end_date', 'invalid_reason'], []],
    concept_ancestor: [['ancestor_concept_id', 'descendant_concept_id', 'min_levels_of_separation', 'max_levels_of_separation'], []],
  };
  for (const [t, [header, rows]] of Object.entries({ ...base, ...tables })) writeCsv(path.join(dir, `${t}.csv`), header, rows);
  return dir;
}

