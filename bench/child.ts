// One measured job of the benchmark, in its own process so its peak RSS is its own:
//   node dist/bench/child.js local|local-no-meds|duckdb <omop> <out>
// Prints one JSON line: { job, seconds, cpuSeconds, maxRssMb, rowsIn, shards (local runner: per kind) }.
import * as fs from 'node:fs';
import { openDuck } from '../pipelines/duck';
import { runLocal } from '../pipelines/localRunner';
import { createOmopViews } from '../pipelines/omopViews';
import { openOmopInput } from '../pipelines/omopSource';
import { silentLogger } from '../common/progress';
import { runBaseline } from './baselineSql';

async function main(): Promise<void> {
  const [job, omop, out] = process.argv.slice(2);
  const started = process.hrtime.bigint();
  let rowsIn = 0;
  let shards: Record<string, number> | undefined;
  if (job === 'local' || job === 'local-no-meds') {
    // The benchmark's own scratch folders: a rerun (--keep) replaces them.
    const s = await runLocal({ omop, out, log: silentLogger, meds: job === 'local', force: true });
    rowsIn = s.rowsInTotal;
    shards = s.shards;
  } else if (job === 'duckdb') {
    fs.rmSync(out, { recursive: true, force: true });
    fs.mkdirSync(out, { recursive: true });
    const conn = await openDuck({ memoryLimit: '1GB', tempDir: out });
    const input = await openOmopInput(conn, omop);
    await createOmopViews(conn, input);
    await runBaseline(conn, input, out);
    conn.closeSync();
  } else throw new Error(`unknown job ${job}`);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage();
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(JSON.stringify({ job, seconds, cpuSeconds, maxRssMb: process.resourceUsage().maxRSS / 1024, rowsIn, shards }) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
