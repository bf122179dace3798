// The external-validation experiment (the MedRep paper's Tables 2 and 3): train on site A,
// evaluate on A's test split and on all of site B, for a grid of arms x models x tasks x seeds;
// results.json plus table2/table3 as Markdown and CSV.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { DEFAULT_MODEL, DEFAULT_TRAIN, PAPER_MODEL, PAPER_TRAIN, modelConfig, type BehrtConfig, type EhrModelName, type TrainConfig } from './config';
import { formatResults, runArms, type Arm, type CellKey, type ExperimentConfig, type ResultRow, type SiteInput } from './experiment';
import { ARM_NAMES, ARM_SOURCES, embeddingKindOf, sumRepresentations, type ArmName } from './arms';
import { groupOf, paperTables, writePaperTables, type UnresolvedTask } from './paperTables';
import { PLOS_TASK } from './prolongedStay';
import { UserError } from '../../common/errors';
import { hasVector, loadRepresentations, type Representations } from './representations';
import { Vocabulary } from './vocab';
import { loadVocabularyIndex, type VocabularyIndex } from '../representations/lookup';
import { loadSiteTask, sampleTasks, siteHash, type SiteData } from './site';
import { BackendPreference, initBackend } from '../backend';
import { canonicalJson } from '../../transforms/hashing';
import { listShards } from './data';

export interface ExternalExperimentOptions {
  /** Pipeline output folders (manifest.json, pretrain/, samples/<task>/). */
  siteA: string;
  siteB: string;
  /** MedRep vectors (Parquet file or a loaded lookup); the MedRep arm is left out without them. */
  representations?: string | Representations;
  /** Text-only vectors; the text-only arm is left out without them. */
  textRepresentations?: string | Representations;
  /** MedRep vectors of the graph stage without distillation (the paper's ablation arm). */
  noKdRepresentations?: string | Representations;
  /** The MedTok baseline's table (the medtok arm is left out without it). */
  medtokRepresentations?: string | Representations;
  /** Arms to run (default: vanilla and every arm whose table is given but medrep+text, in ARM_NAMES order). */
  arms?: ArmName[];
  /** EHR models (default: behrt). */
  models?: EhrModelName[];
  /** Called after each cell of the grid is stored (tests stop a run there to simulate a crash). */
  onCell?: (k: CellKey & { index: number; total: number; stored: boolean }) => void;
  /** Further frozen arms (e.g. the paper's method beside the default), after the others. */
  extraArms?: Array<{ name: string; embeddings: 'medrep' | 'text'; representations: string | Representations }>;
  /** Vocabulary folder for the lookup's fallbacks (Maps to, ancestors, siblings) of tokens without a row. */
  vocab?: string;
  out: string;
  /** Tasks with samples at both sites (default: all of them). */
  tasks?: string[];
  seeds?: number[];
  paperSize?: boolean;
  model?: Partial<BehrtConfig>;
  train?: Partial<TrainConfig>;
  pretrainEpochs?: number;
  trainSplits?: string[];
  valSplits?: string[];
  testSplits?: string[];
  backend?: BackendPreference;
  log?: (m: string) => void;
}

export interface ExternalExperimentResult {
  table: string;
  resultsFile: string;
  results: Record<string, unknown>;
}

async function reps(r: string | Representations | undefined, vocab: VocabularyIndex | null): Promise<Representations | undefined> {
  return typeof r === 'string' ? loadRepresentations(r, { vocab }) : r;
}

/** Mean share of [UNK] tokens per arm and setting, over tasks and seeds. */
function unknownShares(rows: ResultRow[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const r of rows) {
    const shares = Object.values(r.tasks).flatMap((c) => c.perSeed.map((p) => p.unknownTokenShare));
    (out[r.embeddings] ??= {})[r.setting] = shares.reduce((a, b) => a + b, 0) / Math.max(1, shares.length);
  }
  return out;
}

export async function loadSite(dir: string, name: string, tasks: string[], o: { longStay?: boolean } = {}): Promise<SiteInput> {
  const hasPretrain = (() => {
    try {
      return listShards(dir, 'pretrain').length > 0;
    } catch {
      return false;
    }
  })();
  const taskData = new Map<string, SiteData>();
  for (const t of tasks) taskData.set(t, await loadSiteTask(dir, t));
  // Med-BERT's prolonged-stay labels: the long_stay samples, when the site has them.
  const longStay = o.longStay && sampleTasks(dir).includes(PLOS_TASK) ? taskData.get(PLOS_TASK) ?? await loadSiteTask(dir, PLOS_TASK) : null;
  return { name, pretrain: hasPretrain ? await loadSiteTask(dir, 'pretrain') : null, tasks: taskData, longStay };
}

