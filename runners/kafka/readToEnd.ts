// Reads a topic (or some of its partitions, or several topics at once) from the beginning, or from
// given offsets, to the end offsets it has when the read starts: state store restore, tests,
// replay of retained topics, and status (telling messages from transaction markers).
import { randomUUID } from 'crypto';
import { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';

export interface ReadToEndOptions {
  /** Partitions to read (default all). */
  partitions?: number[];
  /** Also return messages of open and aborted transactions (default false: read_committed). */
  readUncommitted?: boolean;
  /** Fail when the end is not reached in this time (default 120 s). */
  timeoutMs?: number;
  /** Per partition, the offset to start at (default the beginning). */
  from?: Map<number, bigint>;
}

export interface TopicRead {
  topic: string;
  partitions?: number[];
  from?: Map<number, bigint>;
}

/**
 * Calls `onMessage` for every message up to the current end of each partition, in offset order
 * within a partition. kafkajs has no manual assignment, so this uses a throwaway consumer group
 * that is deleted afterwards. With read_committed an open transaction at the end of a partition
 * holds the read back until it ends (or the timeout fails it, naming the partitions).
 */
export async function readToEnd(
  kafka: Kafka,
  topic: string,
  opts: ReadToEndOptions,
  onMessage: (partition: number, message: KafkaMessage) => void,
): Promise<void> {
  await readTopicsToEnd(kafka, [{ topic, partitions: opts.partitions, from: opts.from }], opts, (_t, p, m) => onMessage(p, m));
}

const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/** Per topic-partition with something to read: the first offset to read and the end (exclusive). */
interface ReadPlan {
  startOf: Map<string, bigint>;
  endOf: Map<string, bigint>;
}

async function readPlan(admin: Admin, reads: TopicRead[]): Promise<ReadPlan> {
  const endOf = new Map<string, bigint>();
  const startOf = new Map<string, bigint>();
  for (const r of reads) {
    for (const o of await admin.fetchTopicOffsets(r.topic)) {
      if (r.partitions && !r.partitions.includes(o.partition)) continue;
      const start = r.from?.get(o.partition) ?? BigInt(o.low);
      if (BigInt(o.high) <= start) continue;
      endOf.set(partitionKey(r.topic, o.partition), BigInt(o.high));
      startOf.set(partitionKey(r.topic, o.partition), start);
    }
  }
  return { startOf, endOf };
}

/** readToEnd over several topics with one consumer (one group join instead of one per topic). */
export async function readTopicsToEnd(
  kafka: Kafka,
  reads: TopicRead[],
  opts: { readUncommitted?: boolean; timeoutMs?: number },
  onMessage: (topic: string, partition: number, message: KafkaMessage) => void,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `medrep.read.${reads.length === 1 ? reads[0].topic : 'topics'}.${randomUUID()}`;
  try {
    const plan = await readPlan(admin, reads);
    if (plan.endOf.size === 0) return;
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200, readUncommitted: opts.readUncommitted ?? false });
    try {
      await consumeToEnd(consumer, reads, plan, opts.timeoutMs ?? 120_000, onMessage);
    } finally {
      await consumer.disconnect();
    }
    await admin.deleteGroups([groupId]).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}

/** Runs the consumer over the plan's partitions until each reached its end, or fails after `timeoutMs` naming those that did not. */
async function consumeToEnd(
  consumer: Consumer,
  reads: TopicRead[],
  { startOf, endOf }: ReadPlan,
  timeoutMs: number,
  onMessage: (topic: string, partition: number, message: KafkaMessage) => void,
): Promise<void> {
  const topics = [...new Set(reads.map((r) => r.topic))].filter((t) => [...endOf.keys()].some((k) => k.startsWith(`${t}\u0000`)));
  const remaining = new Set(endOf.keys());
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  // END_BATCH_PROCESS also reports batches that held only transaction markers, so the position
  // moves past them (the last offset of a transactional topic is a commit marker).
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    const k = partitionKey(payload.topic, payload.partition);
    const end = endOf.get(k);
    if (end !== undefined && BigInt(payload.lastOffset) + 1n >= end && remaining.delete(k) && remaining.size === 0) finish();
  });
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    for (const topic of topics) {
      const other = (payload.memberAssignment[topic] ?? []).filter((p: number) => !endOf.has(partitionKey(topic, p)));
      if (other.length > 0) consumer.pause([{ topic, partitions: other }]);
    }
  });
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      const k = partitionKey(batch.topic, batch.partition);
      const end = endOf.get(k);
      if (end === undefined) return;
      for (const m of batch.messages) {
        const o = BigInt(m.offset);
        // Each offset once: below the start, or fetched again after the seek, it is skipped.
        if (o < startOf.get(k)! || o >= end) continue;
        startOf.set(k, o + 1n);
        onMessage(batch.topic, batch.partition, m);
      }
    },
  });
  // Reads that start past the beginning: what a batch fetched before the seek holds is skipped above.
  for (const r of reads) {
    for (const [partition, offset] of r.from ?? []) {
      if (endOf.has(partitionKey(r.topic, partition))) consumer.seek({ topic: r.topic, partition, offset: offset.toString() });
    }
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`reading ${[...remaining].map((k) => k.replace('\u0000', '/')).join(', ')} did not reach the end within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([finished, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
