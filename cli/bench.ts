// `medrep bench`: the local runner against a DuckDB-only baseline (experiments/localBenchmark.ts).
import { UserError } from '../common/errors';
import { BENCH_JOBS, BenchFormat, runBench } from '../experiments/localBenchmark';
import { defineCommand } from './command';

const isFormat = (f: string): f is BenchFormat => f === 'csv' || f === 'parquet';

export const benchCommand = defineCommand({
  name: 'bench',
  synopsis: '[--rows 1000000,10000000]',
  summary: 'local runner vs a DuckDB-only baseline (bench/results/)',
  options: {
    rows: { type: 'list', items: 'number', default: [1000000, 10000000], help: 'clinical rows of each dataset size' },
    formats: { type: 'list', value: 'csv,parquet', default: ['csv', 'parquet'], help: 'input formats' },
    jobs: { type: 'list', value: BENCH_JOBS.join(','), default: [...BENCH_JOBS], help: 'jobs to time (duckdb and local are needed for the ratio)' },
    seed: { type: 'number', default: 7, help: "the generator's seed" },
    data: { type: 'string', value: 'DIR', help: 'where generated datasets are kept between runs (default bench/data)' },
    repeat: { type: 'number', default: 1, help: 'runs of each job; the fastest counts' },
  },
  async run(o) {
    const formats = o.formats.filter(isFormat);
    for (const f of o.formats) if (!isFormat(f)) throw new UserError(`medrep bench --formats: ${f} is not csv or parquet`);
    await runBench({ rows: o.rows, formats, jobs: o.jobs, seed: o.seed, data: o.data, repeat: o.repeat });
  },
});
