// MedRep's graph stage: GRACE graph contrastive learning with knowledge distillation from the
// text vectors. A 2-layer GCN (PReLU) encodes the text vectors of a sampled
// subgraph; two views, each with DropEdge 0.2 and feature masking 0.2, pass through a projection
// head; the symmetric GRACE loss (temperature 0.5) over the subgraph's nodes takes one Adam
// step, then the distillation loss KL(softmax(x) || softmax(z)) between the text vector x and the
// encoder output z of each node takes another. Early stopping on the epoch loss restores a deep
// copy of the best weights.
import { tf } from '../tf';
import { Rng, glorotUniform } from '../random';
import type { ConceptGraph } from './conceptGraph';
import { dropEdges, featureMask, gcnMessages, sampleSubgraph, Subgraph } from './sampling';
import { runTrainingLoop } from '../trainingLoop';

export interface GraceOptions {
  /** Output dimension of the projection head's hidden layer. Default = text dim. */
  projectionDim?: number;
  tau: number;
  dropEdge: [number, number];
  featureMask: [number, number];
  seedsPerBatch: number;
  fanouts: number[];
  learningRate: number;
  maxEpochs: number;
  patience: number;
  /** false: GCL without KD (the paper's ablation). */
  distill: boolean;
  /**
   * The GRACE loss is quadratic in the nodes it covers: it covers the first maxLossNodes nodes of
   * the sampled subgraph (the seeds, then nearer hops first). Every sampled node still feeds the
   * GCN. On Synthea-sized graphs the whole subgraph is covered.
   */
  maxLossNodes: number;
  seed: number;
  log?: (line: string) => void;
  /** Called after each epoch with a function that encodes every node with the current weights (for learning curves). */
  onEpoch?: (epoch: number, encode: () => Float32Array, input: { graph: ConceptGraph; textVectors: Float32Array; dim: number }) => void;
}

export const DEFAULT_GRACE: GraceOptions = {
  tau: 0.5, dropEdge: [0.2, 0.2], featureMask: [0.2, 0.2], seedsPerBatch: 1024, fanouts: [30, 20, 10],
  learningRate: 5e-4, maxEpochs: 20, patience: 3, distill: true, maxLossNodes: 4096, seed: 17,
};

/**
 * GRACE's loss between two projected views (rows = nodes), symmetric:
 * l(u_i) = -log( e^{s(u_i,v_i)/tau} / ( sum_j e^{s(u_i,v_j)/tau} + sum_{j != i} e^{s(u_i,u_j)/tau} ) ),
 * s = cosine similarity; loss = mean_i (l(u_i) + l(v_i)) / 2.
 */
export function graceLoss(h1: tf.Tensor2D, h2: tf.Tensor2D, tau: number): tf.Scalar {
  return tf.tidy(() => {
    const z1 = l2normalize(h1);
    const z2 = l2normalize(h2);
    const half = (a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D => {
      const refl = tf.exp(tf.div(tf.matMul(a, a, false, true), tau));
      const between = tf.exp(tf.div(tf.matMul(a, b, false, true), tau));
      const n = a.shape[0];
      const eye = tf.eye(n);
      const pos = tf.sum(tf.mul(between, eye), 1);
      const reflDiag = tf.sum(tf.mul(refl, eye), 1);
      const denom = tf.sub(tf.add(tf.sum(refl, 1), tf.sum(between, 1)), reflDiag);
      return tf.neg(tf.log(tf.div(pos, denom))) as tf.Tensor1D;
    };
    return tf.mean(tf.div(tf.add(half(z1, z2), half(z2, z1)), 2)) as tf.Scalar;
  });
}

function l2normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.maximum(tf.sqrt(tf.sum(tf.square(x), 1, true)), 1e-12)) as tf.Tensor2D;
}

/** Distillation loss: mean over nodes of KL(softmax(x_i) || softmax(z_i)) over the feature axis. */
export function distillationLoss(x: tf.Tensor2D, z: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const logP = tf.logSoftmax(x);
    const logQ = tf.logSoftmax(z);
    return tf.mean(tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ)), 1)) as tf.Scalar;
  });
}

