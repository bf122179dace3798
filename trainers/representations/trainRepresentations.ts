// `medrep train representations --vocab DIR --out OUT`: concept graph, concept text, text MLM
// encoder, GRACE with knowledge distillation. Writes OUT/text.parquet (graph-free text vectors),
// OUT/medrep.parquet (MedRep vectors; OUT/medtok.parquet and OUT/medtok-codes.csv with the
// MedTok baseline's graph stage), OUT/descriptions.jsonl (every description and its source),
// OUT/tokenizer.json and OUT/representations.json (input hashes, settings, training history).
import * as fs from 'fs';
import * as path from 'path';
import { createHash } from 'crypto';
import type { DecileArtifact } from '../../transforms/deciles';
import { readDecileArtifact } from '../../sources/decileArtifact';
import { selectBackend, BackendPreference, currentBackendChoice } from '../backend';
import { buildConceptGraph, ConceptGraph, GraphStats, GRAPH_DOMAINS } from '../graph/conceptGraph';
import { propagate, DEFAULT_PROPAGATION, PropagationOptions } from '../graph/propagation';
import { lexicalVectors, DEFAULT_LEXICAL, LexicalOptions } from '../text/lexical';
import { withOrdinalDecileRows, AssembledTable } from './decileRows';
import { findVocabFile, VocabTableName } from '../../sources/vocabularyFiles';
import { trainGrace, GraceOptions, GraceResult } from '../graph/grace';
import { buildConceptText, TextSource } from '../text/conceptText';
import { BpeTokenizer } from '../text/tokenizer';
import { TextEncoder, TextEncoderConfig, pretrainMlm, clsVectors, meanVectors, DEFAULT_MLM, MlmOptions, MlmResult } from '../text/encoder';
import { writeRepresentations, WrittenTable } from './table';
import { medtokVectors, DEFAULT_MEDTOK, MedtokOptions, MedtokResult } from './medtok';
import { graceOptions, GraceSizeName, textEncoderConfig, TextEncoderSize } from './sizes';

/** How each stage makes its vectors. */
export interface MethodSettings {
  /** Text vectors: the MLM-trained encoder, or TF-IDF 1-2 grams reduced by SVD. */
  text: 'mlm' | 'lexical';
  /** Which encoder state is the text vector (mlm only). */
  pooling: 'cls' | 'mean';
  /** Graph stage: GRACE (+KD unless turned off), parameter-free propagation, the MedTok codebook over text and propagated vectors, or none. */
  graph: 'grace' | 'appnp' | 'medtok' | 'none';
  /** Decile rows: decile nodes in the graph with their own descriptions, or the lab's vector joined with a shared ordinal code. */
  deciles: 'nodes' | 'ordinal';
}

export type MethodName = 'paper' | 'lexical' | 'medtok';

/**
 * The paper's method (MLM [CLS] text vectors, GRACE + KD, decile nodes in the graph) and the
 * default chosen by the representation-quality benchmark (bench/representationsQuality.ts).
 */
export const METHODS: Record<MethodName, MethodSettings> = {
  paper: { text: 'mlm', pooling: 'cls', graph: 'grace', deciles: 'nodes' },
  lexical: { text: 'lexical', pooling: 'mean', graph: 'appnp', deciles: 'ordinal' },
  // The MedTok baseline (medtok.ts) on the default text vectors.
  medtok: { text: 'lexical', pooling: 'mean', graph: 'medtok', deciles: 'ordinal' },
};

/** The file of the graph stage's table: the MedTok baseline is not MedRep and is not named so. */
export const graphStageFile = (s: MethodSettings): string => (s.graph === 'medtok' ? 'medtok.parquet' : 'medrep.parquet');
export const DEFAULT_METHOD: MethodName = 'lexical';

