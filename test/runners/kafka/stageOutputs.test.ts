// A stage's outputs given as an iterable go to the broker in bounded requests while the transform
// still yields (a large output is never held whole), per topic in order and complete; arrays go
// out in the same requests as before.
import { strict as assert } from 'node:assert';
import { Message } from 'kafkajs';
import { OutputSender, sendSlices } from '../../../runners/kafka/outputSender';
import { OutputMessage, whileHeartbeating } from '../../../runners/kafka/stage';

/** A transaction that records each request: topic and messages. */
function recordingTxn() {
  const requests: Array<{ topic: string; messages: Message[] }> = [];
  return { requests, txn: { send: async (r: { topic: string; messages: Message[] }) => (requests.push({ topic: r.topic, messages: r.messages }), undefined) } };
}

const sentCount = (requests: Array<{ messages: Message[] }>) => requests.reduce((n, r) => n + r.messages.length, 0);

describe('stage outputs sent as they are iterated', () => {
  it('a generator: requests go out while it yields, each bounded, per topic in order, nothing lost', async () => {
    const { requests, txn } = recordingTxn();
    const sender = new OutputSender(txn as never);
    const yielded: Array<{ at: number; sent: number }> = [];
    function* outputs(): Generator<OutputMessage> {
      for (let i = 0; i < 5000; i++) {
        yielded.push({ at: i, sent: sentCount(requests) });
        yield { topic: i % 5 === 0 ? 'b' : 'a', value: String(i), rows: 2 };
      }
    }
    await sender.addOutputs(outputs());
    await sender.flush();
    assert.equal(sender.outputs, 5000);
    assert.equal(sender.rows, 10000);
    assert.ok(requests.every((r) => r.messages.length <= 1000), 'at most 1000 messages per request');
    for (const topic of ['a', 'b']) {
      const got = requests.filter((r) => r.topic === topic).flatMap((r) => r.messages.map((m) => Number(m.value)));
      const want = Array.from({ length: 5000 }, (_, i) => i).filter((i) => (i % 5 === 0) === (topic === 'b'));
      assert.deepEqual(got, want, `topic ${topic}: every message once, in order`);
    }
    // Bounded: while the generator yields, no more than one open request per topic waits unsent.
    for (const y of yielded) assert.ok(y.at - y.sent <= 2 * 1000, `at message ${y.at} only ${y.sent} were sent`);
  });

  it('heartbeats as outputs are added, before any request has filled (a long close keeps its group membership)', async () => {
    const { requests, txn } = recordingTxn();
    const beats: number[] = [];
    // keepAliveMs 0: every chance to heartbeat is taken, so the count shows where the chances are.
    const sender = new OutputSender(txn as never, 'none', async () => void beats.push(sentCount(requests)), 0);
    function* outputs(): Generator<OutputMessage> {
      for (let i = 0; i < 900; i++) yield { topic: 'a', value: String(i) };
    }
    await sender.addOutputs(outputs());
    assert.equal(requests.length, 0, 'under 1000 messages: no request has gone out yet');
    assert.equal(beats.length, 900, 'one heartbeat chance per output added');
    await sender.flush();
    assert.equal(sentCount(requests), 900);
    assert.ok(beats.length >= 901, 'and after the request');
  });

  it('an async iterable and an array give the same requests as sendSlices', async () => {
    const big = 'x'.repeat(6 * 1024 * 1024);
    const values = [...Array.from({ length: 2500 }, (_, i) => String(i)), big, big, big, 'tail'];
    const list: OutputMessage[] = values.map((value) => ({ topic: 't', key: null, value }));
    async function* later(): AsyncGenerator<OutputMessage> {
      for (const o of list) yield await Promise.resolve(o);
    }
    const expected = sendSlices(list.map((o) => ({ key: null, value: o.value, headers: undefined, partition: undefined }))).map((s) => s.map((m) => m.value));
    for (const outputs of [list, later()]) {
      const { requests, txn } = recordingTxn();
      const sender = new OutputSender(txn as never);
      await sender.addOutputs(outputs);
      await sender.flush();
      assert.deepEqual(requests.map((r) => r.messages.map((m) => m.value)), expected);
      assert.deepEqual(expected.map((s) => s.length), [1000, 1000, 502, 2]);
    }
  });
});

describe('a long batch keeps the member in its group', () => {
  it('heartbeats every interval while the work runs, through a failing heartbeat, and not after it ends', async () => {
    let beats = 0;
    const heartbeat = async () => {
      beats++;
      if (beats === 2) throw new Error('The group is rebalancing, so a rejoin is needed');
    };
    // The work ends once it has seen four heartbeats, the second of which failed.
    const work = () => new Promise<string>((resolve) => {
      const poll = setInterval(() => beats >= 4 && (clearInterval(poll), resolve('restored')), 5);
    });
    assert.equal(await whileHeartbeating(heartbeat, 20, work), 'restored');
    const atEnd = beats;
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(beats, atEnd, 'no heartbeat after the work');
    await assert.rejects(whileHeartbeating(heartbeat, 20, async () => { throw new Error('restore failed'); }), /restore failed/);
  });
});
