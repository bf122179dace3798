// Representation-quality benchmark (`medrep bench representations`): cross-site counterpart
// retrieval on the synthetic sites A and B (for each site-B concept that site A never records,
// rank the concepts site A records by centred cosine; the generator's catalogue says which A
// concept codes the same fact), decile order and cross-site decile retrieval of the labs, and
// effective dimensions, for every table the trainers produce and for lexical baselines.
// Usage: node dist/bench/representationsQuality.js [--persons N] [--seed S] [--quick]
//   [--table NAME=FILE.parquet ...]   (also evaluate existing tables, through the same lookup)
// Writes bench/results/representations-quality.json and the KD figures representations-kd-*; with
// --quick (no KD curves) representations-quality-quick.json, so that a quick check never replaces
// the full run's results.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateSynthetic } from '../synth';
import { runLocal } from '../runners/local/localRunner';
import { consoleLogger } from '../common/progress';
import { counterpartKey, CounterpartKey } from './counterparts';
import { writeBenchResult } from './resultFile';
import { loadRepresentations, RepresentationTable } from '../trainers/representations/table';
import { RepresentationLookup, loadVocabularyIndex, type InMemoryVocabularyIndex } from '../trainers/representations/lookup';
import { counterpartRetrieval, crossSiteDecile, decileOrder, effectiveDimensions, tableMean, VectorSource } from '../trainers/representations/quality';
import { denseTfidf, tfidf } from '../trainers/text/lexical';
import { assembleTable, refineVectors, trainRepresentations, TrainRepresentationsOptions, MethodSettings, DEFAULT_ORDINAL_WEIGHT } from '../trainers/representations/trainRepresentations';
import type { AssembledTable } from '../trainers/representations/decileRows';
import { DEFAULT_GRACE, GraceOptions } from '../trainers/graph/grace';
import { DEFAULT_PROPAGATION } from '../trainers/graph/propagation';
import { curvePlot } from '../figures/charts';
import { writeFigure } from '../figures/figureFiles';
import { meanRowCosine } from '../trainers/representations/evaluate';
import { streamConcepts } from '../sources/vocabularyFiles';

export interface QualityRow {
  table: string;
  dim: number;
  rows: number;
  retrieval: ReturnType<typeof counterpartRetrieval>;
  decileOrder: number | null;
  crossSiteDecileR1: number | null;
  effectiveDimensions: number;
  seconds?: number;
}

/** A site A and its decile artifact for the benchmark (generated once per persons/seed, cached). */
export async function benchSite(persons: number, seed: number, dir: string): Promise<{ vocab: string; deciles: string }> {
  const omop = path.join(dir, `omop-a-${persons}-${seed}`);
  const site = path.join(dir, `site-a-${persons}-${seed}`);
  const deciles = path.join(site, 'artifacts', 'deciles.json');
  if (!fs.existsSync(deciles)) {
    fs.rmSync(omop, { recursive: true, force: true });
    await generateSynthetic({ persons, seed, out: omop, format: 'parquet', site: 'A' });
    await runLocal({ omop, out: site, tasks: 'none', log: { ...consoleLogger, info: () => {} } });
  }
  return { vocab: omop, deciles };
}

/** Scores one vector source: retrieval over base rows, decile measures where it has decile rows. */
export function scoreSource(name: string, src: VectorSource, mean: Float64Array, all: Float32Array, key: CounterpartKey, withDeciles: boolean): QualityRow {
  return {
    table: name,
    dim: src.dim,
    rows: all.length / src.dim,
    retrieval: counterpartRetrieval(src, mean, key.candidates, key.queries),
    decileOrder: withDeciles ? decileOrder(src, key.labs).mean : null,
    crossSiteDecileR1: withDeciles ? crossSiteDecile(src, mean, key.labPairs).r1 : null,
    effectiveDimensions: effectiveDimensions(all, src.dim),
  };
}

/** Scores a representation table through the lookup BEHRT uses (table, Maps to, ancestors, ...). */
export function scoreTable(name: string, table: RepresentationTable, vocab: InMemoryVocabularyIndex, key: CounterpartKey): QualityRow {
  const lookup = new RepresentationLookup(table, vocab);
  return scoreSource(name, lookup, tableMean(table.vectors, table.dim), table.vectors, key, true);
}

function inMemory(t: AssembledTable): RepresentationTable {
  return new RepresentationTable(t.dim, Float64Array.from(t.conceptIds), Int8Array.from(t.deciles, (d) => (d === null ? -1 : d)), t.vectors);
}

interface Variant {
  name: string;
  options: Partial<TrainRepresentationsOptions>;
  /** Also score the graph stage without KD on the same text vectors. */
  noKd?: boolean;
  /** Record retrieval and effective dimensions after every GRACE epoch, with and without KD (the paper's KD figure). */
  curves?: boolean;
}

/** One point of a GRACE learning curve. */
interface EpochPoint { epoch: number; r1: number; conditionR1: number; measurementR1: number; effectiveDimensions: number; cosineToText: number }

