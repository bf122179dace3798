// `medrep topics`: create the pipeline's Kafka topics (idempotent).
import { runTopicsCommand } from '../runners/kafka/commands';
import { defineCommand } from './command';
import { KAFKA_OPTIONS, kafkaOf } from './kafka';

export const topicsCommand = defineCommand({
  name: 'topics',
  synopsis: '--brokers HOST:PORT [--partitions N]',
  summary: "create the pipeline's Kafka topics",
  options: {
    ...KAFKA_OPTIONS,
    partitions: { type: 'int', atLeast: 1, default: 6, help: 'partitions of each omop.<table> topic' },
    'retention-ms': { type: 'int', default: -1, help: 'retention.ms of the omop.<table> topics (-1: forever)' },
  },
  async run(o) {
    await runTopicsCommand({ kafka: kafkaOf(o), partitions: o.partitions, retentionMs: o.retentionMs });
  },
});
