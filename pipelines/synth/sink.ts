// The clinical rows of the synthetic hospital, formatted as OMOP CDM 5.4 CSV lines. The clinical
// process calls one method per row; this class assigns the row ids and writes the columns in the
// order of OUT_COLUMNS.
import { join } from 'node:path';
import { Coding, TYPE_EHR } from './catalogue';
import { CLINICAL_OUT_TABLES, ClinicalOutTable, CsvTable, OUT_COLUMNS, formatDatetime, formatDay, SECONDS_PER_DAY } from './writers';

const day = (t: number) => formatDay(Math.floor(t / SECONDS_PER_DAY));

export class CdmCsvSink {
  readonly tables: Record<ClinicalOutTable, CsvTable>;
  private nextId: Record<ClinicalOutTable, number>;

  constructor(dir: string) {
    const tables = {} as Record<ClinicalOutTable, CsvTable>;
    const ids = {} as Record<ClinicalOutTable, number>;
    for (const t of CLINICAL_OUT_TABLES) {
      tables[t] = new CsvTable(join(dir, `${t}.csv`), OUT_COLUMNS[t].map(([n]) => n));
      ids[t] = 1;
    }
    this.tables = tables;
    this.nextId = ids;
  }

  /** Rows written so far per table. */
  counts(): Record<ClinicalOutTable, number> {
    const out = {} as Record<ClinicalOutTable, number>;
    for (const t of CLINICAL_OUT_TABLES) out[t] = this.tables[t].rows;
    return out;
  }

  totalRows(): number {
    let n = 0;
    for (const t of CLINICAL_OUT_TABLES) n += this.tables[t].rows;
    return n;
  }

  /** The id the next row of `table` will get (for rows written by hand, e.g. injected errors). */
  takeId(table: ClinicalOutTable): number {
    return this.nextId[table]++;
  }

  /** Close every file; returns the sha256 of each. */
  close(): Record<ClinicalOutTable, string> {
    const out = {} as Record<ClinicalOutTable, string>;
    for (const t of CLINICAL_OUT_TABLES) out[t] = this.tables[t].close();
    return out;
  }

  person(personId: number, genderId: number, birthDay: number, raceId: number, ethnicityId: number, sourceValue: string): void {
    const s = formatDay(birthDay);
    this.tables.person.line(
      `${personId},${genderId},${s.slice(0, 4)},${+s.slice(5, 7)},${+s.slice(8, 10)},${s} 00:00:00,${raceId},${ethnicityId},${sourceValue},${genderId === 8507 ? 'M' : 'F'}`,
    );
  }

  observationPeriod(personId: number, startDay: number, endDay: number): void {
    this.tables.observation_period.line(`${this.takeId('observation_period')},${personId},${formatDay(startDay)},${formatDay(endDay)},${TYPE_EHR}`);
  }

  visit(personId: number, conceptId: number, sourceValue: string, start: number, end: number): number {
    const id = this.takeId('visit_occurrence');
    this.tables.visit_occurrence.line(
      `${id},${personId},${conceptId},${day(start)},${formatDatetime(start)},${day(end)},${formatDatetime(end)},${TYPE_EHR},${sourceValue},0`,
    );
    return id;
  }

  condition(personId: number, c: Coding, t: number, endDay: number | null, visitId: number): void {
    this.tables.condition_occurrence.line(
      `${this.takeId('condition_occurrence')},${personId},${c.conceptId},${day(t)},${formatDatetime(t)},${endDay === null ? '' : formatDay(endDay)},${TYPE_EHR},${c.sourceValue},${c.sourceConceptId},${visitId}`,
    );
  }

  drug(personId: number, c: Coding, t: number, endDay: number, quantity: number, daysSupply: number, visitId: number): void {
    this.tables.drug_exposure.line(
      `${this.takeId('drug_exposure')},${personId},${c.conceptId},${day(t)},${formatDatetime(t)},${formatDay(endDay)},${TYPE_EHR},${quantity},${daysSupply},${c.sourceValue},${c.sourceConceptId},${visitId}`,
    );
  }

  /** `value` null: no numeric result; `unitConceptId` null: reported without a unit. */
  measurement(personId: number, c: Coding, t: number, value: string | null, unitConceptId: number | null, unitSource: string, visitId: number): void {
    this.tables.measurement.line(
      `${this.takeId('measurement')},${personId},${c.conceptId},${day(t)},${formatDatetime(t)},${TYPE_EHR},${value ?? ''},${unitConceptId ?? ''},${c.sourceValue},${c.sourceConceptId},${unitSource},${visitId}`,
    );
  }

  procedure(personId: number, c: Coding, t: number, visitId: number): void {
    this.tables.procedure_occurrence.line(
      `${this.takeId('procedure_occurrence')},${personId},${c.conceptId},${day(t)},${formatDatetime(t)},${TYPE_EHR},${c.sourceValue},${c.sourceConceptId},${visitId}`,
    );
  }

  death(personId: number, t: number, causeConceptId: number): void {
    this.tables.death.line(`${personId},${day(t)},${formatDatetime(t)},${TYPE_EHR},${causeConceptId}`);
  }
}
