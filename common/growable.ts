// Append-only typed arrays that grow by doubling: millions of ids or values without one
// JavaScript object per row.
export class GrowableFloat64 {
  private buf: Float64Array;
  length = 0;
  constructor(initial = 1 << 16) { this.buf = new Float64Array(initial); }
  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }
  /** A view of the filled part (shares memory until the next push that grows). */
  view(): Float64Array { return this.buf.subarray(0, this.length); }
  /** Sorts the filled part and removes duplicates in place. */
  sortUnique(): void {
    const v = this.view();
    v.sort();
    let w = 0;
    for (let r = 0; r < v.length; r++) if (r === 0 || v[r] !== v[w - 1]) v[w++] = v[r];
    this.length = w;
  }
  get capacity(): number { return this.buf.length; }
  /** A compact copy of the filled part. */
  toArray(): Float64Array { return this.buf.slice(0, this.length); }
}
