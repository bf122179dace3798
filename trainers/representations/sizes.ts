// Named sizes of the representation trainers, as trainers/behrt/config.ts names BEHRT's: the
// defaults train on two CPU cores in minutes, a size is one flag away (`--text-size`,
// `--graph-size`), and a single flag (`--hidden`, `--seeds-per-batch`) still overrides its value.
import { DEFAULT_GRACE, type GraceOptions } from '../graph/grace';
import { PAPER_TEXT_ENCODER, SMALL_TEXT_ENCODER, type TextEncoderConfig } from '../text/encoder';

/** small: the default; paper: the MedRep paper's text encoder (hidden 768, 6 layers, 12 heads). */
export const TEXT_ENCODER_SIZES = { small: SMALL_TEXT_ENCODER, paper: PAPER_TEXT_ENCODER } as const satisfies Record<string, TextEncoderConfig>;
export type TextEncoderSize = keyof typeof TEXT_ENCODER_SIZES;
export const TEXT_ENCODER_SIZE_NAMES = Object.keys(TEXT_ENCODER_SIZES) as readonly TextEncoderSize[];

/** What a GRACE size sets: how large each sampled mini-batch is and how much of it the loss covers. */
export type GraceSize = Pick<GraceOptions, 'seedsPerBatch' | 'fanouts' | 'maxLossNodes'>;

/**
 * full: the default (1,024 seed nodes per batch, neighbours sampled 30/20/10 over three hops, the
 * contrastive loss over up to 4,096 of them); small: a quarter of the seeds, the two hops the
 * 2-layer GCN sees (10/5) and a loss over up to 1,024 nodes, for a quick run on a large vocabulary
 * (the loss is quadratic in the nodes it covers).
 */
export const GRACE_SIZES = {
  full: { seedsPerBatch: DEFAULT_GRACE.seedsPerBatch, fanouts: DEFAULT_GRACE.fanouts, maxLossNodes: DEFAULT_GRACE.maxLossNodes },
  small: { seedsPerBatch: 256, fanouts: [10, 5], maxLossNodes: 1024 },
} as const satisfies Record<string, GraceSize>;
export type GraceSizeName = keyof typeof GRACE_SIZES;
export const GRACE_SIZE_NAMES = Object.keys(GRACE_SIZES) as readonly GraceSizeName[];

/** The text encoder of a size (default small) with single values overridden. */
export function textEncoderConfig(size: TextEncoderSize = 'small', overrides: Partial<TextEncoderConfig> = {}): TextEncoderConfig {
  return { ...TEXT_ENCODER_SIZES[size], ...overrides };
}

/** GRACE's options of a size (default full) under the given ones. */
export function graceOptions(size: GraceSizeName = 'full', overrides: Partial<GraceOptions> = {}): GraceOptions {
  const s = GRACE_SIZES[size];
  return { ...DEFAULT_GRACE, seedsPerBatch: s.seedsPerBatch, fanouts: [...s.fanouts], maxLossNodes: s.maxLossNodes, ...overrides };
}
