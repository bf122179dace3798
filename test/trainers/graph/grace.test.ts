import { strict as assert } from 'assert';
import { tf } from '../../../trainers/tf';
import { selectBackend } from '../../../trainers/backend';
import { graceLoss, distillationLoss, trainGrace } from '../../../trainers/graph/grace';
import { dropEdges, featureMask, gcnMessages, sampleSubgraph } from '../../../trainers/graph/sampling';
import { ConceptGraph } from '../../../trainers/graph/conceptGraph';
import { Rng } from '../../../trainers/random';

/** Independent loop implementation of GRACE's loss, for a second opinion. */
function graceLoop(a: number[][], b: number[][], tau: number): number {
  const norm = (v: number[]) => { const s = Math.hypot(...v); return v.map((x) => x / s); };
  const A = a.map(norm);
  const B = b.map(norm);
  const dot = (u: number[], v: number[]) => u.reduce((s, x, i) => s + x * v[i], 0);
  const half = (U: number[][], V: number[][]) => U.map((u, i) => {
    let denom = 0;
    for (let j = 0; j < U.length; j++) { denom += Math.exp(dot(u, V[j]) / tau); if (j !== i) denom += Math.exp(dot(u, U[j]) / tau); }
    return -Math.log(Math.exp(dot(u, V[i]) / tau) / denom);
  });
  const l1 = half(A, B);
  const l2 = half(B, A);
  return l1.reduce((s, x, i) => s + (x + l2[i]) / 2, 0) / A.length;
}

/** A graph from an undirected edge list over nodes 0..n-1. */
function tinyGraph(n: number, edges: Array<[number, number]>): ConceptGraph {
  const adj: number[][] = Array.from({ length: n }, () => []);
  for (const [a, b] of edges) { adj[a].push(b); adj[b].push(a); }
  adj.forEach((l) => l.sort((x, y) => x - y));
  const rowPtr = new Int32Array(n + 1);
  adj.forEach((l, i) => { rowPtr[i + 1] = rowPtr[i] + l.length; });
  const stats = { conceptRows: n, conceptNodes: n, decileNodes: 0, decileConceptsNotInScope: 0, relationshipRows: 0, relationshipRowsInvalid: 0, relationshipRowsBetweenNodes: 0, distinctLinks: edges.length, hubNodes: 0, droppedLinks: 0, keptLinks: edges.length };
  return new ConceptGraph(Float64Array.from({ length: n }, (_, i) => i + 1), new Int8Array(n).fill(-1), new Int8Array(n).fill(1), n, rowPtr, Int32Array.from(adj.flat()), stats);
}

