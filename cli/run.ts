// `medrep run`: the local (embedded) pipeline on an OMOP folder, DuckDB file or MEDS dataset.
import { UserError } from '../common/errors';
import { consoleLogger } from '../common/progress';
import { runLocal } from '../runners/local/localRunner';
import { reportAfterRun } from '../report';
import { formatSummary } from '../runners/local/summary';
import { defineCommand } from './command';
import { INPUT_VOCAB_OPTION, OUTPUT_OPTIONS, SHARD_OPTIONS, shardSizes } from './pipelineOptions';
import { TASK_OPTIONS, taskSelection } from './tasks';

export const runCommand = defineCommand({
  name: 'run',
  synopsis: '--omop DIR|FILE.duckdb|--meds DIR [--vocab DIR] --out DIR',
  summary: 'run the local (embedded) pipeline; --meds reads a MEDS dataset (DIR/data/*.parquet, codes such as SNOMED/22298006 resolved through the vocabulary; README "MEDS input")',
  options: {
    omop: { type: 'string', value: 'DIR|FILE.duckdb', help: 'OMOP CDM input: a folder of CSV/Parquet tables or a DuckDB database' },
    meds: { type: 'string', value: 'DIR', help: 'MEDS input instead of --omop' },
    ...INPUT_VOCAB_OPTION,
    ...OUTPUT_OPTIONS,
    ...SHARD_OPTIONS,
    'memory-limit': { type: 'string', value: 'SIZE', help: "DuckDB's cap, e.g. 2GB (default a sixteenth of the machine's memory, 512MiB to 4GiB)" },
    'no-meds': { type: 'bool', help: 'do not write the MEDS copy' },
    ...TASK_OPTIONS,
  },
  async run(o) {
    if ((o.meds === undefined) === (o.omop === undefined)) {
      throw new UserError(`medrep run: ${o.meds === undefined ? '--omop DIR (or --meds DIR) is required' : 'give --omop DIR or --meds DIR, not both'}`);
    }
    const summary = await runLocal({
      ...(o.meds !== undefined ? { medsInput: o.meds } : { omop: o.omop }),
      vocab: o.vocab,
      out: o.out,
      ...shardSizes(o),
      memoryLimit: o.memoryLimit,
      meds: !o.noMeds,
      force: o.force,
      ...taskSelection(o),
      log: consoleLogger,
    });
    process.stdout.write(formatSummary(summary) + '\n');
    await reportAfterRun(summary.out, consoleLogger);
  },
});
