// `medrep train ehr` argument handling: the CLI calls runTrainEhr(args) with the arguments after
// the command words.
import { writeFileSync } from 'node:fs';
import { UserError } from '../../common/errors';
import { basename, join } from 'node:path';
import { DEFAULT_MODEL, modelConfig, parseEhrModels, PAPER_MODEL, type BehrtConfig, type EhrModelName, type TrainConfig } from './config';
import { PLOS_TASK, withProlongedStay } from './prolongedStay';
import { experimentConfig, loadSite } from './external';
import { formatResults, runArms } from './experiment';
import { followManifest } from './follow';
import { loadRepresentations, type Representations } from './representations';
import { initEhrBackend } from './tf';
import { BACKEND_PREFERENCES, BackendPreference } from '../backend';
import type { EmbeddingKind } from './train';
import { canonicalJson } from '../../transforms/hashing';
import { bySplit, siteHash } from './site';
import { checkpointPath, modelVocabulary, pretrain } from './evaluate';
import { withOutputDir } from '../../common/outputDir';

export const TRAIN_EHR_USAGE = `usage: medrep train ehr --shards OUT --task TASK|pretrain
    [--model behrt|cdm-bert|med-bert] [--embeddings vanilla|medrep|text] [--representations FILE] [--out DIR]
    [--seeds 1,2,3] [--epochs N] [--pretrain-epochs N] [--init PRETRAINED_CKPT_DIR] [--batch-size N] [--lr X] [--patience N]
    [--paper-size] [--hidden N] [--layers N] [--heads N] [--intermediate N] [--max-len N] [--domain-embedding]
    [--train-splits a,b] [--val-splits a,b] [--test-splits a,b] [--backend tensorflow-gpu|tensorflow|wasm|cpu]
    [--follow [--poll-ms N] [--max-versions N]]`;

type Flags = Map<string, string | true>;

/** The flags a usage text names: the flags its parser accepts. */
export const flagsOf = (usage: string): Set<string> => new Set([...usage.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]));
export const TRAIN_EHR_FLAGS = flagsOf(TRAIN_EHR_USAGE);

const BOOLEAN_FLAGS = new Set(['paper-size', 'follow', 'domain-embedding']);

/** `known`: the accepted flags; any other is an error (a mistyped flag must not be ignored). */
export function parseFlags(args: string[], usage: string, known?: Set<string>): Flags {
  const flags: Flags = new Map();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) throw new UserError(`unexpected argument '${a}'\n${usage}`);
    const name = a.slice(2);
    if (known && !known.has(name)) throw new UserError(`unknown option --${name} (options: ${[...known].map((k) => `--${k}`).join(' ')})`);
    if (BOOLEAN_FLAGS.has(name)) flags.set(name, true);
    else {
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) throw new UserError(`--${name} needs a value\n${usage}`);
      flags.set(name, v);
    }
  }
  return flags;
}

const str = (f: Flags, k: string): string | undefined => (typeof f.get(k) === 'string' ? (f.get(k) as string) : undefined);
function num(f: Flags, k: string): number | undefined {
  const v = str(f, k);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UserError(`--${k} must be a number, got '${v}'`);
  return n;
}
const list = (f: Flags, k: string) => str(f, k)?.split(',').map((s) => s.trim()).filter(Boolean);

function sizes(f: Flags): { model: Partial<BehrtConfig>; train: Partial<TrainConfig> } {
  const model: Partial<BehrtConfig> = {};
  const train: Partial<TrainConfig> = {};
  const set = <T extends object>(o: T, key: keyof T, v: number | undefined) => v !== undefined && ((o as Record<string, unknown>)[key as string] = v);
  set(model, 'hidden', num(f, 'hidden'));
  set(model, 'layers', num(f, 'layers'));
  set(model, 'heads', num(f, 'heads'));
  set(model, 'intermediate', num(f, 'intermediate'));
  set(model, 'maxLen', num(f, 'max-len'));
  if (f.has('domain-embedding')) model.domainEmbedding = true;
  set(train, 'epochs', num(f, 'epochs'));
  set(train, 'batchSize', num(f, 'batch-size'));
  set(train, 'learningRate', num(f, 'lr'));
  set(train, 'patience', num(f, 'patience'));
  return { model, train };
}

