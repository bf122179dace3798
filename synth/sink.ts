// The clinical rows of the synthetic hospital, formatted as OMOP CDM 5.4 CSV lines. The clinical
// process calls one method per row; this class assigns the row ids and writes the columns in the
// order of OUT_COLUMNS.
import { join } from 'node:path';
import { Coding, TYPE_EHR } from './catalogue';
import { CLINICAL_OUT_TABLES, ClinicalOutTable, CsvTable, OUT_COLUMNS, formatDatetime, formatDay, SECONDS_PER_DAY } from './writers';
import { splitmix64 } from '../transforms/splits';

const day = (t: number) => formatDay(Math.floor(t / SECONDS_PER_DAY));

/** How row and person ids are written: 1, 2, 3, ... or signed 64-bit hashes of those (--ids hashed). */
export type IdStyle = 'sequential' | 'hashed';

const MASK64 = (1n << 64n) - 1n;

/**
 * Ids as the OHDSI MIMIC-IV ETL writes them: a signed 64-bit hash of the sequential id, one
 * SplitMix64 bijection per (seed, table), so ids are unique per table, most beyond 2^53, half
 * negative, and the same seed gives the same ids.
 */
export function hashedIdFormatter(seed: number, salt: string): (n: number) => string {
  let key = splitmix64(BigInt(seed));
  for (let i = 0; i < salt.length; i++) key = splitmix64(key ^ BigInt(salt.charCodeAt(i)));
  return (n) => BigInt.asIntN(64, splitmix64((BigInt(n) + key) & MASK64)).toString();
}

export class CdmCsvSink {
  readonly tables: Record<ClinicalOutTable, CsvTable>;
  private nextId: Record<ClinicalOutTable, number>;
  /** Written form of a person id and of a visit id (sequential numbers inside the process). */
  private readonly pid: (n: number) => string;
  private readonly vid: (n: number) => string;
  /** Written form of a table's own row id. */
  private readonly rowId: (table: ClinicalOutTable) => string;

  constructor(dir: string, ids: { style: IdStyle; seed: number } = { style: 'sequential', seed: 0 }) {
    const tables = {} as Record<ClinicalOutTable, CsvTable>;
    const counters = {} as Record<ClinicalOutTable, number>;
    for (const t of CLINICAL_OUT_TABLES) {
      tables[t] = new CsvTable(join(dir, `${t}.csv`), OUT_COLUMNS[t].map(([n]) => n));
      counters[t] = 1;
    }
    this.tables = tables;
    this.nextId = counters;
    const format = (salt: string) => (ids.style === 'hashed' ? hashedIdFormatter(ids.seed, salt) : (n: number) => String(n));
    this.pid = format('person');
    this.vid = format('visit_occurrence');
    const rowFormats = new Map(CLINICAL_OUT_TABLES.map((t) => [t, t === 'visit_occurrence' ? this.vid : format(t)]));
    this.rowId = (table) => rowFormats.get(table)!(this.takeId(table));
  }

  /** The written id of the process's person `n` (for rows written by hand, e.g. injected errors). */
  personIdText(n: number): string {
    return this.pid(n);
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
      `${this.pid(personId)},${genderId},${s.slice(0, 4)},${+s.slice(5, 7)},${+s.slice(8, 10)},${s} 00:00:00,${raceId},${ethnicityId},${sourceValue},${genderId === 8507 ? 'M' : 'F'}`,
    );
  }

  observationPeriod(personId: number, startDay: number, endDay: number): void {
    this.tables.observation_period.line(`${this.rowId('observation_period')},${this.pid(personId)},${formatDay(startDay)},${formatDay(endDay)},${TYPE_EHR}`);
  }

  visit(personId: number, conceptId: number, sourceValue: string, start: number, end: number): number {
    const id = this.takeId('visit_occurrence');
    this.tables.visit_occurrence.line(
      `${this.vid(id)},${this.pid(personId)},${conceptId},${day(start)},${formatDatetime(start)},${day(end)},${formatDatetime(end)},${TYPE_EHR},${sourceValue},0`,
    );
    return id;
  }

  condition(personId: number, c: Coding, t: number, endDay: number | null, visitId: number): void {
    this.tables.condition_occurrence.line(
      `${this.rowId('condition_occurrence')},${this.pid(personId)},${c.conceptId},${day(t)},${formatDatetime(t)},${endDay === null ? '' : formatDay(endDay)},${TYPE_EHR},${c.sourceValue},${c.sourceConceptId},${this.vid(visitId)}`,
    );
  }

  drug(personId: number, c: Coding, t: number, endDay: number, quantity: number, daysSupply: number, visitId: number): void {
    this.tables.drug_exposure.line(
      `${this.rowId('drug_exposure')},${this.pid(personId)},${c.conceptId},${day(t)},${formatDatetime(t)},${formatDay(endDay)},${TYPE_EHR},${quantity},${daysSupply},${c.sourceValue},${c.sourceConceptId},${this.vid(visitId)}`,
    );
  }

  /** `value` null: no numeric result; `unitConceptId` null: reported without a unit. */
  measurement(personId: number, c: Coding, t: number, value: string | null, unitConceptId: number | null, unitSource: string, visitId: number): void {
    this.tables.measurement.line(
      `${this.rowId('measurement')},${this.pid(personId)},${c.conceptId},${day(t)},${formatDatetime(t)},${TYPE_EHR},${value ?? ''},${unitConceptId ?? ''},${c.sourceValue},${c.sourceConceptId},${unitSource},${this.vid(visitId)}`,
    );
  }

  procedure(personId: number, c: Coding, t: number, visitId: number): void {
    this.tables.procedure_occurrence.line(
      `${this.rowId('procedure_occurrence')},${this.pid(personId)},${c.conceptId},${day(t)},${formatDatetime(t)},${TYPE_EHR},${c.sourceValue},${c.sourceConceptId},${this.vid(visitId)}`,
    );
  }

  death(personId: number, t: number, causeConceptId: number): void {
    this.tables.death.line(`${this.pid(personId)},${day(t)},${formatDatetime(t)},${TYPE_EHR},${causeConceptId}`);
  }
}
