// Reads a topic (or some of its partitions) from the beginning to the end offsets it has when
// the read starts: state store restore, tests, and replay of retained topics.
import { randomUUID } from 'crypto';
import { Kafka, KafkaMessage } from 'kafkajs';

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
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `medrep.read.${topic}.${randomUUID()}`;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const endOf = new Map<number, bigint>();
    for (const o of offsets) {
      if (opts.partitions && !opts.partitions.includes(o.partition)) continue;
      const start = opts.from?.get(o.partition) ?? BigInt(o.low);
      if (BigInt(o.high) > start) endOf.set(o.partition, BigInt(o.high));
    }
    if (endOf.size === 0) return;
    // The throwaway group starts where asked: its committed offsets, set before it has members.
    if (opts.from) {
      const partitions = [...endOf.keys()].filter((p) => opts.from!.has(p)).map((p) => ({ partition: p, offset: opts.from!.get(p)!.toString() }));
      if (partitions.length) await admin.setOffsets({ groupId, topic, partitions });
    }
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200, readUncommitted: opts.readUncommitted ?? false });
    const remaining = new Set(endOf.keys());
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    // END_BATCH_PROCESS also reports batches that held only transaction markers, so the position
    // moves past them (the last offset of a transactional topic is a commit marker).
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const end = endOf.get(payload.partition);
      if (end !== undefined && BigInt(payload.lastOffset) + 1n >= end && remaining.delete(payload.partition) && remaining.size === 0) {
        finish();
      }
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const other = (payload.memberAssignment[topic] ?? []).filter((p: number) => !endOf.has(p));
      if (other.length > 0) consumer.pause([{ topic, partitions: other }]);
    });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const end = endOf.get(batch.partition);
          if (end === undefined) return;
          for (const m of batch.messages) {
            if (BigInt(m.offset) < end) onMessage(batch.partition, m);
          }
        },
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`reading ${topic} partitions ${[...remaining].join(',')} did not reach the end within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        await Promise.race([finished, timeout]);
      } finally {
        clearTimeout(timer);
      }
    } finally {
      await consumer.disconnect();
    }
    await admin.deleteGroups([groupId]).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}
