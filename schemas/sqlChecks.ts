// The bulk form of the row schemas: a SQL predicate per column that DuckDB evaluates over every
// row, so that valid rows never need a JavaScript object each. Rows the predicate flags are
// re-checked with ajv (rowSchemas.ts) for the reason; a test holds the two to the same verdicts.
import { INTEGER_TEXT_RE } from './ids';
import { ColumnSpec, MAX_FLOAT32, MAX_YEAR, MIN_YEAR, TableSpec } from './omop';

export const q = (name: string): string => `"${name.replace(/"/g, '""')}"`;

function yearOk(expr: string): string {
  return `(year(${expr}) BETWEEN ${MIN_YEAR} AND ${MAX_YEAR})`;
}

/** DuckDB types that already hold integers (no text parsing needed). */
export const INTEGER_TYPES = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT', 'HUGEINT']);
const FLOAT_TYPES = new Set(['FLOAT', 'DOUBLE']);

/** A double that a float32 holds: finite (NaN is not) and within its range. */
function float32Ok(expr: string): string {
  return `(isfinite(${expr}) AND abs(${expr}) <= ${MAX_FLOAT32})`;
}

/** The column's bounds (integer columns without bounds take any signed 64-bit value). */
function boundsSql(col: ColumnSpec, value: string): string {
  const parts = [`${value} IS NOT NULL`];
  if (col.min !== undefined) parts.push(`${value} >= ${col.min}`);
  if (col.max !== undefined) parts.push(`${value} <= ${col.max}`);
  return parts.join(' AND ');
}

/** Check of a column that the source already stores with the right type (Parquet, DuckDB): bounds only. */
function typedSourceCheck(col: ColumnSpec, c: string, sourceType: string): string | null {
  // UBIGINT and HUGEINT may exceed signed 64 bits: TRY_CAST to BIGINT is NULL there.
  if (col.type === 'integer' && INTEGER_TYPES.has(sourceType)) return boundsSql(col, `TRY_CAST(${c} AS BIGINT)`);
  if (col.type === 'number' && (FLOAT_TYPES.has(sourceType) || INTEGER_TYPES.has(sourceType) || sourceType.startsWith('DECIMAL'))) return float32Ok(`CAST(${c} AS DOUBLE)`);
  if (col.type === 'date' && sourceType === 'DATE') return yearOk(c);
  if (col.type === 'datetime' && (sourceType === 'TIMESTAMP' || sourceType === 'DATE' || sourceType.startsWith('TIMESTAMP'))) return yearOk(c);
  return null;
}

/** SQL that is true when the column's value is acceptable; `sourceType` is the column's DuckDB type. */
export function columnCheckSql(col: ColumnSpec, sourceType = 'VARCHAR'): string {
  const c = q(col.name);
  const v = `CAST(${c} AS VARCHAR)`;
  const direct = typedSourceCheck(col, c, sourceType);
  if (direct !== null) {
    return col.required ? `coalesce(${c} IS NOT NULL AND ${direct}, false)` : `(${c} IS NULL OR coalesce(${direct}, false))`;
  }
  let typed: string;
  switch (col.type) {
    case 'integer':
      // An integer literal (a zero fraction allowed) in signed 64-bit range, as schemas/ids.ts reads it;
      // DuckDB's cast alone would round '1.5' and accept '1e3'.
      typed = `coalesce(regexp_full_match(${v}, '${INTEGER_TEXT_RE.source.slice(1, -1)}') AND ${boundsSql(col, `TRY_CAST(${v} AS BIGINT)`)}, false)`;
      break;
    case 'number':
      typed = `coalesce(${float32Ok(`TRY_CAST(${v} AS DOUBLE)`)}, false)`;
      break;
    case 'string':
      typed = 'true';
      break;
    case 'date':
      typed = `coalesce(regexp_full_match(${v}, '\\d{4}-\\d{2}-\\d{2}') AND ${yearOk(`TRY_CAST(${v} AS DATE)`)}, false)`;
      break;
    case 'datetime':
      // Hours 00-23 only, as in the schema: DuckDB alone would read 24:00 as the next midnight.
      typed = `coalesce(regexp_full_match(${v}, '\\d{4}-\\d{2}-\\d{2}([ T]([01]\\d|2[0-3]):\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}(:?\\d{2})?)?)?') AND ${yearOk(`TRY_CAST(${v} AS TIMESTAMP)`)}, false)`;
      break;
  }
  const present = `(${c} IS NOT NULL AND ${v} <> '')`;
  return col.required ? `(${present} AND ${typed})` : `(NOT ${present} OR ${typed})`;
}

/** SQL that is true when every checked column of the row is acceptable; `types`: column -> DuckDB type. */
export function rowCheckSql(spec: TableSpec, types: Map<string, string>): string {
  const parts = spec.columns.filter((c) => types.has(c.name)).map((c) => columnCheckSql(c, types.get(c.name)));
  return parts.length ? parts.join(' AND ') : 'true';
}
