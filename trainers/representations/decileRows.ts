// Decile rows shared across labs: the row of (lab, decile k) is the lab's vector joined with an
// ordinal code of k that is the same for every lab, so decile k of a site-B lab lands next to
// decile k of its site-A counterpart, and a lab's ten rows lie in decile order. Every
// measurement concept of the vocabulary gets its ten rows, whichever site fitted deciles.

/** Extra columns of the ordinal code. */
export const ORDINAL_DIMS = 2;

/**
 * Code of decile k (0..9): a point on a half circle (angle pi k / 9), shifted so that the ten
 * codes sum to zero. Neighbouring deciles are closest, the main axis of the ten codes runs
 * from decile 0 to decile 9, and the code adds nothing to the table mean.
 */
export function ordinalCode(k: number): [number, number] {
  let meanSin = 0;
  for (let j = 0; j < 10; j++) meanSin += Math.sin((Math.PI * j) / 9) / 10;
  const t = (Math.PI * k) / 9;
  return [Math.cos(t), Math.sin(t) - meanSin];
}

export interface NodeVectors {
  /** concept_id of each row (base concepts). */
  conceptIds: ArrayLike<number>;
  /** Rows that get decile rows (numeric measurement concepts). */
  withDeciles: ArrayLike<boolean>;
  vectors: Float32Array;
  dim: number;
}

export interface AssembledTable {
  conceptIds: number[];
  deciles: Array<number | null>;
  vectors: Float32Array;
  dim: number;
}

/**
 * Base rows [v ; 0], then for each concept with deciles ten rows [v ; w * s * code(k)], where s
 * is the root mean square length of the centred base vectors: the code's weight relative to
 * how far concepts lie apart is w whatever the scale of the vectors.
 */
export function withOrdinalDecileRows(n: NodeVectors, weight: number): AssembledTable {
  const rows = n.conceptIds.length;
  const d = n.dim;
  const out = d + ORDINAL_DIMS;
  const mean = new Float64Array(d);
  for (let i = 0; i < rows; i++) for (let k = 0; k < d; k++) mean[k] += n.vectors[i * d + k] / rows;
  let ss = 0;
  for (let i = 0; i < rows; i++) for (let k = 0; k < d; k++) ss += (n.vectors[i * d + k] - mean[k]) ** 2;
  const scale = weight * Math.sqrt(ss / Math.max(1, rows));
  let decileRows = 0;
  for (let i = 0; i < rows; i++) if (n.withDeciles[i]) decileRows += 10;
  const total = rows + decileRows;
  const conceptIds: number[] = new Array(total);
  const deciles: Array<number | null> = new Array(total);
  const vectors = new Float32Array(total * out);
  for (let i = 0; i < rows; i++) {
    conceptIds[i] = n.conceptIds[i];
    deciles[i] = null;
    vectors.set(n.vectors.subarray(i * d, (i + 1) * d), i * out);
  }
  let r = rows;
  for (let i = 0; i < rows; i++) {
    if (!n.withDeciles[i]) continue;
    for (let k = 0; k < 10; k++, r++) {
      conceptIds[r] = n.conceptIds[i];
      deciles[r] = k;
      vectors.set(n.vectors.subarray(i * d, (i + 1) * d), r * out);
      const [c0, c1] = ordinalCode(k);
      vectors[r * out + d] = scale * c0;
      vectors[r * out + d + 1] = scale * c1;
    }
  }
  return { conceptIds, deciles, vectors, dim: out };
}
