// `medrep status`: consumer-group lag and stage health of a Kafka run.
import { runStatusCommand } from '../runners/kafka/commands';
import { defineCommand } from './command';
import { KAFKA_OPTIONS, kafkaOf } from './kafka';

export const statusCommand = defineCommand({
  name: 'status',
  synopsis: '--brokers HOST:PORT',
  summary: 'consumer-group lag and stage health',
  options: {
    ...KAFKA_OPTIONS,
    group: { type: 'string', value: 'GROUP', repeatable: true, help: 'a consumer group to report (default: every stage and other medrep group)' },
  },
  async run(o) {
    await runStatusCommand({ kafka: kafkaOf(o), groups: o.group });
  },
});