/** The GCN encoder and projection head, as named variables. */
export class GraceModel {
  readonly vars: Record<string, tf.Variable>;
  constructor(readonly inDim: number, readonly outDim: number, readonly projDim: number, rng: Rng) {
    const hid = 2 * outDim; // GRACE: first layer 2 x output width
    const v = (name: string, vals: Float32Array, shape: number[]): tf.Variable => {
      const init = tf.tensor(vals, shape);
      const variable = tf.variable(init, true, `grace/${name}`);
      init.dispose(); // the variable holds its own copy
      return variable;
    };
    this.vars = {
      w1: v('w1', glorotUniform(rng, inDim, hid), [inDim, hid]),
      b1: v('b1', new Float32Array(hid), [hid]),
      a1: v('a1', new Float32Array(hid).fill(0.25), [hid]),
      w2: v('w2', glorotUniform(rng, hid, outDim), [hid, outDim]),
      b2: v('b2', new Float32Array(outDim), [outDim]),
      a2: v('a2', new Float32Array(outDim).fill(0.25), [outDim]),
      p1: v('p1', glorotUniform(rng, outDim, projDim), [outDim, projDim]),
      pb1: v('pb1', new Float32Array(projDim), [projDim]),
      p2: v('p2', glorotUniform(rng, projDim, outDim), [projDim, outDim]),
      pb2: v('pb2', new Float32Array(outDim), [outDim]),
    };
  }

  encoderVars(): tf.Variable[] { return ['w1', 'b1', 'a1', 'w2', 'b2', 'a2'].map((k) => this.vars[k]); }
  allVars(): tf.Variable[] { return Object.values(this.vars); }

  /** 2-layer GCN with PReLU over messages (from, to, weight) of numNodes nodes. */
  encode(x: tf.Tensor2D, msg: GcnTensors): tf.Tensor2D {
    const layer = (h: tf.Tensor2D, w: tf.Variable, b: tf.Variable, a: tf.Variable): tf.Tensor2D => {
      const hw = tf.matMul(h, w as tf.Tensor2D);
      const m = tf.mul(tf.gather(hw, msg.from), msg.weight);
      const agg = tf.unsortedSegmentSum(m, msg.to, msg.numNodes) as tf.Tensor2D;
      return tf.prelu(tf.add(agg, b), a) as tf.Tensor2D;
    };
    const v = this.vars;
    return layer(layer(x, v.w1, v.b1, v.a1), v.w2, v.b2, v.a2);
  }

  project(z: tf.Tensor2D): tf.Tensor2D {
    const v = this.vars;
    return tf.add(tf.matMul(tf.elu(tf.add(tf.matMul(z, v.p1 as tf.Tensor2D), v.pb1)), v.p2 as tf.Tensor2D), v.pb2) as tf.Tensor2D;
  }

  snapshot(): Map<string, tf.Tensor> {
    return new Map(Object.entries(this.vars).map(([k, t]) => [k, tf.clone(t)]));
  }
  restore(s: Map<string, tf.Tensor>): void {
    for (const [k, t] of s) this.vars[k].assign(t);
  }
  dispose(): void { for (const t of this.allVars()) t.dispose(); }
}

export interface GcnTensors {
  from: tf.Tensor1D;
  to: tf.Tensor1D;
  weight: tf.Tensor2D;
  numNodes: number;
}

function gcnTensors(numNodes: number, src: Int32Array, dst: Int32Array): GcnTensors {
  const m = gcnMessages(numNodes, src, dst);
  return {
    from: tf.tensor1d(m.from, 'int32'), to: tf.tensor1d(m.to, 'int32'),
    weight: tf.tensor2d(m.weight, [m.weight.length, 1]), numNodes,
  };
}

function disposeGcn(g: GcnTensors): void { g.from.dispose(); g.to.dispose(); g.weight.dispose(); }

export interface GraceResult {
  /** MedRep vectors, one row per graph node (row-major, numNodes x dim). */
  vectors: Float32Array;
  dim: number;
  epochs: number;
  bestEpoch: number;
  epochLosses: Array<{ epoch: number; contrastive: number; distillation: number; total: number }>;
  nodesProcessed: number;
  seconds: number;
}

/**
 * Trains GRACE (+KD) on the graph whose node features are the text vectors (numNodes x dim),
 * then encodes every node on the full graph (no augmentation).
 */
