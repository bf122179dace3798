// BERT-style masking for MLM: each non-special token is chosen with probability `rate`; a chosen
// token becomes [MASK] 80% of the time, a random concept 10%, itself 10%.
import { FIRST_CONCEPT_INDEX, SPECIAL_TOKENS } from '../../transforms/tokens';
import { Rng } from '../random';
import { isSpecialIndex } from './vocab';

export interface Masked {
  /** Input tokens after masking. */
  tokens: Int32Array;
  /** Positions (flat index into tokens) chosen for prediction, and their original tokens. */
  positions: number[];
  targets: number[];
  /** What happened to each chosen position: 0 masked, 1 random, 2 kept (for tests and logs). */
  actions: number[];
}

export function maskTokens(tokens: Int32Array, vocabSize: number, rate: number, rng: Rng): Masked {
  const out = new Int32Array(tokens);
  const positions: number[] = [];
  const targets: number[] = [];
  const actions: number[] = [];
  const conceptCount = vocabSize - FIRST_CONCEPT_INDEX;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (isSpecialIndex(t)) continue;
    if (rng.next() >= rate) continue;
    positions.push(i);
    targets.push(t);
    const r = rng.next();
    if (r < 0.8) {
      out[i] = SPECIAL_TOKENS.MASK;
      actions.push(0);
    } else if (r < 0.9 && conceptCount > 0) {
      out[i] = FIRST_CONCEPT_INDEX + rng.int(conceptCount);
      actions.push(1);
    } else {
      actions.push(2);
    }
  }
  return { tokens: out, positions, targets, actions };
}
