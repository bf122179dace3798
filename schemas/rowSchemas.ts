// JSON Schemas (ajv) of OMOP rows, derived from the table specs in omop.ts, and the validator
// that turns a failing row into reject reasons naming the column.
import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import { ColumnSpec, ColumnType, MAX_FLOAT32, MAX_YEAR, MIN_YEAR, TableSpec } from './omop';
import { int64Problem, parseId } from './ids';

const DECIMAL_RE = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days of month `m` (1-12) of year `y` (proleptic Gregorian, as Date.UTC). */
export function daysInMonth(y: number, m: number): number {
  return m === 2 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : DAYS_IN_MONTH[m - 1];
}

function validCalendarDate(y: number, m: number, d: number): boolean {
  if (y < MIN_YEAR || y > MAX_YEAR || m < 1 || m > 12 || d < 1) return false;
  return d <= daysInMonth(y, m);
}

/** The number of the `n` ASCII digits of `s` at `at`, or -1 when one is not a digit. */
export function digitsAt(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** Whether `s` is exactly YYYY-MM-DD (the form DuckDB writes a DATE in): read without a regex. */
function isPlainDateShape(s: string): boolean {
  return s.length === 10 && s.charCodeAt(4) === 45 && s.charCodeAt(7) === 45;
}

export function isOmopDate(s: string): boolean {
  // The common shape is read by hand (rows are checked by the million); anything else by the regex.
  if (isPlainDateShape(s)) {
    const y = digitsAt(s, 0, 4), m = digitsAt(s, 5, 2), d = digitsAt(s, 8, 2);
    return y >= 0 && m >= 0 && d >= 0 && validCalendarDate(y, m, d);
  }
  const m = DATE_RE.exec(s);
  return !!m && validCalendarDate(+m[1], +m[2], +m[3]);
}

export function isOmopDatetime(s: string): boolean {
  if (isPlainDateShape(s)) return isOmopDate(s);
  // YYYY-MM-DD HH:MM:SS (DuckDB's TIMESTAMP text), by hand as the date.
  if (s.length === 19 && (s.charCodeAt(10) === 32 || s.charCodeAt(10) === 84) && s.charCodeAt(13) === 58 && s.charCodeAt(16) === 58) {
    const h = digitsAt(s, 11, 2), mi = digitsAt(s, 14, 2), sec = digitsAt(s, 17, 2);
    if (h >= 0 && mi >= 0 && sec >= 0) return isOmopDate(s.slice(0, 10)) && h <= 23 && mi <= 59 && sec <= 59;
  }
  const m = DATETIME_RE.exec(s);
  if (!m || !validCalendarDate(+m[1], +m[2], +m[3])) return false;
  if (m[4] !== undefined && (+m[4] > 23 || +m[5] > 59 || (m[6] !== undefined && +m[6] > 59))) return false;
  return true;
}

function bounds(col: ColumnSpec): object {
  return { ...(col.min !== undefined ? { minimum: col.min } : {}), ...(col.max !== undefined ? { maximum: col.max } : {}) };
}

function columnSchema(col: ColumnSpec): object {
  const nullable = col.required ? [] : ['null'];
  const byType: Record<ColumnType, object> = {
    // Signed 64-bit: `check` reads the value exactly (a decimal string beyond 2^53) and hands ajv only the bounds.
    integer: { type: ['integer', ...nullable], ...bounds(col), description: 'signed 64-bit integer (a decimal string beyond 2^53)' },
    number: { type: ['number', ...nullable], minimum: -MAX_FLOAT32, maximum: MAX_FLOAT32 },
    string: { type: ['string', ...nullable] },
    // A format applies to strings only, so null passes it; one branch keeps the format's reason.
    date: { type: ['string', ...nullable], format: 'omop-date' },
    datetime: { type: ['string', ...nullable], format: 'omop-datetime' },
  };
  return byType[col.type];
}

/** The JSON Schema of one row of a clinical table. Extra columns are allowed (CDM versions differ). */
export function rowSchema(spec: TableSpec): object {
  const properties: Record<string, object> = {};
  for (const col of spec.columns) properties[col.name] = columnSchema(col);
  return {
    $id: `omop/${spec.table}.json`,
    title: `OMOP CDM ${spec.table} row`,
    type: 'object',
    properties,
    required: spec.columns.filter((c) => c.required).map((c) => c.name),
  };
}

export interface RowProblem {
  column: string;
  reason: string;
}

export interface RowValidator {
  /** Problems of the row, empty when it is valid. The row may hold strings for numbers (CSV). */
  check(row: Record<string, unknown>): RowProblem[];
  schema: object;
}

/** What a user reads when a value is not of its column's kind. */
const NOT_OF_TYPE: Record<ColumnType, string> = {
  integer: 'not an integer',
  number: 'not a finite number (NaN and Infinity are not numbers)',
  string: 'not a text value',
  date: `not a valid date (YYYY-MM-DD, years ${MIN_YEAR}-${MAX_YEAR})`,
  datetime: `not a valid datetime (YYYY-MM-DD[ HH:MM[:SS]], years ${MIN_YEAR}-${MAX_YEAR})`,
};

function problemOf(e: ErrorObject, types: Map<string, ColumnType>): RowProblem {
  const missing = e.keyword === 'required' ? (e.params as { missingProperty: string }).missingProperty : null;
  const column = missing ?? (e.instancePath.replace(/^\//, '').split('/')[0] || '(row)');
  const type = types.get(column);
  let reason = missing ? 'required value is missing' : e.message ?? e.keyword;
  if (type && (e.keyword === 'format' || e.keyword === 'type')) reason = NOT_OF_TYPE[type];
  if (e.keyword === 'minimum' || e.keyword === 'maximum') {
    reason = type === 'number' ? `outside the float32 range of MEDS numeric_value (|value| <= ${MAX_FLOAT32})` : `out of range (${e.message})`;
  }
  return { column, reason };
}

let sharedAjv: Ajv | null = null;
function ajv(): Ajv {
  if (!sharedAjv) {
    // coerceTypes: CSV values arrive as strings; "12" is a valid integer, "twelve" is not.
    sharedAjv = new Ajv({ allErrors: true, coerceTypes: true, strict: false });
    sharedAjv.addFormat('omop-date', { type: 'string', validate: isOmopDate });
    sharedAjv.addFormat('omop-datetime', { type: 'string', validate: isOmopDatetime });
  }
  return sharedAjv;
}

const validators = new Map<string, RowValidator>();

export function rowValidator(spec: TableSpec): RowValidator {
  const cached = validators.get(spec.table);
  if (cached) return cached;
  const schema = rowSchema(spec);
  const fn: ValidateFunction = ajv().compile(schema);
  const types = new Map(spec.columns.map((c) => [c.name, c.type]));
  const v: RowValidator = {
    schema,
    check(row) {
      // ajv coerces in place; validate a copy so the reject keeps the value as read.
      const copy: Record<string, unknown> = {};
      const integerProblems: RowProblem[] = [];
      for (const col of spec.columns) {
        const value = row[col.name];
        // Absent, null and '' are all "missing": left out, so `required` (not coercion to 0) judges them.
        if (value === undefined || value === null || value === '') {
          if (!col.required) copy[col.name] = null;
          continue;
        }
        // Integers are checked exactly here (ajv sees doubles); within range, ajv judges only the bounds.
        if (col.type === 'integer') {
          const id = parseId(value);
          if (id === null) integerProblems.push({ column: col.name, reason: int64Problem(value)! });
          copy[col.name] = id === null || typeof id === 'bigint' ? 0 : id;
          continue;
        }
        // An integer literal beyond 2^53 in a number column arrives as a bigint (exact JSON): its double is the value.
        if (col.type === 'number' && typeof value === 'bigint') {
          copy[col.name] = Number(value);
          continue;
        }
        // ajv would coerce '0x10' or 'Infinity' through Number(); only decimal notation is a number here.
        if (col.type === 'number' && typeof value === 'string' && !DECIMAL_RE.test(value)) {
          copy[col.name] = { invalid: value };
          continue;
        }
        copy[col.name] = value;
      }
      if (fn(copy) && integerProblems.length === 0) return [];
      const seen = new Set<string>(integerProblems.map((p) => p.column));
      const out: RowProblem[] = [...integerProblems];
      for (const e of fn.errors ?? []) {
        const p = problemOf(e, types);
        if (seen.has(p.column)) continue;
        seen.add(p.column);
        out.push(p);
      }
      return out;
    },
  };
  validators.set(spec.table, v);
  return v;
}
