// Options of the commands that generate a synthetic hospital (synth, demo), declared once.

/** How many persons to generate, with the command's default. */
export function personsOption(persons: number) {
  return { persons: { type: 'int', atLeast: 0, default: persons, help: 'persons to generate' } } as const;
}

/** The generator's seed: the same seed gives the same files. */
export const GENERATOR_SEED_OPTION = {
  seed: { type: 'int', atLeast: 0, default: 42, help: "the generator's seed: the same seed gives the same files" },
} as const;