/** Every table the trainers produce, by method and stage (text.parquet and medrep.parquet of each run). */
function variants(quick: boolean): Variant[] {
  const lex = (s: Partial<MethodSettings>, extra: Partial<TrainRepresentationsOptions> = {}) => ({ method: 'lexical' as const, settings: s, ...extra });
  const v: Variant[] = [
    { name: 'default (lexical 256, APPNP alpha 0.2)', options: {} },
    { name: 'lexical 64, APPNP alpha 0.2', options: lex({}, { lexical: { dim: 64 } }) },
    { name: 'lexical 128, APPNP alpha 0.2', options: lex({}, { lexical: { dim: 128 } }) },
    { name: 'lexical 256, APPNP alpha 0.5', options: lex({}, { propagation: { alpha: 0.5 } }) },
    { name: 'lexical 256, GRACE', options: lex({ graph: 'grace' }, { gcl: { maxEpochs: 8 } }), noKd: true },
    { name: 'lexical 256, decile nodes, APPNP', options: lex({ deciles: 'nodes' }) },
    // the MedTok baseline: a codebook over the text and propagated vectors, each concept its codes' mean
    { name: 'MedTok (lexical 256 + APPNP graph, k-means codebook)', options: { method: 'medtok' } },
  ];
  if (!quick) {
    // a fixed number of GRACE epochs (no early stop), so the KD and no-KD curves cover the same span
    v.push({ name: 'paper: MLM [CLS], GRACE, decile nodes', options: { method: 'paper', gcl: { maxEpochs: 12, patience: 12 } }, noKd: true, curves: true });
    v.push({ name: 'MLM mean pooling, APPNP', options: { method: 'paper', settings: { pooling: 'mean', graph: 'appnp', deciles: 'ordinal' } } });
  }
  return v;
}

export interface KdCurves { dim: number; withKd: EpochPoint[]; withoutKd: EpochPoint[] }

async function trainedRows(vocabDir: string, deciles: string, vocab: InMemoryVocabularyIndex, key: CounterpartKey, quick: boolean, work: string): Promise<{ rows: QualityRow[]; kd: KdCurves | null }> {
  const rows: QualityRow[] = [];
  let kd: KdCurves | null = null;
  for (const [i, v] of variants(quick).entries()) {
    const t0 = Date.now();
    const points: EpochPoint[] = [];
    const onEpoch: GraceOptions['onEpoch'] = (epoch, encode, input) => {
      const vectors = encode();
      const s = scoreTable('', inMemory(assembleTable(input.graph, vectors, input.dim, 'nodes')), vocab, key);
      points.push({
        epoch, r1: s.retrieval.r1, conditionR1: s.retrieval.byDomain.condition?.r1 ?? 0, measurementR1: s.retrieval.byDomain.measurement?.r1 ?? 0,
        effectiveDimensions: s.effectiveDimensions, cosineToText: meanRowCosine(vectors, input.textVectors, input.dim),
      });
    };
    const options: Partial<TrainRepresentationsOptions> = v.curves ? { ...v.options, gcl: { ...v.options.gcl, onEpoch } } : v.options;
    const r = await trainRepresentations({ vocab: vocabDir, deciles, out: path.join(work, `v${i}`), log: () => {}, ...options });
    const seconds = (Date.now() - t0) / 1000;
    const textName = `${v.name}: text stage`;
    rows.push({ ...scoreTable(textName, inMemory(r.textTable), vocab, key), seconds });
    rows.push({ ...scoreTable(`${v.name}: final`, inMemory(r.medrepTable), vocab, key), seconds });
    const withKd = points.splice(0);
    if (v.noKd) {
      const g = refineVectors(r.graphObject, r.textVectors, r.dim, 'grace', { ...DEFAULT_GRACE, seed: 7, ...options.gcl, distill: false }, DEFAULT_PROPAGATION);
      const t = assembleTable(r.graphObject, g.vectors, r.dim, r.settings.deciles, v.options.ordinalWeight ?? DEFAULT_ORDINAL_WEIGHT);
      rows.push(scoreTable(`${v.name}: final without KD`, inMemory(t), vocab, key));
    }
    if (v.curves) kd = { dim: r.dim, withKd, withoutKd: points.splice(0) };
    process.stderr.write(`[bench] ${v.name}: ${seconds.toFixed(1)} s\n`);
  }
  return { rows, kd };
}

