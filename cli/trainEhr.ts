// `medrep train ehr`: BEHRT / CDM-BERT / Med-BERT pretraining, finetuning + evaluation, continuous retraining.
import { UserError } from '../common/errors';
import { EHR_MODELS, parseEhrModels } from '../trainers/behrt/config';
import { runTrainEhr } from '../trainers/behrt/trainEhr';
import { defineCommand } from './command';
import { BACKEND_OPTION, SHARDS_OPTION, SPLIT_OPTIONS } from './trainerOptions';

export const trainEhrCommand = defineCommand({
  name: 'train ehr',
  synopsis: '--shards OUT --task T|pretrain [--model behrt|cdm-bert|med-bert] [--embeddings vanilla|medrep|text --representations FILE] [--follow] [--paper-size]',
  summary: 'BEHRT / CDM-BERT / Med-BERT pretraining / finetuning + evaluation / continuous retraining',
  options: {
    ...SHARDS_OPTION,
    task: { type: 'string', value: 'TASK|pretrain', required: true, help: 'the task to finetune and evaluate, or pretrain' },
    model: { type: 'string', value: EHR_MODELS.join('|'), help: 'the EHR model (default behrt)' },
    embeddings: { type: 'enum', values: ['vanilla', 'medrep', 'text'], default: 'vanilla', help: 'learned (vanilla) or frozen representation-table embeddings' },
    representations: { type: 'string', value: 'FILE', help: 'the representation table of --embeddings medrep|text' },
    vocab: { type: 'string', value: 'DIR', help: "OMOP vocabulary folder: a token without a row of its own takes its Maps to target's, an ancestor's or a sibling decile's" },
    out: { type: 'string', value: 'DIR', help: 'output folder (default OUT/models/<task>-<embeddings>[-<model>])' },
    seeds: { type: 'list', items: 'int', help: 'training seeds' },
    epochs: { type: 'number', help: 'finetuning (or pretraining) epochs' },
    'pretrain-epochs': { type: 'number', help: 'pretraining epochs before finetuning (default 0)' },
    init: { type: 'string', value: 'PRETRAINED_CKPT_DIR', help: 'finetune from this pretraining checkpoint' },
    'batch-size': { type: 'number', help: 'sequences per batch' },
    lr: { type: 'number', help: 'learning rate' },
    patience: { type: 'number', help: 'epochs without improvement before stopping' },
    'paper-size': { type: 'bool', help: "the paper's model size" },
    hidden: { type: 'number', help: 'hidden size' },
    layers: { type: 'number', help: 'transformer layers' },
    heads: { type: 'number', help: 'attention heads' },
    intermediate: { type: 'number', help: 'feed-forward size' },
    'max-len': { type: 'number', help: 'tokens per sequence at most' },
    'domain-embedding': { type: 'bool', help: 'add a domain embedding to each token' },
    ...SPLIT_OPTIONS,
    ...BACKEND_OPTION,
    follow: { type: 'bool', help: "retrain whenever the shards' manifest changes (stop with SIGINT/SIGTERM)" },
    'poll-ms': { type: 'number', help: 'with --follow: milliseconds between manifest checks' },
    'max-versions': { type: 'number', help: 'with --follow: stop after this many versions' },
  },
  async run(o) {
    const named = o.model === undefined ? undefined : parseEhrModels(o.model.split(',').map((m) => m.trim()).filter(Boolean), '--model');
    if (named && named.length > 1) throw new UserError(`--model takes one model (the experiment's --models takes several), got '${o.model}'`);
    await runTrainEhr({ ...o, model: named?.[0] });
  },
});
