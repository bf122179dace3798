// A DuckDB query's result as one JS array per column, for readers that walk columns side by side.
import type { DuckDBConnection } from '@duckdb/node-api';

/** Columns of a result: DOUBLE columns as numbers, BIGINT columns as bigints. */
export async function queryColumns(conn: DuckDBConnection, sql: string): Promise<(number | null)[][]> {
  const reader = await conn.runAndReadAll(sql);
  const cols = reader.getColumnsJS() as (number | null)[][];
  // An empty result has no column arrays: give each column an empty one.
  return Array.from({ length: reader.columnCount }, (_, i) => cols[i] ?? []);
}
