// The topics of the Kafka runner and their configs (DESIGN.md section 6): `omop.<table>` input
// topics, all with one partition count so a person's rows meet in one partition, retained for
// replay; the dead-letter topic; compacted changelog topics that back per-person state stores.
import { Admin, ITopicConfig } from 'kafkajs';
import { CLINICAL_TABLES } from '../../schemas/omop';
import { UserError } from '../../common/errors';

export const DLQ_TOPIC = 'medrep.dlq';

/** Topic and group names, all under one optional prefix (several pipelines on one cluster). */
export class TopicNames {
  constructor(readonly prefix = '') {}

  omop(table: string): string {
    return `${this.prefix}omop.${table}`;
  }

  get dlq(): string {
    return `${this.prefix}${DLQ_TOPIC}`;
  }

  /** Changelog of state store `store` of stage `stage` (Kafka Streams names it the same way). */
  changelog(stage: string, store: string): string {
    return `${this.prefix}medrep.${stage}.${store}.changelog`;
  }

  /** Consumer group (and transactional id stem) of a stage. */
  group(stage: string): string {
    return `${this.prefix}medrep.${stage}`;
  }

  /** The table of an `omop.<table>` topic name, or null. */
  tableOf(topic: string): string | null {
    const stem = `${this.prefix}omop.`;
    return topic.startsWith(stem) ? topic.slice(stem.length) : null;
  }
}

export interface TopicLayoutOptions {
  /** Partitions of every `omop.*` topic and changelog (default 6). */
  partitions?: number;
  /** retention.ms of the `omop.*` topics; -1 keeps everything so any time can be replayed (default -1). */
  retentionMs?: number;
  /** retention.ms of the dead-letter topic (default 30 days). */
  dlqRetentionMs?: number;
}

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  configs: Record<string, string>;
}

export const DEFAULT_PARTITIONS = 6;
/**
 * max.message.bytes of the topics whose messages are batches (columnar rows between stages, state
 * and event-delta slices in changelogs, whole batches dead-lettered): the broker's 1 MB is too small.
 */
export const BATCH_TOPIC_MAX_MESSAGE_BYTES = String(64 * 1024 * 1024);
const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;

/** One `omop.<table>` topic per clinical table. */
export function omopTopicSpecs(names: TopicNames, opts: TopicLayoutOptions = {}): TopicSpec[] {
  const partitions = opts.partitions ?? DEFAULT_PARTITIONS;
  return CLINICAL_TABLES.map((t) => ({
    topic: names.omop(t.table),
    numPartitions: partitions,
    configs: {
      'cleanup.policy': 'delete',
      'retention.ms': String(opts.retentionMs ?? -1),
      'retention.bytes': '-1',
      // Producers send gzip batches; the broker keeps them as they came.
      'compression.type': 'producer',
    },
  }));
}

export function dlqTopicSpec(names: TopicNames, opts: TopicLayoutOptions = {}): TopicSpec {
  return {
    topic: names.dlq,
    numPartitions: 1,
    // A stage dead-letters whole intermediate messages (columnar batches of a few MB) as they came.
    configs: { 'cleanup.policy': 'delete', 'retention.ms': String(opts.dlqRetentionMs ?? THIRTY_DAYS_MS), 'max.message.bytes': BATCH_TOPIC_MAX_MESSAGE_BYTES },
  };
}

/** A changelog is compacted: the latest value per key is the state; tombstones delete keys. */
export function changelogTopicSpec(topic: string, partitions: number): TopicSpec {
  return {
    topic,
    numPartitions: partitions,
    configs: {
      'cleanup.policy': 'compact',
      'min.compaction.lag.ms': '0',
      'segment.ms': String(3600 * 1000),
      'delete.retention.ms': String(24 * 3600 * 1000),
    },
  };
}

/** All input topics and the dead-letter topic. */
export function pipelineTopicSpecs(names: TopicNames, opts: TopicLayoutOptions = {}): TopicSpec[] {
  return [...omopTopicSpecs(names, opts), dlqTopicSpec(names, opts)];
}

/**
 * Creates the topics that are missing, with their configs, and checks those that exist: a
 * different partition count is an error (a person's rows would no longer meet in one
 * partition). Returns the names it created.
 */
export async function ensureTopics(admin: Admin, specs: TopicSpec[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.topic));
  const present = specs.filter((s) => existing.has(s.topic));
  if (present.length > 0) {
    const meta = await admin.fetchTopicMetadata({ topics: present.map((s) => s.topic) });
    for (const t of meta.topics) {
      const want = present.find((s) => s.topic === t.name)!;
      if (t.partitions.length !== want.numPartitions) {
        // The user's choice (--partitions, or its default) against the user's topics: not a bug of medrep.
        throw new UserError(
          `topic ${t.name} exists with ${t.partitions.length} partitions, but ${want.numPartitions} are configured; ` +
            `all omop.* topics and changelogs need the same count (delete the topic or pass --partitions ${t.partitions.length})`,
        );
      }
    }
  }
  if (missing.length > 0) {
    const topics: ITopicConfig[] = missing.map((s) => ({
      topic: s.topic,
      numPartitions: s.numPartitions,
      replicationFactor: -1, // the broker's default.replication.factor
      configEntries: Object.entries(s.configs).map(([name, value]) => ({ name, value })),
    }));
    try {
      await admin.createTopics({ topics, waitForLeaders: true });
    } catch (e) {
      // Another worker may have created them in between, or the broker's metadata lags behind its
      // controller (a busy or just started broker): the topic list, given a few seconds, is the judge.
      let stillMissing: string[] = [];
      for (let attempt = 0; attempt < 10; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 1000));
        const after = new Set(await admin.listTopics());
        stillMissing = missing.filter((s) => !after.has(s.topic)).map((s) => s.topic);
        if (stillMissing.length === 0) break;
      }
      if (stillMissing.length > 0) throw new Error(`could not create topics ${stillMissing.join(', ')}: ${(e as Error).message}`);
    }
  }
  return missing.map((s) => s.topic);
}

/** Partition count of a topic (throws naming the topic when it does not exist). */
export async function partitionCount(admin: Admin, topic: string): Promise<number> {
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) throw new Error(`topic ${topic} does not exist (create it with medrep topics / ensureTopics)`);
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  return meta.topics[0].partitions.length;
}
