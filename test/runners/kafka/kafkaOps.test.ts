// Kafka operations as an operator sees them, against the real broker (KAFKA_BROKERS): `medrep
// status` on topics no group has consumed and on a drained pipeline, a SIGTERMed `medrep stream`,
// and kafkajs's own log lines at the level they deserve.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { logLevel } from 'kafkajs';
import { generateSynthetic } from '../../../synth';
import { runLocal } from '../../../runners/local/localRunner';
import { silentLogger } from '../../../common/progress';
import { produceOmop } from '../../../runners/kafka/omopLoad';
import { runStream } from '../../../runners/kafka/streamRunner';
import { TopicNames } from '../../../runners/kafka/topics';
import { LOAD_TABLES } from '../../../runners/kafka/streamValues';
import { clientLogLevel, formatClientLog } from '../../../runners/kafka/clientLog';
import { EXIT } from '../../../common/errors';
import { BROKERS, readAll, testKafka, uniquePrefix } from '../../helpers/kafka';
import { kafkaOpts } from '../../helpers/streamCompare';
import { tempDir } from '../../helpers';
import { medrep, medrepAsync } from '../../helpers/cli';

/** The status lines of one group: its own line and its topics' lines below it. */
function groupBlock(lines: string[], group: string): string[] {
  const i = lines.findIndex((l) => l.startsWith(`group ${group} `));
  assert.ok(i >= 0, `status lists ${group}:\n${lines.join('\n')}`);
  let j = i + 1;
  while (j < lines.length && lines[j].startsWith('  ')) j++;
  return lines.slice(i, j);
}

