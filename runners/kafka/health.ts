// Stage health: what a stage has consumed, produced and dead-lettered, its rates, and its lag per
// partition, as one log line (printed periodically and on SIGUSR1). Counts and offsets only.
import { Admin } from 'kafkajs';
import { DEFAULT_IDLE_TIMEOUT_MS, stageWatermark, watermarkOfMetadata, watermarkText } from './watermarks';

export interface PartitionPosition {
  topic: string;
  partition: number;
  /** Next offset this worker will read. */
  position: bigint;
  /** End of the partition when last fetched. */
  highWatermark: bigint;
}

export interface HealthSnapshot {
  stage: string;
  /** Messages. */
  consumed: number;
  produced: number;
  /** Rows those messages held (a message may carry many; see StageContext.rows). */
  rowsConsumed: number;
  rowsProduced: number;
  deadLettered: number;
  transactions: number;
  aborted: number;
  restoredRecords: number;
  assigned: number[];
  partitions: Array<PartitionPosition & { lag: bigint }>;
  totalLag: bigint;
}

/** A topic partition as one map key. */
const positionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export class StageHealth {
  consumed = 0;
  produced = 0;
  rowsConsumed = 0;
  rowsProduced = 0;
  deadLettered = 0;
  transactions = 0;
  aborted = 0;
  restoredRecords = 0;
  assigned: number[] = [];
  private readonly positions = new Map<string, PartitionPosition>();
  /** Event-time watermark per partition (stages that keep one), and when it last moved (wall clock). */
  private readonly watermarks = new Map<number, { wm: number | null; moved: number }>();
  private last = { at: Date.now(), rowsConsumed: 0, rowsProduced: 0 };

  constructor(
    readonly stage: string,
    private readonly watermarkIdleMs = DEFAULT_IDLE_TIMEOUT_MS,
  ) {}

  /** A partition's watermark after a committed transaction. */
  onWatermark(partition: number, wm: number | null): void {
    const prev = this.watermarks.get(partition);
    if (prev === undefined || prev.wm !== wm) this.watermarks.set(partition, { wm, moved: Date.now() });
  }

  /** ` watermarks [p:ISO ...] stage ISO`, or '' for a stage that keeps none. */
  private watermarkText(now: number): string {
    if (this.watermarks.size === 0) return '';
    const parts = [...this.watermarks].filter(([p]) => this.assigned.includes(p)).sort((a, b) => a[0] - b[0]);
    const stage = stageWatermark(parts.map(([, w]) => ({ wm: w.wm, idle: now - w.moved >= this.watermarkIdleMs })));
    return ` watermarks [${parts.map(([p, w]) => `${p}:${watermarkText(w.wm)}`).join(' ')}] stage ${watermarkText(stage)}`;
  }

  /** Records where a fetched batch ended (including batches of transaction markers only). */
  onBatchEnd(topic: string, partition: number, lastOffset: string, highWatermark: string): void {
    this.positions.set(positionKey(topic, partition), {
      topic,
      partition,
      position: BigInt(lastOffset) + 1n,
      highWatermark: BigInt(highWatermark),
    });
  }

  /** Records progress inside a batch: `next` is the next offset to process. */
  onProgress(topic: string, partition: number, next: bigint, highWatermark: string): void {
    this.positions.set(positionKey(topic, partition), { topic, partition, position: next, highWatermark: BigInt(highWatermark) });
  }

  /** Forgets partitions that are no longer assigned. */
  retain(partitions: Set<number>): void {
    for (const [k, p] of this.positions) if (!partitions.has(p.partition)) this.positions.delete(k);
  }

  /** Forgets one partition's position: unknown until its next batch (or the broker) says. */
  forget(topic: string, partition: number): void {
    this.positions.delete(positionKey(topic, partition));
  }

  positionOf(topic: string, partition: number): PartitionPosition | undefined {
    return this.positions.get(positionKey(topic, partition));
  }

  snapshot(): HealthSnapshot {
    const partitions = [...this.positions.values()]
      .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1))
      .map((p) => ({ ...p, lag: p.highWatermark > p.position ? p.highWatermark - p.position : 0n }));
    return {
      stage: this.stage,
      consumed: this.consumed,
      produced: this.produced,
      rowsConsumed: this.rowsConsumed,
      rowsProduced: this.rowsProduced,
      deadLettered: this.deadLettered,
      transactions: this.transactions,
      aborted: this.aborted,
      restoredRecords: this.restoredRecords,
      assigned: [...this.assigned],
      partitions,
      totalLag: partitions.reduce((s, p) => s + p.lag, 0n),
    };
  }

  /**
   * `[stage] rows in N (r/s) out N (r/s) dlq N, messages consumed N produced N, txns N aborted N
   * partitions [..] lag N messages topic[p:lag ...]`: rates since the last line; the lag is in
   * offsets (what the broker knows), the counts in rows.
   */
  line(): string {
    const now = Date.now();
    const s = this.snapshot();
    const secs = Math.max(0.001, (now - this.last.at) / 1000);
    const n = (x: number | bigint) => x.toLocaleString('en-US');
    const rate = (x: number) => n(Math.round(x / secs));
    const byTopic = new Map<string, string[]>();
    for (const p of s.partitions) {
      let list = byTopic.get(p.topic);
      if (!list) byTopic.set(p.topic, (list = []));
      list.push(`${p.partition}:${p.lag}`);
    }
    const lag = [...byTopic].map(([t, l]) => `${t}[${l.join(' ')}]`).join(' ');
    const line =
      `[medrep ${this.stage}] rows in ${n(s.rowsConsumed)} (${rate(s.rowsConsumed - this.last.rowsConsumed)}/s) ` +
      `out ${n(s.rowsProduced)} (${rate(s.rowsProduced - this.last.rowsProduced)}/s) dlq ${n(s.deadLettered)}, ` +
      `messages consumed ${n(s.consumed)} produced ${n(s.produced)}, txns ${s.transactions} aborted ${s.aborted} ` +
      `partitions [${s.assigned.join(',')}] lag ${n(s.totalLag)} messages${lag ? ' ' + lag : ''}${this.watermarkText(now)}`;
    this.last = { at: now, rowsConsumed: s.rowsConsumed, rowsProduced: s.rowsProduced };
    return line;
  }
}

