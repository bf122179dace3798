// `medrep experiment external`: train at site A, evaluate at A and B over arms x models x tasks x seeds.
import { experimentExternal } from '../experiments/externalValidation';
import { ARM_NAMES, parseArms } from '../trainers/behrt/arms';
import { EHR_MODELS, parseEhrModels } from '../trainers/behrt/config';
import { PAPER_TASKS } from '../trainers/behrt/paperTables';
import { defineCommand } from './command';
import { BACKEND_OPTION, SPLIT_OPTIONS } from './trainerOptions';

export const experimentCommand = defineCommand({
  name: 'experiment external',
  synopsis: `[--omop-a DIR --omop-b DIR] [--out DIR] [--arms ${ARM_NAMES.join(',')}] [--models ${EHR_MODELS.join(',')}] [--tasks ${PAPER_TASKS.join(',')}] [--seeds 1,2,3]`,
  summary: 'train at site A, evaluate at A and B over arms x models x tasks x seeds (resumes finished cells)',
  options: {
    out: { type: 'string', value: 'DIR', default: 'experiment-external', help: 'output folder' },
    'omop-a': { type: 'string', value: 'DIR', help: 'OMOP input of site A (default: a synthetic site A)' },
    'omop-b': { type: 'string', value: 'DIR', help: 'OMOP input of site B (with --omop-a)' },
    vocab: { type: 'string', value: 'DIR', help: 'OMOP vocabulary folder' },
    'persons-a': { type: 'number', help: 'persons of the synthetic site A' },
    'persons-b': { type: 'number', help: 'persons of the synthetic site B' },
    seed: { type: 'number', help: "the synthetic sites' seed" },
    tasks: { type: 'list', help: 'tasks (default the paper\'s)' },
    seeds: { type: 'list', items: 'int', help: 'training seeds' },
    epochs: { type: 'number', help: 'finetuning epochs of the EHR models' },
    'text-epochs': { type: 'number', help: 'text MLM epochs at most' },
    'gcl-epochs': { type: 'number', help: 'graph contrastive epochs at most' },
    ...BACKEND_OPTION,
    force: { type: 'bool', help: "replace a previous experiment's output" },
    method: { type: 'enum', values: ['lexical', 'paper'], help: 'representation method of the medrep and text-only arms (default lexical)' },
    'with-paper': { type: 'bool', help: "also the paper's method (MLM + GRACE, with and without KD) as two more arms" },
    'with-medtok': { type: 'bool', help: 'also the MedTok baseline as one more arm' },
    ...SPLIT_OPTIONS,
    arms: { type: 'list', value: ARM_NAMES.join(','), help: 'arms of the grid' },
    models: { type: 'list', value: EHR_MODELS.join(','), help: 'EHR models of the grid' },
    'medtok-representations': { type: 'string', value: 'FILE', help: "the medtok arm's table (default trained here)" },
  },
  async run(o) {
    const r = await experimentExternal({
      out: o.out, omopA: o.omopA, omopB: o.omopB, vocab: o.vocab, personsA: o.personsA, personsB: o.personsB, seed: o.seed,
      tasks: o.tasks, seeds: o.seeds, epochs: o.epochs, textEpochs: o.textEpochs, gclEpochs: o.gclEpochs, backend: o.backend,
      force: o.force, method: o.method, withPaper: o.withPaper, withMedtok: o.withMedtok,
      trainSplits: o.trainSplits, valSplits: o.valSplits, testSplits: o.testSplits,
      arms: o.arms && parseArms(o.arms), models: o.models && parseEhrModels(o.models), medtokRepresentations: o.medtokRepresentations,
    });
    process.stdout.write(r.table + '\n' + `results: ${r.resultsFile}\n`);
  },
});