export interface TrainRepresentationsOptions {
  vocab: string;
  out: string;
  deciles?: string | null;
  descriptions?: string | null;
  endpoint?: string | null;
  endpointModel?: string;
  endpointApiKey?: string;
  backend?: BackendPreference;
  method?: MethodName;
  /** Overrides of the method's settings. */
  settings?: Partial<MethodSettings>;
  /** Named sizes (sizes.ts); textConfig and gcl override single values. */
  textSize?: TextEncoderSize;
  graphSize?: GraceSizeName;
  /** Overrides of the text encoder size (e.g. hidden). */
  textConfig?: Partial<TextEncoderConfig>;
  tokenizerVocabSize?: number;
  mlm?: Partial<MlmOptions>;
  lexical?: Partial<LexicalOptions>;
  gcl?: Partial<GraceOptions>;
  propagation?: Partial<PropagationOptions>;
  medtok?: Partial<MedtokOptions>;
  /** Weight of the shared ordinal decile code relative to the spread of concept vectors. */
  ordinalWeight?: number;
  /** With graph 'grace': also train it without distillation on the same text vectors, written as medrep-no-kd.parquet. */
  alsoNoKd?: boolean;
  seed?: number;
  log?: (line: string) => void;
}

export interface TrainRepresentationsResult {
  graph: GraphStats;
  settings: MethodSettings;
  text: WrittenTable;
  /** The graph stage's table (medrep.parquet, or medtok.parquet for the MedTok baseline). */
  medrep: WrittenTable;
  /** medrep-no-kd.parquet, when asked for. */
  medrepNoKd: WrittenTable | null;
  textSources: Record<TextSource, number>;
  mlm: MlmResult | null;
  gcl: GraceResult | null;
  medtok: MedtokResult | null;
  graphObject: ConceptGraph;
  /** Text vectors of the graph's nodes (before the graph stage and the decile rows). */
  textVectors: Float32Array;
  dim: number;
  /** The written tables, in memory. */
  textTable: AssembledTable;
  medrepTable: AssembledTable;
}

function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 22);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    h.update(buf.subarray(0, n));
  }
  fs.closeSync(fd);
  return h.digest('hex');
}

export const DEFAULT_ORDINAL_WEIGHT = 1;

/** The table rows of node vectors: the graph's own rows (decile nodes included), or concept rows plus ordinal decile rows. */
export function assembleTable(graph: ConceptGraph, vectors: Float32Array, dim: number, deciles: MethodSettings['deciles'], ordinalWeight = DEFAULT_ORDINAL_WEIGHT): AssembledTable {
  if (deciles === 'nodes') {
    return { conceptIds: Array.from(graph.conceptIds), deciles: Array.from(graph.deciles, (d) => (d < 0 ? null : d)), vectors, dim };
  }
  const n = graph.numConceptNodes;
  return withOrdinalDecileRows({
    conceptIds: graph.conceptIds.subarray(0, n),
    withDeciles: Array.from({ length: n }, (_, i) => graph.domains[i] === GRAPH_DOMAINS.Measurement),
    vectors: vectors.subarray(0, n * dim),
    dim,
  }, ordinalWeight);
}

/** The graph stage on text vectors of the graph's nodes. */
export function refineVectors(graph: ConceptGraph, textVectors: Float32Array, dim: number, how: MethodSettings['graph'], gcl: GraceOptions, propagation: PropagationOptions, medtok: Partial<MedtokOptions> = {}): { vectors: Float32Array; gcl: GraceResult | null; medtok?: MedtokResult } {
  if (how === 'grace') { const r = trainGrace(graph, textVectors, dim, gcl); return { vectors: r.vectors, gcl: r }; }
  if (how === 'appnp') return { vectors: propagate(graph, textVectors, dim, propagation), gcl: null };
  if (how === 'medtok') {
    // MedTok's graph embedding of a concept: its text vector propagated over its neighbourhood.
    const r = medtokVectors(textVectors, propagate(graph, textVectors, dim, propagation), dim, medtok);
    return { vectors: r.vectors, gcl: null, medtok: r };
  }
  return { vectors: textVectors, gcl: null };
}