export interface GroupPartitionLag {
  topic: string;
  partition: number;
  /** Committed offset of the group, -1 when none. */
  committed: bigint;
  high: bigint;
  /** Messages not yet consumed; a trailing transaction marker counts as one. */
  lag: bigint;
  /** The event-time watermark committed with the offset (stages that keep one; undefined: none). */
  watermark?: number | null;
}

/**
 * Lag of a consumer group from the broker's view (committed offsets against end offsets), for a
 * status command or a benchmark. Transactional inputs end in a commit marker the group never
 * commits past, so a drained partition of such a topic shows a lag of at most 1 per transaction end.
 */
export async function consumerGroupLag(admin: Admin, groupId: string, topics?: string[]): Promise<GroupPartitionLag[]> {
  const out: GroupPartitionLag[] = [];
  // Without topics: every topic the group has committed offsets for.
  const committed = await admin.fetchOffsets(topics ? { groupId, topics } : { groupId });
  for (const t of committed) {
    const ends = await admin.fetchTopicOffsets(t.topic);
    for (const p of t.partitions) {
      const end = ends.find((e) => e.partition === p.partition);
      const high = BigInt(end?.high ?? '0');
      const low = BigInt(end?.low ?? '0');
      const c = BigInt(p.offset);
      const from = c < 0n ? low : c;
      const watermark = watermarkOfMetadata(p.metadata);
      out.push({ topic: t.topic, partition: p.partition, committed: c, high, lag: high > from ? high - from : 0n, ...(watermark !== undefined && { watermark }) });
    }
  }
  return out.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
}

/**
 * Whether partitions a worker has not fetched from yet hold nothing for its group: the committed
 * offset is at the end, or the partition is empty. (Partitions it has fetched from are judged by
 * their fetched position, which also moves past transaction markers.)
 */
export async function partitionsAtEnd(admin: Admin, groupId: string, partitions: Array<{ topic: string; partition: number }>): Promise<boolean> {
  if (partitions.length === 0) return true;
  const topics = [...new Set(partitions.map((p) => p.topic))];
  const committed = await admin.fetchOffsets({ groupId, topics });
  for (const topic of topics) {
    const ends = await admin.fetchTopicOffsets(topic);
    for (const { partition } of partitions.filter((p) => p.topic === topic)) {
      const end = ends.find((e) => e.partition === partition);
      const c = BigInt(committed.find((t) => t.topic === topic)?.partitions.find((x) => x.partition === partition)?.offset ?? '-1');
      const high = BigInt(end?.high ?? '0');
      const low = BigInt(end?.low ?? '0');
      if (c >= 0n ? c < high : low < high) return false;
    }
  }
  return true;
}
