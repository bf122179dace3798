// Where a stage says its partitions stand (health line, `medrep status`, the idle check) comes
// only from batches it processed: a batch it left stale after a seek (a restore moved the
// partition to its committed offset) reports nothing, so a partition another worker consumed
// through its end is not reported behind forever, and the idle check asks the broker for it.
import { strict as assert } from 'node:assert';
import { StageWorker } from '../../../runners/kafka/stage';
import { TopicNames } from '../../../runners/kafka/topics';

const TOPIC = 'medrep.test.position';

/** A worker whose partition tasks do nothing but count what they were asked to run. */
function workerWithoutBroker() {
  const worker = new StageWorker({ kafka: {} as never, names: new TopicNames('position'), stage: 'position', inputTopics: [TOPIC], transform: () => [], log: () => undefined, handleSignals: false });
  const ran: string[][] = [];
  // The broker-facing part (fence, restore, transactions) stands aside: this is about positions.
  (worker as unknown as { tasks: unknown }).tasks = {
    serialized: (_p: number, work: () => Promise<void>) => work(),
    ensureReady: async () => undefined,
    run: async (_t: string, _p: number, chunk: Array<{ offset: string }>) => void ran.push(chunk.map((m) => m.offset)),
  };
  return { worker, ran };
}

/** The batch kafkajs hands eachBatch: `count` messages from `first`, the partition's end at `highWatermark`. */
function batchControl(partition: number, first: number, count: number, highWatermark: number, staleAfterChecks: number) {
  let checks = 0;
  const messages = Array.from({ length: count }, (_, i) => ({ offset: String(first + i), timestamp: '0', key: null, value: Buffer.from('{}'), headers: {} }));
  return {
    batch: { topic: TOPIC, partition, highWatermark: String(highWatermark), messages, lastOffset: () => String(first + count - 1) },
    resolveOffset: () => undefined,
    heartbeat: async () => undefined,
    isRunning: () => true,
    isStale: () => ++checks > staleAfterChecks,
  };
}

const onBatch = (worker: StageWorker, control: ReturnType<typeof batchControl>) =>
  (worker as unknown as { onBatch(c: unknown): Promise<void> }).onBatch(control);

const positionOf = (worker: StageWorker, partition: number) => worker.snapshot().partitions.find((p) => p.partition === partition);

describe('a stage reports positions only from the batches it processed', () => {
  it('a batch stale once its partition is ready reports no position (not its first offset, far behind the end)', async () => {
    const { worker, ran } = workerWithoutBroker();
    await onBatch(worker, batchControl(0, 0, 3, 124, 0));
    assert.deepEqual(ran, [], 'nothing of a stale batch runs');
    assert.equal(positionOf(worker, 0), undefined, 'partition 0: position unknown, not 0 of 124');
  });

  it('a batch that goes stale between transactions leaves its position unknown too', async () => {
    const { worker, ran } = workerWithoutBroker();
    // Fresh at the check after ensureReady, stale at the second transaction's check.
    (worker as unknown as { opts: { maxMessagesPerTransaction: number } }).opts.maxMessagesPerTransaction = 2;
    await onBatch(worker, batchControl(1, 10, 4, 200, 2));
    assert.deepEqual(ran, [['10', '11']], 'the first transaction ran, the second not');
    assert.equal(positionOf(worker, 1), undefined);
  });

  it('a batch processed whole reports the offset after its last message and the lag to the end', async () => {
    const { worker, ran } = workerWithoutBroker();
    await onBatch(worker, batchControl(2, 5, 3, 20, Infinity));
    assert.deepEqual(ran, [['5', '6', '7']]);
    const pos = positionOf(worker, 2)!;
    assert.equal(pos.position, 8n);
    assert.equal(pos.lag, 12n);
  });
});
