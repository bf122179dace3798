// Benchmark of the representation trainers: text MLM tokens/s and GCL nodes/s on the WASM
// backend (with the CPU backend as the in-run baseline), and the full-size concept-graph build
// (a synthetic Athena vocabulary of ~7.7 million concepts and tens of millions of relationship
// rows: seconds and peak RSS, with a plain line scan of the same files as baseline).
// Usage: node dist/bench/representations.js [--concepts N] [--links L] [--skip-graph] [--skip-train]
// Writes bench/results/representations.json.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { selectBackend, BackendPreference } from '../trainers/backend';
import { BpeTokenizer } from '../trainers/text/tokenizer';
import { TextEncoder, pretrainMlm, SMALL_TEXT_ENCODER } from '../trainers/text/encoder';
import { trainGrace } from '../trainers/graph/grace';
import { ConceptGraph } from '../trainers/graph/conceptGraph';
import { Rng } from '../trainers/random';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

/** A random graph of n nodes with average degree deg (seeded), for GCL throughput. */
function randomGraph(n: number, deg: number, seed: number): ConceptGraph {
  const rng = Rng.seeded(seed);
  const adj: Array<Set<number>> = Array.from({ length: n }, () => new Set());
  for (let e = 0; e < (n * deg) / 2; e++) {
    const a = rng.int(n), b = rng.int(n);
    if (a !== b) { adj[a].add(b); adj[b].add(a); }
  }
  const rowPtr = new Int32Array(n + 1);
  adj.forEach((s, i) => { rowPtr[i + 1] = rowPtr[i] + s.size; });
  const col = Int32Array.from(adj.flatMap((s) => [...s].sort((x, y) => x - y)));
  const stats = { conceptRows: n, conceptNodes: n, decileNodes: 0, decileConceptsNotInScope: 0, relationshipRows: 0, relationshipRowsInvalid: 0, relationshipRowsBetweenNodes: 0, distinctLinks: col.length / 2, hubNodes: 0, droppedLinks: 0, keptLinks: col.length / 2 };
  return new ConceptGraph(Float64Array.from({ length: n }, (_, i) => i + 1), new Int8Array(n).fill(-1), new Int8Array(n).fill(1), n, rowPtr, col, stats);
}

const WORDS = 'acute chronic diabetes mellitus type renal failure heart blood glucose tablet oral mg injection hemoglobin serum measurement procedure biopsy colonoscopy pain fracture infection sepsis pneumonia myocardial infarction kidney liver lung disease disorder syndrome'.split(' ');

async function trainThroughput(backend: BackendPreference, sequences: number, gclNodes: number, seedsPerBatch: number): Promise<Record<string, number | string>> {
  const name = await selectBackend(backend, () => {});
  const rng = Rng.seeded(5);
  const texts = Array.from({ length: sequences }, () => Array.from({ length: 12 + rng.int(12) }, () => WORDS[rng.int(WORDS.length)]).join(' '));
  const tok = BpeTokenizer.train(texts, 500);
  const seqs = texts.map((t) => tok.encode(t, SMALL_TEXT_ENCODER.maxLen));
  const model = new TextEncoder(SMALL_TEXT_ENCODER, tok.size, 1);
  const mlm = pretrainMlm(model, seqs, { maxEpochs: 1, patience: 1, validationFraction: 0.05 });
  model.dispose();
  const g = randomGraph(gclNodes, 6, 3);
  const dim = SMALL_TEXT_ENCODER.hidden;
  const x = new Float32Array(gclNodes * dim).map(() => rng.normal());
  const gcl = trainGrace(g, x, dim, { maxEpochs: 1, patience: 1, seedsPerBatch, fanouts: [10, 5] });
  return {
    backend: name,
    mlmTokens: mlm.tokensProcessed, mlmSeconds: mlm.seconds, mlmTokensPerSecond: mlm.tokensProcessed / mlm.seconds,
    gclNodes: gcl.nodesProcessed, gclSeconds: gcl.seconds, gclNodesPerSecond: gcl.nodesProcessed / gcl.seconds,
  };
}