/**
 * Finetuning at the default size: every arm sits on a base-rate plateau (training loss at the
 * label entropy) for its first epochs, frozen tables for longer (up to ~15 epochs of ~20 steps at a
 * 1,500-person site) than learned ones (~3 to 8). On the plateau the validation AUROC is noise, and
 * a noisy early peak with a short patience stopped the frozen arms before they had learned anything
 * (5 epochs, patience 2 before; 20 and 5 still stopped text-only at epoch 6 with the training loss
 * at the plateau). Early stopping on the validation split picks the epoch.
 */
export const EXPERIMENT_TRAIN: TrainConfig = { ...DEFAULT_TRAIN, epochs: 30, patience: 10 };

export function experimentConfig(o: { init?: string; paperSize?: boolean; model?: Partial<BehrtConfig>; train?: Partial<TrainConfig>; pretrainEpochs?: number; seeds?: number[]; trainSplits?: string[]; valSplits?: string[]; testSplits?: string[] }): ExperimentConfig {
  return {
    model: { ...(o.paperSize ? PAPER_MODEL : DEFAULT_MODEL), ...o.model },
    train: { ...(o.paperSize ? PAPER_TRAIN : EXPERIMENT_TRAIN), ...o.train },
    pretrainEpochs: o.pretrainEpochs ?? 1,
    seeds: o.seeds ?? [1, 2, 3],
    // Finetuning also learns from the pretraining persons' samples: the test persons stay unseen.
    trainSplits: o.trainSplits ?? ['pretrain_train', 'finetune_train'],
    // Model selection on the pretraining persons' held-out split too: finetune_val alone holds a
    // handful of samples per task at these sizes (10 at a 1,500-person site, 2 positives), which
    // makes the chosen epoch a coin toss.
    valSplits: o.valSplits ?? ['pretrain_val', 'finetune_val'],
    testSplits: o.testSplits ?? ['finetune_test'],
    init: o.init,
  };
}

/** The requested tasks with samples at both sites, and the others with the reason they have none. */
export function resolveTasks(siteA: string, siteB: string, requested: string[] | undefined): { tasks: string[]; unresolved: UnresolvedTask[] } {
  const atA = sampleTasks(siteA);
  const atB = sampleTasks(siteB);
  const common = atA.filter((t) => atB.includes(t));
  const wanted = requested ?? common;
  const unresolved: UnresolvedTask[] = [];
  for (const t of wanted) {
    if (common.includes(t)) continue;
    const where = [...(atA.includes(t) ? [] : [['A', siteA]]), ...(atB.includes(t) ? [] : [['B', siteB]])];
    unresolved.push({ task: t, reason: where.map(([name, dir]) => `site ${name}: ${skippedReason(dir, t)}`).join('; ') });
  }
  return { tasks: wanted.filter((t) => common.includes(t)), unresolved };
}

/** Why a pipeline output has no samples of a task: its manifest's skip reason, else that it has none. */
function skippedReason(dir: string, task: string): string {
  try {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { counts?: { tasks_skipped?: { task: string; reason: string }[] } };
    const s = m.counts?.tasks_skipped?.find((x) => x.task === task);
    if (s) return s.reason;
  } catch {
    // no readable manifest: say what is missing
  }
  return `no samples/${task} shards`;
}

/** The frozen arms' tables, by arm name (vanilla has none); an arm without its table is unavailable. */
function armTables(t: { medrep?: Representations; text?: Representations; noKd?: Representations; medtok?: Representations }): Partial<Record<ArmName, Representations>> {
  return {
    ...(t.medtok ? { medtok: t.medtok } : {}),
    ...(t.text ? { 'text-only': t.text } : {}),
    ...(t.noKd ? { 'no-lwf': t.noKd } : {}),
    ...(t.medrep ? { medrep: t.medrep } : {}),
    ...(t.medrep && t.text ? { 'medrep+text': sumRepresentations(t.medrep, t.text) } : {}),
  };
}