export async function trainRepresentations(o: TrainRepresentationsOptions): Promise<TrainRepresentationsResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const seed = o.seed ?? 7;
  const settings: MethodSettings = { ...METHODS[o.method ?? DEFAULT_METHOD], ...o.settings };
  const backend = await selectBackend(o.backend, log);
  fs.mkdirSync(o.out, { recursive: true });
  const deciles = o.deciles ? readDecileArtifact(o.deciles) : null;
  log(`[medrep] method ${JSON.stringify(settings)}`);

  // Decile nodes join the graph only in the paper's layout; otherwise the graph holds concepts only.
  const graph = await buildConceptGraph(o.vocab, settings.deciles === 'nodes' ? { deciles, allMeasurementDeciles: true, log } : { log });
  const text = await buildConceptText(o.vocab, graph, {
    descriptionsFile: o.descriptions ?? null,
    endpoint: o.endpoint ? { endpoint: o.endpoint, cacheFile: path.join(o.out, 'endpoint-cache.jsonl'), model: o.endpointModel, apiKey: o.endpointApiKey } : null,
    deciles,
    log,
  });
  const descLines = text.texts.map((t, n) => JSON.stringify({ concept_id: graph.conceptIds[n], decile: graph.deciles[n] < 0 ? null : graph.deciles[n], source: text.sources[n], description: t }));
  fs.writeFileSync(path.join(o.out, 'descriptions.jsonl'), descLines.join('\n') + '\n');

  const { textVectors, dim, mlm, mlmSettings, encoderSettings, lexical } = textStage(o, settings, text.texts, seed, log);
  const ordinalWeight = o.ordinalWeight ?? DEFAULT_ORDINAL_WEIGHT;
  const textTable = assembleTable(graph, textVectors, dim, settings.deciles, ordinalWeight);
  const textWritten = await writeRepresentations(path.join(o.out, 'text.parquet'), textTable.dim, textTable);

  const gclOptions: GraceOptions = graceOptions(o.graphSize, { seed, ...o.gcl, log });
  const propagation: PropagationOptions = { ...DEFAULT_PROPAGATION, ...o.propagation };
  const medtokOptions: MedtokOptions = { ...DEFAULT_MEDTOK, seed, ...o.medtok };
  const refined = refineVectors(graph, textVectors, dim, settings.graph, gclOptions, propagation, medtokOptions);
  const medrepTable = assembleTable(graph, refined.vectors, dim, settings.deciles, ordinalWeight);
  const graphFile = graphStageFile(settings);
  const medrepWritten = await writeRepresentations(path.join(o.out, graphFile), medrepTable.dim, medrepTable);
  const medtok = refined.medtok ?? null;
  if (medtok) {
    writeMedtokCodes(path.join(o.out, 'medtok-codes.csv'), graph, medtok);
    const h = medtok.codebook.history;
    log(`[medtok] codebook ${medtok.codebook.size} x ${dim}, ${medtok.codebook.iterations} iterations, quantization error ${h[0].toFixed(4)} -> ${h[h.length - 1].toFixed(4)}, ${medtok.codesUsed} codes used, ${medtok.sharedTokenSets} concepts share their code set`);
  }
  const gcl = refined.gcl;
  let noKdWritten: WrittenTable | null = null;
  if (o.alsoNoKd && settings.graph === 'grace') {
    const noKd = refineVectors(graph, textVectors, dim, 'grace', { ...gclOptions, distill: false, log: (l) => log(l.replace('[gcl]', '[gcl-no-kd]')) }, propagation);
    const t = assembleTable(graph, noKd.vectors, dim, settings.deciles, ordinalWeight);
    noKdWritten = await writeRepresentations(path.join(o.out, 'medrep-no-kd.parquet'), t.dim, t);
  }

  const outputs: Record<string, unknown> = {
    'text.parquet': { rows: textWritten.rows, dim: textTable.dim, sha256: textWritten.sha256 },
    [graphFile]: { rows: medrepWritten.rows, dim: medrepTable.dim, sha256: medrepWritten.sha256 },
    'descriptions.jsonl': { sha256: sha256File(path.join(o.out, 'descriptions.jsonl')) },
  };
  if (medtok) outputs['medtok-codes.csv'] = { sha256: sha256File(path.join(o.out, 'medtok-codes.csv')) };
  if (noKdWritten) outputs['medrep-no-kd.parquet'] = { rows: noKdWritten.rows, dim: noKdWritten.dim, sha256: noKdWritten.sha256 };
  if (settings.text === 'mlm') outputs['tokenizer.json'] = { sha256: sha256File(path.join(o.out, 'tokenizer.json')) };
  const meta = representationsRecord(o, {
    seed, settings, backend, deciles, encoderSettings, mlmSettings, lexical, gclOptions, propagation, medtokOptions, ordinalWeight,
    graph: graph.stats, textSources: text.counts, mlm, medtok, gcl, outputs,
  });
  fs.writeFileSync(path.join(o.out, 'representations.json'), JSON.stringify(meta, null, 2) + '\n');
  log(`[medrep] wrote ${o.out}/text.parquet, ${graphFile} (${medrepTable.conceptIds.length} rows, dim ${medrepTable.dim}) and representations.json`);
  return {
    graph: graph.stats, settings, text: textWritten, medrep: medrepWritten, medrepNoKd: noKdWritten, textSources: text.counts, mlm, gcl, medtok,
    graphObject: graph, textVectors, dim, textTable, medrepTable,
  };
}

