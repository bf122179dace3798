// Test helpers for the labelers: typed OMOP views over the shared datasets (what the source
// module provides in the runners), and the reference SQL of test/reference/ run over them.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { CLINICAL_TABLES, ColumnSpec, VOCABULARY_TABLES } from '../../schemas/omop';

export const REPO = path.resolve(__dirname, '..', '..', '..');
export const SHARED = path.resolve(REPO, '..', 'shared');
export const SHARED_TASKS = path.join(SHARED, 'tasks');
const REFERENCE = path.join(REPO, 'test', 'reference');

const SQL_TYPE: Record<ColumnSpec['type'], string> = {
  integer: 'BIGINT',
  number: 'DOUBLE',
  string: 'VARCHAR',
  date: 'DATE',
  datetime: 'TIMESTAMP',
};

export const LABEL_TABLES = ['person', 'visit_occurrence', 'death', 'condition_occurrence', 'concept', 'concept_relationship', 'concept_ancestor'];

function specOf(table: string): ColumnSpec[] {
  const clinical = CLINICAL_TABLES.find((t) => t.table === table);
  if (clinical) return clinical.columns;
  return VOCABULARY_TABLES[table as keyof typeof VOCABULARY_TABLES];
}

const q = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** Creates typed views named as the OMOP tables over the CSV or Parquet files of `dir`. */
export async function createOmopViews(conn: DuckDBConnection, dir: string): Promise<void> {
  const files = readdirSync(dir);
  for (const table of LABEL_TABLES) {
    const file = files.find((f) => f.toLowerCase() === `${table}.csv` || f.toLowerCase() === `${table}.parquet`);
    if (!file) throw new Error(`${dir}: no file for table ${table}`);
    const full = path.join(dir, file);
    const scan = file.toLowerCase().endsWith('.csv') ? `read_csv(${q(full)}, header = true, all_varchar = true)` : `read_parquet(${q(full)})`;
    const present = (await (await conn.runAndReadAll(`SELECT * FROM ${scan} LIMIT 0`)).columnNames()).map((c) => c);
    const cols = specOf(table).map((c) => {
      const src = present.find((p) => p.toLowerCase() === c.name);
      const type = SQL_TYPE[c.type];
      return src ? `TRY_CAST(CAST("${src}" AS VARCHAR) AS ${type}) AS ${c.name}` : `CAST(NULL AS ${type}) AS ${c.name}`;
    });
    await conn.run(`CREATE OR REPLACE VIEW ${table} AS SELECT ${cols.join(', ')} FROM ${scan}`);
  }
}

export async function openDataset(dir: string): Promise<DuckDBConnection> {
  if (!existsSync(dir)) throw new Error(`missing dataset ${dir}`);
  const inst = await DuckDBInstance.create(':memory:');
  const conn = await inst.connect();
  await createOmopViews(conn, dir);
  return conn;
}

export interface RefRow {
  task: string;
  person_id: number;
  prediction_time: number;
  label: number | null;
  labels: number[] | null;
  visit_id: number;
  determined: boolean;
}

function fill(sql: string, vars: Record<string, string>): string {
  return sql.replace(/\{\{(\w+)\}\}/g, (_m, k: string) => {
    if (!(k in vars)) throw new Error(`reference SQL needs {{${k}}}`);
    return vars[k];
  });
}

/** Runs every reference file; returns its samples and its excluded counts. */
export async function runReference(
  conn: DuckDBConnection,
  seeds: { readmission: number; events: Record<string, number> },
): Promise<{ rows: RefRow[]; excluded: { task: string; rule: string; n: number }[]; lastDay: string | null }> {
  const read = (f: string) => readFileSync(path.join(REFERENCE, f), 'utf8');
  const base = { TASKS_DIR: SHARED_TASKS };
  await conn.run(fill(read('common.sql'), base));
  await conn.run(fill(read('concept_sets.sql'), base));
  await conn.run(fill(read('mortality_long_stay.sql'), base));
  await conn.run(fill(read('readmission.sql'), { ...base, SEED: String(seeds.readmission) }));
  await conn.run(fill(read('phenotypes.sql'), base));
  for (const [task, seed] of Object.entries(seeds.events)) {
    await conn.run(fill(read('in_hospital_event.sql'), { ...base, TASK: task, SEED: String(seed) }));
  }
  const rows = (
    await conn.runAndReadAll(
      `SELECT task, person_id::DOUBLE AS person_id, prediction_time::DOUBLE AS prediction_time, label, labels,
              visit_id::DOUBLE AS visit_id, determined FROM ref_samples ORDER BY task, person_id`,
    )
  ).getRowObjectsJS() as unknown as RefRow[];
  const excluded = (await conn.runAndReadAll(`SELECT task, rule, n::DOUBLE AS n FROM ref_excluded ORDER BY ALL`)).getRowObjectsJS() as unknown as {
    task: string;
    rule: string;
    n: number;
  }[];
  const lastDay = (await conn.runAndReadAll(`SELECT CAST(last_day AS VARCHAR) FROM ref_data_end`)).getRowsJS()[0][0] as string | null;
  return { rows, excluded, lastDay };
}
