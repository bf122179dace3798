// `medrep experiment external`: the paper's external validation end to end. Two hospitals
// (synthetic by default: the generator's site A and site B, same clinical process, related but
// different concept ids; or two real OMOP folders), the pipeline on each, MedRep and text-only
// representations from site A's vocabulary and deciles, then BEHRT trained at A and evaluated on
// A's test split (internal) and on all of B (external), vanilla vs text-only vs MedRep.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../common/errors';
import { runLocal } from '../runners/local/localRunner';
import { withOutputDir } from '../common/outputDir';
import { Logger, consoleLogger } from '../common/progress';
import { generateSynthetic } from '../synth';
import { trainRepresentations, MethodName } from '../trainers/representations/trainRepresentations';
import { runExternalExperiment, ExternalExperimentResult } from '../trainers/behrt/external';
import { BackendPreference } from '../trainers/backend';
import { reportAfterRun } from '../report';
import type { ArmName } from '../trainers/behrt/arms';
import type { EhrModelName } from '../trainers/behrt/config';
import { PAPER_TASKS } from '../trainers/behrt/paperTables';
import { PLOS_TASK } from '../trainers/behrt/prolongedStay';

export interface ExternalOptions {
  out: string;
  omopA?: string;
  omopB?: string;
  vocab?: string;
  personsA?: number;
  personsB?: number;
  seed?: number;
  tasks?: string[];
  seeds?: number[];
  /** Finetuning epochs of BEHRT. */
  epochs?: number;
  textEpochs?: number;
  gclEpochs?: number;
  backend?: BackendPreference;
  /** Representation method of the MedRep and text-only arms (default: the shipped default). */
  method?: MethodName;
  /** Also the paper's method (MLM + GRACE with KD, and without KD) as two more arms. */
  withPaper?: boolean;
  /** Also the MedTok baseline (trainers/representations/medtok.ts) as one more arm. */
  withMedtok?: boolean;
  /** Splits of site A for training, model selection and the internal test (see trainers/behrt/external.ts). */
  trainSplits?: string[];
  valSplits?: string[];
  testSplits?: string[];
  /** Grid: arms (trainers/behrt/arms.ts), EHR models, and a MedTok table for the medtok arm. */
  arms?: ArmName[];
  models?: EhrModelName[];
  medtokRepresentations?: string;
  /** Replace a previous experiment's output in `out`. */
  force?: boolean;
  log?: Logger;
}

export async function experimentExternal(o: ExternalOptions): Promise<ExternalExperimentResult> {
  const out = path.resolve(o.out);
  return withOutputDir(out, { command: 'experiment external', force: o.force, log: o.log }, () => experimentInto(out, o));
}

async function experimentInto(out: string, o: ExternalOptions): Promise<ExternalExperimentResult> {
  const log = o.log ?? consoleLogger;
  const tasks = o.tasks ?? PAPER_TASKS;
  // Med-BERT's prolonged-stay head learns from site A's long_stay samples.
  const pipelineTasks = o.models?.includes('med-bert') && !tasks.includes(PLOS_TASK) ? [...tasks, PLOS_TASK] : tasks;
  let omopA = o.omopA;
  let omopB = o.omopB;
  if (!omopA !== !omopB) throw new UserError('experiment external: give both --omop-a and --omop-b, or neither (synthetic sites)');
  if (!omopA || !omopB) {
    const seed = o.seed ?? 1;
    omopA = path.join(out, 'omop-a');
    omopB = path.join(out, 'omop-b');
    for (const [dir, site, persons, s] of [[omopA, 'A', o.personsA ?? 1500, seed], [omopB, 'B', o.personsB ?? 800, seed + 1]] as const) {
      fs.rmSync(dir, { recursive: true, force: true });
      log.info(`experiment: synthetic site ${site}, ${persons} persons, seed ${s} -> ${dir}`);
      await generateSynthetic({ persons, seed: s, out: dir, format: 'parquet', site });
    }
  }
  const siteA = path.join(out, 'site-a');
  const siteB = path.join(out, 'site-b');
  for (const [omop, dir] of [[omopA, siteA], [omopB, siteB]]) {
    log.info(`experiment: pipeline ${omop} -> ${dir}`);
    // The experiment's own folders: a rerun replaces them.
    await runLocal({ omop, vocab: o.vocab, out: dir, tasks: pipelineTasks, log, force: true });
  }
  const vocab = o.vocab ?? omopA;
  const train = async (dir: string, method: MethodName | undefined) => {
    log.info(`experiment: representations (${method ?? 'default method'}) from ${vocab} with site A's deciles -> ${dir}`);
    return trainRepresentations({
      vocab,
      out: dir,
      method,
      deciles: path.join(siteA, 'artifacts/deciles.json'),
      backend: o.backend,
      // Text MLM until its validation loss stops improving unless --text-epochs caps it (see DEFAULT_MLM).
      mlm: o.textEpochs !== undefined ? { maxEpochs: o.textEpochs } : {},
      gcl: { maxEpochs: o.gclEpochs ?? 8 },
      alsoNoKd: true,
      log: (l) => log.info(l),
    });
  };
  const repr = path.join(out, 'representations');
  const main = await train(repr, o.method);
  const paper = o.withPaper ? await train(path.join(out, 'representations-paper'), 'paper') : null;
  const extraArms = paper ? [
    { name: 'no-lwf (paper)', embeddings: 'medrep' as const, representations: paper.medrepNoKd!.path },
    { name: 'medrep (paper)', embeddings: 'medrep' as const, representations: paper.medrep.path },
  ] : [];
  // The medtok arm's table: the one given, else trained here when the arm is asked for.
  const wantMedtok = !o.medtokRepresentations && (o.withMedtok || o.arms?.includes('medtok'));
  const medtokRepresentations = wantMedtok ? (await train(path.join(out, 'representations-medtok'), 'medtok')).medrep.path : o.medtokRepresentations;
  const result = await runExternalExperiment({
    siteA,
    siteB,
    vocab,
    representations: path.join(repr, 'medrep.parquet'),
    textRepresentations: path.join(repr, 'text.parquet'),
    noKdRepresentations: main.medrepNoKd?.path,
    medtokRepresentations,
    arms: o.arms,
    models: o.models,
    extraArms,
    out,
    tasks,
    seeds: o.seeds,
    train: o.epochs !== undefined ? { epochs: o.epochs } : undefined,
    backend: o.backend,
    trainSplits: o.trainSplits,
    valSplits: o.valSplits,
    testSplits: o.testSplits,
    log: (l) => log.info(l),
  });
  await reportAfterRun(out, log);
  return result;
}
