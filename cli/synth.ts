// `medrep synth`: a synthetic OMOP CDM folder, vocabulary included.
import { UserError } from '../common/errors';
import { personsForRows, runSynth } from '../synth';
import { defineCommand } from './command';
import { GENERATOR_SEED_OPTION, personsOption } from './generatorOptions';

export const synthCommand = defineCommand({
  name: 'synth',
  synopsis: '--persons N|--rows N --seed S --out DIR [--format csv|parquet] [--site A|B] [--ids sequential|hashed] [--inject-errors]',
  summary: 'write a synthetic OMOP CDM folder (vocabulary included)',
  options: {
    ...personsOption(1000),
    rows: { type: 'int', atLeast: 0, help: 'about this many clinical rows instead of --persons' },
    ...GENERATOR_SEED_OPTION,
    out: { type: 'string', value: 'DIR', required: true, help: 'output folder (empty, or one synth wrote)' },
    format: { type: 'enum', values: ['csv', 'parquet'], default: 'csv', help: 'table file format' },
    site: { type: 'enum', values: ['A', 'B'], default: 'A', help: "the hospital: B shares A's clinical process with other local concept ids" },
    ids: { type: 'enum', values: ['sequential', 'hashed'], default: 'sequential', help: 'hashed: person, visit and row ids are signed 64-bit hashes, as real ETLs write them' },
    'inject-errors': { type: 'bool', help: 'add invalid rows (listed in synth_meta.json) to test the rejects' },
    'hcup-csv': { type: 'string', value: 'FILE', help: 'HCUP CCS single-level CSV for the ICD-9 phenotype codes' },
  },
  async run(o) {
    try {
      await runSynth({
        persons: o.rows !== undefined ? personsForRows(o.rows) : o.persons, seed: o.seed, out: o.out, format: o.format, site: o.site,
        ids: o.ids, injectErrors: o.injectErrors, hcupCsv: o.hcupCsv,
      });
    } catch (e) {
      // The generator's own refusals (e.g. a folder of another run) are user errors: one line, no stack.
      if (e instanceof Error && !(e instanceof UserError) && /^synth: /.test(e.message)) throw new UserError(e.message);
      throw e;
    }
  },
});
