// Sanity measures of concept vectors: mean cosine similarity of related node pairs (same
// ingredient, parent/child, neighbouring deciles) against random pairs, and how far graph
// vectors moved from the text vectors (the paper's oversimplification check for KD).
import { Rng } from '../random';
import type { ConceptGraph } from '../graph/conceptGraph';
import { streamRelationships } from '../../sources/vocabularyFiles';

export type PairKind = 'same_ingredient' | 'parent_child' | 'decile_neighbours' | 'random';
export type Pairs = Record<PairKind, Array<[number, number]>>;

const HAS_INGREDIENT = new Set(['RxNorm has ing', 'Has ingredient']);
const INGREDIENT_OF = new Set(['RxNorm ing of', 'Ingredient of']);

/**
 * Related node pairs from the vocabulary, and as many random pairs as the largest related set
 * (at least 2000). A drug's ingredients are its "RxNorm has ing" targets, also through its
 * components ("Consists of"), whether or not the ingredient itself is a node.
 */
export async function relatedPairs(vocabDir: string, g: ConceptGraph, seed = 1, maxPerKind = 20_000): Promise<Pairs> {
  const rng = Rng.seeded(seed);
  const parentChild = new Set<string>();
  const ingredientsOf = new Map<number, Set<number>>();
  const componentsOf = new Map<number, number[]>();
  const addIngredient = (drug: number, ing: number) => {
    const s = ingredientsOf.get(drug);
    if (s) s.add(ing); else ingredientsOf.set(drug, new Set([ing]));
  };
  const addComponent = (drug: number, comp: number) => {
    const l = componentsOf.get(drug);
    if (l) l.push(comp); else componentsOf.set(drug, [comp]);
  };
  await streamRelationships(vocabDir, (a, b, rel) => {
    if (rel === 'Is a') {
      const na = g.indexOf(a);
      const nb = g.indexOf(b);
      if (na >= 0 && nb >= 0 && nb !== na) parentChild.add(na < nb ? `${na},${nb}` : `${nb},${na}`);
    } else if (HAS_INGREDIENT.has(rel)) addIngredient(a, b);
    else if (INGREDIENT_OF.has(rel)) addIngredient(b, a);
    else if (rel === 'Consists of' && g.indexOf(a) >= 0) addComponent(a, b);
  });
  const byIngredient = new Map<number, number[]>();
  for (let n = 0; n < g.numConceptNodes; n++) {
    const id = g.conceptIds[n];
    const ings = new Set<number>(ingredientsOf.get(id) ?? []);
    for (const c of componentsOf.get(id) ?? []) for (const i of ingredientsOf.get(c) ?? []) ings.add(i);
    for (const i of ings) {
      const l = byIngredient.get(i) ?? [];
      l.push(n);
      byIngredient.set(i, l);
    }
  }
  const sameIng = new Set<string>();
  for (const l of byIngredient.values()) {
    for (let i = 0; i < l.length; i++) for (let j = i + 1; j < l.length; j++) {
      const [x, y] = l[i] < l[j] ? [l[i], l[j]] : [l[j], l[i]];
      sameIng.add(`${x},${y}`);
    }
  }
  const decile: Array<[number, number]> = [];
  for (let n = g.numConceptNodes; n < g.numNodes; n++) if (g.deciles[n] < 9) decile.push([n, n + 1]);
  const parse = (s: Set<string>) => [...s].sort().map((k) => k.split(',').map(Number) as [number, number]);
  const cap = (l: Array<[number, number]>) => (l.length > maxPerKind ? rng.shuffle(Int32Array.from(l.keys())).subarray(0, maxPerKind).reduce<Array<[number, number]>>((a, i) => { a.push(l[i]); return a; }, []) : l);
  const out: Pairs = { same_ingredient: cap(parse(sameIng)), parent_child: cap(parse(parentChild)), decile_neighbours: cap(decile), random: [] };
  const nRandom = Math.max(2000, out.same_ingredient.length, out.parent_child.length, out.decile_neighbours.length);
  while (out.random.length < nRandom && g.numNodes > 1) {
    const a = rng.int(g.numNodes);
    const b = rng.int(g.numNodes);
    if (a !== b) out.random.push([a, b]);
  }
  return out;
}

export function cosine(v: Float32Array, dim: number, a: number, b: number): number {
  let dot = 0, na = 0, nb = 0;
  for (let k = 0; k < dim; k++) {
    const x = v[a * dim + k];
    const y = v[b * dim + k];
    dot += x * y; na += x * x; nb += y * y;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

export function meanPairCosine(v: Float32Array, dim: number, pairs: Array<[number, number]>): number | null {
  if (pairs.length === 0) return null;
  let s = 0;
  for (const [a, b] of pairs) s += cosine(v, dim, a, b);
  return s / pairs.length;
}

/** Mean cosine between each node's vector in two tables of the same nodes. */
export function meanRowCosine(u: Float32Array, v: Float32Array, dim: number): number {
  const n = u.length / dim;
  let s = 0;
  for (let i = 0; i < n; i++) {
    let dot = 0, nu = 0, nv = 0;
    for (let k = 0; k < dim; k++) { const x = u[i * dim + k]; const y = v[i * dim + k]; dot += x * y; nu += x * x; nv += y * y; }
    s += nu > 0 && nv > 0 ? dot / Math.sqrt(nu * nv) : 0;
  }
  return s / n;
}

/** Mean over nodes of KL(softmax(text) || softmax(graph)), computed in float64. */
export function meanKl(text: Float32Array, graph: Float32Array, dim: number): number {
  const n = text.length / dim;
  let s = 0;
  const lsm = (v: Float32Array, i: number): Float64Array => {
    let m = -Infinity;
    for (let k = 0; k < dim; k++) m = Math.max(m, v[i * dim + k]);
    let z = 0;
    for (let k = 0; k < dim; k++) z += Math.exp(v[i * dim + k] - m);
    const out = new Float64Array(dim);
    for (let k = 0; k < dim; k++) out[k] = v[i * dim + k] - m - Math.log(z);
    return out;
  };
  for (let i = 0; i < n; i++) {
    const p = lsm(text, i);
    const q = lsm(graph, i);
    for (let k = 0; k < dim; k++) s += Math.exp(p[k]) * (p[k] - q[k]);
  }
  return s / n;
}
