// The append-only state store of the trajectory stage: pending appends roll back on abort and to
// a save point, the changelog carries only deltas (split when large), and a store rebuilt from a
// real compacted changelog holds exactly the committed lists.
import { strict as assert } from 'node:assert';
import { AppendLogStore } from '../../../runners/kafka/appendStore';
import { changelogTopicSpec, ensureTopics } from '../../../runners/kafka/topics';
import { testKafka, uniquePrefix } from '../../helpers/kafka';

describe('append-only state store', function () {
  this.timeout(120_000);

  it('keeps committed appends, truncates aborted ones and rolls back to a save point', () => {
    const store = new AppendLogStore('events', 'unused');
    const view = store.view(0);
    view.append('7', [1, 2]);
    store.commitPending(0);
    view.append('7', [3]);
    view.append('8', [4, 5]);
    assert.deepEqual(view.get('7'), [1, 2, 3], 'pending appends are visible to the transform');
    store.abortPending(0);
    assert.deepEqual(view.get('7'), [1, 2]);
    assert.equal(view.get('8'), undefined, 'a key created by an aborted transaction is gone');

    view.append('7', [10]);
    const point = store.savePending(0);
    view.append('7', [11]);
    view.append('9', [12]);
    store.restorePending(0, point);
    assert.deepEqual(view.get('7'), [1, 2, 10], 'back to the save point');
    assert.equal(view.get('9'), undefined);
    // The changelog of the open transaction holds only the delta since the last commit.
    assert.deepEqual(store.changelogMessages(0).map((m) => JSON.parse(String(m.value))), [[10]]);
    store.commitPending(0);
    assert.deepEqual(store.entries(0), new Map([['7', [1, 2, 10]]]));
    assert.deepEqual(store.changelogMessages(0), [], 'nothing pending after the commit');
  });

  it('splits a large delta into bounded messages with distinct keys', () => {
    const store = new AppendLogStore('events', 'unused');
    const values = Array.from({ length: 45_000 }, (_, i) => i);
    store.view(2).append('42', values);
    const messages = store.changelogMessages(2);
    assert.equal(messages.length, 3);
    assert.equal(new Set(messages.map((m) => m.key)).size, 3, 'every delta has its own key, so compaction keeps them all');
    assert.ok(messages.every((m) => String(m.key).startsWith('42@') && m.partition === 2));
    assert.deepEqual(messages.flatMap((m) => JSON.parse(String(m.value)) as number[]), values);
  });

  it('rebuilds the committed lists from a compacted changelog on the real broker', async () => {
    const kafka = testKafka('medrep-append-store-test');
    const topic = `${uniquePrefix()}events-changelog`;
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [changelogTopicSpec(topic, 2)]);
    await admin.disconnect();
    const producer = kafka.producer({ transactionalId: `${topic}.writer`, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const writer = new AppendLogStore('events', topic);
    const expected = new Map<number, Map<string, number[]>>([[0, new Map()], [1, new Map()]]);
    try {
      // Five transactions over two partitions; the fourth is aborted.
      for (let t = 0; t < 5; t++) {
        for (const p of [0, 1]) {
          for (let k = 0; k < 3; k++) {
            const key = String(p * 100 + ((t + k) % 4));
            const delta = [t, k, p];
            writer.view(p).append(key, delta);
            if (t !== 3) {
              const list = expected.get(p)!.get(key) ?? [];
              expected.get(p)!.set(key, [...list, ...delta]);
            }
          }
        }
        const txn = await producer.transaction();
        for (const p of [0, 1]) await txn.send({ topic, messages: writer.changelogMessages(p) });
        if (t === 3) {
          await txn.abort();
          for (const p of [0, 1]) writer.abortPending(p);
        } else {
          await txn.commit();
          for (const p of [0, 1]) writer.commitPending(p);
        }
      }
    } finally {
      await producer.disconnect();
    }
    const restored = new AppendLogStore('events', topic);
    const records = await restored.restore(kafka, [0, 1]);
    assert.equal(records, 4 * 2 * 3, 'one delta per key and committed transaction');
    for (const p of [0, 1]) {
      assert.deepEqual(restored.entries(p), expected.get(p), `partition ${p}`);
      assert.deepEqual(restored.entries(p), writer.entries(p), `partition ${p}: the writer's own state`);
    }
  });
});