async function main(): Promise<void> {
  const results: Record<string, unknown> = { machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadAverage: os.loadavg() }, when: new Date().toISOString() };
  if (!process.argv.includes('--skip-train')) {
    const sequences = arg('--sequences', 512);
    const gclNodes = arg('--gcl-nodes', 2048);
    const wasm = await trainThroughput('wasm', sequences, gclNodes, 256);
    // baseline: the plain CPU backend on a small workload (its UnsortedSegmentSum loops over
    // every segment, so GCL on it is far slower), and WASM on the same small workload
    const small = { sequences: 64, gclNodes: 64, seedsPerBatch: 64 };
    const wasmSmall = await trainThroughput('wasm', small.sequences, small.gclNodes, small.seedsPerBatch);
    const cpu = await trainThroughput('cpu', small.sequences, small.gclNodes, small.seedsPerBatch);
    results.training = {
      model: SMALL_TEXT_ENCODER, workload: { sequences, gclNodes, seedsPerBatch: 256, fanouts: [10, 5] }, smallWorkload: small,
      wasm, wasmSmall, cpu,
      mlmSpeedupWasmOverCpu: (wasmSmall.mlmTokensPerSecond as number) / (cpu.mlmTokensPerSecond as number),
      gclSpeedupWasmOverCpu: (wasmSmall.gclNodesPerSecond as number) / (cpu.gclNodesPerSecond as number),
    };
    console.table({ wasm, wasmSmall, cpu });
  }
  if (!process.argv.includes('--skip-graph')) {
    const concepts = arg('--concepts', 7_700_001);
    const links = arg('--links', 1.5);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-graph-bench-'));
    try {
      // each step in its own process, so that each peak RSS is its own
      const step = (code: string) => {
        const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', maxBuffer: 1 << 24, cwd: path.join(__dirname, '..') });
        if (r.status !== 0) throw new Error(`bench step failed: ${r.stderr}`);
        return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
      };
      const gen = step(`const t=Date.now();const r=require('./trainers/graph/syntheticVocabulary').writeSyntheticVocabulary(${JSON.stringify(dir)},{concepts:${concepts},linksPerConcept:${links}});console.log(JSON.stringify({...r,seconds:(Date.now()-t)/1000}))`);
      const scan = step(`(async()=>{const {forEachLine}=require('./sources/vocabularyFiles');const t=Date.now();let n=0;for(const f of ['CONCEPT.csv','CONCEPT_RELATIONSHIP.csv'])n+=await forEachLine(require('path').join(${JSON.stringify(dir)},f),()=>{});console.log(JSON.stringify({lines:n,seconds:(Date.now()-t)/1000,peakRssMiB:process.resourceUsage().maxRSS/1024}))})()`);
      const build = step(`(async()=>{const {buildConceptGraph}=require('./trainers/graph/conceptGraph');const t=Date.now();const g=await buildConceptGraph(${JSON.stringify(dir)});console.log(JSON.stringify({...g.stats,nodes:g.numNodes,edges:g.numEdges,seconds:(Date.now()-t)/1000,peakRssMiB:process.resourceUsage().maxRSS/1024}))})()`);
      const bytes = ['CONCEPT.csv', 'CONCEPT_RELATIONSHIP.csv'].reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);
      results.graphBuild = {
        synthetic: { ...gen, bytes }, lineScanBaseline: scan, build,
        rowsPerSecond: (build.conceptRows + build.relationshipRows) / build.seconds,
        ratioToLineScan: build.seconds / scan.seconds,
      };
      console.table({ generate: gen, lineScan: scan, build: { seconds: build.seconds, peakRssMiB: build.peakRssMiB, nodes: build.nodes, edges: build.edges } });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const out = path.join(__dirname, '../../bench/results');
  fs.mkdirSync(out, { recursive: true });
  // a run of one part (--skip-train / --skip-graph) keeps the other part's last results
  const file = path.join(out, 'representations.json');
  const previous = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const merged = { ...previous, ...results };
  if (results.training) merged.trainingMeasuredAt = results.when;
  if (results.graphBuild) merged.graphBuildMeasuredAt = results.when;
  fs.writeFileSync(file, JSON.stringify(merged, null, 2) + '\n');
  console.log(JSON.stringify(results, null, 2));
}

main().catch((e) => { console.error(e); process.exit(1); });
