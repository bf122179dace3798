// `medrep train ehr`: pretraining, finetuning with evaluation, or continuous retraining of one EHR
// model on a pipeline output, into a folder of its own (run.json records versions, not paths).
import { writeFileSync } from 'node:fs';
import { UserError } from '../../common/errors';
import { basename, join } from 'node:path';
import { DEFAULT_MODEL, modelConfig, PAPER_MODEL, type BehrtConfig, type EhrModelName, type TrainConfig } from './config';
import { PLOS_TASK, withProlongedStay } from './prolongedStay';
import { experimentConfig, loadSite } from './external';
import { formatResults, runArms } from './experiment';
import { followManifest } from './follow';
import { loadRepresentations, type Representations } from './representations';
import { BackendPreference, initBackend } from '../backend';
import type { EmbeddingKind } from './train';
import { canonicalJson } from '../../transforms/hashing';
import { bySplit, siteHash } from './site';
import { checkpointPath, modelVocabulary, pretrain } from './evaluate';
import { withOutputDir } from '../../common/outputDir';

/** `medrep train ehr` as typed options (cli/trainEhr.ts declares their flags: --batch-size is batchSize). */
export interface TrainEhrRequest {
  /** The pipeline output folder. */
  shards: string;
  /** A task name, or 'pretrain'. */
  task: string;
  model?: EhrModelName;
  embeddings: EmbeddingKind;
  /** The representation table of the medrep and text embeddings. */
  representations?: string;
  /** Vocabulary folder for the lookup's fallbacks; without it a token has its own row or its base concept's. */
  vocab?: string;
  out?: string;
  seeds?: number[];
  epochs?: number;
  pretrainEpochs?: number;
  /** A pretraining checkpoint folder to finetune from. */
  init?: string;
  batchSize?: number;
  lr?: number;
  patience?: number;
  paperSize: boolean;
  hidden?: number;
  layers?: number;
  heads?: number;
  intermediate?: number;
  maxLen?: number;
  domainEmbedding: boolean;
  trainSplits?: string[];
  valSplits?: string[];
  testSplits?: string[];
  backend?: BackendPreference;
  /** Retrain whenever the shards' manifest changes. */
  follow: boolean;
  pollMs?: number;
  maxVersions?: number;
}

function sizes(r: TrainEhrRequest): { model: Partial<BehrtConfig>; train: Partial<TrainConfig> } {
  const model: Partial<BehrtConfig> = {};
  const train: Partial<TrainConfig> = {};
  if (r.hidden !== undefined) model.hidden = r.hidden;
  if (r.layers !== undefined) model.layers = r.layers;
  if (r.heads !== undefined) model.heads = r.heads;
  if (r.intermediate !== undefined) model.intermediate = r.intermediate;
  if (r.maxLen !== undefined) model.maxLen = r.maxLen;
  if (r.domainEmbedding) model.domainEmbedding = true;
  if (r.epochs !== undefined) train.epochs = r.epochs;
  if (r.batchSize !== undefined) train.batchSize = r.batchSize;
  if (r.lr !== undefined) train.learningRate = r.lr;
  if (r.patience !== undefined) train.patience = r.patience;
  return { model, train };
}

/** `medrep train ehr ...`: pretraining, finetuning with evaluation, or continuous retraining. */
export async function runTrainEhr(r: TrainEhrRequest): Promise<void> {
  const { shards: shardsDir, task, embeddings } = r;
  if (embeddings !== 'vanilla' && !r.representations) throw new UserError(`--embeddings ${embeddings} needs --representations FILE`);
  const reps: Representations | undefined = r.representations ? await loadRepresentations(r.representations, { vocab: r.vocab }) : undefined;
  const backend = await initBackend(r.backend);
  const modelName = r.model ?? 'behrt';
  const { model: sized, train } = sizes(r);
  const model = { ...modelConfig(modelName, { ...DEFAULT_MODEL, ...(r.paperSize ? PAPER_MODEL : {}) }), ...sized };
  const cfg = experimentConfig({
    init: r.init, paperSize: r.paperSize, model, train, pretrainEpochs: r.pretrainEpochs ?? (task === 'pretrain' ? undefined : 0),
    seeds: r.seeds, trainSplits: r.trainSplits, valSplits: r.valSplits, testSplits: r.testSplits,
  });
  const out = r.out ?? join(shardsDir, 'models', `${task}-${embeddings}${modelName === 'behrt' ? '' : `-${modelName}`}`);
  await withOutputDir(out, { command: 'train ehr' }, () => trainEhrInto(out, r, { task, shardsDir, embeddings, reps, backend, cfg, modelName }));
}

async function trainEhrInto(
  out: string,
  r: TrainEhrRequest,
  { task, shardsDir, embeddings, reps, backend, cfg, modelName }: { task: string; shardsDir: string; embeddings: EmbeddingKind; reps: Representations | undefined; backend: string; cfg: ReturnType<typeof experimentConfig>; modelName: EhrModelName },
): Promise<void> {
  const log = (m: string) => console.log(m);
  log(`train ehr: task ${task}, model ${modelName}, embeddings ${embeddings}, backend ${backend}, hidden ${cfg.model.hidden} x ${cfg.model.layers} layers, max ${cfg.model.maxLen} tokens`);
  if (reps && reps.dim !== cfg.model.hidden) log(`vectors of size ${reps.dim} reach hidden size ${cfg.model.hidden} through a learned projection`);
  const projection = reps ? { vectorSize: reps.dim, hidden: cfg.model.hidden, learnedProjection: reps.dim !== cfg.model.hidden } : null;

  if (r.follow) {
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    process.once('SIGTERM', () => controller.abort());
    const registry = await followManifest({
      shardsDir, task, embeddings, reps, model: cfg.model, train: cfg.train,
      seed: cfg.seeds[0], modelDir: out, trainSplits: cfg.trainSplits, valSplits: cfg.valSplits,
      pollMs: r.pollMs, maxVersions: r.maxVersions, signal: controller.signal, log,
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
