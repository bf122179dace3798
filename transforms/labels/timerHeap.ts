// The incremental labeler's timers: when a person's undetermined label may become determined.
import { Id } from '../../schemas/ids';

/** A binary min-heap of (time, person) timers. */
export class TimerHeap {
  private times: number[] = [];
  private persons: Id[] = [];
  get size(): number {
    return this.times.length;
  }
  peek(): number {
    return this.times[0];
  }
  push(t: number, p: Id): void {
    const { times, persons } = this;
    let i = times.length;
    times.push(t);
    persons.push(p);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent] <= times[i]) break;
      [times[parent], times[i]] = [times[i], times[parent]];
      [persons[parent], persons[i]] = [persons[i], persons[parent]];
      i = parent;
    }
  }
  pop(): Id {
    const { times, persons } = this;
    const top = persons[0];
    const lastT = times.pop() as number;
    const lastP = persons.pop() as Id;
    if (times.length > 0) {
      times[0] = lastT;
      persons[0] = lastP;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < times.length && times[l] < times[m]) m = l;
        if (r < times.length && times[r] < times[m]) m = r;
        if (m === i) break;
        [times[m], times[i]] = [times[i], times[m]];
        [persons[m], persons[i]] = [persons[i], persons[m]];
        i = m;
      }
    }
    return top;
  }
}
