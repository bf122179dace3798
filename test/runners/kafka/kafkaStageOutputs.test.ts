// A stage whose transform yields its outputs (a generator) against the real broker: requests go
// out inside the transaction while it yields; when it throws after some went out, that transaction
// is aborted and the chunk is run again message by message, so the read_committed output holds
// every good message's outputs exactly once and the bad message is in the dead-letter topic.
import { strict as assert } from 'node:assert';
import { Kafka } from 'kafkajs';
import { DLQ_HEADERS } from '../../../runners/kafka/deadLetter';
import { OutputMessage, StageMessage, StageWorker } from '../../../runners/kafka/stage';
import { ensureTopics, TopicNames } from '../../../runners/kafka/topics';
import { readAll, testKafka, uniquePrefix } from '../../helpers/kafka';

const PER_MESSAGE = 700;

async function setUp(kafka: Kafka, names: TopicNames, input: string, output: string, values: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, [input, output, names.dlq].map((topic) => ({ topic, numPartitions: 1, configs: {} })));
  } finally {
    await admin.disconnect();
  }
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic: input, messages: values.map((value, i) => ({ key: `k${i}`, value })), acks: -1 });
  await producer.disconnect();
}

describe('kafka stage with outputs from a generator (real broker)', function () {
  this.timeout(120_000);

  it('sends while it yields; a throw after requests went out aborts them and dead-letters only the bad message', async () => {
    const kafka = testKafka('stage-outputs');
    const names = new TopicNames(uniquePrefix());
    const input = names.omop('gen_in');
    const output = names.omop('gen_out');
    const values = ['a', 'b', 'bad', 'c', 'd'];
    await setUp(kafka, names, input, output, values);
    let wholeChunkTries = 0;
    function* outputsOf(messages: StageMessage[]): Generator<OutputMessage> {
      if (messages.length > 1) wholeChunkTries++;
      for (const m of messages) {
        const v = m.value!.toString();
        // 700 outputs per message: the first 1000 fill a request, which goes out before the bad one throws.
        for (let j = 0; j < PER_MESSAGE; j++) {
          if (v === 'bad' && j === 10) throw new Error('cannot transform "bad"');
          yield { topic: output, key: m.key, value: `${v}|${j}` };
        }
      }
    }
    const worker = new StageWorker({
      kafka, names, stage: 'gen', inputTopics: [input], transform: (messages) => outputsOf(messages),
      exitWhenIdleMs: 1500, sessionTimeoutMs: 6000, healthIntervalMs: 0, handleSignals: false, log: () => undefined,
    });
    await worker.start();
    const summary = await worker.done;
    assert.equal(summary.reason, 'idle');
    assert.equal(summary.consumed, 5);
    assert.equal(summary.deadLettered, 1);
    assert.equal(summary.produced, 4 * PER_MESSAGE, 'the outputs of the four good messages');
    assert.ok(wholeChunkTries >= 1, 'the whole chunk was tried first');

    const out = (await readAll(kafka, output)).map((m) => m.value!);
    const expected = ['a', 'b', 'c', 'd'].flatMap((v) => Array.from({ length: PER_MESSAGE }, (_, j) => `${v}|${j}`));
    assert.deepEqual(out, expected, 'read_committed: every good output once, in order; nothing of the bad message');
    const raw = await readAll(kafka, output, true);
    assert.ok(raw.length > out.length, 'the aborted try had sent requests (hidden from read_committed)');
    const dlq = await readAll(kafka, names.dlq);
    assert.equal(dlq.length, 1);
    assert.equal(dlq[0].value, 'bad');
    assert.match(dlq[0].headers[DLQ_HEADERS.reason], /^transform-error: cannot transform "bad"/);
  });
});