/** The KD figures: r@1, effective dimensions and cosine to the text vectors per GRACE epoch, with KD and without (PNG and SVG). */
export async function kdFigures(kd: KdCurves, dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  // [file, title, axis title (short: a title longer than the plot's height pushes the plot down), value]
  const measures = [
    ['r1', 'retrieval r@1', 'r@1', (q: EpochPoint) => q.r1],
    ['effective-dimensions', `effective dimensions (of ${kd.dim})`, 'effective dimensions', (q: EpochPoint) => q.effectiveDimensions],
    ['cosine-to-text', 'mean cosine to the text vectors', 'cosine to text', (q: EpochPoint) => q.cosineToText],
  ] as const;
  const arms = ['with KD', 'without KD'];
  for (const [name, title, label, y] of measures) {
    const curves = [kd.withKd, kd.withoutKd].map((p, k) => ({ arm: arms[k], x: p.map((q) => q.epoch), y: p.map(y) }));
    const svg = await curvePlot(curves, { title: `${title} per GRACE epoch`, x: 'GRACE epoch', y: label, diagonal: false, legend: 'distillation', xDomain: null, yDomain: null }, arms);
    files[name] = writeFigure(dir, `representations-kd-${name}`, svg).png;
  }
  return files;
}

/** Dense vectors per concept id (the lexical baselines). */
function mapSource(ids: number[], vectors: Float32Array, dim: number): VectorSource {
  const at = new Map(ids.map((c, i) => [c, i]));
  return { dim, vectorFor: (c, d) => { const i = at.get(c); return d === null && i !== undefined ? vectors.subarray(i * dim, (i + 1) * dim) : null; } };
}

/** TF-IDF of concept names, and of names with all ancestors' names, over the concepts of the four domains. */
async function lexicalBaselines(vocabDir: string, vocab: InMemoryVocabularyIndex, key: CounterpartKey): Promise<QualityRow[]> {
  const names = new Map<number, string>();
  const inScope: number[] = [];
  await streamConcepts(vocabDir, (c) => {
    names.set(c.concept_id, c.concept_name);
    if (['Condition', 'Drug', 'Measurement', 'Procedure'].includes(c.domain_id)) inScope.push(c.concept_id);
  });
  inScope.sort((a, b) => a - b);
  const out: QualityRow[] = [];
  for (const [label, text] of [
    ['TF-IDF of names', (c: number) => names.get(c)!],
    ['TF-IDF of names + ancestor names', (c: number) => [names.get(c)!, ...vocab.ancestors(c).map((a) => names.get(a) ?? '')].join(' . ')],
  ] as const) {
    const m = tfidf(inScope.map(text), { maxNgram: 1, minDf: 1, maxTerms: 1 << 20 });
    const v = denseTfidf(m);
    const src = mapSource(inScope, v, m.terms.length);
    out.push(scoreSource(label, src, tableMean(v, m.terms.length), v, key, false));
  }
  return out;
}

const pct = (x: number | null) => (x === null ? '-' : x.toFixed(2));

export function formatQuality(rows: QualityRow[]): string {
  const domains = [...new Set(rows.flatMap((r) => Object.keys(r.retrieval.byDomain)))].sort();
  const head = ['table', 'dim', 'r@1', 'r@5', 'mean rank', ...domains.map((d) => `${d} r@1`), 'decile order', 'B decile k -> A decile k', 'eff. dims'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows) {
    lines.push(`| ${[r.table, String(r.dim), pct(r.retrieval.r1), pct(r.retrieval.r5), r.retrieval.meanRank.toFixed(1),
      ...domains.map((d) => pct(r.retrieval.byDomain[d]?.r1 ?? null)), pct(r.decileOrder), pct(r.crossSiteDecileR1), r.effectiveDimensions.toFixed(1)].join(' | ')} |`);
  }
  return lines.join('\n');
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const persons = Number(flag('--persons') ?? 1500);
  const seed = Number(flag('--seed') ?? 1);
  const cache = path.join(__dirname, '../../bench/data');
  fs.mkdirSync(cache, { recursive: true });
  const { vocab: vocabDir, deciles } = await benchSite(persons, seed, cache);
  const key = counterpartKey();
  const vocab = await loadVocabularyIndex(vocabDir, { maxAncestorLevels: 100 });
  const rows: QualityRow[] = [];
  const extra = process.argv.flatMap((a, i) => (a === '--table' ? [process.argv[i + 1]] : []));
  for (const spec of extra) {
    const [name, file] = spec.split('=');
    rows.push(scoreTable(name, await loadRepresentations(file), vocab, key));
  }
  let kd: KdCurves | null = null;
  const quick = process.argv.includes('--quick');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-quality-'));
  try {
    const t = await trainedRows(vocabDir, deciles, vocab, key, quick, work);
    rows.push(...t.rows);
    kd = t.kd;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  rows.push(...await lexicalBaselines(vocabDir, vocab, key));
  const table = formatQuality(rows);
  console.log(table);
  const file = writeBenchResult(quick ? 'representations-quality-quick.json' : 'representations-quality.json', {
    benchmark: 'representations-quality', persons, seed, candidates: key.candidates.length, queries: key.queries.length,
    labPairs: key.labPairs.length, labs: key.labs.length, load: os.loadavg(), rows, table,
    kdCurves: kd ? { ...kd, figures: await kdFigures(kd, path.join(__dirname, '../../bench/results')) } : null,
  });
  console.log(`results: ${file}`);
}

if (require.main === module) main().catch((e) => { console.error(e); process.exit(1); });
