// Adam with decoupled weight decay and global-norm clipping. Written out (rather than tf.train.adam)
// so that its whole state is named per parameter and goes into checkpoints as plain arrays.
import { tf } from '../tf';

export interface AdamState {
  step: number;
  m: Map<string, tf.Tensor>;
  v: Map<string, tf.Tensor>;
}

export class Adam {
  state: AdamState = { step: 0, m: new Map(), v: new Map() };
  constructor(
    private readonly lr: number,
    private readonly clipNorm = 0,
    private readonly weightDecay = 0,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {}

  /** Applies one update; `grads` maps parameter names to gradients of `vars` (same names). */
  apply(vars: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>): void {
    this.state.step++;
    const t = this.state.step;
    // The clipping scale first, then one tidy per parameter: a single tidy over all of them kept
    // every parameter's temporaries (about ten copies of the model) alive until the last update.
    const scale = tf.tidy(() => {
      if (!(this.clipNorm > 0)) return tf.scalar(1);
      const sq = tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))));
      return tf.div(this.clipNorm, tf.maximum(tf.sqrt(sq), this.clipNorm)) as tf.Scalar;
    });
    const c1 = 1 - Math.pow(this.beta1, t);
    const c2 = 1 - Math.pow(this.beta2, t);
    for (const [name, g0] of grads) {
      tf.tidy(() => {
        const variable = vars.get(name)!;
        const g = tf.mul(g0, scale);
        const mPrev = this.state.m.get(name) ?? tf.zerosLike(variable);
        const vPrev = this.state.v.get(name) ?? tf.zerosLike(variable);
        const m = tf.keep(tf.add(tf.mul(mPrev, this.beta1), tf.mul(g, 1 - this.beta1)));
        const v = tf.keep(tf.add(tf.mul(vPrev, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
        this.state.m.get(name)?.dispose();
        this.state.v.get(name)?.dispose();
        this.state.m.set(name, m);
        this.state.v.set(name, v);
        let update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), this.eps));
        if (this.weightDecay > 0 && variable.rank > 1) update = tf.add(update, tf.mul(variable, this.weightDecay));
        variable.assign(tf.sub(variable, tf.mul(update, this.lr)));
      });
    }
    scale.dispose();
  }

  dispose(): void {
    for (const t of [...this.state.m.values(), ...this.state.v.values()]) t.dispose();
    this.state = { step: 0, m: new Map(), v: new Map() };
  }
}
