// Continuous mode's wall-clock re-check of the watermark against the real broker (KAFKA_BROKERS,
// default 127.0.0.1:9092): rows are produced once without end-of-load markers, then nothing more.
// Once the source tables have been silent for --idle-timeout, each trajectory partition's
// watermark moves to its latest event time (minus the out-of-orderness) by itself, and what that
// determines reaches the shards with no new record: every quiet person's events in closed chunks,
// the due labels in samples shards.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { generateSynthetic } from '../../../synth';
import { runLocal } from '../../../runners/local/localRunner';
import { silentLogger } from '../../../common/progress';
import { EXIT } from '../../../common/errors';
import { BROKERS, uniquePrefix } from '../../helpers/kafka';
import { lit, sql, tempDir } from '../../helpers';
import { medrep, medrepAsync } from '../../helpers/cli';
import { chunkCoverage, filesUnder } from '../../helpers/continuousChecks';

const PARTITIONS = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Each partition's watermark as `medrep status` prints it for the trajectory group's input (epoch ms; null: none yet). */
function statusWatermarks(status: string, prefix: string): Map<number, number | null> {
  const line = status.split('\n').find((l) => l.includes(`${prefix}medrep.canonical:`)) ?? '';
  const out = new Map<number, number | null>();
  for (const entry of line.slice(line.indexOf(':') + 1).split(/, (?=p\d+ lag)/)) {
    const m = /^\s*p(\d+) .*watermark (\S+)$/.exec(entry);
    if (m) out.set(Number(m[1]), m[2] === 'none' ? null : Date.parse(m[2]));
  }
  return out;
}

describe('kafka runner, continuous mode: the watermark moves by the wall clock (real broker)', function () {
  this.timeout(420_000);

  it('rows produced once without markers, then none: quiet persons\' chunks and due labels reach the shards', async () => {
    const dir = tempDir('watermark-tick');
    const omop = path.join(dir, 'omop');
    await generateSynthetic({ persons: 60, seed: 11, out: omop, format: 'parquet', site: 'A' });
    const local = await runLocal({ omop, out: path.join(dir, 'local'), log: silentLogger, meds: false });
    const prefix = uniquePrefix();
    const kafkaArgs = ['--brokers', BROKERS, '--topic-prefix', prefix];
    assert.equal(medrep(['topics', ...kafkaArgs, '--partitions', String(PARTITIONS)]).status, 0);
    const out = path.join(dir, 'stream');
    const shardFiles = (kind: 'events' | 'pretrain' | 'samples') => filesUnder(path.join(out, kind), '.parquet').length;
    // No out-of-orderness and no quiet span: at the final watermark every open chunk is closed.
    // With no out-of-orderness, how the tables' rows interleave on the way in decides which come
    // behind the watermark (a table not seen yet holds nothing back); a lateness past the data's
    // span applies them all, so the labels do not depend on that timing.
    const stream = medrepAsync([
      'stream', ...kafkaArgs, '--out', out, '--vocab', omop, '--artifacts', path.join(local.out, 'artifacts'), '--close-on', 'watermark',
      '--idle-timeout', '4', '--out-of-orderness', '0', '--allowed-lateness-days', '36500', '--chunk-quiet', '0', '--health-interval', '2',
    ]);
    let exited = false;
    void stream.done.then(() => (exited = true));
    try {
      const produced = medrep(['produce', '--omop', omop, ...kafkaArgs, '--partitions', String(PARTITIONS), '--markers', 'none']);
      assert.equal(produced.status, 0, produced.stderr);
      assert.equal(JSON.parse(produced.stdout.trim().split('\n').pop()!).markers, 0, 'no end-of-load marker sent');

      // Nothing more is sent. Wait (a safety bound, not a timed assertion) for each partition's
      // watermark to reach its latest event time, for every token event to be in a chunk and for
      // the samples shards (each kind is a topic of its own, so its files may land after the others').
      const end = Date.now() + 240_000;
      let status = '';
      let coverage = { events: 0, lost: -1, extra: 0, duplicateChunks: 0, gaps: 0 };
      let latest = new Map<number, number>();
      for (;;) {
        assert.ok(!exited, `the stream keeps running; its stderr ends: ${stream.stderr().slice(-1500)}`);
        if (shardFiles('events') > 0) {
          const rows = await sql<{ p: number; t: number }>(`SELECT CAST(regexp_extract(filename, '-p(\\d+)-', 1) AS INTEGER) AS p, CAST(epoch_ms(max(time)) AS DOUBLE) AS t
            FROM read_parquet(${lit(path.join(out, 'events/*.parquet'))}, filename = true) GROUP BY 1`);
          latest = new Map(rows.map((r) => [r.p, r.t]));
          status = medrep(['status', ...kafkaArgs]).stdout;
          const wm = statusWatermarks(status, prefix);
          if (latest.size === PARTITIONS && [...latest].every(([p, t]) => wm.get(p) === t) && shardFiles('pretrain') > 0 && shardFiles('samples') > 0) {
            coverage = await chunkCoverage(out);
            if (coverage.lost === 0) break;
          }
        }
        if (Date.now() > end) assert.fail(`not reached: watermarks at the latest event times and every event in a chunk, samples shards written. files ${JSON.stringify((['events', 'pretrain', 'samples'] as const).map((k) => `${k} ${shardFiles(k)}`))}, latest ${JSON.stringify([...latest])}, coverage ${JSON.stringify(coverage)}, status:\n${status}\nstderr ends: ${stream.stderr().slice(-1500)}`);
        await sleep(1000);
      }
      assert.ok(coverage.events > 0);
      assert.deepEqual([coverage.extra, coverage.duplicateChunks, coverage.gaps], [0, 0, 0], 'each event in exactly one chunk, chunks numbered 0..k-1');
      // Labels whose decision time the final watermark passed were emitted.
      const [samples] = await sql<{ n: bigint }>(`SELECT count(*) AS n FROM read_parquet(${lit(path.join(out, 'samples/*/*.parquet'))})`);
      assert.ok(Number(samples.n) > 0, 'samples reached the shards');
      assert.match(stream.stderr(), /\[medrep trajectory\] .* watermarks \[0:\d{4}-\S+ 1:\d{4}-\S+\] stage \d{4}-/, 'the health line shows the watermarks');
    } finally {
      stream.child.kill('SIGTERM');
    }
    const r = await stream.done;
    assert.equal(r.status, EXIT.stopped, r.stderr.slice(-1500));
  });
});