interface TextStage {
  textVectors: Float32Array;
  dim: number;
  mlm: MlmResult | null;
  mlmSettings: Record<string, unknown> | null;
  encoderSettings: Record<string, unknown> | null;
  lexical: LexicalOptions;
}

/** The text stage: a vector per description, from the MLM-pretrained encoder (its tokenizer written to OUT) or lexical TF-IDF + SVD. */
function textStage(o: TrainRepresentationsOptions, settings: MethodSettings, texts: string[], seed: number, log: (line: string) => void): TextStage {
  const lexical: LexicalOptions = { ...DEFAULT_LEXICAL, seed, ...o.lexical };
  if (settings.text !== 'mlm') {
    const textVectors = lexicalVectors(texts, lexical);
    log(`[text-lexical] ${texts.length} descriptions -> TF-IDF 1-${lexical.maxNgram} grams -> SVD ${lexical.dim}`);
    return { textVectors, dim: lexical.dim, mlm: null, mlmSettings: null, encoderSettings: null, lexical };
  }
  const cfg: TextEncoderConfig = textEncoderConfig(o.textSize, o.textConfig);
  const tokenizer = BpeTokenizer.train(texts, o.tokenizerVocabSize ?? 2000);
  fs.writeFileSync(path.join(o.out, 'tokenizer.json'), JSON.stringify(tokenizer.toJSON()));
  const sequences = texts.map((t) => tokenizer.encode(t, cfg.maxLen));
  log(`[text-mlm] ${sequences.length} descriptions, tokenizer of ${tokenizer.size} pieces, encoder ${JSON.stringify(cfg)}`);
  const encoder = new TextEncoder(cfg, tokenizer.size, seed);
  const mlmOptions: MlmOptions = { ...DEFAULT_MLM, seed, ...o.mlm, log };
  const mlm = pretrainMlm(encoder, sequences, mlmOptions);
  const textVectors = settings.pooling === 'mean' ? meanVectors(encoder, sequences) : clsVectors(encoder, sequences);
  encoder.dispose();
  const { log: _l, ...rest } = mlmOptions;
  void _l;
  return { textVectors, dim: cfg.hidden, mlm, mlmSettings: rest as unknown as Record<string, unknown>, encoderSettings: { ...cfg, tokenizerVocabSize: tokenizer.size }, lexical };
}

