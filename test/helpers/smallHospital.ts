// A hospital of three persons (the third one invalid: born 1750) with visits, a measurement
// table written byte for byte by the test, and a CDM-style CSV vocabulary beside the data.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { tempDir, writeCsv } from './index';

export const MEASUREMENT_HEADER =
  'measurement_id,person_id,measurement_concept_id,measurement_date,measurement_datetime,value_as_number,unit_source_value,measurement_source_value,visit_occurrence_id';

/** Good measurement records of persons 1 and 2 (one per line, no header). */
export const GOOD_MEASUREMENTS = [
  '1,1,3004410,2020-01-02,2020-01-02 08:00:00,5.5,%,HbA1c,10',
  '2,1,3004410,2020-01-03,,6.1,%,HbA1c,10',
  '3,2,3004410,2021-03-01,,7.2,%,HbA1c,11',
];

/**
 * Writes the hospital; `measurements` is the measurement file's content after its header,
 * gzipped when `file` ends in .gz. Returns the folder; the file is `path.join(dir, file)`.
 */
export function smallHospital(measurements: string | Buffer, file = 'measurement.csv'): string {
  const dir = tempDir('hospital');
  writeCsv(path.join(dir, 'person.csv'), ['person_id', 'gender_concept_id', 'year_of_birth', 'month_of_birth', 'day_of_birth'], [
    [1, 8507, 1980, 5, 20],
    [2, 8532, 1990, null, null],
    [3, 8532, 1750, 1, 1],
  ]);
  writeCsv(path.join(dir, 'visit_occurrence.csv'), ['visit_occurrence_id', 'person_id', 'visit_concept_id', 'visit_start_date', 'visit_end_date'], [
    [10, 1, 9201, '2020-01-01', '2020-01-05'],
    [11, 2, 9202, '2021-03-01', '2021-03-01'],
    [12, 3, 9202, '2021-03-01', '2021-03-01'],
  ]);
  writeCsv(path.join(dir, 'concept.csv'), ['concept_id', 'concept_name', 'domain_id', 'vocabulary_id', 'concept_class_id', 'standard_concept', 'concept_code', 'invalid_reason'], [
    [3004410, 'Hemoglobin A1c/Hemoglobin.total in Blood', 'Measurement', 'LOINC', 'Lab Test', 'S', '4548-4', null],
    [9201, 'Inpatient Visit', 'Visit', 'Visit', 'Visit', 'S', 'IP', null],
    [9202, 'Outpatient Visit', 'Visit', 'Visit', 'Visit', 'S', 'OP', null],
  ]);
  const body = Buffer.concat([Buffer.from(MEASUREMENT_HEADER + '\n'), Buffer.from(measurements)]);
  fs.writeFileSync(path.join(dir, file), file.endsWith('.gz') ? zlib.gzipSync(body) : body);
  return dir;
}