export async function runExternalExperiment(o: ExternalExperimentOptions): Promise<ExternalExperimentResult> {
  const log = o.log ?? ((m: string) => console.log(m));
  const backend = await initBackend(o.backend);
  const { tasks, unresolved } = resolveTasks(o.siteA, o.siteB, o.tasks);
  for (const u of unresolved) log(`task ${u.task} (${groupOf(u.task)}) not resolved: ${u.reason}`);
  if (tasks.length === 0) throw new UserError(`no requested task has samples at both ${o.siteA} and ${o.siteB}${unresolved.length ? ` (${unresolved.map((u) => `${u.task}: ${u.reason}`).join('; ')})` : ''}`);
  const cfg = experimentConfig(o);
  const vocabulary = o.vocab ? await loadVocabularyIndex(o.vocab, { maxAncestorLevels: 20 }) : null;
  const tables = armTables({
    medrep: await reps(o.representations, vocabulary), text: await reps(o.textRepresentations, vocabulary),
    noKd: await reps(o.noKdRepresentations, vocabulary), medtok: await reps(o.medtokRepresentations, vocabulary),
  });
  // By default vanilla and every arm whose table is given; the medrep+text variant only when asked for.
  const wanted = o.arms ?? ARM_NAMES.filter((a) => a === 'vanilla' || (a !== 'medrep+text' && tables[a]));
  const arms: Arm[] = wanted.map((name) => {
    if (name !== 'vanilla' && !tables[name]) throw new UserError(`arm ${name} needs ${ARM_SOURCES[name]}`);
    return { name, embeddings: embeddingKindOf(name), reps: tables[name] };
  });
  for (const a of o.extraArms ?? []) arms.push({ name: a.name, embeddings: a.embeddings, reps: await reps(a.representations, vocabulary) });
  const modelNames = o.models ?? ['behrt'];
  const models = modelNames.map((name) => ({ name, cfg: modelConfig(name, cfg.model) }));
  log(`external experiment: backend ${backend}, tasks ${tasks.join(', ')}, arms ${arms.map((a) => a.name).join(', ')}, models ${modelNames.join(', ')}, seeds ${cfg.seeds.join(',')}`);
  const siteA = await loadSite(o.siteA, 'A', tasks, { longStay: models.some((m) => m.cfg.plosHead) });
  const siteB = await loadSite(o.siteB, 'B', tasks);
  mkdirSync(o.out, { recursive: true });
  const started = Date.now();
  const { rows, curves, bars } = await runArms({ arms, models, siteA, siteB, tasks, cfg, out: o.out, log, onCell: o.onCell });
  // Every token of both sites goes through each frozen arm's lookup once, so the resolution counts
  // in results.json are the same whether this run computed its cells or read them back.
  const everySequence = [...(siteA.pretrain?.sequences ?? []), ...[...siteA.tasks.values(), ...siteB.tasks.values()].flatMap((d) => d.sequences)];
  for (const a of arms) if (a.reps?.resolutions) Vocabulary.fromSequences(everySequence, hasVector(a.reps.lookup));
  const projection = arms
    .filter((a) => a.reps)
    .map((a) => ({ arm: a.name, vectorSize: a.reps!.dim, hidden: cfg.model.hidden, learnedProjection: a.reps!.dim !== cfg.model.hidden }));
  const results = {
    experiment: 'external-validation',
    backend,
    siteA: { shards: siteHash(siteA.tasks.get(tasks[0])!), pretrainShards: siteA.pretrain ? siteHash(siteA.pretrain) : null },
    siteB: { shards: siteHash(siteB.tasks.get(tasks[0])!) },
    representations: Object.fromEntries(arms.filter((a) => a.reps).map((a) => [a.name, { file: basename(a.reps!.source), hash: a.reps!.hash, dim: a.reps!.dim }])),
    projection,
    config: JSON.parse(canonicalJson(cfg)),
    models: Object.fromEntries(models.map((m) => [m.name, m.cfg])),
    tasks,
    taskGroups: Object.fromEntries([...tasks, ...unresolved.map((u) => u.task)].map((t) => [t, groupOf(t)])),
    unresolved,
    rows,
    curves,
    bars,
    // distinct tokens each frozen arm looked up (both sites), by how the lookup resolved them
    lookup: Object.fromEntries(arms.filter((a) => a.reps?.resolutions).map((a) => [a.name, a.reps!.resolutions!()])),
    unknownTokenShare: unknownShares(rows),
  };
  // Timing goes to the log, not into results.json: same inputs and seeds give the same file.
  log(`external experiment finished in ${Math.round((Date.now() - started) / 1000)} s`);
  const resultsFile = join(o.out, 'results.json');
  writeFileSync(resultsFile, JSON.stringify(results, null, 1));
  const written = writePaperTables(o.out, paperTables(rows, tasks, unresolved));
  log(`tables: ${written.join(', ')}`);
  const unk = unknownShares(rows);
  const table = `${formatResults(rows, tasks)}${unresolved.length ? `\n\nnot resolved: ${unresolved.map((u) => `${u.task} (${u.reason})`).join('; ')}` : ''}\n\n[UNK] share of tokens at the external site: ${arms.map((a) => `${a.name} ${(100 * (unk[a.name]?.external ?? 0)).toFixed(1)}%`).join(', ')}`;
  log(table);
  return { table, resultsFile, results };
}
