// The meds_etl comparison of the local benchmark: meds_etl's OMOP -> MEDS (`meds_etl_omop
// --backend cpp`, the C++ backend users pick for that step) on the same OMOP folder as medrep.
// Optional: it runs when the benchmark's own Python venv (bench/meds-etl-venv.sh) has meds_etl and
// meds_etl_cpp, and is skipped with the reason otherwise.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DuckDBConnection } from '@duckdb/node-api';
import { openDuck, queryRows, sqlString } from '../sources/duck';

const ROOT = path.resolve(__dirname, '../..');
/** The venv bench/meds-etl-venv.sh makes; MEDREP_BENCH_VENV names another. */
export const MEDS_ETL_VENV = process.env.MEDREP_BENCH_VENV ?? path.join(ROOT, '.cache/bench-venv');

/** Why meds_etl cannot run here, or null when it can. */
export function medsEtlMissing(venv = MEDS_ETL_VENV): string | null {
  const python = path.join(venv, 'bin/python');
  if (!fs.existsSync(python)) return `no venv at ${path.relative(ROOT, venv)} (run bench/meds-etl-venv.sh)`;
  const probe = spawnSync(python, ['-c', 'import meds_etl, meds_etl_cpp'], { encoding: 'utf8' });
  if (probe.status !== 0) return `meds_etl or meds_etl_cpp not importable in ${path.relative(ROOT, venv)}: ${probe.stderr.trim().split('\n').pop()}`;
  return null;
}

/**
 * OMOP CDM columns meds_etl reads that a minimal OMOP folder (ours) may lack; added as NULL in
 * the copy it reads, so it runs on the same rows.
 */
const MEDS_ETL_COLUMNS: Record<string, [string, string][]> = {
  measurement: [['value_source_value', 'VARCHAR'], ['value_as_concept_id', 'BIGINT']],
  visit_occurrence: [['discharged_to_concept_id', 'BIGINT']],
};

/**
 * The folder meds_etl reads: the same files (linked), and a rewritten copy of each table that
 * lacks a column it needs. Made once beside the dataset; not part of the timed job.
 */
export async function medsEtlInput(omop: string): Promise<string> {
  const dir = `${omop.replace(/\/$/, '')}-meds-etl`;
  const done = path.join(dir, '.complete');
  if (fs.existsSync(done) && !danglingLinks(dir).length) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const conn = await openDuck();
  try {
    for (const name of fs.readdirSync(omop)) {
      const m = /^(\w+)\.(csv|parquet)$/.exec(name);
      if (!m) continue;
      const [, table, format] = m;
      const src = path.join(omop, name);
      const missing = await missingColumns(conn, src, format, MEDS_ETL_COLUMNS[table] ?? []);
      if (!missing.length) {
        // The real file: a link through a worktree or a linked data folder breaks when that goes.
        fs.symlinkSync(fs.realpathSync(src), path.join(dir, name));
        continue;
      }
      const extra = missing.map(([c, t]) => `NULL::${t} AS ${c}`).join(', ');
      const options = format === 'csv' ? '(FORMAT csv, HEADER true)' : '(FORMAT parquet)';
      await conn.run(`COPY (SELECT *, ${extra} FROM ${reader(src, format)}) TO ${sqlString(path.join(dir, name))} ${options}`);
    }
  } finally {
    conn.closeSync();
  }
  fs.writeFileSync(done, '');
  return dir;
}

/** Links in `dir` whose file is gone (a copy made through a folder since removed). */
function danglingLinks(dir: string): string[] {
  return fs.readdirSync(dir).filter((name) => fs.lstatSync(path.join(dir, name)).isSymbolicLink() && !fs.existsSync(path.join(dir, name)));
}

const reader = (src: string, format: string) => (format === 'csv' ? `read_csv(${sqlString(src)}, all_varchar = true)` : `read_parquet(${sqlString(src)})`);

async function missingColumns(conn: DuckDBConnection, src: string, format: string, wanted: [string, string][]): Promise<[string, string][]> {
  if (!wanted.length) return [];
  const have = new Set((await queryRows<{ column_name: string }>(conn, `DESCRIBE SELECT * FROM ${reader(src, format)}`)).map((r) => r.column_name.toLowerCase()));
  return wanted.filter(([c]) => !have.has(c));
}

export interface MedsEtlRun {
  seconds: number;
  /** User + system CPU of meds_etl and every process it started. */
  cpuSeconds: number;
  /** The largest peak RSS of any one of its processes (getrusage of children; not their sum). */
  maxRssMb: number;
}

// Runs the command and reports getrusage over it and every process it waited for.
const RUSAGE_WRAPPER = `
import json, resource, subprocess, sys, time
t = time.time()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": r.returncode, "seconds": time.time() - t, "cpu": u.ru_utime + u.ru_stime, "maxrss_kb": u.ru_maxrss, "stderr": r.stderr.decode(errors="replace")[-4000:]}))
`;

/** meds_etl_omop with the C++ backend from `omop` into `out` (which it creates). */
export function runMedsEtl(omop: string, out: string): MedsEtlRun {
  const bin = path.join(MEDS_ETL_VENV, 'bin');
  const args = ['-c', RUSAGE_WRAPPER, path.join(bin, 'meds_etl_omop'), omop, out, '--num_proc', String(os.availableParallelism()), '--backend', 'cpp'];
  const r = JSON.parse(execFileSync(path.join(bin, 'python'), args, { encoding: 'utf8', maxBuffer: 1 << 24 }).trim().split('\n').pop()!);
  if (r.rc !== 0) throw new Error(`meds_etl_omop exited ${r.rc}: ${String(r.stderr).trim().split('\n').pop()}`);
  return { seconds: r.seconds, cpuSeconds: r.cpu, maxRssMb: r.maxrss_kb / 1024 };
}

/** Rows of the MEDS data meds_etl wrote into `out`: a run that read nothing is no measurement. */
export async function medsEtlRowsOut(out: string): Promise<number> {
  const conn = await openDuck();
  try {
    const [row] = await queryRows<{ n: bigint | number }>(conn, `SELECT count(*) AS n FROM read_parquet(${sqlString(path.join(out, 'data', '**', '*.parquet'))})`);
    return Number(row.n);
  } catch {
    return 0;
  } finally {
    conn.closeSync();
  }
}
