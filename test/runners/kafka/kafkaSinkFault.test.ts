// The Kafka runner's sink when the disk fills up mid-run (a small tmpfs as --out, against the real
// broker at KAFKA_BROKERS): `medrep stream` stops with one line and exit 3, leaves no temporary
// file, dead-letters nothing (a full disk is not a bad row) and commits no offset past a row that
// is not in a shard on disk; once the disk is freed, a rerun into the same folder resumes there and
// ends with the shards an uninterrupted sink builds (replay --verify) and the rows of runLocal.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateSynthetic } from '../../../synth';
import { runLocal } from '../../../runners/local/localRunner';
import { silentLogger } from '../../../common/progress';
import { EXIT } from '../../../common/errors';
import { parseShardFileName, shardRows } from '../../../runners/kafka/shardSink';
import { StageMessage } from '../../../runners/kafka/stage';
import { parseValue } from '../../../runners/kafka/streamValues';
import { DLQ_HEADERS } from '../../../runners/kafka/deadLetter';
import { streamTopic } from '../../../runners/kafka/streamTopics';
import { TopicNames } from '../../../runners/kafka/topics';
import { BROKERS, readAll, testKafka, uniquePrefix } from '../../helpers/kafka';
import { lit, sql, tempDir } from '../../helpers';
import { errorLine, MEDREP_BIN, medrep } from '../../helpers/cli';
import { assertSameRows } from '../../helpers/streamCompare';

/** Bytes of the files under `dir`. */
function bytesUnder(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  return n;
}

