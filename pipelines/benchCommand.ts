// `medrep bench` / `npm run bench`: the local runner against a DuckDB-only baseline doing the
// equivalent normalization and decile binning, on synthetic Parquet data of the given sizes.
// Each job runs in its own process (peak RSS is its own), baseline first, in the same run.
// Prints a table and writes bench/results/local-<rows>.json.
// A command, not part of bench/: the product never imports the benchmark harness; it starts the
// harness's jobs (dist/bench/child.js) as programs of their own.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FlagSpec, parseArgs } from '../common/args';
import { generateSynthetic, personsForRows } from './synth';

interface JobResult {
  job: string;
  seconds: number;
  cpuSeconds: number;
  maxRssMb: number;
  rowsIn: number;
}

const ROOT = path.resolve(__dirname, '../..');

function runJob(job: string, omop: string, out: string): JobResult {
  const stdout = execFileSync(process.execPath, [path.join(ROOT, 'dist/bench/child.js'), job, omop, out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as JobResult;
}

async function dataset(rows: number, seed: number, dataDir: string): Promise<{ dir: string; clinicalRows: number }> {
  const dir = path.join(dataDir, `synth-${rows}-seed${seed}`);
  const meta = path.join(dir, 'synth_meta.json');
  if (fs.existsSync(meta)) {
    const m = JSON.parse(fs.readFileSync(meta, 'utf8'));
    return { dir, clinicalRows: m.clinicalRows ?? m.clinical_rows ?? rows };
  }
  fs.rmSync(dir, { recursive: true, force: true });
  process.stderr.write(`bench: generating ~${rows.toLocaleString('en-US')} clinical rows (Parquet) in ${dir}\n`);
  const s = await generateSynthetic({ persons: personsForRows(rows), seed, out: dir, format: 'parquet', site: 'A' });
  return { dir, clinicalRows: s.clinicalRows };
}

export const BENCH_SPEC: FlagSpec = { rows: 'string', seed: 'number', data: 'string', repeat: 'number' };

export async function runBench(argv: string[]): Promise<void> {
  const p = parseArgs(argv, BENCH_SPEC, 'medrep bench');
  const sizes = String(p.flags.rows ?? '1000000,10000000').split(',').map((x) => Number(x.trim()));
  const seed = (p.flags.seed as number | undefined) ?? 7;
  const dataDir = path.resolve((p.flags.data as string | undefined) ?? path.join(ROOT, 'bench/data'));
  const repeat = (p.flags.repeat as number | undefined) ?? 1;
  const resultsDir = path.join(ROOT, 'bench/results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const lines: string[] = [];
  lines.push('rows in        job            seconds   rows/s      cpu s   peak RSS MB   ratio to DuckDB-only');
  for (const rows of sizes) {
    const { dir, clinicalRows } = await dataset(rows, seed, dataDir);
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-bench-'));
    const results: Record<string, JobResult[]> = { duckdb: [], local: [], 'local-no-meds': [] };
    for (let r = 0; r < repeat; r++) {
      for (const job of Object.keys(results)) {
        results[job].push(runJob(job, dir, path.join(scratch, job)));
        fs.rmSync(path.join(scratch, job), { recursive: true, force: true });
      }
    }
    const best = (job: string) => results[job].reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const base = best('duckdb');
    const inputRows = best('local').rowsIn;
    const summary = {
      kind: 'medrep.bench.local',
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      dataset: { dir, clinicalRows, inputRows, seed, format: 'parquet' },
      repeat,
      jobs: Object.fromEntries(
        Object.keys(results).map((job) => {
          const b = best(job);
          return [job, { ...b, rowsPerSecond: inputRows / b.seconds, ratioToDuckdb: b.seconds / base.seconds, runs: results[job] }];
        }),
      ),
    };
    fs.writeFileSync(path.join(resultsDir, `local-${rows}.json`), JSON.stringify(summary, null, 2) + '\n');
    for (const job of Object.keys(results)) {
      const b = best(job);
      lines.push(
        `${inputRows.toLocaleString('en-US').padEnd(14)}${job.padEnd(15)}${b.seconds.toFixed(1).padStart(7)}${Math.round(inputRows / b.seconds).toLocaleString('en-US').padStart(11)}${b.cpuSeconds.toFixed(1).padStart(9)}${b.maxRssMb.toFixed(0).padStart(12)}${(b.seconds / base.seconds).toFixed(2).padStart(14)}`,
      );
    }
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  process.stdout.write(lines.join('\n') + '\n');
}
