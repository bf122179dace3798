// Scale-out on a real broker: a second `medrep stream` process that joins while the first is
// inside long batches of all 6 partitions gets its share of every stage's partitions (it neither
// waits idle with none nor leaves), and the two processes' shards equal runLocal's.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { silentLogger } from '../../../common/progress';
import { runStream } from '../../../runners/kafka/streamRunner';
import { runStreamWorker } from '../../helpers/kafka';
import { assertSameRows } from '../../helpers/streamCompare';
import { shareShortfall } from '../../../runners/kafka/groupShare';
import { producedSyntheticLoad } from '../../helpers/syntheticLoad';

const PARTITIONS = 6;

interface WorkerRun { code: number | null; stderr: string; consumed: Record<string, number> }

/** A stream worker with its stage log on; its last stdout line is what each stage consumed. */
async function runWorker(env: Record<string, string>): Promise<WorkerRun> {
  const { code, stderr, stdout } = await runStreamWorker({ ...env, MEDREP_LOG: '1' }, 240_000);
  const last = stdout.trim().split('\n').pop() ?? '';
  return { code, stderr, consumed: last.startsWith('{') ? (JSON.parse(last) as Record<string, number>) : {} };
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kafka runner scale-out: two workers on 6 partitions (real broker)', function () {
  this.timeout(360_000);

  it('a worker joining while the first is inside long batches gets partitions of every stage; the shards equal runLocal', async () => {
    const { omop, local, kafka, client, out, workerEnv } = await producedSyntheticLoad('stream-scale', 120, 21, PARTITIONS);
    const env = {
      ...workerEnv,
      // Small transactions that each take 150 ms: the first worker's batches are long when the second joins.
      MEDREP_TXN_SIZE: '5', MEDREP_SLOW_MS: '150', MEDREP_IDLE_MS: '3000',
    };
    const first = runWorker(env);
    await delay(6000);
    const [a, b] = await Promise.all([first, runWorker(env)]);
    assert.equal(a.code, 0, a.stderr.slice(-2000));
    assert.equal(b.code, 0, b.stderr.slice(-2000));
    for (const [name, w] of [['first', a], ['second', b]] as const) {
      for (const stage of ['canonicalize', 'trajectory', 'sink']) {
        assert.ok((w.consumed[stage] ?? 0) > 0, `the ${name} worker's ${stage} consumed messages: ${JSON.stringify([a.consumed, b.consumed])}`);
      }
    }
    // A last pass finds every group drained, then writes the manifest from the shards on disk.
    const s = await runStream({
      kafka, client, out, vocab: omop, artifacts: path.join(local.out, 'artifacts'), exitWhenIdleMs: 1500, healthIntervalMs: 0,
      handleSignals: false, log: silentLogger, meds: false,
    });
    assert.equal(s.stages.canonicalize.consumed, 0, 'the two workers consumed everything');
    await assertSameRows(local.out, out);
  });
});

describe('a worker with its partitions consumed leaves only with its share of a stable group', () => {
  const share = (state: string, members: number, partitions = 6) => ({ state, members, fairShare: Math.floor(partitions / members) });

  it('waits while the group rebalances, even holding partitions', () => {
    assert.deepEqual(shareShortfall(share('PreparingRebalance', 2), 3), { wait: 'group preparingrebalance' });
    assert.deepEqual(shareShortfall(share('CompletingRebalance', 1), 6), { wait: 'group completingrebalance' });
  });

  it('rejoins holding fewer partitions than the fewest a member is given', () => {
    assert.deepEqual(shareShortfall(share('Stable', 2), 0), { rejoin: '0 partitions of a fair share of 3 (2 members)' });
    assert.deepEqual(shareShortfall(share('Stable', 4), 0), { rejoin: '0 partitions of a fair share of 1 (4 members)' });
  });

  it('leaves with its share, and with none when the group has more members than partitions', () => {
    assert.equal(shareShortfall(share('Stable', 2), 3), null);
    assert.equal(shareShortfall(share('Stable', 4), 1), null);
    assert.equal(shareShortfall(share('Stable', 7), 0), null);
  });
});
