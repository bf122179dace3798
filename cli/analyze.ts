// `medrep analyze attention`: the concepts finetuned models attend to from [CLS] (trainers/behrt/analyzeAttention.ts).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../common/errors';
import { withOutputDir } from '../common/outputDir';
import { analyzeAttention } from '../trainers/behrt/analyzeAttention';
import { defineCommand } from './command';
import { BACKEND_OPTION, SHARDS_OPTION } from './trainerOptions';

export const analyzeCommand = defineCommand({
  name: 'analyze attention',
  synopsis: '--model DIR[,DIR] --shards OUT --task T --vocab DIR --out DIR [--endpoint URL]',
  summary: 'concepts finetuned models attend to from [CLS] (CSV; with an LLM, their relevance)',
  options: {
    model: { type: 'list', value: 'DIR[,DIR]', required: true, help: '`train ehr` / `experiment external` output folders (or checkpoint folders)' },
    ...SHARDS_OPTION,
    task: { type: 'string', value: 'T', required: true, help: 'the finetuned task' },
    vocab: { type: 'string', value: 'DIR', required: true, help: 'OMOP vocabulary folder (concept names)' },
    out: { type: 'string', value: 'DIR', required: true, help: 'output folder' },
    representations: { type: 'list', value: 'FILE[,FILE]', help: 'representation tables of frozen arms (besides those in the model folders)' },
    splits: { type: 'list', help: 'splits whose samples are read (default all)' },
    'per-person': { type: 'int', above: 0, help: 'top concepts per person (default 100)' },
    top: { type: 'int', above: 0, help: 'concepts kept per arm (default 100)' },
    endpoint: { type: 'string', value: 'URL', help: 'an OpenAI-compatible chat endpoint that rates relevance (API key from MEDREP_ENDPOINT_API_KEY)' },
    'endpoint-model': { type: 'string', value: 'NAME', help: "the endpoint's model" },
    cache: { type: 'string', value: 'FILE', help: 'relevance cache (default OUT/relevance-cache.jsonl)' },
    ...BACKEND_OPTION,
  },
  async run(o) {
    const out = resolve(o.out);
    if (!existsSync(o.vocab)) throw new UserError(`medrep analyze attention: --vocab ${o.vocab} does not exist`);
    const r = await withOutputDir(out, { command: 'analyze attention' }, () => analyzeAttention({
      models: o.model, shards: o.shards, task: o.task, vocab: o.vocab, out, representations: o.representations, splits: o.splits,
      perPerson: o.perPerson, top: o.top, endpoint: o.endpoint, endpointModel: o.endpointModel,
      endpointApiKey: process.env.MEDREP_ENDPOINT_API_KEY, cacheFile: o.cache, backend: o.backend,
    }));
    process.stdout.write(r.summary + '\n');
  },
});
