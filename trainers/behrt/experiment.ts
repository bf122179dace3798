// Train-on-one-site, evaluate-here-and-elsewhere over a grid of arms x models x tasks x seeds:
// for each embedding arm (arms.ts), EHR model (config.ts MODEL_VARIANTS) and seed, pretrain on
// site A, finetune each task on A, evaluate on A's test split (internal) and, when given, on all
// of site B (external), with no further training. The plan resumes: a finished cell is stored
// with the hash of its inputs (OUT/cells/) and is read back, not recomputed, by a later run.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { BehrtConfig, TrainConfig } from './config';
import type { Sequence } from './data';
import { readCheckpointMeta, resolveCheckpoint } from './checkpoint';
import { Vocabulary } from './vocab';
import { evaluate, finetune, modelVocabulary, pretrain, checkpointPath, type EvalMetrics, type Evaluation } from './evaluate';
import type { Representations } from './representations';
import { bySplit, siteHash, type SiteData } from './site';
import { shardSetHash } from './data';
import { PLOS_TASK, withProlongedStay } from './prolongedStay';
import { canonicalJson, sha256 } from '../../transforms/hashing';
import { tf } from '../tf';
import type { EmbeddingKind } from './train';
import type { Curve } from '../metrics/auc';
import type { FigureFiles } from '../../figures/figureFiles';
import { writeExperimentFigures } from './experimentFigures';
import { fmt, formatTable } from '../metrics/table';
import { UserError } from '../../common/errors';

export interface Arm {
  name: string;
  embeddings: EmbeddingKind;
  reps?: Representations;
}

export interface ExperimentConfig {
  model: BehrtConfig;
  train: TrainConfig;
  /** MLM epochs before finetuning (0: finetune from scratch). */
  pretrainEpochs: number;
  seeds: number[];
  trainSplits: string[];
  valSplits: string[];
  testSplits: string[];
  /** A pretraining checkpoint folder to finetune from (its vocabulary is used; no pretraining here). */
  init?: string;
}

export interface Cell {
  auroc: number;
  auprc: number;
  /** Standard deviation over seeds. */
  aurocSd: number;
  auprcSd: number;
  /** DeLong 95% interval (of the macro average for multi-label tasks), bounds averaged over seeds. */
  ci95: [number, number];
  perSeed: (EvalMetrics & { seed: number; unknownTokenShare: number })[];
  /** Set when the metrics are undefined (NaN, null in JSON): why, with the counts. */
  undefinedBecause?: string;
}

/** A task's ROC and PR figures in one setting: PNG paths (relative to the output folder), points, both files of each. */
export interface CurveFigures {
  arms: string[];
  roc: string;
  pr: string;
  points: string;
  files: { roc: FigureFiles; pr: FigureFiles };
}

export interface ResultRow {
  /** The arm (ARM_NAMES). */
  embeddings: string;
  /** The EHR model (EHR_MODELS); rows written before the grid had models read as behrt. */
  model?: string;
  setting: 'internal' | 'external';
  tasks: Record<string, Cell>;
  average: { auroc: number; auprc: number };
}

export interface SiteInput {
  name: string;
  pretrain: SiteData | null;
  tasks: Map<string, SiteData>;
  /** Med-BERT's prolonged-stay labels come from these samples (prolongedStay.ts). */
  longStay?: SiteData | null;
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: number[]) => (v.length < 2 ? 0 : Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1)));

function cellOf(runs: { seed: number; e: Pick<Evaluation, 'metrics' | 'unknownTokenShare'> }[]): Cell {
  const au = runs.map((r) => r.e.metrics.auroc);
  const pr = runs.map((r) => r.e.metrics.auprc);
  const cis = runs.map((r) => r.e.metrics.ci95);
  return {
    auroc: mean(au),
    auprc: mean(pr),
    aurocSd: sd(au),
    auprcSd: sd(pr),
    ci95: [mean(cis.map((c) => c[0])), mean(cis.map((c) => c[1]))],
    perSeed: runs.map((r) => ({ seed: r.seed, ...r.e.metrics, unknownTokenShare: r.e.unknownTokenShare })),
    ...(runs.some((r) => r.e.metrics.undefinedBecause) ? { undefinedBecause: runs.find((r) => r.e.metrics.undefinedBecause)!.e.metrics.undefinedBecause } : {}),
  };
}