/** Paths under `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

describe('kafka sink on a full disk (tmpfs --out, real broker)', function () {
  this.timeout(300_000);

  it('exits 3 with one line, no .tmp, offsets only over durable shards; a rerun after freeing the disk gives the uninterrupted shards', async () => {
    const dir = tempDir('sinkfault');
    const omop = path.join(dir, 'omop');
    await generateSynthetic({ persons: 150, seed: 11, out: omop, format: 'parquet', site: 'A' });
    const local = await runLocal({ omop, out: path.join(dir, 'local'), tasks: 'none', log: silentLogger, meds: false });
    const prefix = uniquePrefix();
    const kafka = ['--brokers', BROKERS, '--topic-prefix', prefix];
    const produced = medrep(['produce', '--omop', omop, ...kafka, '--partitions', '2']);
    assert.equal(produced.status, 0, produced.stderr);
    const stream = ['stream', ...kafka, '--vocab', omop, '--artifacts', path.join(local.out, 'artifacts'), '--tasks', 'none',
      '--exit-when-idle', '2', '--events-per-shard', '400', '--sequences-per-shard', '20'];

    // A tmpfs with room for about half of the shards (their size in the local run), in a private
    // mount namespace: it vanishes with the shell; what the run left is copied out first.
    const shardBytes = bytesUnder(path.join(local.out, 'events')) + bytesUnder(path.join(local.out, 'pretrain'));
    const mnt = tempDir('sinkfault-tmpfs');
    const left = path.join(dir, 'left');
    const err = path.join(dir, 'run1.err');
    const script = [
      `mount -t tmpfs -o size=8m tmpfs '${mnt}'`,
      `head -c ${8 * 1024 * 1024 - Math.floor(shardBytes / 2)} /dev/zero > '${mnt}/filler'`,
      `'${process.execPath}' '${MEDREP_BIN}' ${stream.map((a) => `'${a}'`).join(' ')} --out '${mnt}/out' 2>'${err}'`,
      'rc=$?',
      `cp -a '${mnt}/out' '${left}'`,
      'exit $rc',
    ].join('\n');
    const unshare = process.getuid?.() === 0 ? ['-m'] : ['-r', '-m'];
    const r1 = spawnSync('unshare', [...unshare, 'sh', '-c', script], { encoding: 'utf8' });
    const stderr1 = fs.readFileSync(err, 'utf8');
    assert.equal(r1.status, EXIT.environment, stderr1);
    const line = errorLine({ status: r1.status, signal: null, stdout: '', stderr: stderr1 });
    assert.match(line, new RegExp(`^medrep: stage sink: disk full: cannot write ${mnt}/out/(events|pretrain)/\\S+\\.parquet \\(no space left on device\\)$`));
    assert.equal(stderr1.split('\n').filter((l) => l.startsWith('medrep: ')).length, 1, stderr1);
    assert.ok(!/^\s+at /m.test(stderr1), stderr1);
    const after1 = filesUnder(left);
    assert.deepEqual(after1.filter((f) => /\.tmp/.test(f)), [], 'no temporary file left');

    // Nothing dead-lettered, and every row before a committed offset of the sink lies in a shard on disk.
    const client = testKafka();
    const names = new TopicNames(prefix);
    const sinkDeadLetters = (await readAll(client, names.dlq)).filter((m) => m.headers[DLQ_HEADERS.stage] === 'sink');
    assert.deepEqual(sinkDeadLetters.map((m) => m.headers[DLQ_HEADERS.reason]), [], 'a full disk is not a bad row');
    const durable = after1.map((f) => parseShardFileName(path.basename(f))).filter((s) => s !== null);
    assert.ok(durable.length > 0, 'some shards were written before the disk filled up');
    for (const f of after1.filter((x) => x.endsWith('.parquet'))) await sql(`SELECT count(*) FROM read_parquet(${lit(path.join(left, f))})`); // each one whole
    const admin = client.admin();
    await admin.connect();
    const sinkTopics = (['events', 'pretrain'] as const).map((k) => streamTopic(names, k));
    let committedRows = 0;
    let rowsInTopics = 0;
    try {
      const offsets = await admin.fetchOffsets({ groupId: names.group('sink'), topics: sinkTopics });
      for (const topic of sinkTopics) {
        for (const m of await readAll(client, topic)) {
          const rows = shardRows(parseValue({ topic, value: m.bytes, headers: m.headers } as StageMessage));
          rowsInTopics += rows;
          const committed = BigInt(offsets.find((t) => t.topic === topic)!.partitions.find((p) => p.partition === m.partition)?.offset ?? '-1');
          if (rows === 0 || BigInt(m.offset) >= committed) continue;
          committedRows += rows;
          const inShard = durable.some((s) => s.topic === topic && s.partition === m.partition && s.from <= BigInt(m.offset) && BigInt(m.offset) <= s.to);
          assert.ok(inShard, `${topic}/${m.partition}@${m.offset} (${rows} rows) is committed but in no shard on disk`);
        }
      }
    } finally {
      await admin.disconnect();
    }
    assert.ok(committedRows < rowsInTopics, 'the fault came before the sink committed all rows');

    // The disk is freed: the rerun into the same folder resumes from the committed offsets.
    const r2 = medrep([...stream, '--out', left]);
    assert.equal(r2.status, 0, r2.stderr);
    const summary = JSON.parse(r2.stdout.trim().split('\n').pop()!);
    assert.ok(filesUnder(left).length > after1.length, 'the rerun wrote the remaining shards');
    assert.equal(summary.rows.events, local.eventsOutTotal, 'rows: events as in runLocal');
    assert.equal(summary.rejects, local.rejectsTotal, 'rejects as in runLocal');
    await assertSameRows(local.out, left, false);
    // An uninterrupted sink over the same topics builds exactly these shards (byte for byte).
    const verify = medrep(['replay', ...kafka, '--out', path.join(dir, 'replay'), '--verify', path.join(left, 'manifest.json'), '--from-time', '1970-01-01T00:00:00Z']);
    assert.equal(verify.status, 0, verify.stderr);
    const shards = summary.shards.events + summary.shards.pretrain;
    assert.match(verify.stdout, new RegExp(`^${shards} of ${shards} shards match the manifest`, 'm'));
  });
});