describe('GRACE with knowledge distillation', () => {
  before(async () => { await selectBackend('wasm', () => {}); });

  it('GRACE loss on orthogonal identical views equals log(1 + 2/e^2) by hand', () => {
    const v = tf.tensor2d([[1, 0], [0, 1]]);
    const l = graceLoss(v, v, 0.5).dataSync()[0];
    assert.ok(Math.abs(l - Math.log(1 + 2 * Math.exp(-2))) < 1e-6, `${l}`);
  });

  it('GRACE loss matches a loop implementation on a 3-node example (unnormalised inputs)', () => {
    const a = [[1, 2, 0.5], [-1, 0.3, 2], [0.2, -0.7, 1]];
    const b = [[0.9, 2.2, 0.1], [-0.5, 1, 1], [2, -1, 0.4]];
    const l = graceLoss(tf.tensor2d(a), tf.tensor2d(b), 0.5).dataSync()[0];
    assert.ok(Math.abs(l - graceLoop(a, b, 0.5)) < 1e-5, `${l} vs ${graceLoop(a, b, 0.5)}`);
  });

  it('KD loss is KL(softmax(x) || softmax(z)): 0.5 ln(4/3) for x=(0,0), z=(ln 3, 0)', () => {
    const l = distillationLoss(tf.tensor2d([[0, 0], [1, 2]]), tf.tensor2d([[Math.log(3), 0], [1, 2]])).dataSync()[0];
    // second node: identical distributions -> 0; mean over the two nodes
    assert.ok(Math.abs(l - 0.5 * (0.5 * Math.log(4 / 3))) < 1e-6, `${l}`);
  });

  it('DropEdge keeps about 80% of edges and feature masking zeroes about 20% of columns', () => {
    const rng = Rng.seeded(3);
    const n = 20_000;
    const src = Int32Array.from({ length: n }, (_, i) => i);
    const dst = Int32Array.from({ length: n }, (_, i) => i + 1);
    const kept = dropEdges(src, dst, 0.2, rng).src.length / n;
    assert.ok(Math.abs(kept - 0.8) < 0.015, `kept ${kept}`);
    const m = featureMask(20_000, 0.2, rng);
    const zeroed = m.filter((x) => x === 0).length / m.length;
    assert.ok(Math.abs(zeroed - 0.2) < 0.015, `zeroed ${zeroed}`);
    assert.ok(m.every((x) => x === 0 || x === 1));
  });

  it('GCN messages carry D^-1/2 (A+I) D^-1/2 weights', () => {
    // path 0-1-2: degrees with self loops 2, 3, 2
    const m = gcnMessages(3, Int32Array.from([0, 1]), Int32Array.from([1, 2]));
    const w = new Map<string, number>();
    m.from.forEach((f, i) => w.set(`${f}>${m.to[i]}`, m.weight[i]));
    assert.ok(Math.abs(w.get('0>0')! - 1 / 2) < 1e-7);
    assert.ok(Math.abs(w.get('1>1')! - 1 / 3) < 1e-7);
    assert.ok(Math.abs(w.get('0>1')! - 1 / Math.sqrt(6)) < 1e-7);
    assert.ok(Math.abs(w.get('2>1')! - 1 / Math.sqrt(6)) < 1e-7);
    assert.equal(m.from.length, 3 + 4);
  });

  it('neighbour sampling respects the fan-out and keeps seeds first', () => {
    const star = tinyGraph(41, Array.from({ length: 40 }, (_, i) => [0, i + 1] as [number, number]));
    const s = sampleSubgraph(star, [0], [5, 2], Rng.seeded(1));
    assert.equal(s.nodes[0], 0);
    assert.equal(s.numSeeds, 1);
    // hop 1: 5 leaves; hop 2: each leaf's only neighbour is the hub, already in
    assert.equal(s.nodes.length, 6);
    assert.equal(s.src.length, 5);
  });

  it('trains on a tiny graph, restores the best epoch, and KD keeps outputs nearer the text vectors', () => {
    // two clusters of 6 nodes; text vectors: cluster-specific direction plus noise
    const edges: Array<[number, number]> = [];
    for (let c = 0; c < 2; c++) for (let i = 0; i < 6; i++) for (let j = i + 1; j < 6; j++) edges.push([c * 6 + i, c * 6 + j]);
    const g = tinyGraph(12, edges);
    const rng = Rng.seeded(9);
    const dim = 8;
    const text = new Float32Array(12 * dim);
    for (let n = 0; n < 12; n++) for (let k = 0; k < dim; k++) text[n * dim + k] = (k % 2 === Math.floor(n / 6) ? 1 : 0) + 0.3 * rng.normal();
    const common = { seedsPerBatch: 12, fanouts: [5, 5], maxEpochs: 30, patience: 30, learningRate: 0.01, seed: 5 };
    const kd = trainGrace(g, text, dim, { ...common, distill: true });
    const plain = trainGrace(g, text, dim, { ...common, distill: false });
    assert.equal(kd.vectors.length, 12 * dim);
    const best = Math.min(...kd.epochLosses.map((e) => e.total));
    assert.equal(kd.epochLosses[kd.bestEpoch].total, best);
    const kl = (v: Float32Array) => distillationLoss(tf.tensor2d(text, [12, dim]), tf.tensor2d(v, [12, dim])).dataSync()[0];
    assert.ok(kl(kd.vectors) < kl(plain.vectors), `KD ${kl(kd.vectors)} vs no KD ${kl(plain.vectors)}`);
  });
});