export function trainGrace(g: ConceptGraph, textVectors: Float32Array, dim: number, options: Partial<GraceOptions> = {}): GraceResult {
  const o: GraceOptions = { ...DEFAULT_GRACE, ...options };
  const log = o.log ?? (() => {});
  if (textVectors.length !== g.numNodes * dim) throw new Error(`text vectors: ${textVectors.length} floats for ${g.numNodes} nodes of dimension ${dim}`);
  const rng = Rng.seeded(o.seed);
  const model = new GraceModel(dim, dim, o.projectionDim ?? dim, rng);
  const optimizer = tf.train.adam(o.learningRate);
  const start = Date.now();
  let nodesProcessed = 0;
  const epochLosses: GraceResult['epochLosses'] = [];
  const order = Int32Array.from({ length: g.numNodes }, (_, i) => i);
  const run = runTrainingLoop({
    maxEpochs: o.maxEpochs,
    patience: o.patience,
    // GRACE has no held-out split: early stopping watches the epoch's training loss.
    goal: { goal: 'min', minDelta: 1e-6 },
    runEpoch: (epoch) => {
      rng.shuffle(order);
      let sumC = 0;
      let sumD = 0;
      let batches = 0;
      for (let s = 0; s < order.length; s += o.seedsPerBatch) {
        const sub = sampleSubgraph(g, order.subarray(s, s + o.seedsPerBatch), o.fanouts, rng);
        const { c, d } = trainStep(model, optimizer, sub, textVectors, dim, o, rng);
        sumC += c; sumD += d; batches++;
        nodesProcessed += sub.nodes.length;
      }
      const lossC = sumC / batches;
      const lossD = sumD / batches;
      epochLosses.push({ epoch, contrastive: lossC, distillation: lossD, total: lossC + (o.distill ? lossD : 0) });
    },
    validate: () => epochLosses[epochLosses.length - 1].total,
    bestWeights: model,
    progressLine: () => {
      const l = epochLosses[epochLosses.length - 1];
      return `[gcl] epoch ${l.epoch}: contrastive ${l.contrastive.toFixed(4)} distillation ${l.distillation.toFixed(4)}`;
    },
    log,
    onEpochEnd: ({ epoch }) => o.onEpoch?.(epoch, () => encodeAll(model, g, textVectors, dim), { graph: g, textVectors, dim }),
  });
  const vectors = encodeAll(model, g, textVectors, dim);
  model.dispose();
  optimizer.dispose();
  return { vectors, dim, epochs: run.epochs, bestEpoch: run.bestEpoch, epochLosses, nodesProcessed, seconds: (Date.now() - start) / 1000 };
}

function gatherRows(src: Float32Array, dim: number, nodes: Int32Array): Float32Array {
  const out = new Float32Array(nodes.length * dim);
  for (let i = 0; i < nodes.length; i++) out.set(src.subarray(nodes[i] * dim, (nodes[i] + 1) * dim), i * dim);
  return out;
}

function trainStep(model: GraceModel, opt: tf.Optimizer, sub: Subgraph, text: Float32Array, dim: number, o: GraceOptions, rng: Rng): { c: number; d: number } {
  const n = sub.nodes.length;
  const x = tf.tensor2d(gatherRows(text, dim, sub.nodes), [n, dim]);
  const e1 = dropEdges(sub.src, sub.dst, o.dropEdge[0], rng);
  const e2 = dropEdges(sub.src, sub.dst, o.dropEdge[1], rng);
  const g1 = gcnTensors(n, e1.src, e1.dst);
  const g2 = gcnTensors(n, e2.src, e2.dst);
  const m1 = tf.tensor1d(featureMask(dim, o.featureMask[0], rng));
  const m2 = tf.tensor1d(featureMask(dim, o.featureMask[1], rng));
  const full = gcnTensors(n, sub.src, sub.dst);
  try {
    const c = opt.minimize(() => {
      const k = Math.min(n, o.maxLossNodes);
      const h1 = model.project(tf.slice(model.encode(tf.mul(x, m1) as tf.Tensor2D, g1), [0, 0], [k, dim]));
      const h2 = model.project(tf.slice(model.encode(tf.mul(x, m2) as tf.Tensor2D, g2), [0, 0], [k, dim]));
      return graceLoss(h1, h2, o.tau);
    }, true, model.allVars())!;
    const cv = c.dataSync()[0];
    c.dispose();
    let dv = 0;
    if (o.distill) {
      const d = opt.minimize(() => distillationLoss(x, model.encode(x, full)), true, model.encoderVars())!;
      dv = d.dataSync()[0];
      d.dispose();
    } else {
      dv = tf.tidy(() => distillationLoss(x, model.encode(x, full)).dataSync()[0]);
    }
    return { c: cv, d: dv };
  } finally {
    x.dispose(); m1.dispose(); m2.dispose();
    disposeGcn(g1); disposeGcn(g2); disposeGcn(full);
  }
}

function encodeAll(model: GraceModel, g: ConceptGraph, text: Float32Array, dim: number): Float32Array {
  const src: number[] = [];
  const dst: number[] = [];
  for (let n = 0; n < g.numNodes; n++) for (const m of g.neighbours(n)) if (n < m) { src.push(n); dst.push(m); }
  const gt = gcnTensors(g.numNodes, Int32Array.from(src), Int32Array.from(dst));
  const x = tf.tensor2d(text, [g.numNodes, dim]);
  const z = tf.tidy(() => model.encode(x, gt));
  const out = z.dataSync() as Float32Array;
  z.dispose(); x.dispose(); disposeGcn(gt);
  return Float32Array.from(out);
}