/** The mean over the cells that have a value (tasks whose test set had one class have none). */
const meanDefined = (v: number[]) => {
  const ok = v.filter((x) => !Number.isNaN(x));
  return ok.length ? mean(ok) : NaN;
};

/** One EHR model of the grid: its name and its full config (config.ts modelConfig). */
export interface ModelChoice {
  name: string;
  cfg: BehrtConfig;
}

/** A cell of the grid: one arm, model, task and seed, evaluated internally and externally. */
export interface CellKey {
  arm: string;
  model: string;
  task: string;
  seed: number;
}

interface StoredEvaluation {
  metrics: EvalMetrics;
  unknownTokenShare: number;
  roc: Curve;
  pr: Curve;
}

interface StoredCell extends CellKey {
  format: 'medrep-experiment-cell/1';
  /** Hash of everything the cell's numbers depend on: arm table, model and training config, splits, shards. */
  inputsHash: string;
  inputs: Record<string, unknown>;
  evaluations: Record<string, StoredEvaluation>;
}

const CELL_FORMAT = 'medrep-experiment-cell/1';

/** Where a finished cell is stored: OUT/cells/<arm>/<model>/<task>/seed-<seed>.json. */
export const cellPath = (out: string, k: CellKey) => join(out, 'cells', k.arm, k.model, k.task, `seed-${k.seed}.json`);

/** JSON writes NaN as null: metrics of a one-class set read back as NaN. */
function reviveMetrics(m: EvalMetrics): EvalMetrics {
  const num = (x: unknown) => (typeof x === 'number' ? x : NaN);
  return { ...m, auroc: num(m.auroc), auprc: num(m.auprc), ci95: [num(m.ci95?.[0]), num(m.ci95?.[1])] };
}

function readStoredCell(file: string, inputsHash: string): StoredCell | null {
  if (!existsSync(file)) return null;
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as StoredCell;
    if (c.format !== CELL_FORMAT || c.inputsHash !== inputsHash) return null;
    for (const e of Object.values(c.evaluations)) e.metrics = reviveMetrics(e.metrics);
    return c;
  } catch {
    return null;
  }
}

function writeStoredCell(file: string, cell: StoredCell): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(cell));
  renameSync(tmp, file);
}

/**
 * A pretraining checkpoint folder of this experiment resumes only when it was written for the
 * same inputs (vocabulary, shards, table, model, training config, seed); otherwise it is removed
 * (the experiment wrote it) and pretraining starts over.
 */
