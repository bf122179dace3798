// Where a `medrep run` spends its JavaScript CPU, from the profiles `node --cpu-prof` writes (one
// per thread: the main thread and any worker thread):
//   node --cpu-prof --cpu-prof-dir=DIR bin/medrep.js run --omop OMOP --out OUT
//   node dist/bench/cpuProfile.js DIR [--json FILE]
// Each sample is charged to one part of the run, the first of PARTS that one of its callers
// marks, so a part's seconds include what it calls and no sample counts twice; a worker thread's
// samples are one part of their own (the run has none since DuckDB encodes the shards). DuckDB's own
// threads are not in these profiles: their CPU is the process's total less the threads shown.
import * as fs from 'node:fs';
import * as path from 'node:path';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string }; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

/** Parts of a run, in priority: a sample belongs to the first part that any of its callers marks. */
const PARTS: [string, RegExp][] = [
  ['shard queue (ShardSeries)', /^write .*sinks\/shards\.js/],
  // The table function handing shards to DuckDB's COPY (which encodes on DuckDB's threads).
  ['shard hand-off to DuckDB (duckShardWriter)', /sinks\/duckShardWriter\.js/],
  ['per-person assembly', /^(finishPerson|finishSamples|finishSequences|emitSamples) /],
  ['event columns (EventBatch)', /^(push|toTable) .*sinks\/eventShards\.js/],
  ['event pass: read + canonicalize', /^streamEvents /],
  ['decile fit', /^fitDeciles /],
  ['labels', /^(labelSamples|startLabelling|labelBatch) |\/transforms\/labels\//],
  // Chunks fetched between the consumer's steps (the event pass's, the fit's, the labels').
  ['DuckDB result reads (node-api)', /@duckdb\/node-api\/|^(prefetchedChunks|streamChunks) /],
  ['MEDS export', /^(exportMeds|writeMedsLabels) /],
  ['report', /^(runSections|runPage|writeReport) |\/report\/|\/figures\//],
  ['input, vocabulary, persons', /^(openOmopInput|createOmopViews|readVocabulary|readPersons) /],
  ['module loading', /^(Module\._load|wrapSafe|compileForInternalLoader) /],
  ['garbage collector', /^\(garbage collector\)/],
];
/** Every sample of a worker thread (node names its profiles CPU.<date>.<time>.<pid>.<thread>.<n>). */
const WORKER_PART = 'worker threads';
const isWorkerProfile = (file: string) => !/^CPU\.\d+\.\d+\.\d+\.0\./.test(file);

/** Seconds per part of one thread's profile; idle time apart. */
export function splitProfile(p: Profile, worker: boolean): { busy: number; idle: number; parts: Record<string, number> } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const partOf = new Map<number, string>();
  const classify = (id: number): string => {
    if (worker) return WORKER_PART;
    const known = partOf.get(id);
    if (known) return known;
    const chain: string[] = [];
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const f = byId.get(x)!.callFrame;
      chain.push(`${f.functionName} ${f.url}`);
    }
    const part = PARTS.find(([, re]) => chain.some((k) => re.test(k)))?.[0] ?? 'other';
    partOf.set(id, part);
    return part;
  };
  const parts: Record<string, number> = {};
  let idle = 0;
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const s = (p.timeDeltas[i] ?? 0) / 1e6;
    const n = byId.get(p.samples[i])!;
    if (n.callFrame.functionName === '(idle)') {
      idle += s;
      continue;
    }
    busy += s;
    const part = classify(n.id);
    parts[part] = (parts[part] ?? 0) + s;
  }
  return { busy, idle, parts };
}

function main(): void {
  const [dir, flag, jsonOut] = process.argv.slice(2);
  if (!dir) throw new Error('usage: node dist/bench/cpuProfile.js DIR [--json FILE]');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  const threads = files.map((f) => ({ file: f, ...splitProfile(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Profile, isWorkerProfile(f)) }));
  const total: Record<string, number> = {};
  for (const t of threads) for (const [k, v] of Object.entries(t.parts)) total[k] = (total[k] ?? 0) + v;
  const busy = threads.reduce((a, t) => a + t.busy, 0);
  const lines = ['part                                   JS CPU s   share'];
  for (const [k, v] of Object.entries(total).sort((a, b) => b[1] - a[1])) lines.push(`${k.padEnd(38)}${v.toFixed(2).padStart(9)}${((100 * v) / busy).toFixed(1).padStart(7)}%`);
  lines.push(`${'all threads (busy)'.padEnd(38)}${busy.toFixed(2).padStart(9)}`);
  for (const t of threads) lines.push(`  ${t.file}: busy ${t.busy.toFixed(2)} s, idle ${t.idle.toFixed(2)} s`);
  process.stdout.write(lines.join('\n') + '\n');
  if (flag === '--json' && jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ kind: 'medrep.bench.cpu-profile', busy, parts: total, threads }, null, 2) + '\n');
}

if (require.main === module) main();