/** `--model NAME` / `--models a,b`: EHR model names (config.ts EHR_MODELS). */
const ehrModels = (f: Flags, flag: 'model' | 'models'): EhrModelName[] | undefined => {
  const names = list(f, flag);
  return names && parseEhrModels(names, `--${flag}`);
};

function backendOf(f: Flags): BackendPreference | undefined {
  // Default: the selector's order (tfjs-node-gpu > tfjs-node > wasm > cpu); WASM trains the
  // default size ~7x faster than the pure-JS CPU backend here (bench/results/behrt.json).
  const b = str(f, 'backend');
  if (b === undefined) return undefined;
  if (!BACKEND_PREFERENCES.includes(b as BackendPreference)) throw new UserError(`--backend must be one of ${BACKEND_PREFERENCES.join(', ')}, got '${b}'`);
  return b as BackendPreference;
}

/** `medrep train ehr ...`: pretraining, finetuning with evaluation, or continuous retraining. */
export async function runTrainEhr(args: string[]): Promise<void> {
  const f = parseFlags(args, TRAIN_EHR_USAGE, TRAIN_EHR_FLAGS);
  const shardsDir = str(f, 'shards');
  const task = str(f, 'task');
  if (!shardsDir || !task) throw new UserError(`--shards and --task are required\n${TRAIN_EHR_USAGE}`);
  const embeddings = (str(f, 'embeddings') ?? 'vanilla') as EmbeddingKind;
  if (!['vanilla', 'medrep', 'text'].includes(embeddings)) throw new UserError(`--embeddings must be vanilla, medrep or text, got '${embeddings}'`);
  const repFile = str(f, 'representations');
  if (embeddings !== 'vanilla' && !repFile) throw new UserError(`--embeddings ${embeddings} needs --representations FILE`);
  const reps: Representations | undefined = repFile ? await loadRepresentations(repFile) : undefined;
  const backend = await initEhrBackend(backendOf(f));
  const named = ehrModels(f, 'model');
  if (named && named.length > 1) throw new UserError(`--model takes one model (the experiment's --models takes several), got '${str(f, 'model')}'`);
  const modelName = named?.[0] ?? 'behrt';
  const { model: sized, train } = sizes(f);
  const model = { ...modelConfig(modelName, { ...DEFAULT_MODEL, ...(f.has('paper-size') ? PAPER_MODEL : {}) }), ...sized };
  const cfg = experimentConfig({
    init: str(f, 'init'), paperSize: f.has('paper-size'), model, train, pretrainEpochs: num(f, 'pretrain-epochs') ?? (task === 'pretrain' ? undefined : 0),
    seeds: list(f, 'seeds')?.map(Number), trainSplits: list(f, 'train-splits'), valSplits: list(f, 'val-splits'), testSplits: list(f, 'test-splits'),
  });
  const out = str(f, 'out') ?? join(shardsDir, 'models', `${task}-${embeddings}${modelName === 'behrt' ? '' : `-${modelName}`}`);
  await withOutputDir(out, { command: 'train ehr' }, () => trainEhrInto(out, f, { task, shardsDir, embeddings, reps, backend, cfg, modelName }));
}

