// One measured job of the benchmark, in its own process so its peak RSS is its own:
//   node dist/bench/child.js local|local-no-meds|local-no-tasks|duckdb|meds-etl <omop> <out>
// Prints one JSON line: { job, seconds, cpuSeconds, maxRssMb, rowsIn, shards (local runner: per
// kind), phases }, phases being the runner's own step times in seconds (input opening, vocabulary,
// persons, deciles, labels, the event pass, MEDS export); meds-etl prints { job, skipped } when
// meds_etl is not installed, and its numbers are those of meds_etl's processes.
import * as fs from 'node:fs';
import { openDuck } from '../sources/duck';
import { runLocal } from '../runners/local/localRunner';
import { createOmopViews } from '../sources/omopViews';
import { openOmopInput } from '../sources/omopSource';
import { defaultMemoryLimit } from '../sources/memoryLimit';
import { silentLogger } from '../common/progress';
import { runBaseline } from './baselineSql';
import { medsEtlInput, medsEtlMissing, medsEtlRowsOut, runMedsEtl } from './medsEtl';

async function main(): Promise<void> {
  const [job, omop, out] = process.argv.slice(2);
  const started = process.hrtime.bigint();
  let rowsIn = 0;
  let shards: Record<string, number> | undefined;
  const phases: Record<string, number> = {};
  if (job === 'meds-etl') {
    const skipped = medsEtlMissing();
    if (skipped) {
      process.stdout.write(JSON.stringify({ job, skipped }) + '\n');
      return;
    }
    // The input copy with the columns meds_etl needs is made once, outside the measured run.
    const input = await medsEtlInput(omop);
    fs.rmSync(out, { recursive: true, force: true });
    const r = runMedsEtl(input, out);
    const rowsOut = await medsEtlRowsOut(out);
    if (rowsOut === 0) throw new Error(`meds_etl_omop wrote no MEDS rows from ${input}`);
    process.stdout.write(JSON.stringify({ job, ...r, rowsIn: 0, rowsOut, phases: {} }) + '\n');
    return;
  }
  if (job === 'local' || job === 'local-no-meds' || job === 'local-no-tasks') {
    // Step lines end in "[1.9s]", the event pass's last progress line in ", 37.4s".
    const log = { info: (m: string) => {
      const step = /^(\w+): .*\[(\d+(?:\.\d+)?)s\]$/.exec(m) ?? /^(events): .*, (\d+(?:\.\d+)?)s$/.exec(m);
      if (step) phases[step[1]] = Number(step[2]);
    }, warn: silentLogger.warn };
    // The benchmark's own scratch folders: a rerun (--keep) replaces them.
    // local-no-tasks: OMOP -> events, pretraining and MEDS without labels, the part meds_etl also does.
    const s = await runLocal({ omop, out, log, meds: job !== 'local-no-meds', tasks: job === 'local-no-tasks' ? 'none' : 'all', force: true });
    rowsIn = s.rowsInTotal;
    shards = s.shards;
  } else if (job === 'duckdb') {
    fs.rmSync(out, { recursive: true, force: true });
    fs.mkdirSync(out, { recursive: true });
    // The runner's default memory cap; CSV read by DuckDB alone, as a user of DuckDB would.
    const conn = await openDuck({ memoryLimit: defaultMemoryLimit(), tempDir: out });
    const input = await openOmopInput(conn, omop, undefined, undefined, { uncheckedCsv: true });
    await createOmopViews(conn, input);
    await runBaseline(conn, input, out);
    conn.closeSync();
  } else throw new Error(`unknown job ${job}`);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage();
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(JSON.stringify({ job, seconds, cpuSeconds, maxRssMb: process.resourceUsage().maxRSS / 1024, rowsIn, shards, phases }) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
