// `medrep report OUT`: OUT/report.html about a run or an experiment.
import { writeReport } from '../report';
import { defineCommand } from './command';

export const reportCommand = defineCommand({
  name: 'report',
  synopsis: 'OUT',
  summary: 'OUT/report.html: one self-contained page about a run or an experiment (also written at the end of run, demo, stream and experiment)',
  options: {},
  positionals: { name: 'OUT', min: 1, max: 1 },
  async run(_o, [out]) {
    process.stdout.write(`${await writeReport(out)}\n`);
  },
});
