// The trajectory stage's events store as the benchmark watches it from outside the stream: a
// consumer of the store's changelog (read committed) that keeps, per person, the length of each
// live delta and the latest drop record, so the events kept and the events ever appended can be
// sampled at any time without reading the changelog again (the layout of appendStore.ts: deltas
// `<person>@<writer>.<n>`, tombstones of dropped deltas, `<person>@drop` {skip, base}).
import { Consumer, Kafka } from 'kafkajs';
import { EVENT_WIDTH } from '../runners/kafka/trajectoryState';

interface KeyState {
  deltas: Map<string, number>;
  live: number;
  skip: number;
  base: number;
}

export interface StateSample {
  persons: number;
  kept_mean: number;
  kept_max: number;
  appended_mean: number;
  appended_max: number;
  /** Events kept times their five fields at 8 bytes (the store's arrays of numbers). */
  kept_mb: number;
}

export class EventsStoreWatcher {
  private readonly keys = new Map<string, KeyState>();
  private consumer: Consumer | null = null;

  constructor(private readonly kafka: Kafka, private readonly topic: string) {}

  /** Starts reading once the stream has created the changelog topic (waits up to `waitMs`). */
  async start(waitMs = 120_000): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      for (const end = Date.now() + waitMs; !(await admin.listTopics()).includes(this.topic); ) {
        if (Date.now() > end) throw new Error(`${this.topic}: not created within ${waitMs / 1000} s`);
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      await admin.disconnect();
    }
    this.consumer = this.kafka.consumer({ groupId: `bench-state-${Date.now().toString(36)}`, readUncommitted: false });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => this.apply(message.key!.toString(), message.value),
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }

  private apply(deltaKey: string, value: Buffer | null): void {
    const at = deltaKey.lastIndexOf('@');
    const key = deltaKey.slice(0, at);
    let k = this.keys.get(key);
    if (!k) this.keys.set(key, (k = { deltas: new Map(), live: 0, skip: 0, base: 0 }));
    if (deltaKey.slice(at + 1) === 'drop') {
      if (value !== null) Object.assign(k, JSON.parse(value.toString()) as { skip: number; base: number });
    } else if (value === null) {
      k.live -= k.deltas.get(deltaKey) ?? 0;
      k.deltas.delete(deltaKey);
    } else {
      // A delta is a JSON array of numbers: its length is its commas plus one.
      let n = 1;
      for (let i = 0; i < value.length; i++) if (value[i] === 44) n++;
      k.deltas.set(deltaKey, n);
      k.live += n;
    }
  }

  sample(): StateSample {
    let kept = 0;
    let keptMax = 0;
    let appended = 0;
    let appendedMax = 0;
    for (const k of this.keys.values()) {
      const n = (k.live - k.skip) / EVENT_WIDTH;
      const all = k.base / EVENT_WIDTH + n;
      kept += n;
      appended += all;
      keptMax = Math.max(keptMax, n);
      appendedMax = Math.max(appendedMax, all);
    }
    const persons = Math.max(1, this.keys.size);
    return {
      persons: this.keys.size, kept_mean: kept / persons, kept_max: keptMax, appended_mean: appended / persons, appended_max: appendedMax,
      kept_mb: (kept * EVENT_WIDTH * 8) / 1e6,
    };
  }
}
