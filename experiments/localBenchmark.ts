// `medrep bench` / `npm run bench`: the local runner against a DuckDB-only baseline doing the
// equivalent normalization and decile binning, on synthetic data of the given sizes, as CSV and
// as Parquet (--formats). Each job runs in its own process (peak RSS is its own), baseline first,
// in the same run, on the same input. Prints a table and writes
// bench/results/local-<format>-<rows>.json.
// A command, not part of bench/: the product never imports the benchmark harness; it starts the
// harness's jobs (dist/bench/child.js) as programs of their own.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateSynthetic, personsForRows } from '../synth';
import { UserError } from '../common/errors';

interface JobResult {
  job: string;
  seconds: number;
  cpuSeconds: number;
  maxRssMb: number;
  rowsIn: number;
  /** The runner's step times in seconds (bench/child.ts). */
  phases?: Record<string, number>;
  /** Why the job failed, when it did (its numbers are then NaN, written as null). */
  error?: string;
  /** Why an optional job (meds-etl) did not run. */
  skipped?: string;
}

const ROOT = path.resolve(__dirname, '../..');

function runJob(job: string, omop: string, out: string): JobResult {
  try {
    const stdout = execFileSync(process.execPath, [path.join(ROOT, 'dist/bench/child.js'), job, omop, out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 24 });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as JobResult;
    if (r.skipped) {
      process.stderr.write(`bench: ${job} skipped: ${r.skipped}\n`);
      return { ...r, seconds: NaN, cpuSeconds: NaN, maxRssMb: NaN, rowsIn: 0 };
    }
    return r;
  } catch (e) {
    // A failed job (out of memory, say) is a result too: the others still run and are written.
    const stderr = String((e as { stderr?: unknown }).stderr ?? (e as Error).message).trim().split('\n');
    const error = stderr.find((l) => /Error/.test(l)) ?? stderr[0];
    process.stderr.write(`bench: ${job} failed: ${error}\n`);
    return { job, seconds: NaN, cpuSeconds: NaN, maxRssMb: NaN, rowsIn: 0, error };
  }
}

export type BenchFormat = 'csv' | 'parquet';

async function dataset(rows: number, seed: number, dataDir: string, format: BenchFormat): Promise<{ dir: string; clinicalRows: number }> {
  const dir = path.join(dataDir, `synth-${rows}-seed${seed}${format === 'csv' ? '-csv' : ''}`);
  const meta = path.join(dir, 'synth_meta.json');
  if (fs.existsSync(meta)) {
    const m = JSON.parse(fs.readFileSync(meta, 'utf8'));
    return { dir, clinicalRows: m.clinicalRows ?? m.clinical_rows ?? rows };
  }
  fs.rmSync(dir, { recursive: true, force: true });
  process.stderr.write(`bench: generating ~${rows.toLocaleString('en-US')} clinical rows (${format}) in ${dir}\n`);
  const s = await generateSynthetic({ persons: personsForRows(rows), seed, out: dir, format, site: 'A' });
  return { dir, clinicalRows: s.clinicalRows };
}

/**
 * The harness's jobs: the DuckDB-only baseline, the local runner with and without the MEDS copy,
 * without the labels (`--tasks none`: OMOP -> events and MEDS, what meds_etl also does), and
 * meds_etl's C++ OMOP -> MEDS (optional: skipped with its reason when not installed).
 */
export const BENCH_JOBS = ['duckdb', 'local', 'local-no-meds', 'local-no-tasks', 'meds-etl'] as const;
const JOBS: readonly string[] = BENCH_JOBS;

export interface BenchOptions {
  /** Clinical rows of each dataset size. */
  rows: number[];
  formats: BenchFormat[];
  jobs: string[];
  seed: number;
  /** Where generated datasets are kept between runs (default bench/data). */
  data?: string;
  repeat: number;
}

export async function runBench(o: BenchOptions): Promise<void> {
  const { rows: sizes, formats, jobs, seed, repeat } = o;
  const dataDir = path.resolve(o.data ?? path.join(ROOT, 'bench/data'));
  for (const j of jobs) if (!JOBS.includes(j)) throw new UserError(`medrep bench --jobs: ${j} is not one of ${JOBS.join(', ')}`);
  if (!jobs.includes('duckdb') || !jobs.includes('local')) throw new UserError('medrep bench --jobs: duckdb and local are needed for the ratio');
  const resultsDir = path.join(ROOT, 'bench/results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const lines: string[] = [];
  // On a shared machine wall time follows the load; CPU seconds less so: both ratios are printed.
  lines.push('format   rows in        job            seconds   rows/s      cpu s   peak RSS MB   ratio to DuckDB-only (wall / cpu)');
  for (const rows of sizes) for (const format of formats) {
    const { dir, clinicalRows } = await dataset(rows, seed, dataDir, format);
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-bench-'));
    // The machine may be shared: its load average beside the numbers (1, 5, 15 minutes).
    const loadBefore = os.loadavg().map((x) => Math.round(x * 100) / 100);
    const results: Record<string, JobResult[]> = Object.fromEntries(JOBS.filter((j) => jobs.includes(j)).map((j) => [j, []]));
    for (let r = 0; r < repeat; r++) {
      for (const job of Object.keys(results)) {
        results[job].push(runJob(job, dir, path.join(scratch, job)));
        fs.rmSync(path.join(scratch, job), { recursive: true, force: true });
      }
    }
    const best = (job: string) => results[job].reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const base = best('duckdb');
    const inputRows = Math.max(...Object.values(results).flat().map((r) => r.rowsIn));
    const summary = {
      kind: 'medrep.bench.local',
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      load: { before: loadBefore, after: os.loadavg().map((x) => Math.round(x * 100) / 100) },
      dataset: { dir: path.relative(ROOT, dir), clinicalRows, inputRows, seed, format },
      repeat,
      jobs: Object.fromEntries(
        Object.keys(results).map((job) => {
          const b = best(job);
          return [job, { ...b, rowsPerSecond: inputRows / b.seconds, ratioToDuckdb: b.seconds / base.seconds, cpuRatioToDuckdb: b.cpuSeconds / base.cpuSeconds, runs: results[job] }];
        }),
      ),
    };
    fs.writeFileSync(path.join(resultsDir, `local-${format}-${rows}.json`), JSON.stringify(summary, null, 2) + '\n');
    for (const job of Object.keys(results)) {
      const b = best(job);
      if (b.skipped) {
        lines.push(`${format.padEnd(9)}${inputRows.toLocaleString('en-US').padEnd(14)}${job.padEnd(15)}skipped: ${b.skipped}`);
        continue;
      }
      lines.push(
        `${format.padEnd(9)}${inputRows.toLocaleString('en-US').padEnd(14)}${job.padEnd(15)}${b.seconds.toFixed(1).padStart(7)}${Math.round(inputRows / b.seconds).toLocaleString('en-US').padStart(11)}${b.cpuSeconds.toFixed(1).padStart(9)}${b.maxRssMb.toFixed(0).padStart(12)}${(b.seconds / base.seconds).toFixed(2).padStart(14)} / ${(b.cpuSeconds / base.cpuSeconds).toFixed(2)}`,
      );
      if (b.phases && Object.keys(b.phases).length) lines.push(`${''.padEnd(23)}${job} steps: ${Object.entries(b.phases).map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(', ')}`);
    }
    process.stderr.write(`bench: ${format} ${rows.toLocaleString('en-US')} done (load ${summary.load.after.join(' ')})\n`);
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  process.stdout.write(lines.join('\n') + '\n');
}
