// Train-on-one-site, evaluate-here-and-elsewhere: for each embedding arm (vanilla, text-only,
// MedRep) and seed, pretrain on site A, finetune each task on A, evaluate on A's test split
// (internal) and, when given, on all of site B (external), with no further training.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BehrtConfig, TrainConfig } from './config';
import type { Sequence } from './data';
import { readCheckpointMeta, resolveCheckpoint } from './checkpoint';
import { Vocabulary } from './vocab';
import { evaluate, finetune, modelVocabulary, pretrain, checkpointPath, type EvalMetrics, type Evaluation } from './evaluate';
import type { Representations } from './representations';
import { bySplit, type SiteData } from './site';
import type { EmbeddingKind } from './train';
import type { Curve } from '../metrics/auc';
import { plotCurves, CURVE_COLORS } from '../metrics/png';
import { fmt, formatTable } from '../metrics/table';
import { UserError } from '../../pipelines/errors';

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

export interface ResultRow {
  embeddings: string;
  setting: 'internal' | 'external';
  tasks: Record<string, Cell>;
  average: { auroc: number; auprc: number };
}

export interface SiteInput {
  name: string;
  pretrain: SiteData | null;
  tasks: Map<string, SiteData>;
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: number[]) => (v.length < 2 ? 0 : Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1)));

function cellOf(runs: { seed: number; e: Evaluation }[]): Cell {
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

export async function runArms(o: {
  arms: Arm[];
  siteA: SiteInput;
  siteB: SiteInput | null;
  tasks: string[];
  cfg: ExperimentConfig;
  out: string;
  log: (m: string) => void;
}): Promise<{ rows: ResultRow[]; curves: Record<string, { arms: string[]; roc: string; pr: string; points: string }> }> {
  const { cfg, siteA, siteB } = o;
  const rows: ResultRow[] = [];
  const curves = new Map<string, { arm: string; roc: Curve; pr: Curve }[]>();
  for (const arm of o.arms) {
    const results = new Map<string, { seed: number; e: Evaluation }[]>();
    for (const seed of cfg.seeds) {
      // The vocabulary: pairs in site A's training persons (pretraining chunks when there are any).
      const vocabSource: Sequence[] = siteA.pretrain
        ? siteA.pretrain.sequences.filter((s) => s.split === 'pretrain_train' || cfg.trainSplits.includes(s.split))
        : o.tasks.flatMap((t) => siteA.tasks.get(t)!.sequences.filter((s) => cfg.trainSplits.includes(s.split)));
      let vocab = modelVocabulary(vocabSource, arm.embeddings, arm.reps);
      let init: string | undefined;
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
        init = ckpt;
      } else if (cfg.pretrainEpochs > 0 && siteA.pretrain) {
        const pre = siteA.pretrain;
        o.log(`[${arm.name} seed ${seed}] pretraining on ${siteA.name}: vocabulary ${vocab.size}`);
        init = await pretrain({
          embeddings: arm.embeddings, reps: arm.reps, vocab, model: cfg.model, trainCfg: { ...cfg.train, epochs: cfg.pretrainEpochs }, seed,
          train: bySplit(pre.sequences, ['pretrain_train'], 'pretraining', pre.dir), val: bySplit(pre.sequences, ['pretrain_val'], 'pretraining validation', pre.dir),
          shards: pre.shards, checkpointDir: checkpointPath(o.out, arm.name, `seed-${seed}`, 'pretrain'), log: o.log,
        });
      }
      for (const task of o.tasks) {
        const data = siteA.tasks.get(task)!;
        const ft = await finetune({
          task, embeddings: arm.embeddings, reps: arm.reps, vocab, model: cfg.model, trainCfg: cfg.train, seed, init,
          train: bySplit(data.sequences, cfg.trainSplits, `${task} training`, data.dir),
          val: bySplit(data.sequences, cfg.valSplits, `${task} validation`, data.dir),
          shards: data.shards, checkpointDir: checkpointPath(o.out, arm.name, `seed-${seed}`, task), log: o.log,
        });
        const settings: [string, Sequence[]][] = [['internal', bySplit(data.sequences, cfg.testSplits, `${task} test`, data.dir)]];
        if (siteB) settings.push(['external', siteB.tasks.get(task)!.sequences]);
        for (const [setting, seqs] of settings) {
          const e = evaluate(ft.model, vocab, arm.embeddings, arm.reps, seqs, cfg.model, cfg.train.batchSize);
          const key = `${setting}|${task}`;
          if (!results.has(key)) results.set(key, []);
          results.get(key)!.push({ seed, e });
          if (seed === cfg.seeds[0]) {
            if (!curves.has(key)) curves.set(key, []);
            curves.get(key)!.push({ arm: arm.name, roc: e.roc, pr: e.pr });
          }
          const why = e.metrics.undefinedBecause ? `, undefined: ${e.metrics.undefinedBecause}` : '';
          o.log(`[${arm.name} seed ${seed}] ${task} ${setting}: AUROC ${fmt(e.metrics.auroc)} AUPRC ${fmt(e.metrics.auprc)} (n=${e.metrics.n}${why}, unknown tokens ${(100 * e.unknownTokenShare).toFixed(1)}%)`);
        }
        ft.model.dispose();
      }
    }
    for (const setting of siteB ? (['internal', 'external'] as const) : (['internal'] as const)) {
      const tasks: Record<string, Cell> = {};
      for (const task of o.tasks) tasks[task] = cellOf(results.get(`${setting}|${task}`)!);
      const cells = Object.values(tasks);
      rows.push({ embeddings: arm.name, setting, tasks, average: { auroc: meanDefined(cells.map((c) => c.auroc)), auprc: meanDefined(cells.map((c) => c.auprc)) } });
    }
  }
  // One ROC and one PR figure per task and setting; curve k has color CURVE_COLORS[k] and is arm arms[k].
  // The curves' points too, so the report can draw them with axes and a legend.
  const figures: Record<string, { arms: string[]; roc: string; pr: string; points: string }> = {};
  mkdirSync(join(o.out, 'curves'), { recursive: true });
  for (const [key, list] of curves) {
    const [setting, task] = key.split('|');
    const base = join('curves', `${task}-${setting}`);
    writeFileSync(join(o.out, `${base}-roc.png`), plotCurves(list.map((c) => c.roc), { diagonal: true }));
    writeFileSync(join(o.out, `${base}-pr.png`), plotCurves(list.map((c) => c.pr)));
    writeFileSync(join(o.out, `${base}.json`), JSON.stringify(list.map((c) => ({ arm: c.arm, roc: c.roc, pr: c.pr }))));
    figures[key] = { arms: list.map((c, k) => `${c.arm} rgb(${CURVE_COLORS[k % CURVE_COLORS.length].join(',')})`), roc: `${base}-roc.png`, pr: `${base}-pr.png`, points: `${base}.json` };
  }
  return { rows, curves: figures };
}

/** The paper's Table 2 shape: rows embeddings x setting, columns tasks and their average. */
export function formatResults(rows: ResultRow[], tasks: string[]): string {
  const header = ['embeddings', 'setting', ...tasks, 'average'];
  const block = (metric: 'auroc' | 'auprc') =>
    formatTable(header, rows.map((r) => [
      r.embeddings,
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
