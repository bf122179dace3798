// Topics between the stages of `medrep stream` (DESIGN.md section 6): canonical events and
// persons (`medrep.canonical`), the events of persons with a person row (`medrep.events`, what the
// events shards hold), pretraining sequences (`medrep.pretrain`) and labelled samples
// (`medrep.samples`). Values are Arrow record batches of many rows (streamCodec.ts; one message per
// row caps a kafkajs stage at some 25-50k rows/s). Same partition count as the `omop.*` topics
// (a person's data stays in one partition through every stage); kept forever, so that `medrep
// replay` can rebuild any shard from them.
import { BATCH_TOPIC_MAX_MESSAGE_BYTES, TopicNames, TopicSpec } from './topics';

export const STREAM_TOPICS = ['canonical', 'events', 'pretrain', 'samples'] as const;
export type StreamTopic = (typeof STREAM_TOPICS)[number];

export function streamTopic(names: TopicNames, t: StreamTopic): string {
  return `${names.prefix}medrep.${t}`;
}

export function streamTopicSpecs(names: TopicNames, partitions: number): TopicSpec[] {
  return STREAM_TOPICS.map((t) => ({
    topic: streamTopic(names, t),
    numPartitions: partitions,
    configs: { 'cleanup.policy': 'delete', 'retention.ms': '-1', 'retention.bytes': '-1', 'max.message.bytes': BATCH_TOPIC_MAX_MESSAGE_BYTES },
  }));
}
