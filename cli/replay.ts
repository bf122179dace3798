// `medrep replay`: rebuild a Kafka run's shards from its topics and check them against its manifest.
import { EXIT, UserError } from '../common/errors';
import { consoleLogger } from '../common/progress';
import { runReplay } from '../runners/kafka/replay';
import { defineCommand } from './command';
import { KAFKA_OPTIONS, kafkaOf } from './kafka';

export const replayCommand = defineCommand({
  name: 'replay',
  synopsis: '--brokers HOST:PORT (--from-offsets FILE|--from-time ISO) --out DIR --verify MANIFEST',
  summary: "rebuild a Kafka run's shards and check them against its manifest",
  options: {
    ...KAFKA_OPTIONS,
    'from-offsets': { type: 'string', value: 'FILE', help: 'start at the offsets of this file' },
    'from-time': { type: 'string', value: 'ISO', help: 'start at the first message at or after this time' },
    out: { type: 'string', value: 'DIR', required: true, help: 'folder of the rebuilt shards' },
    verify: { type: 'string', value: 'MANIFEST', required: true, help: "the run's manifest.json to compare with" },
    force: { type: 'bool', help: 'replace an earlier replay in --out' },
  },
  async run(o) {
    if ((o.fromOffsets === undefined) === (o.fromTime === undefined)) throw new UserError('medrep replay: give exactly one of --from-offsets FILE and --from-time ISO');
    const r = await runReplay({
      kafka: kafkaOf(o),
      out: o.out,
      verify: o.verify,
      fromOffsets: o.fromOffsets,
      fromTime: o.fromTime,
      force: o.force,
      log: consoleLogger,
    });
    for (const s of r.shards) process.stdout.write(`${s.match ? 'OK      ' : 'MISMATCH'} ${s.path} (${s.rows} rows)\n`);
    process.stdout.write(`${r.matched} of ${r.shards.length} shards match the manifest; ${r.skipped} before the replay start not rebuilt\n`);
    if (r.matched !== r.shards.length) process.exitCode = EXIT.mismatch;
  },
});
