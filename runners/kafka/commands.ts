// The Kafka runner's operator tools, run by cli/topics.ts and cli/status.ts:
//   medrep topics --brokers HOST:PORT [--partitions 6] [--retention-ms -1]
//   medrep status --brokers HOST:PORT [--group GROUP ...]
import { createKafka, describeKafkaOptions, KafkaOptions } from './config';
import { Admin, Kafka } from 'kafkajs';
import { consumerGroupLag, GroupPartitionLag } from './health';
import { readTopicsToEnd } from './readToEnd';
import { sourceTopicSpecs, stageInputTopics } from './topology';
import { ensureTopics, TopicNames } from './topics';
import { watermarkText } from './watermarks';

export interface TopicsOptions {
  kafka: KafkaOptions;
  partitions: number;
  /** retention.ms of the omop.<table> topics (-1: forever). */
  retentionMs: number;
}

export interface StatusOptions {
  kafka: KafkaOptions;
  /** Groups to report (default: every stage and every other medrep consumer group). */
  groups: string[];
}

/** Creates the topology's source topics (`omop.<table>`) and the dead-letter topic (idempotent); returns the names created. */
export async function runTopicsCommand(o: TopicsOptions, log: (line: string) => void = console.log): Promise<string[]> {
  const { kafka: opts, partitions, retentionMs } = o;
  const names = new TopicNames(opts.topicPrefix);
  const admin = createKafka(opts).admin();
  log(`topics: ${describeKafkaOptions(opts)} partitions=${partitions} retention.ms=${retentionMs}`);
  await admin.connect();
  try {
    const specs = sourceTopicSpecs(names, { partitions, retentionMs });
    const created = await ensureTopics(admin, specs);
    for (const s of specs) log(`${created.includes(s.topic) ? 'created' : 'exists '} ${s.topic} (${s.numPartitions} partitions)`);
    return created;
  } finally {
    await admin.disconnect();
  }
}

/** Partitions with at most this lag are read to tell messages from transaction markers. */
const MARKER_CHECK_MAX_LAG = 1000n;

export interface PartitionStatus extends GroupPartitionLag {
  /** Messages (read_committed) among the lag; null when not read (lag above MARKER_CHECK_MAX_LAG). */
  messages: bigint | null;
}

/**
 * The lag of every partition of `topics` for `groupId`, counted from the earliest offset where
 * the group committed nothing, with the messages among it told from transaction markers (commit
 * and abort markers and aborted records take offsets a read_committed consumer never gets).
 */
export async function groupStatus(kafka: Kafka, admin: Admin, groupId: string, topics: string[] | undefined): Promise<PartitionStatus[]> {
  const lag = await consumerGroupLag(admin, groupId, topics);
  const out: PartitionStatus[] = lag.map((l) => ({ ...l, messages: l.lag === 0n ? 0n : null }));
  const check = out.filter((l) => l.lag > 0n && l.lag <= MARKER_CHECK_MAX_LAG);
  if (!check.length) return out;
  const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;
  const counts = new Map<string, bigint>(check.map((l) => [key(l.topic, l.partition), 0n]));
  const reads = [...new Set(check.map((l) => l.topic))].map((topic) => {
    const mine = check.filter((l) => l.topic === topic);
    return { topic, partitions: mine.map((l) => l.partition), from: new Map(mine.map((l) => [l.partition, l.high - l.lag])) };
  });
  await readTopicsToEnd(kafka, reads, { timeoutMs: 30_000 }, (t, p) => counts.set(key(t, p), (counts.get(key(t, p)) ?? 0n) + 1n));
  for (const l of check) l.messages = counts.get(key(l.topic, l.partition)) ?? 0n;
  return out;
}

function partitionText(l: PartitionStatus): string {
  let t = `p${l.partition} lag ${l.lag}`;
  const markers = l.messages === null ? 0n : l.lag - l.messages;
  if (l.messages === null) t += ' (not read: may include transaction markers)';
  else if (markers > 0n && l.messages === 0n) t += markers === 1n ? ' (a transaction marker, no message)' : ` (${markers} transaction markers, no message)`;
  else if (markers > 0n) t += ` (${l.messages} messages, ${markers} transaction markers)`;
  if (l.committed < 0n) t += `, nothing committed: from the earliest offset ${l.high - l.lag}`;
  if (l.watermark !== undefined) t += `, watermark ${watermarkText(l.watermark)}`;
  return t;
}

/**
 * Prints, for every stage of the Kafka runner whose input topics exist and for every other medrep
 * consumer group (or the groups given with --group), each input partition's lag: from the
 * committed offset, or from the earliest offset when the group committed nothing there; and how
 * much of it is transaction markers, which a consumer never receives and never commits past.
 * Returns the messages still to consume over all groups.
 */
export async function runStatusCommand(o: StatusOptions, log: (line: string) => void = console.log): Promise<bigint> {
  const opts = o.kafka;
  const names = new TopicNames(opts.topicPrefix);
  const kafka = createKafka(opts);
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const stageTopics = new Map<string, string[]>(
      Object.entries(stageInputTopics(names)).map(([stage, topics]) => [names.group(stage), topics.filter((t) => existing.has(t))]),
    );
    let groups = [...o.groups];
    if (groups.length === 0) {
      const stem = names.group('');
      const listed = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(stem) && !g.startsWith(`${stem}read.`));
      const stages = [...stageTopics].filter(([, topics]) => topics.length > 0).map(([g]) => g);
      groups = [...new Set([...stages, ...listed])].sort();
    }
    if (groups.length === 0) log(`no medrep consumer groups and no input topics (prefix "${names.group('')}")`);
    let total = 0n;
    for (const g of groups) {
      const described = await admin.describeGroups([g]);
      const state = described.groups[0]?.state ?? 'Unknown';
      const members = described.groups[0]?.members.length ?? 0;
      const topics = stageTopics.get(g);
      const parts = await groupStatus(kafka, admin, g, topics && topics.length ? topics : undefined);
      const messages = parts.reduce((n, l) => n + (l.messages ?? l.lag), 0n);
      const markers = parts.reduce((n, l) => n + (l.messages === null ? 0n : l.lag - l.messages), 0n);
      total += messages;
      const shownState = state === 'Dead' ? 'not started' : state;
      log(`group ${g} ${shownState} members=${members} lag=${messages}${markers > 0n ? ` (and ${markers} offsets of transaction markers, not messages)` : ''}`);
      for (const topic of [...new Set(parts.map((l) => l.topic))]) {
        log(`  ${topic}: ${parts.filter((l) => l.topic === topic).map(partitionText).join(', ')}`);
      }
    }
    return total;
  } finally {
    await admin.disconnect();
  }
}
