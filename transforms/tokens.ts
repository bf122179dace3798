// Token conventions shared by the pipeline and the trainers. Shards carry OMOP concept ids; a
// model's vocabulary maps them to its own indices, with these special indices first.

export const SPECIAL_TOKENS = { PAD: 0, MASK: 1, UNK: 2, CLS: 3, SEP: 4 } as const;
/** Gender concepts get the model indices right after the special tokens. */
export const GENDER_CONCEPTS = [8507, 8532, 0] as const; // male, female, unknown
export const FIRST_CONCEPT_INDEX = 5 + GENDER_CONCEPTS.length;

/** MedRep's domain ids; 0 marks special tokens, visits and deaths (never a token of their own). */
export const DOMAIN = { special: 0, condition: 1, drug: 2, measurement: 3, procedure: 4 } as const;
export const TOKEN_DOMAINS = new Set<number>([1, 2, 3, 4]);

export const MAX_AGE = 119;
