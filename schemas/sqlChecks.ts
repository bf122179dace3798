// The bulk form of the row schemas: a SQL predicate per column that DuckDB evaluates over every
// row, so that valid rows never need a JavaScript object each. Rows the predicate flags are
// re-checked with ajv (rowSchemas.ts) for the reason; a test holds the two to the same verdicts.
import { ColumnSpec, MAX_SAFE_ID, MAX_YEAR, MIN_YEAR, TableSpec } from './omop';

export const q = (name: string): string => `"${name.replace(/"/g, '""')}"`;

function yearOk(expr: string): string {
  return `(year(${expr}) BETWEEN ${MIN_YEAR} AND ${MAX_YEAR})`;
}

/** SQL that is true when the column's value is acceptable. */
export function columnCheckSql(col: ColumnSpec): string {
  const c = q(col.name);
  const v = `CAST(${c} AS VARCHAR)`;
  let typed: string;
  switch (col.type) {
    case 'integer':
      typed = `coalesce(abs(TRY_CAST(${v} AS BIGINT)) <= ${MAX_SAFE_ID}, false)`;
      break;
    case 'number':
      typed = `coalesce(isfinite(TRY_CAST(${v} AS DOUBLE)), false)`;
      break;
    case 'string':
      typed = 'true';
      break;
    case 'date':
      typed = `coalesce(regexp_full_match(${v}, '\\d{4}-\\d{2}-\\d{2}') AND ${yearOk(`TRY_CAST(${v} AS DATE)`)}, false)`;
      break;
    case 'datetime':
      typed = `coalesce(regexp_full_match(${v}, '\\d{4}-\\d{2}-\\d{2}([ T]\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}(:?\\d{2})?)?)?') AND ${yearOk(`TRY_CAST(${v} AS TIMESTAMP)`)}, false)`;
      break;
  }
  const present = `(${c} IS NOT NULL AND ${v} <> '')`;
  return col.required ? `(${present} AND ${typed})` : `(NOT ${present} OR ${typed})`;
}

/** SQL that is true when every checked column of the row is acceptable. */
export function rowCheckSql(spec: TableSpec, present: Set<string>): string {
  const parts = spec.columns.filter((c) => present.has(c.name)).map(columnCheckSql);
  return parts.length ? parts.join(' AND ') : 'true';
}
