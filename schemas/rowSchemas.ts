// JSON Schemas (ajv) of OMOP rows, derived from the table specs in omop.ts, and the validator
// that turns a failing row into reject reasons naming the column.
import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import { ColumnSpec, ColumnType, MAX_FLOAT32, MAX_YEAR, MIN_YEAR, TableSpec } from './omop';
import { int64Problem, parseId } from './ids';

const DECIMAL_RE = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/;

function validCalendarDate(y: number, m: number, d: number): boolean {
  if (y < MIN_YEAR || y > MAX_YEAR || m < 1 || m > 12 || d < 1) return false;
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return d <= days;
}

export function isOmopDate(s: string): boolean {
  const m = DATE_RE.exec(s);
  return !!m && validCalendarDate(+m[1], +m[2], +m[3]);
}

export function isOmopDatetime(s: string): boolean {
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
