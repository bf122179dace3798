// Options of the commands that run the pipeline (run, stream) or read an OMOP input (run,
// produce), each declared once and spread into those commands' tables.
import type { Options } from './options';

/** The output folder, and whether an earlier complete output there may be replaced. */
export const OUTPUT_OPTIONS = {
  out: { type: 'string', value: 'DIR', required: true, help: 'output folder (empty, or one medrep wrote)' },
  force: { type: 'bool', help: 'replace an earlier complete output in --out' },
} as const;

/** The window length of the trajectories and the rows of each shard. */
export const SHARD_OPTIONS = {
  'max-events': { type: 'number', help: 'window/chunk length in events (default 2048)' },
  'events-per-shard': { type: 'number', above: 0, help: 'rows per events shard' },
  'sequences-per-shard': { type: 'number', above: 0, help: 'rows per pretrain/samples shard' },
} as const;

export function shardSizes(o: Options<typeof SHARD_OPTIONS>): { maxEvents?: number; eventsPerShard?: number; sequencesPerShard?: number } {
  return { maxEvents: o.maxEvents, eventsPerShard: o.eventsPerShard, sequencesPerShard: o.sequencesPerShard };
}

/** The vocabulary of an OMOP input read from another folder than the input's own. */
export const INPUT_VOCAB_OPTION = {
  vocab: { type: 'string', value: 'DIR', help: 'OMOP vocabulary folder (default: the one in the input)' },
} as const;
