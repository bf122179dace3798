// The embedding arms of the MedRep paper's Tables 2 and 3, by the paper's names: vanilla (learned
// concept table), medtok (the MedTok baseline's table), text-only (text vectors, no graph), no-lwf
// (MedRep without knowledge distillation), medrep, and medrep+text (the sum of the MedRep and the
// no-graph vectors, a variant the paper tried). Every arm but vanilla is a frozen table.
import { basename } from 'node:path';
import { sha256 } from '../../transforms/hashing';
import { UserError } from '../../common/errors';
import type { Representations, VectorLookup } from './representations';
import type { EmbeddingKind } from './train';

export const ARM_NAMES = ['vanilla', 'medtok', 'text-only', 'no-lwf', 'medrep', 'medrep+text'] as const;
export type ArmName = (typeof ARM_NAMES)[number];

/** Names results and logs used before the arms had the paper's names. */
export const ARM_ALIASES: Record<string, ArmName> = {
  text: 'text-only',
  MedRep: 'medrep',
  'MedRep without KD': 'no-lwf',
  'no-kd': 'no-lwf',
};

/** What each arm reads: the representation table(s) it needs, by the option that gives them. */
export const ARM_SOURCES: Record<ArmName, string> = {
  vanilla: 'nothing (learned table)',
  medtok: 'a MedTok table (--medtok-representations)',
  'text-only': 'the text vectors (--text-representations)',
  'no-lwf': 'MedRep vectors trained without KD (--no-lwf-representations; the paper method writes them)',
  medrep: 'the MedRep vectors (--representations)',
  'medrep+text': 'the MedRep and the text vectors (--representations and --text-representations)',
};

export function armName(name: string): ArmName {
  const n = ARM_ALIASES[name] ?? name;
  if (!(ARM_NAMES as readonly string[]).includes(n)) throw new UserError(`unknown arm '${name}' (arms: ${ARM_NAMES.join(', ')})`);
  return n as ArmName;
}

export function parseArms(list: string[]): ArmName[] {
  const arms = list.map(armName);
  const dup = arms.find((a, i) => arms.indexOf(a) !== i);
  if (dup) throw new UserError(`arm '${dup}' is named twice`);
  return arms;
}

export const embeddingKindOf = (arm: string): EmbeddingKind => (arm === 'vanilla' ? 'vanilla' : arm === 'text-only' ? 'text' : 'medrep');

/**
 * The sum of two tables of the same size, token by token (each already standardized on loading).
 * A token either table cannot represent has no summed vector.
 */
export function sumRepresentations(a: Representations, b: Representations): Representations {
  if (a.dim !== b.dim) throw new UserError(`medrep+text: the MedRep vectors have size ${a.dim}, the text vectors ${b.dim}; the sum needs equal sizes`);
  const lookup: VectorLookup = (c, d) => {
    const x = a.lookup(c, d);
    const y = b.lookup(c, d);
    if (!x || !y) return null;
    const out = new Float32Array(a.dim);
    for (let i = 0; i < a.dim; i++) out[i] = x[i] + y[i];
    return out;
  };
  return {
    lookup,
    dim: a.dim,
    hash: `sha256:${sha256(`${a.hash}+${b.hash}`)}`,
    source: `${basename(a.source)}+${basename(b.source)}`,
    ...(a.resolutions ? { resolutions: a.resolutions } : {}),
  };
}
