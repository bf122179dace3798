// `medrep train representations --vocab DIR --out OUT`: concept graph, concept text, text MLM
// encoder, GRACE with knowledge distillation. Writes OUT/text.parquet (graph-free text vectors),
// OUT/medrep.parquet (MedRep vectors), OUT/descriptions.jsonl (every description and its source),
// OUT/tokenizer.json and OUT/representations.json (input hashes, settings, training history).
import * as fs from 'fs';
import { UserError } from '../../pipelines/errors';
import * as path from 'path';
import { createHash } from 'crypto';
import type { DecileArtifact } from '../../transforms/deciles';
import { selectBackend, BackendPreference, BACKEND_PREFERENCES, currentBackendChoice } from '../backend';
import { buildConceptGraph, ConceptGraph, GraphStats } from '../graph/conceptGraph';
import { findVocabFile, VocabTableName } from '../graph/vocabularyFiles';
import { trainGrace, DEFAULT_GRACE, GraceOptions, GraceResult } from '../graph/grace';
import { buildConceptText, TextSource } from '../text/conceptText';
import { BpeTokenizer } from '../text/tokenizer';
import { TextEncoder, TextEncoderConfig, SMALL_TEXT_ENCODER, PAPER_TEXT_ENCODER, pretrainMlm, clsVectors, DEFAULT_MLM, MlmOptions, MlmResult } from '../text/encoder';
import { writeRepresentations, WrittenTable } from './table';
import { withOutputDir } from '../../pipelines/outputDir';

export interface TrainRepresentationsOptions {
  vocab: string;
  out: string;
  deciles?: string | null;
  descriptions?: string | null;
  endpoint?: string | null;
  endpointModel?: string;
  endpointApiKey?: string;
  backend?: BackendPreference;
  textSize?: 'small' | 'paper';
  /** Overrides of the text encoder size (e.g. hidden). */
  textConfig?: Partial<TextEncoderConfig>;
  tokenizerVocabSize?: number;
  mlm?: Partial<MlmOptions>;
  gcl?: Partial<GraceOptions>;
  seed?: number;
  log?: (line: string) => void;
}

export interface TrainRepresentationsResult {
  graph: GraphStats;
  text: WrittenTable;
  medrep: WrittenTable;
  textSources: Record<TextSource, number>;
  mlm: MlmResult;
  gcl: GraceResult;
  graphObject: ConceptGraph;
  textVectors: Float32Array;
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

export function readDecileArtifact(file: string): DecileArtifact {
  let a: DecileArtifact;
  try {
    a = JSON.parse(fs.readFileSync(file, 'utf8')) as DecileArtifact;
  } catch (e) {
    throw new UserError(`deciles file ${file}: ${(e as Error).message}`);
  }
  if (a.kind !== 'medrep.deciles' || !Array.isArray(a.groups)) throw new UserError(`deciles file ${file}: not a medrep.deciles artifact (kind ${String(a.kind)})`);
  a.groups.forEach((g, i) => {
    if (!Number.isSafeInteger(g.concept_id)) throw new UserError(`deciles file ${file}: groups[${i}].concept_id is not an integer id`);
  });
  return a;
}

export async function trainRepresentations(o: TrainRepresentationsOptions): Promise<TrainRepresentationsResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const seed = o.seed ?? 7;
  const backend = await selectBackend(o.backend, log);
  fs.mkdirSync(o.out, { recursive: true });
  const deciles = o.deciles ? readDecileArtifact(o.deciles) : null;

  const graph = await buildConceptGraph(o.vocab, { deciles, log });
  const text = await buildConceptText(o.vocab, graph, {
    descriptionsFile: o.descriptions ?? null,
    endpoint: o.endpoint ? { endpoint: o.endpoint, cacheFile: path.join(o.out, 'endpoint-cache.jsonl'), model: o.endpointModel, apiKey: o.endpointApiKey } : null,
    log,
  });
  const descLines = text.texts.map((t, n) => JSON.stringify({ concept_id: graph.conceptIds[n], decile: graph.deciles[n] < 0 ? null : graph.deciles[n], source: text.sources[n], description: t }));
  fs.writeFileSync(path.join(o.out, 'descriptions.jsonl'), descLines.join('\n') + '\n');

