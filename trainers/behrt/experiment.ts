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
import { tf } from './tf';
import type { EmbeddingKind } from './train';
import type { Curve } from '../metrics/auc';
import { curvePlot, taskBarRows, taskBars, thinCurve } from '../../pipelines/report/charts';
import { writeFigure, type FigureFiles } from '../../pipelines/report/figureFiles';
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
  const setups = new Map<string, { vocab: Vocabulary; fixedInit?: string; initHash: string | null }>();
  for (const arm of o.arms) {
    // The vocabulary: pairs in site A's training persons (pretraining chunks when there are any).
    const vocabSource: Sequence[] = siteA.pretrain
      ? siteA.pretrain.sequences.filter((s) => s.split === 'pretrain_train' || cfg.trainSplits.includes(s.split))
      : o.tasks.flatMap((t) => siteA.tasks.get(t)!.sequences.filter((s) => cfg.trainSplits.includes(s.split)));
    let vocab = modelVocabulary(vocabSource, arm.embeddings, arm.reps);
    let fixedInit: string | undefined;
    let initHash: string | null = null;
    if (cfg.init) {
      const ckpt = resolveCheckpoint(cfg.init, 'BEST') ?? resolveCheckpoint(cfg.init);
      if (!ckpt) throw new UserError(`--init ${cfg.init}: no pretraining checkpoint there (give the folder \`train ehr --task pretrain\` named, holding checkpoint.json or a BEST/LATEST pointer)`);
      let meta: ReturnType<typeof readCheckpointMeta>;
      try {
        meta = readCheckpointMeta(ckpt);
      } catch (e) {
        throw new UserError(`--init ${ckpt}: not a readable checkpoint (${(e as Error).message.split('\n')[0]})`);
      }
      if (meta.embeddings !== arm.embeddings) throw new UserError(`--init ${ckpt}: pretrained with ${meta.embeddings} embeddings, this run uses ${arm.embeddings}`);
      vocab = new Vocabulary(meta.vocab);
      fixedInit = ckpt;
      initHash = meta.weightsSha256;
    }
    setups.set(arm.name, { vocab, fixedInit, initHash });
  }
  // Seeds outermost: a run stopped early holds whole seeds (every arm, model and task of seed 1
  // before any of seed 2), and a rerun with more seeds adds them.
  for (const seed of cfg.seeds) {
    for (const arm of o.arms) {
      const { vocab, fixedInit, initHash } = setups.get(arm.name)!;
      for (const model of models) {
        let init = fixedInit;
        let pretrained = false;
        const pretrainIfNeeded = async () => {
          if (pretrained || cfg.init || cfg.pretrainEpochs <= 0 || !siteA.pretrain) return;
          pretrained = true;
          const pre = siteA.pretrain;
          let train = bySplit(pre.sequences, ['pretrain_train'], 'pretraining', pre.dir);
          let shards = pre.shards;
          if (model.cfg.plosHead) {
            if (!siteA.longStay) throw new UserError(`model ${model.name}: its prolonged-stay head learns from site ${siteA.name}'s ${PLOS_TASK} samples, and there are none (run the pipeline with the ${PLOS_TASK} task)`);
            train = withProlongedStay(train, siteA.longStay.sequences);
            shards = [...pre.shards, ...siteA.longStay.shards];
          }
          const dir = checkpointPath(o.out, arm.name, model.name, `seed-${seed}`, 'pretrain');
          const trainCfg = { ...cfg.train, epochs: cfg.pretrainEpochs };
          keepPretrainingIfSame(dir, { vocabHash: vocab.hash(), shardManifestHash: shardSetHash(shards), representationsHash: arm.reps?.hash ?? null, model: model.cfg, train: trainCfg, seed });
          o.log(`[${arm.name} ${model.name} seed ${seed}] pretraining on ${siteA.name}: vocabulary ${vocab.size}`);
          init = await pretrain({
            embeddings: arm.embeddings, reps: arm.reps, vocab, model: model.cfg, trainCfg, seed, train,
            val: bySplit(pre.sequences, ['pretrain_val'], 'pretraining validation', pre.dir), shards, checkpointDir: dir, resume: true, log: o.log,
          });
        };
        for (const task of o.tasks) {
          index++;
          const data = siteA.tasks.get(task)!;
          const key: CellKey = { arm: arm.name, model: model.name, task, seed };
          const inputs = {
            // Backends round differently: a cell computed on another one is computed again.
            backend: tf.getBackend(),
            arm: arm.name, embeddings: arm.embeddings, representations: arm.reps?.hash ?? null, model: model.name, modelConfig: model.cfg,
            train: cfg.train, pretrainEpochs: cfg.pretrainEpochs, init: initHash, trainSplits: cfg.trainSplits, valSplits: cfg.valSplits, testSplits: cfg.testSplits,
            seed, task, siteA: { task: siteHash(data), pretrain: siteA.pretrain ? siteHash(siteA.pretrain) : null, longStay: model.cfg.plosHead && siteA.longStay ? siteHash(siteA.longStay) : null },
            siteB: siteB ? siteHash(siteB.tasks.get(task)!) : null,
          };
          const inputsHash = `sha256:${sha256(canonicalJson(inputs))}`;
          const file = cellPath(o.out, key);
          let cell = readStoredCell(file, inputsHash);
          const stored = cell !== null;
          if (!cell) {
            await pretrainIfNeeded();
            const ftDir = checkpointPath(o.out, arm.name, model.name, `seed-${seed}`, task);
            // A cell is computed whole: what a crashed run left of its finetuning starts over.
            rmSync(ftDir, { recursive: true, force: true });
            const ft = await finetune({
              task, embeddings: arm.embeddings, reps: arm.reps, vocab, model: model.cfg, trainCfg: cfg.train, seed, init,
              train: bySplit(data.sequences, cfg.trainSplits, `${task} training`, data.dir),
              val: bySplit(data.sequences, cfg.valSplits, `${task} validation`, data.dir),
              shards: data.shards, checkpointDir: ftDir, log: o.log,
            });
            const settings: [string, Sequence[]][] = [['internal', bySplit(data.sequences, cfg.testSplits, `${task} test`, data.dir)]];
            if (siteB) settings.push(['external', siteB.tasks.get(task)!.sequences]);
            const evals: Record<string, StoredEvaluation> = {};
            for (const [setting, seqs] of settings) {
              const e = evaluate(ft.model, vocab, arm.embeddings, arm.reps, seqs, model.cfg, cfg.train.batchSize);
              evals[setting] = { metrics: e.metrics, unknownTokenShare: e.unknownTokenShare, roc: e.roc, pr: e.pr };
              const why = e.metrics.undefinedBecause ? `, undefined: ${e.metrics.undefinedBecause}` : '';
              o.log(`[${arm.name} ${model.name} seed ${seed}] ${task} ${setting}: AUROC ${fmt(e.metrics.auroc)} AUPRC ${fmt(e.metrics.auprc)} (n=${e.metrics.n}${why}, unknown tokens ${(100 * e.unknownTokenShare).toFixed(1)}%)`);
            }
            ft.model.dispose();
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
  const rows: ResultRow[] = [];
  for (const arm of o.arms) {
    for (const model of models) {
      for (const setting of settingNames) {
        const tasks: Record<string, Cell> = {};
        for (const task of o.tasks) tasks[task] = cellOf(evaluations.get(`${arm.name}|${model.name}|${setting}|${task}`)!);
        const cells = Object.values(tasks);
        rows.push({ embeddings: arm.name, model: model.name, setting, tasks, average: { auroc: meanDefined(cells.map((c) => c.auroc)), auprc: meanDefined(cells.map((c) => c.auprc)) } });
      }
    }
  }
  // One ROC and one PR figure per model, task and setting (SVG and PNG, axes titled, legend by arm),
  // and the curves' points, so the report can draw them again.
  const figures: Record<string, CurveFigures> = {};
  mkdirSync(join(o.out, 'curves'), { recursive: true });
  const armNames = o.arms.map((a) => a.name);
  for (const [key, list] of curves) {
    const [model, setting, task] = key.split('|');
    // BEHRT's figures keep their names from before the grid had models.
    const base = join('curves', `${task}-${setting}${model === 'behrt' ? '' : `-${model}`}`);
    const title = `${task}, ${setting}${model === 'behrt' ? '' : `, ${model}`}`;
    const roc = writeFigure(o.out, `${base}-roc`, await curvePlot(list.map((c) => ({ arm: c.arm, ...thinCurve(c.roc) })), { title: `ROC: ${title}`, x: 'false positive rate', y: 'true positive rate', diagonal: true }, armNames));
    const pr = writeFigure(o.out, `${base}-pr`, await curvePlot(list.map((c) => ({ arm: c.arm, ...thinCurve(c.pr) })), { title: `PR: ${title}`, x: 'recall', y: 'precision', diagonal: false }, armNames));
    writeFileSync(join(o.out, `${base}.json`), JSON.stringify(list.map((c) => ({ arm: c.arm, roc: c.roc, pr: c.pr }))));
    figures[model === 'behrt' ? `${setting}|${task}` : key] = { arms: list.map((c) => c.arm), roc: roc.png, pr: pr.png, points: `${base}.json`, files: { roc, pr } };
  }
  // The paper's Figure 3/5 layout per model: tasks on x, one bar per arm, internal and external side by side.
  const bars: Record<string, FigureFiles> = {};
  for (const model of models) {
    const modelRows = rows.filter((r) => r.model === model.name);
    const svg = await taskBars(taskBarRows(modelRows, o.tasks, 'auroc', (r) => r.embeddings), 'AUROC, DeLong 95% CI', armNames, o.tasks, { title: `AUROC per task (${model.name})`, stacked: o.tasks.length * armNames.length > 12 });
    bars[model.name] = writeFigure(o.out, `auroc-bars${model.name === 'behrt' ? '' : `-${model.name}`}`, svg);
  }
  return { rows, curves: figures, bars };
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
