// How shards get written, chosen by measurement: the same canonical-event rows (built the way
// the runner builds them) encoded by parquet-wasm (chosen), by @dsnp/parquetjs (the
// parquetjs-lite successor, row objects) and by DuckDB (appender rows, then COPY ... zstd).
//   node dist/bench/parquetWriters.js [rows]     -> table on stdout, bench/results/parquet-writers.json
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DuckDBInstance, timestampValue } from '@duckdb/node-api';
import { CanonicalEvent } from '../schemas/canonicalEvent';
import { EventBatch } from '../sinks/eventShards';
import { encodeParquet } from '../sinks/parquet';

interface Row {
  person_id: number; time: number; table: string; domain: number; concept_id: number; source_concept_id: number;
  decile: number | null; value: number | null; unit: string | null; visit_occurrence_id: number | null; origin: string;
}

function rowsOf(n: number): Row[] {
  const tables = ['condition', 'drug', 'measurement', 'procedure'];
  const out: Row[] = [];
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 0; i < n; i++) {
    const table = tables[i % 4];
    const m = table === 'measurement';
    out.push({
      person_id: 1 + Math.floor(i / 120), time: Date.UTC(2015, 0, 1) + Math.floor(i / 3) * 3_600_000, table, domain: 1 + (i % 4),
      concept_id: 3000000 + Math.floor(rnd() * 500), source_concept_id: 0, decile: m ? Math.floor(rnd() * 10) : null,
      value: m ? Math.round(rnd() * 2000) / 10 : null, unit: m ? ['mg/dL', 'g/dL', '%', 'mm[Hg]'][i % 4] : null,
      visit_occurrence_id: 1 + Math.floor(i / 40), origin: `${table}:${i + 1}`,
    });
  }
  return out;
}

async function time<T>(f: () => Promise<T> | T): Promise<{ seconds: number; result: T }> {
  const t = process.hrtime.bigint();
  const result = await f();
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9, result };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 300_000);
  const rows = rowsOf(n);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-pqw-'));
  const results: Record<string, { seconds: number; bytes: number }> = {};

  const wasm = await time(() => {
    const b = new EventBatch();
    for (const r of rows) b.push({ personId: r.person_id, timeMs: r.time, table: r.table as CanonicalEvent['table'], omopTable: r.table, domain: r.domain, conceptId: r.concept_id, sourceConceptId: r.source_concept_id, decile: r.decile ?? -1, value: r.value, unit: r.unit, visitId: r.visit_occurrence_id, rowId: Number(r.origin.split(':')[1]), row: 0 });
    const bytes = encodeParquet(b.toTable());
    fs.writeFileSync(path.join(dir, 'wasm.parquet'), bytes);
    return bytes.length;
  });
  results['parquet-wasm (zstd)'] = { seconds: wasm.seconds, bytes: wasm.result };

  const { ParquetSchema, ParquetWriter } = require('@dsnp/parquetjs');
  const schema = new ParquetSchema({
    person_id: { type: 'INT64' }, time: { type: 'TIMESTAMP_MICROS' }, table: { type: 'UTF8' }, domain: { type: 'INT32' },
    concept_id: { type: 'INT64' }, source_concept_id: { type: 'INT64' }, decile: { type: 'INT32', optional: true },
    value: { type: 'DOUBLE', optional: true }, unit: { type: 'UTF8', optional: true }, visit_occurrence_id: { type: 'INT64', optional: true }, origin: { type: 'UTF8' },
  });
  const pj = await time(async () => {
    const file = path.join(dir, 'parquetjs.parquet');
    const w = await ParquetWriter.openFile(schema, file, { useDataPageV2: false });
    for (const r of rows) {
      await w.appendRow({ ...r, time: BigInt(r.time) * 1000n, decile: r.decile ?? undefined, value: r.value ?? undefined, unit: r.unit ?? undefined, visit_occurrence_id: r.visit_occurrence_id ?? undefined });
    }
    await w.close();
    return fs.statSync(file).size;
  });
  results['@dsnp/parquetjs (snappy)'] = { seconds: pj.seconds, bytes: pj.result };

  const duck = await time(async () => {
    const conn = await (await DuckDBInstance.create(':memory:')).connect();
    await conn.run(`CREATE TABLE ev (person_id BIGINT, time TIMESTAMP, "table" VARCHAR, domain TINYINT, concept_id BIGINT, source_concept_id BIGINT,
      decile TINYINT, value DOUBLE, unit VARCHAR, visit_occurrence_id BIGINT, origin VARCHAR)`);
    const a = await conn.createAppender('ev');
    for (const r of rows) {
      a.appendBigInt(BigInt(r.person_id));
      a.appendTimestamp(timestampValue(BigInt(r.time) * 1000n));
      a.appendVarchar(r.table);
      a.appendTinyInt(r.domain);
      a.appendBigInt(BigInt(r.concept_id));
      a.appendBigInt(BigInt(r.source_concept_id));
      if (r.decile === null) a.appendNull(); else a.appendTinyInt(r.decile);
      if (r.value === null) a.appendNull(); else a.appendDouble(r.value);
      if (r.unit === null) a.appendNull(); else a.appendVarchar(r.unit);
      if (r.visit_occurrence_id === null) a.appendNull(); else a.appendBigInt(BigInt(r.visit_occurrence_id));
      a.appendVarchar(r.origin);
      a.endRow();
    }
    a.closeSync();
    const file = path.join(dir, 'duckdb.parquet');
    await conn.run(`COPY ev TO '${file}' (FORMAT parquet, COMPRESSION zstd)`);
    conn.closeSync();
    return fs.statSync(file).size;
  });
  results['DuckDB appender + COPY (zstd)'] = { seconds: duck.seconds, bytes: duck.result };

  const base = results['parquet-wasm (zstd)'].seconds;
  const lines = [`${n.toLocaleString('en-US')} event rows            seconds      rows/s      MB   ratio to parquet-wasm`];
  for (const [k, v] of Object.entries(results)) {
    lines.push(`${k.padEnd(32)}${v.seconds.toFixed(2).padStart(7)}${Math.round(n / v.seconds).toLocaleString('en-US').padStart(12)}${(v.bytes / 2 ** 20).toFixed(1).padStart(8)}${(v.seconds / base).toFixed(2).padStart(10)}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  const outDir = path.resolve(__dirname, '../../bench/results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'parquet-writers.json'), JSON.stringify({ rows: n, date: new Date().toISOString(), peakRssMb: process.resourceUsage().maxRSS / 1024, results }, null, 2) + '\n');
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