  const cfg: TextEncoderConfig = { ...(o.textSize === 'paper' ? PAPER_TEXT_ENCODER : SMALL_TEXT_ENCODER), ...o.textConfig };
  const tokenizer = BpeTokenizer.train(text.texts, o.tokenizerVocabSize ?? 2000);
  fs.writeFileSync(path.join(o.out, 'tokenizer.json'), JSON.stringify(tokenizer.toJSON()));
  const sequences = text.texts.map((t) => tokenizer.encode(t, cfg.maxLen));
  log(`[text-mlm] ${sequences.length} descriptions, tokenizer of ${tokenizer.size} pieces, encoder ${JSON.stringify(cfg)}`);
  const encoder = new TextEncoder(cfg, tokenizer.size, seed);
  const mlmOptions: MlmOptions = { ...DEFAULT_MLM, seed, ...o.mlm, log };
  const mlm = pretrainMlm(encoder, sequences, mlmOptions);
  const textVectors = clsVectors(encoder, sequences);
  encoder.dispose();
  const dim = cfg.hidden;
  const rows = { conceptIds: graph.conceptIds, deciles: Array.from(graph.deciles, (d) => (d < 0 ? null : d)) };
  const textTable = await writeRepresentations(path.join(o.out, 'text.parquet'), dim, { ...rows, vectors: textVectors });

  const gclOptions: GraceOptions = { ...DEFAULT_GRACE, seed, ...o.gcl, log };
  const gcl = trainGrace(graph, textVectors, dim, gclOptions);
  const medrepTable = await writeRepresentations(path.join(o.out, 'medrep.parquet'), dim, { ...rows, vectors: gcl.vectors });

  const inputs: Record<string, string> = {};
  for (const t of ['concept', 'concept_relationship', 'concept_synonym', 'concept_ancestor'] as VocabTableName[]) {
    const f = findVocabFile(o.vocab, t);
    if (f) inputs[path.basename(f.path)] = sha256File(f.path);
  }
  const { log: _l1, ...mlmSettings } = mlmOptions;
  const { log: _l2, ...gclSettings } = gclOptions;
  void _l1; void _l2;
  const meta = {
    kind: 'medrep.representations',
    inputs: {
      vocabulary: { folder: path.resolve(o.vocab), sha256: inputs },
      deciles: o.deciles ? { file: path.resolve(o.deciles), version: deciles!.version, sha256: sha256File(o.deciles) } : null,
      descriptions: o.descriptions ? { file: path.resolve(o.descriptions), sha256: sha256File(o.descriptions) } : null,
      endpoint: o.endpoint ? { url: o.endpoint, model: o.endpointModel ?? null } : null,
    },
    backend: { name: backend, chosen: currentBackendChoice()?.chosen },
    settings: { seed, textEncoder: cfg, tokenizerVocabSize: tokenizer.size, mlm: mlmSettings, gcl: gclSettings },
    graph: graph.stats,
    textSources: text.counts,
    training: {
      mlm: { epochs: mlm.epochs, bestEpoch: mlm.bestEpoch, history: mlm.history, tokensProcessed: mlm.tokensProcessed, seconds: mlm.seconds },
      gcl: { epochs: gcl.epochs, bestEpoch: gcl.bestEpoch, history: gcl.epochLosses, nodesProcessed: gcl.nodesProcessed, seconds: gcl.seconds },
    },
    outputs: {
      'text.parquet': { rows: textTable.rows, dim, sha256: textTable.sha256 },
      'medrep.parquet': { rows: medrepTable.rows, dim, sha256: medrepTable.sha256 },
      'tokenizer.json': { sha256: sha256File(path.join(o.out, 'tokenizer.json')) },
      'descriptions.jsonl': { sha256: sha256File(path.join(o.out, 'descriptions.jsonl')) },
    },
  };
  fs.writeFileSync(path.join(o.out, 'representations.json'), JSON.stringify(meta, null, 2) + '\n');
  log(`[medrep] wrote ${o.out}/text.parquet, medrep.parquet (${graph.numNodes} rows, dim ${dim}) and representations.json`);
  return { graph: graph.stats, text: textTable, medrep: medrepTable, textSources: text.counts, mlm, gcl, graphObject: graph, textVectors };
}

