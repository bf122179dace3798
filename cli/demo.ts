// `medrep demo`: a small synthetic hospital, the pipeline on it, and a tiny external validation.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { withOutputDir } from '../common/outputDir';
import { consoleLogger } from '../common/progress';
import { experimentExternal } from '../experiments/externalValidation';
import { runLocal } from '../runners/local/localRunner';
import { reportAfterRun } from '../report';
import { formatSummary } from '../runners/local/summary';
import { generateSynthetic } from '../synth';
import { defineCommand } from './command';
import { GENERATOR_SEED_OPTION, personsOption } from './generatorOptions';

/** The demo's closing external validation: tiny models and few epochs (about a minute on two cores); numbers are illustrative. */
async function demoExperiment(out: string): Promise<void> {
  consoleLogger.info('demo: small external-validation experiment (site A -> site B)');
  const r = await experimentExternal({
    out: path.join(out, 'experiment'), personsA: 1000, personsB: 400, tasks: ['mortality', 'long_stay'], seeds: [1],
    epochs: 3, textEpochs: 2, gclEpochs: 3, valSplits: ['pretrain_val'], testSplits: ['finetune_val', 'finetune_test'],
    force: true, log: { info: () => undefined, warn: consoleLogger.warn },
  });
  process.stdout.write(`\nexternal validation (train at synthetic site A, test at A and at site B; tiny models, 1 seed):\n${r.table}\n`);
  const report = path.join(out, 'experiment', 'report.html');
  if (fs.existsSync(report)) consoleLogger.info(`report: ${report}`);
}

export const demoCommand = defineCommand({
  name: 'demo',
  synopsis: '[--out DIR] [--persons N]',
  summary: 'generate a small synthetic hospital and run the pipeline on it',
  options: {
    ...personsOption(500),
    ...GENERATOR_SEED_OPTION,
    out: { type: 'string', value: 'DIR', help: 'the demo folder (default $TMPDIR/medrep-demo); holds only what the demo writes' },
    'no-experiment': { type: 'bool', help: 'skip the closing external-validation experiment' },
  },
  async run(o) {
    const out = path.resolve(o.out ?? path.join(os.tmpdir(), 'medrep-demo'));
    // The demo's folder holds only what the demo writes (omop/, run/, experiment/), regenerated each time.
    await withOutputDir(out, { command: 'demo', log: consoleLogger }, async () => {
      const omop = path.join(out, 'omop');
      fs.rmSync(omop, { recursive: true, force: true });
      consoleLogger.info(`demo: generating a synthetic hospital of ${o.persons} persons in ${omop}`);
      await generateSynthetic({ persons: o.persons, seed: o.seed, out: omop, format: 'parquet', site: 'A' });
      const summary = await runLocal({ omop, out: path.join(out, 'run'), log: consoleLogger, force: true });
      process.stdout.write(formatSummary(summary) + '\n');
      await reportAfterRun(summary.out, consoleLogger);
      if (!o.noExperiment) await demoExperiment(out);
    });
  },
});
