// `medrep import-representations`: the published MedRep release as a representation table.
import { importRepresentations } from '../trainers/representations/importRepresentations';
import { defineCommand } from './command';

export const importRepresentationsCommand = defineCommand({
  name: 'import-representations',
  synopsis: '--npy FILE --index CSV --out FILE.parquet',
  summary: 'the published MedRep release into the same layout',
  options: {
    npy: { type: 'string', value: 'FILE', required: true, help: 'the release matrix (.npy, float32 rows)' },
    index: { type: 'string', value: 'CSV', required: true, help: 'the concept id (and decile) of each matrix row' },
    out: { type: 'string', value: 'FILE.parquet', required: true, help: 'the representation table to write' },
    force: { type: 'bool', help: 'replace an earlier representation table there' },
  },
  async run(o) {
    await importRepresentations({ npy: o.npy, index: o.index, out: o.out, force: o.force, log: (l) => process.stderr.write(l + '\n') });
  },
});
