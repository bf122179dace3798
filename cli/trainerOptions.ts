// Options several training commands share, each declared once.
import { BACKEND_PREFERENCES } from '../trainers/backend';

/** Default: the selector's order (tensorflow-gpu > tensorflow > wasm > cpu). */
export const BACKEND_OPTION = {
  backend: { type: 'enum', values: BACKEND_PREFERENCES, help: 'tfjs backend (default the first available, in this order)' },
} as const;

/** The splits a model trains on, is selected on and is tested on. */
export const SPLIT_OPTIONS = {
  'train-splits': { type: 'list', help: 'splits to train on' },
  'val-splits': { type: 'list', help: 'splits for model selection' },
  'test-splits': { type: 'list', help: 'splits to test on' },
} as const;

/** The pipeline output a model trains on (or, for an analysis, was trained on). */
export const SHARDS_OPTION = {
  shards: { type: 'string', value: 'OUT', required: true, help: 'the pipeline output folder the models train (or were trained) on' },
} as const;