async function trainEhrInto(
  out: string,
  f: Flags,
  { task, shardsDir, embeddings, reps, backend, cfg, modelName }: { task: string; shardsDir: string; embeddings: EmbeddingKind; reps: Representations | undefined; backend: string; cfg: ReturnType<typeof experimentConfig>; modelName: EhrModelName },
): Promise<void> {
  const log = (m: string) => console.log(m);
  log(`train ehr: task ${task}, model ${modelName}, embeddings ${embeddings}, backend ${backend}, hidden ${cfg.model.hidden} x ${cfg.model.layers} layers, max ${cfg.model.maxLen} tokens`);
  if (reps && reps.dim !== cfg.model.hidden) log(`vectors of size ${reps.dim} reach hidden size ${cfg.model.hidden} through a learned projection`);
  const projection = reps ? { vectorSize: reps.dim, hidden: cfg.model.hidden, learnedProjection: reps.dim !== cfg.model.hidden } : null;

  if (f.has('follow')) {
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    process.once('SIGTERM', () => controller.abort());
    const registry = await followManifest({
      shardsDir, task, embeddings, reps, model: cfg.model, train: cfg.train,
      seed: cfg.seeds[0], modelDir: out, trainSplits: cfg.trainSplits, valSplits: cfg.valSplits,
      pollMs: num(f, 'poll-ms'), maxVersions: num(f, 'max-versions'), signal: controller.signal, log,
    });
    log(`follow stopped: ${registry.versions.length} version(s), promoted ${registry.promoted ?? 'none'}`);
    return;
  }

  const tasks = task === 'pretrain' ? [] : [task];
  const site = await loadSite(shardsDir, 'site', tasks, { longStay: cfg.model.plosHead });
  if (task === 'pretrain' && !site.pretrain) throw new UserError(`${shardsDir}: no pretraining shards`);
  const arm = { name: embeddings, embeddings, reps };
  const started = Date.now();
  let rows: unknown = null;
  if (task === 'pretrain') {
    const pre = site.pretrain!;
    const vocab = modelVocabulary(pre.sequences.filter((s) => s.split === 'pretrain_train'), embeddings, reps);
    let train = bySplit(pre.sequences, ['pretrain_train'], 'pretraining', shardsDir);
    let shards = pre.shards;
    if (cfg.model.plosHead) {
      if (!site.longStay) throw new UserError(`--model ${modelName}: its prolonged-stay head learns from ${PLOS_TASK} samples, and ${shardsDir} has none (run the pipeline with the ${PLOS_TASK} task)`);
      train = withProlongedStay(train, site.longStay.sequences);
      shards = [...pre.shards, ...site.longStay.shards];
    }
    for (const seed of cfg.seeds) {
      await pretrain({
        embeddings, reps, vocab, model: cfg.model, trainCfg: cfg.train, seed, shards, log,
        train, val: bySplit(pre.sequences, ['pretrain_val'], 'pretraining validation', shardsDir),
        checkpointDir: checkpointPath(out, embeddings, modelName, `seed-${seed}`, 'pretrain'),
      });
    }
  } else {
    const res = await runArms({ arms: [arm], models: [{ name: modelName, cfg: cfg.model }], siteA: site, siteB: null, tasks, cfg, out, log });
    rows = res.rows;
    writeFileSync(join(out, 'results.json'), JSON.stringify({ task, model: modelName, embeddings, rows: res.rows, curves: res.curves, bars: res.bars }, null, 1));
    log(formatResults(res.rows, tasks));
  }
  writeFileSync(join(out, 'run.json'), JSON.stringify({
    // Versions, not machine paths: shards and representations by their hashes (and the table's file name).
    command: 'train ehr', task, model: modelName, embeddings, backend,
    shards: task === 'pretrain' ? siteHash(site.pretrain!) : siteHash(site.tasks.get(task)!),
    pretrainShards: site.pretrain ? siteHash(site.pretrain) : null,
    representations: reps ? { file: basename(reps.source), hash: reps.hash, dim: reps.dim } : null,
    // distinct tokens looked up in the representation table, by how the lookup resolved them
    lookup: reps?.resolutions?.() ?? null,
    projection, config: JSON.parse(canonicalJson(cfg)), seconds: Math.round((Date.now() - started) / 1000), results: rows,
  }, null, 1));
}