describe('kafka operations (real broker)', function () {
  this.timeout(300_000);
  let omop: string;
  let artifacts: string;
  before(async () => {
    const dir = tempDir('ops');
    omop = path.join(dir, 'omop');
    await generateSynthetic({ persons: 60, seed: 11, out: omop, format: 'parquet', site: 'A' });
    artifacts = path.join((await runLocal({ omop, out: path.join(dir, 'local'), tasks: 'none', meds: false, log: silentLogger })).out, 'artifacts');
  });

  it('status lists every partition of every input topic of a stage no group consumed yet, lag counted from the earliest offset', async () => {
    const prefix = uniquePrefix();
    const names = new TopicNames(prefix);
    const kafka = testKafka();
    await produceOmop({ omop, kafka: kafkaOpts(prefix), client: kafka, partitions: 3, log: silentLogger });
    const r = medrep(['status', '--brokers', BROKERS, '--topic-prefix', prefix]);
    assert.equal(r.status, 0, r.stderr);
    const block = groupBlock(r.stdout.trim().split('\n'), names.group('canonicalize'));
    let messages = 0;
    for (const t of LOAD_TABLES) messages += (await readAll(kafka, names.omop(t))).length;
    assert.ok(messages > 0);
    assert.equal(block[0], `group ${names.group('canonicalize')} not started members=0 lag=${messages}`);
    for (const t of LOAD_TABLES) {
      const line = block.find((l) => l.startsWith(`  ${names.omop(t)}: `));
      assert.ok(line, `${names.omop(t)} listed:\n${block.join('\n')}`);
      const parts = line.slice(line.indexOf(': ') + 2).split(/, (?=p\d)/);
      assert.deepEqual(parts.map((p) => p.split(' ')[0]), ['p0', 'p1', 'p2'], 'every partition, also empty ones');
      for (const p of parts) if (!/ lag 0$/.test(p)) assert.match(p, /^p\d lag [1-9]\d*, nothing committed: from the earliest offset 0$/);
    }
  });

  it('a SIGTERMed stream writes a manifest marked incomplete and exits 5; a later run completes it, and status then says the lag left is transaction markers', async () => {
    const prefix = uniquePrefix();
    const names = new TopicNames(prefix);
    const kafka = testKafka();
    const out = path.join(tempDir('ops-term'), 'out');
    await produceOmop({ omop, kafka: kafkaOpts(prefix), client: kafka, partitions: 3, log: silentLogger });
    const s = medrepAsync([
      'stream', '--brokers', BROKERS, '--topic-prefix', prefix, '--out', out, '--vocab', omop, '--artifacts', artifacts,
      '--tasks', 'none', '--health-interval', '1', '--transaction-size', '5',
    ]);
    // Progress lines come during the stream, not only at its end; stop it once the sink wrote.
    const began = Date.now();
    while (!/\[medrep sink\] rows in [1-9]/.test(s.stderr()) && Date.now() - began < 120_000) await new Promise((r) => setTimeout(r, 200));
    assert.match(s.stderr(), /\[medrep canonicalize\] rows in [\d,]+ \([\d,]+\/s\) out [\d,]+ .* lag [\d,]+ messages/, 'a progress line with rows, rate and lag');
    s.child.kill('SIGTERM');
    const r = await s.done;
    assert.equal(r.status, EXIT.stopped, r.stderr);
    assert.match(r.stderr, /stream: stopped by a signal \(stages canonicalize, trajectory, sink\); the output holds what was committed and its manifest says "complete": false/);
    assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()!).complete, false);
    const partial = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    assert.equal(partial.complete, false);
    assert.ok(!/ ERROR |"level":"ERROR"/.test(r.stderr), 'no kafkajs ERROR lines in a healthy run');
    assert.deepEqual(fs.readdirSync(out).filter((n) => n.startsWith('.medrep-lock.')), [], 'the lock is released');

    // The same pipeline continues its folder without --force, to the end of its input.
    const done = await runStream({
      kafka: kafkaOpts(prefix), client: kafka, out, vocab: omop, artifacts, tasks: 'none', exitWhenIdleMs: 2000, healthIntervalMs: 0, handleSignals: false, log: silentLogger,
    });
    assert.equal(done.complete, true);
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')).complete, true);

    const st = medrep(['status', '--brokers', BROKERS, '--topic-prefix', prefix]);
    assert.equal(st.status, 0, st.stderr);
    const lines = st.stdout.trim().split('\n');
    for (const stage of ['canonicalize', 'trajectory', 'sink']) {
      const block = groupBlock(lines, names.group(stage));
      assert.match(block[0], new RegExp(`^group ${names.group(stage).replace(/\./g, '\\.')} (Empty|not started) members=0 lag=0( \\(and [1-9]\\d* offsets of transaction markers, not messages\\))?$`));
    }
    // The stages write their outputs in transactions: a drained trajectory and sink group is left
    // with commit markers only, and status says so.
    for (const stage of ['trajectory', 'sink']) {
      const block = groupBlock(lines, names.group(stage));
      assert.match(block[0], /lag=0 \(and [1-9]\d* offsets of transaction markers, not messages\)$/);
      assert.ok(block.slice(1).every((l) => /: p\d lag/.test(l)));
      assert.ok(block.slice(1).some((l) => /transaction marker/.test(l)));
    }
  });

  it('kafkajs\'s coordinator churn is an info line; other kafkajs errors are warnings', () => {
    const entry = (level: logLevel, message: string, error?: string) => ({ namespace: 'Connection', level, label: 'ERROR', log: { timestamp: '', logger: 'kafkajs', message, error, groupId: 'g' } });
    const churn = entry(logLevel.ERROR, 'Response GroupCoordinator(key: 10, version: 2)', 'The group coordinator is not available');
    assert.equal(clientLogLevel(churn), 'info');
    assert.equal(formatClientLog(churn), 'kafka Connection: Response GroupCoordinator(key: 10, version: 2) (The group coordinator is not available) groupId=g');
    assert.equal(clientLogLevel(entry(logLevel.ERROR, 'Response Produce(key: 0, version: 7)', 'The request included a message larger than the max message size the server will accept')), 'warn');
    assert.equal(clientLogLevel(entry(logLevel.DEBUG, 'Request Fetch')), null);
  });
});