function keepPretrainingIfSame(dir: string, want: { vocabHash: string; shardManifestHash: string; representationsHash: string | null; model: BehrtConfig; train: TrainConfig; seed: number }): void {
  const latest = existsSync(dir) ? resolveCheckpoint(dir) : null;
  if (!latest) {
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  try {
    const m = readCheckpointMeta(latest);
    const same = m.vocabHash === want.vocabHash && m.shardManifestHash === want.shardManifestHash && m.representationsHash === want.representationsHash
      && canonicalJson(m.model) === canonicalJson(want.model) && canonicalJson(m.train) === canonicalJson(want.train) && m.seed === want.seed;
    if (same) return;
  } catch {
    // unreadable: start over
  }
  rmSync(dir, { recursive: true, force: true });
}

export async function runArms(o: {
  arms: Arm[];
  /** EHR models (default: BEHRT with cfg.model). */
  models?: ModelChoice[];
  siteA: SiteInput;
  siteB: SiteInput | null;
  tasks: string[];
  cfg: ExperimentConfig;
  out: string;
  log: (m: string) => void;
  /** Called after each cell is stored (tests stop a run there to simulate a crash). */
  onCell?: (k: CellKey & { index: number; total: number; stored: boolean }) => void;
}): Promise<{ rows: ResultRow[]; curves: Record<string, CurveFigures>; bars: Record<string, FigureFiles> }> {
  const { cfg, siteA, siteB } = o;
  const models = o.models ?? [{ name: 'behrt', cfg: cfg.model }];
  const settingNames = siteB ? (['internal', 'external'] as const) : (['internal'] as const);
  const total = o.arms.length * models.length * cfg.seeds.length * o.tasks.length;
  const evaluations = new Map<string, { seed: number; e: Evaluation }[]>();
  const curves = new Map<string, { arm: string; roc: Curve; pr: Curve }[]>();
  let index = 0;
  // Per arm, once: its vocabulary and the checkpoint it finetunes from when --init gives one.
  const starts = new Map(o.arms.map((arm) => [arm.name, armStart(arm, siteA, o.tasks, cfg)]));
  // Seeds outermost: a run stopped early holds whole seeds (every arm, model and task of seed 1
  // before any of seed 2), and a rerun with more seeds adds them.
  for (const seed of cfg.seeds) {
    for (const arm of o.arms) {
      const { vocab, fixedInit, initHash } = starts.get(arm.name)!;
      for (const model of models) {
        let init = fixedInit;
        let pretrained = false;
        const pretrainIfNeeded = async () => {
          if (pretrained || cfg.init || cfg.pretrainEpochs <= 0 || !siteA.pretrain) return;
          pretrained = true;
          init = await pretrainOnSiteA({ out: o.out, arm, model, seed, vocab, cfg, siteA, pre: siteA.pretrain, log: o.log });
        };
        for (const task of o.tasks) {
          index++;
          const data = siteA.tasks.get(task)!;
          const key: CellKey = { arm: arm.name, model: model.name, task, seed };
          const inputs = cellInputs({ arm, model, seed, task, cfg, siteA, siteB, initHash });
          const inputsHash = `sha256:${sha256(canonicalJson(inputs))}`;
          const file = cellPath(o.out, key);
          let cell = readStoredCell(file, inputsHash);
          const stored = cell !== null;
          if (!cell) {
            await pretrainIfNeeded();
            const evals = await computeCell({ out: o.out, arm, model, seed, task, vocab, init, cfg, data, siteB, log: o.log });
            cell = { format: CELL_FORMAT, ...key, inputsHash, inputs: JSON.parse(canonicalJson(inputs)), evaluations: evals };
            writeStoredCell(file, cell);
          }
          const au = settingNames.map((s) => `${s} ${fmt(cell!.evaluations[s].metrics.auroc)}`).join(', ');
          o.log(`cell ${index}/${total} arm ${arm.name} model ${model.name} task ${task} seed ${seed}: AUROC ${au}${stored ? ' (stored, not recomputed)' : ''}`);
          for (const setting of settingNames) {
            const ev = cell.evaluations[setting];
            const k = `${arm.name}|${model.name}|${setting}|${task}`;
            if (!evaluations.has(k)) evaluations.set(k, []);
            evaluations.get(k)!.push({ seed, e: ev });
            if (seed === cfg.seeds[0]) {
              const ck = `${model.name}|${setting}|${task}`;
              if (!curves.has(ck)) curves.set(ck, []);
              curves.get(ck)!.push({ arm: arm.name, roc: ev.roc, pr: ev.pr });
            }
          }
          o.onCell?.({ ...key, index, total, stored });
        }
      }
    }
  }
  const rows = resultRows(o.arms, models, settingNames, o.tasks, evaluations);
  const { figures, bars } = await writeExperimentFigures(o.out, o.arms.map((a) => a.name), models.map((m) => m.name), rows, o.tasks, curves);
  return { rows, curves: figures, bars };
}

/** The arm's vocabulary (pairs in site A's training persons) and, with --init, the pretrained checkpoint it must match. */
function armStart(arm: Arm, siteA: SiteInput, tasks: string[], cfg: ExperimentConfig): { vocab: Vocabulary; fixedInit: string | undefined; initHash: string | null } {
  // Pretraining chunks when there are any, else the tasks' training samples.
  const vocabSource: Sequence[] = siteA.pretrain
    ? siteA.pretrain.sequences.filter((s) => s.split === 'pretrain_train' || cfg.trainSplits.includes(s.split))
    : tasks.flatMap((t) => siteA.tasks.get(t)!.sequences.filter((s) => cfg.trainSplits.includes(s.split)));
  const vocab = modelVocabulary(vocabSource, arm.embeddings, arm.reps);
  if (!cfg.init) return { vocab, fixedInit: undefined, initHash: null };
  const ckpt = resolveCheckpoint(cfg.init, 'BEST') ?? resolveCheckpoint(cfg.init);
  if (!ckpt) throw new UserError(`--init ${cfg.init}: no pretraining checkpoint there (give the folder \`train ehr --task pretrain\` named, holding checkpoint.json or a BEST/LATEST pointer)`);
  let meta: ReturnType<typeof readCheckpointMeta>;
  try {
    meta = readCheckpointMeta(ckpt);
  } catch (e) {
    throw new UserError(`--init ${ckpt}: not a readable checkpoint (${(e as Error).message.split('\n')[0]})`);
  }
  if (meta.embeddings !== arm.embeddings) throw new UserError(`--init ${ckpt}: pretrained with ${meta.embeddings} embeddings, this run uses ${arm.embeddings}`);
  return { vocab: new Vocabulary(meta.vocab), fixedInit: ckpt, initHash: meta.weightsSha256 };
}

/** Pretrains the arm's encoder on site A (MLM; Med-BERT also its prolonged-stay head), resuming what a crashed run left; returns the checkpoint folder. */
async function pretrainOnSiteA(c: {
  out: string; arm: Arm; model: ModelChoice; seed: number; vocab: Vocabulary; cfg: ExperimentConfig; siteA: SiteInput; pre: SiteData; log: (m: string) => void;
}): Promise<string> {
  const { arm, model, seed, vocab, cfg, siteA, pre } = c;
  let train = bySplit(pre.sequences, ['pretrain_train'], 'pretraining', pre.dir);
  let shards = pre.shards;
  if (model.cfg.plosHead) {
    if (!siteA.longStay) throw new UserError(`model ${model.name}: its prolonged-stay head learns from site ${siteA.name}'s ${PLOS_TASK} samples, and there are none (run the pipeline with the ${PLOS_TASK} task)`);
    train = withProlongedStay(train, siteA.longStay.sequences);
    shards = [...pre.shards, ...siteA.longStay.shards];
  }
  const dir = checkpointPath(c.out, arm.name, model.name, `seed-${seed}`, 'pretrain');
  const trainCfg = { ...cfg.train, epochs: cfg.pretrainEpochs };
  keepPretrainingIfSame(dir, { vocabHash: vocab.hash(), shardManifestHash: shardSetHash(shards), representationsHash: arm.reps?.hash ?? null, model: model.cfg, train: trainCfg, seed });
  c.log(`[${arm.name} ${model.name} seed ${seed}] pretraining on ${siteA.name}: vocabulary ${vocab.size}`);
  return pretrain({
    embeddings: arm.embeddings, reps: arm.reps, vocab, model: model.cfg, trainCfg, seed, train,
    val: bySplit(pre.sequences, ['pretrain_val'], 'pretraining validation', pre.dir), shards, checkpointDir: dir, resume: true, log: c.log,
  });
}

/** Everything a cell's result depends on (its hash decides whether a stored cell is reused). */
function cellInputs(c: { arm: Arm; model: ModelChoice; seed: number; task: string; cfg: ExperimentConfig; siteA: SiteInput; siteB: SiteInput | null; initHash: string | null }) {
  const { arm, model, seed, task, cfg, siteA, siteB } = c;
  const data = siteA.tasks.get(task)!;
  return {
    // Backends round differently: a cell computed on another one is computed again.
    backend: tf.getBackend(),
    arm: arm.name, embeddings: arm.embeddings, representations: arm.reps?.hash ?? null, model: model.name, modelConfig: model.cfg,
    train: cfg.train, pretrainEpochs: cfg.pretrainEpochs, init: c.initHash, trainSplits: cfg.trainSplits, valSplits: cfg.valSplits, testSplits: cfg.testSplits,
    seed, task, siteA: { task: siteHash(data), pretrain: siteA.pretrain ? siteHash(siteA.pretrain) : null, longStay: model.cfg.plosHead && siteA.longStay ? siteHash(siteA.longStay) : null },
    siteB: siteB ? siteHash(siteB.tasks.get(task)!) : null,
  };
}

/** One cell computed whole: finetuned on site A's training split, evaluated on A's test split and on all of B. */
async function computeCell(c: {
  out: string; arm: Arm; model: ModelChoice; seed: number; task: string; vocab: Vocabulary; init: string | undefined;
  cfg: ExperimentConfig; data: SiteData; siteB: SiteInput | null; log: (m: string) => void;
}): Promise<Record<string, StoredEvaluation>> {
  const { arm, model, seed, task, cfg, data } = c;
  const ftDir = checkpointPath(c.out, arm.name, model.name, `seed-${seed}`, task);
  // A cell is computed whole: what a crashed run left of its finetuning starts over.
  rmSync(ftDir, { recursive: true, force: true });
  const ft = await finetune({
    task, embeddings: arm.embeddings, reps: arm.reps, vocab: c.vocab, model: model.cfg, trainCfg: cfg.train, seed, init: c.init,
    train: bySplit(data.sequences, cfg.trainSplits, `${task} training`, data.dir),
    val: bySplit(data.sequences, cfg.valSplits, `${task} validation`, data.dir),
    shards: data.shards, checkpointDir: ftDir, log: c.log,
  });
  const settings: [string, Sequence[]][] = [['internal', bySplit(data.sequences, cfg.testSplits, `${task} test`, data.dir)]];
  if (c.siteB) settings.push(['external', c.siteB.tasks.get(task)!.sequences]);
  const evals: Record<string, StoredEvaluation> = {};
  for (const [setting, seqs] of settings) {
    const e = evaluate(ft.model, c.vocab, arm.embeddings, arm.reps, seqs, model.cfg, cfg.train.batchSize);
    evals[setting] = { metrics: e.metrics, unknownTokenShare: e.unknownTokenShare, roc: e.roc, pr: e.pr };
    const why = e.metrics.undefinedBecause ? `, undefined: ${e.metrics.undefinedBecause}` : '';
    c.log(`[${arm.name} ${model.name} seed ${seed}] ${task} ${setting}: AUROC ${fmt(e.metrics.auroc)} AUPRC ${fmt(e.metrics.auprc)} (n=${e.metrics.n}${why}, unknown tokens ${(100 * e.unknownTokenShare).toFixed(1)}%)`);
  }
  ft.model.dispose();
  return evals;
}

/** Rows arm x model x setting, each task's cell summarised over the seeds. */
function resultRows(arms: Arm[], models: ModelChoice[], settingNames: readonly ResultRow['setting'][], taskNames: string[], evaluations: Map<string, { seed: number; e: Pick<Evaluation, 'metrics' | 'unknownTokenShare'> }[]>): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const arm of arms) {
    for (const model of models) {
      for (const setting of settingNames) {
        const tasks: Record<string, Cell> = {};
        for (const task of taskNames) tasks[task] = cellOf(evaluations.get(`${arm.name}|${model.name}|${setting}|${task}`)!);
        const cells = Object.values(tasks);
        rows.push({ embeddings: arm.name, model: model.name, setting, tasks, average: { auroc: meanDefined(cells.map((c) => c.auroc)), auprc: meanDefined(cells.map((c) => c.auprc)) } });
      }
    }
  }
  return rows;
}

/** The paper's Table 2 shape: rows embeddings x setting, columns tasks and their average. */
export function formatResults(rows: ResultRow[], tasks: string[]): string {
  const header = ['embeddings', 'model', 'setting', ...tasks, 'average'];
  const block = (metric: 'auroc' | 'auprc') =>
    formatTable(header, rows.map((r) => [
      r.embeddings,
      r.model ?? 'behrt',
      r.setting,
      ...tasks.map((t) => {
        const c = r.tasks[t];
        if (c.undefinedBecause) return `- (${c.undefinedBecause})`;
        const ci = metric === 'auroc' ? ` [${fmt(c.ci95[0])},${fmt(c.ci95[1])}]` : '';
        const spread = c.perSeed.length > 1 ? ` ±${fmt(metric === 'auroc' ? c.aurocSd : c.auprcSd)}` : '';
        return `${fmt(c[metric])}${spread}${ci}`;
      }),
      fmt(r.average[metric]),
    ]));
  return `AUROC (mean over seeds, ± sd, [DeLong 95% CI]; average over the tasks with a value)\n${block('auroc')}\n\nAUPRC (mean over seeds, ± sd)\n${block('auprc')}`;
}
