// Which encoder writes the shards, measured on a run's own shards: each shard of an output folder
// (events, pretrain, samples) is read back into Arrow and encoded again by parquet-wasm (zstd, in
// this thread) and by DuckDB (sinks/duckShardWriter.ts: chunks copied in, COPY ... zstd), best of
// three; the DuckDB files are checked to hold the same rows as the originals. An events shard goes
// to DuckDB as the runner sends it (numbers, text as codes: EventBatch.toShard); parquet-wasm is
// timed on the finished Arrow table (its text already built, which the runner would pay for too).
//   node dist/bench/shardWriters.js OUT_DIR [--result FILE]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { openDuckInstance } from '../sources/duck';
import { DuckShardWriter } from '../sinks/duckShardWriter';
import { encodeParquet } from '../sinks/parquet';
import { sqlString } from '../common/sql';
import { EventBatch } from '../sinks/eventShards';
import { ShardData } from '../sinks/shards';
import { CanonicalEvent } from '../schemas/canonicalEvent';
import { idOfBigInt } from '../schemas/ids';

const parquetWasm = require('parquet-wasm/node') as typeof import('parquet-wasm/node/parquet_wasm');

function cpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** The events of a shard pushed again into an EventBatch, as the runner pushes them. */
function eventBatchOf(t: arrow.Table): EventBatch {
  const b = new EventBatch();
  const id = (v: unknown) => (typeof v === 'bigint' ? idOfBigInt(v) : (v as number));
  for (const r of t) {
    const [omopTable, rowId, row] = String(r.origin).split(':');
    const e: CanonicalEvent = {
      personId: id(r.person_id), timeMs: Number(r.time), // arrow-js reads a timestamp as milliseconds
       table: r.table, omopTable, domain: r.domain, conceptId: id(r.concept_id),
      sourceConceptId: id(r.source_concept_id), decile: r.decile ?? -1, value: r.value, unit: r.unit, visitId: r.visit_occurrence_id === null ? null : id(r.visit_occurrence_id),
      rowId: idOfBigInt(BigInt(rowId)), row: Number(row),
    };
    b.push(e);
  }
  return b;
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  const resultAt = process.argv.indexOf('--result');
  const files: string[] = [];
  for (const kind of ['events', 'pretrain', 'samples']) {
    const walk = (d: string) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else if (e.name.endsWith('.parquet')) files.push(p); } };
    if (fs.existsSync(path.join(dir, kind))) walk(path.join(dir, kind));
  }
  const inst = await openDuckInstance({ threads: 2 });
  const [a, check] = [await inst.connect(), await inst.connect()];
  const w = new DuckShardWriter(a);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-shardw-'));
  const totals: Record<string, { wasmCpu: number; duckCpu: number; duckWall: number; wasmBytes: number; duckBytes: number; rows: number; files: number }> = {};
  for (const f of files) {
    const kind = path.relative(dir, f).split(path.sep)[0];
    const read = arrow.tableFromIPC(parquetWasm.readParquet(fs.readFileSync(f)).intoIPCStream());
    // Events go to DuckDB as the runner sends them: numbers, text as codes (EventBatch.toShard).
    const shard: ShardData = kind === 'events' ? eventBatchOf(read).toShard() : read;
    const table = kind === 'events' ? eventBatchOf(read).toTable() : read;
    let wasmCpu = Infinity, duckCpu = Infinity, duckWall = Infinity, wasmBytes = 0, duckBytes = 0;
    for (let i = 0; i < 3; i++) {
      const c0 = cpu();
      wasmBytes = encodeParquet(table).length;
      wasmCpu = Math.min(wasmCpu, cpu() - c0);
      const c1 = cpu(), t1 = process.hrtime.bigint();
      const { done } = await w.write(path.join(tmp, 'd.parquet'), shard);
      duckBytes = (await done).bytes;
      duckCpu = Math.min(duckCpu, cpu() - c1);
      duckWall = Math.min(duckWall, Number(process.hrtime.bigint() - t1) / 1e9);
    }
    const diff = await check.runAndReadAll(`SELECT (SELECT count(*) FROM (SELECT * FROM read_parquet(${sqlString(f)}) EXCEPT ALL SELECT * FROM read_parquet(${sqlString(path.join(tmp, 'd.parquet'))}))) + (SELECT count(*) FROM (SELECT * FROM read_parquet(${sqlString(path.join(tmp, 'd.parquet'))}) EXCEPT ALL SELECT * FROM read_parquet(${sqlString(f)})))`);
    const differing = Number(diff.getRows()[0][0]);
    if (differing !== 0) throw new Error(`${f}: ${differing} rows differ after the DuckDB writer`);
    const t = (totals[kind] ??= { wasmCpu: 0, duckCpu: 0, duckWall: 0, wasmBytes: 0, duckBytes: 0, rows: 0, files: 0 });
    t.wasmCpu += wasmCpu; t.duckCpu += duckCpu; t.duckWall += duckWall; t.wasmBytes += wasmBytes; t.duckBytes += duckBytes; t.rows += table.numRows; t.files++;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  const lines = ['kind      files      rows   parquet-wasm CPU s   MB    DuckDB CPU s (wall)   MB   CPU ratio'];
  for (const [k, t] of Object.entries(totals)) {
    lines.push(`${k.padEnd(9)}${String(t.files).padStart(6)}${t.rows.toLocaleString('en-US').padStart(10)}${t.wasmCpu.toFixed(2).padStart(20)}${(t.wasmBytes / 2 ** 20).toFixed(1).padStart(6)}${t.duckCpu.toFixed(2).padStart(14)} (${t.duckWall.toFixed(2)})${(t.duckBytes / 2 ** 20).toFixed(1).padStart(7)}${(t.duckCpu / t.wasmCpu).toFixed(2).padStart(10)}`);
  }
  process.stdout.write(lines.join('\n') + `\npeak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB; rows read back equal\n`);
  if (resultAt > 0) fs.writeFileSync(process.argv[resultAt + 1], JSON.stringify({ kind: 'medrep.bench.shard-writers', date: new Date().toISOString(), machine: { cpus: os.cpus().length, node: process.version }, load: os.loadavg(), totals }, null, 2) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
