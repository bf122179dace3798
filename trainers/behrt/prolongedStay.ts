// Med-BERT's pretraining label: prolonged length of stay (PLOS). The pipeline's shards carry no
// visit end, so a person's PLOS label is read from the long_stay task's samples (a stay of 7 days
// or more at the person's latest eligible admission, the length Med-BERT calls prolonged); a
// person without a long_stay sample had no eligible stay and is labelled false.
import type { Sequence } from './data';

export const PLOS_TASK = 'long_stay';

/** The pretraining sequences with `prolongedStay` set from the persons' long_stay samples. */
export function withProlongedStay(pretrain: Sequence[], longStay: Sequence[]): Sequence[] {
  const positive = new Set<string>();
  for (const s of longStay) {
    if (s.label === undefined) throw new Error(`${PLOS_TASK} samples need a binary 'label' column for Med-BERT's prolonged-stay head`);
    if (s.label) positive.add(String(s.personId));
  }
  return pretrain.map((s) => ({ ...s, prolongedStay: positive.has(String(s.personId)) }));
}