export const USAGE = `usage: medrep train representations --vocab DIR --out OUT [--deciles FILE] [--descriptions FILE]
  [--endpoint URL [--endpoint-model NAME]] [--backend ${BACKEND_PREFERENCES.join('|')}] [--epochs N] [--text-epochs N]
  [--patience N] [--text-size small|paper] [--hidden N] [--seeds-per-batch N] [--no-kd] [--seed N]
  (the endpoint's API key is read from MEDREP_ENDPOINT_API_KEY)`;

/** Parses the command's arguments (after "train representations"). */
export function parseTrainRepresentationsArgs(args: string[]): TrainRepresentationsOptions {
  const o: TrainRepresentationsOptions = { vocab: '', out: '' };
  const mlm: Partial<MlmOptions> = {};
  const gcl: Partial<GraceOptions> = {};
  const int = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n <= 0) throw new UserError(`${flag} needs a positive integer, got '${v ?? ''}'\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = (): string => {
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) throw new UserError(`${a} needs a value\n${USAGE}`);
      return v;
    };
    switch (a) {
      case '--vocab': o.vocab = next(); break;
      case '--out': o.out = next(); break;
      case '--deciles': o.deciles = next(); break;
      case '--descriptions': o.descriptions = next(); break;
      case '--endpoint': o.endpoint = next(); break;
      case '--endpoint-model': o.endpointModel = next(); break;
      case '--backend': {
        const b = next();
        if (!BACKEND_PREFERENCES.includes(b as BackendPreference)) throw new UserError(`--backend must be one of ${BACKEND_PREFERENCES.join(', ')}, got '${b}'`);
        o.backend = b as BackendPreference;
        break;
      }
      case '--epochs': gcl.maxEpochs = int(a, args[++i]); if (mlm.maxEpochs === undefined) mlm.maxEpochs = gcl.maxEpochs; break;
      case '--text-epochs': mlm.maxEpochs = int(a, args[++i]); break;
      case '--patience': gcl.patience = mlm.patience = int(a, args[++i]); break;
      case '--text-size': {
        const s = next();
        if (s !== 'small' && s !== 'paper') throw new UserError(`--text-size must be small or paper, got '${s}'`);
        o.textSize = s;
        break;
      }
      case '--hidden': o.textConfig = { ...o.textConfig, hidden: int(a, args[++i]) }; break;
      case '--seeds-per-batch': gcl.seedsPerBatch = int(a, args[++i]); break;
      case '--no-kd': gcl.distill = false; break;
      case '--seed': o.seed = int(a, args[++i]); break;
      default: throw new UserError(`unknown option '${a}'\n${USAGE}`);
    }
  }
  if (!o.vocab || !o.out) throw new UserError(`--vocab and --out are required\n${USAGE}`);
  o.mlm = mlm;
  o.gcl = gcl;
  if (process.env.MEDREP_ENDPOINT_API_KEY) o.endpointApiKey = process.env.MEDREP_ENDPOINT_API_KEY;
  return o;
}

/** CLI entry: `medrep train representations ...`; returns the exit code. */
export async function runTrainRepresentations(args: string[]): Promise<number> {
  const o = parseTrainRepresentationsArgs(args);
  await withOutputDir(o.out, { command: 'train representations' }, () => trainRepresentations(o));
  return 0;
}