/** representations.json: the inputs by hash, the settings, the training histories and the outputs. */
function representationsRecord(o: TrainRepresentationsOptions, r: {
  seed: number; settings: MethodSettings; backend: string; deciles: DecileArtifact | null;
  encoderSettings: Record<string, unknown> | null; mlmSettings: Record<string, unknown> | null; lexical: LexicalOptions;
  gclOptions: GraceOptions; propagation: PropagationOptions; medtokOptions: MedtokOptions; ordinalWeight: number;
  graph: GraphStats; textSources: unknown; mlm: MlmResult | null; medtok: MedtokResult | null; gcl: GraceResult | null; outputs: Record<string, unknown>;
}): Record<string, unknown> {
  const { settings, mlm, medtok, gcl } = r;
  const inputs: Record<string, string> = {};
  for (const t of ['concept', 'concept_relationship', 'concept_synonym', 'concept_ancestor'] as VocabTableName[]) {
    const f = findVocabFile(o.vocab, t);
    if (f) inputs[path.basename(f.path)] = sha256File(f.path);
  }
  const { log: _l2, ...gclSettings } = r.gclOptions;
  void _l2;
  return {
    kind: 'medrep.representations',
    inputs: {
      vocabulary: { sha256: inputs },
      deciles: o.deciles ? { version: r.deciles!.version, sha256: sha256File(o.deciles) } : null,
      descriptions: o.descriptions ? { sha256: sha256File(o.descriptions) } : null,
      endpoint: o.endpoint ? { url: o.endpoint, model: o.endpointModel ?? null } : null,
    },
    backend: { name: r.backend, chosen: currentBackendChoice()?.chosen },
    settings: {
      seed: r.seed, method: o.method ?? DEFAULT_METHOD, ...settings,
      textEncoder: r.encoderSettings, mlm: r.mlmSettings,
      lexical: settings.text === 'lexical' ? r.lexical : null,
      gcl: settings.graph === 'grace' ? gclSettings : null,
      propagation: settings.graph === 'appnp' || settings.graph === 'medtok' ? r.propagation : null,
      medtok: settings.graph === 'medtok' ? r.medtokOptions : null,
      ordinalWeight: settings.deciles === 'ordinal' ? r.ordinalWeight : null,
    },
    graph: r.graph,
    textSources: r.textSources,
    training: {
      mlm: mlm ? { epochs: mlm.epochs, bestEpoch: mlm.bestEpoch, history: mlm.history, tokensProcessed: mlm.tokensProcessed, seconds: mlm.seconds } : null,
      medtok: medtok ? {
        codebookSize: medtok.codebook.size, iterations: medtok.codebook.iterations, quantizationError: medtok.codebook.history,
        codesUsed: medtok.codesUsed, conceptsSharingTheirCodeSet: medtok.sharedTokenSets,
      } : null,
      gcl: gcl ? { epochs: gcl.epochs, bestEpoch: gcl.bestEpoch, history: gcl.epochLosses, nodesProcessed: gcl.nodesProcessed, seconds: gcl.seconds } : null,
    },
    outputs: r.outputs,
  };
}

/** Each node's tokens: concept_id, decile, its text codes and its graph codes (space separated, nearest first). */
function writeMedtokCodes(file: string, graph: ConceptGraph, m: MedtokResult): void {
  const k = m.textCodes.length / graph.numNodes;
  const lines = ['concept_id,decile,text_codes,graph_codes'];
  for (let i = 0; i < graph.numNodes; i++) {
    const codes = (c: Int32Array) => Array.from(c.subarray(i * k, (i + 1) * k)).join(' ');
    lines.push(`${graph.conceptIds[i]},${graph.deciles[i] < 0 ? '' : graph.deciles[i]},${codes(m.textCodes)},${codes(m.graphCodes)}`);
  }
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, lines.join('\n') + '\n');
  fs.renameSync(tmp, file);
}
