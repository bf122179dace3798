// Shared test helpers: paths of the real datasets, temp folders, DuckDB queries over outputs.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openDuck, queryRows } from '../../sources/duck';

export const SHARED = path.resolve(__dirname, '../../../../shared');
export const OMOP = {
  synthea: path.join(SHARED, 'omop/synthea27nj'),
  syntheaParquet: path.join(SHARED, 'omop/synthea27nj-parquet'),
  gibleed: path.join(SHARED, 'omop/gibleed'),
  gibleedDuckdb: path.join(SHARED, 'omop/gibleed-duckdb/GiBleed_5.3.duckdb'),
};

let testRoot: string | null = null;

/**
 * A fresh folder for one test, inside one folder per test process that is removed when the
 * process exits (gigabytes of synthetic hospitals and shards otherwise pile up in the system's
 * temp folder run after run). MEDREP_KEEP_TEST_TMP=1 keeps it, for looking at a failure.
 */
export function tempDir(prefix: string): string {
  if (!testRoot) {
    const root = (testRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-test-')));
    if (process.env.MEDREP_KEEP_TEST_TMP !== '1') process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
  }
  return fs.mkdtempSync(path.join(testRoot, `${prefix}-`));
}

/** Runs SQL on a fresh in-memory DuckDB; numbers come back as JS numbers where they fit. */
export async function sql<T = Record<string, unknown>>(query: string): Promise<T[]> {
  const conn = await openDuck();
  try {
    return await queryRows<T>(conn, query);
  } finally {
    conn.closeSync();
  }
}

export const lit = (p: string) => `'${p.replace(/'/g, "''")}'`;

/** Writes a CSV file from a header and rows (values written as given). */
export function writeCsv(file: string, header: string[], rows: (string | number | null)[][]): void {
  const esc = (v: string | number | null) => (v === null ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  fs.writeFileSync(file, [header.join(','), ...rows.map((r) => r.map(esc).join(','))].join('\n') + '\n');
}
