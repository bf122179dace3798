// Command entry points of the Kafka runner's operator tools, for pipelines/cli.ts to wire:
//   medrep topics --brokers HOST:PORT [--partitions 6] [--retention-ms -1]
//   medrep status --brokers HOST:PORT [--group GROUP ...]
// Both accept the connection flags of config.ts (--client-id, --sasl-*, --tls, --tls-ca, --topic-prefix).
import { createKafka, describeKafkaOptions, flagValue, kafkaOptionsFromArgs } from './config';
import { UserError } from '../errors';
import { consumerGroupLag } from './health';
import { ensureTopics, pipelineTopicSpecs, TopicNames } from './topics';

function intFlag(args: string[], flag: string, fallback: number): number {
  const v = flagValue(args, flag);
  if (v === undefined) return fallback;
  if (!/^-?\d+$/.test(v)) throw new UserError(`${flag}: "${v}" is not an integer`);
  return Number(v);
}

/** Creates the `omop.<table>` topics and the dead-letter topic (idempotent); returns the names created. */
export async function runTopicsCommand(args: string[], log: (line: string) => void = console.log): Promise<string[]> {
  const opts = kafkaOptionsFromArgs(args);
  const partitions = intFlag(args, '--partitions', 6);
  if (partitions < 1) throw new Error('--partitions must be at least 1');
  const retentionMs = intFlag(args, '--retention-ms', -1);
  const names = new TopicNames(opts.topicPrefix);
  const admin = createKafka(opts).admin();
  log(`topics: ${describeKafkaOptions(opts)} partitions=${partitions} retention.ms=${retentionMs}`);
  await admin.connect();
  try {
    const specs = pipelineTopicSpecs(names, { partitions, retentionMs });
    const created = await ensureTopics(admin, specs);
    for (const s of specs) log(`${created.includes(s.topic) ? 'created' : 'exists '} ${s.topic} (${s.numPartitions} partitions)`);
    return created;
  } finally {
    await admin.disconnect();
  }
}

/**
 * Prints, for each medrep consumer group (or the groups given with --group), the committed offset
 * and lag of every partition it reads, and the total lag. Returns the total lag over all groups.
 */
export async function runStatusCommand(args: string[], log: (line: string) => void = console.log): Promise<bigint> {
  const opts = kafkaOptionsFromArgs(args);
  const names = new TopicNames(opts.topicPrefix);
  const admin = createKafka(opts).admin();
  await admin.connect();
  try {
    let groups = args.flatMap((a, i) => (a === '--group' && args[i + 1] ? [args[i + 1]] : []));
    if (groups.length === 0) {
      const stem = names.group('');
      groups = (await admin.listGroups()).groups
        .map((g) => g.groupId)
        .filter((g) => g.startsWith(stem) && !g.startsWith(`${stem}read.`))
        .sort();
    }
    if (groups.length === 0) log(`no medrep consumer groups (prefix "${names.group('')}")`);
    let total = 0n;
    for (const g of groups) {
      const described = await admin.describeGroups([g]);
      const state = described.groups[0]?.state ?? 'Unknown';
      const members = described.groups[0]?.members.length ?? 0;
      const lag = await consumerGroupLag(admin, g);
      const byTopic = new Map<string, string[]>();
      let groupLag = 0n;
      for (const l of lag) {
        groupLag += l.lag;
        let list = byTopic.get(l.topic);
        if (!list) byTopic.set(l.topic, (list = []));
        list.push(`${l.partition}:${l.lag}`);
      }
      total += groupLag;
      log(`group ${g} ${state} members=${members} lag=${groupLag} ${[...byTopic].map(([t, l]) => `${t}[${l.join(' ')}]`).join(' ')}`.trimEnd());
    }
    return total;
  } finally {
    await admin.disconnect();
  }
}
