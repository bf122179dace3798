// The append-only state store of the trajectory stage: pending appends and prefix drops roll back
// on abort and to a save point, the changelog carries only deltas (split when large), tombstones
// of dropped deltas and a drop record, and a store rebuilt from a real compacted changelog holds
// exactly the committed lists (with prefix drops: the same view and offsets).
import { strict as assert } from 'node:assert';
import type { Kafka } from 'kafkajs';
import { AppendLogStore } from '../../../runners/kafka/appendStore';
import { changelogTopicSpec, ensureTopics } from '../../../runners/kafka/topics';
import { testKafka, uniquePrefix } from '../../helpers/kafka';

/**
 * What a new owner does before restoring (partitionTask.ensureReady): initialise the writer's
 * transactional id, which waits for its last commit's markers. Until they are written, the
 * committed transaction lies beyond the changelog's last stable offset: not yet readable.
 */
async function takeOver(kafka: Kafka, transactionalId: string): Promise<void> {
  const owner = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await owner.connect();
  try {
    await (await owner.transaction()).abort();
  } finally {
    await owner.disconnect();
  }
}

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

  it('drops a prefix: the view and its base move, an abort or a save point puts the values back', () => {
    const store = new AppendLogStore('events', 'unused');
    const view = store.view(0);
    view.append('7', [1, 2, 3, 4]);
    store.changelogMessages(0);
    store.commitPending(0);
    view.dropPrefix('7', 2);
    view.append('7', [5]);
    assert.deepEqual(view.get('7'), [3, 4, 5]);
    assert.equal(view.base('7'), 2, 'two values dropped before the first one kept');
    assert.deepEqual(store.entries(0), new Map([['7', [1, 2, 3, 4]]]), 'the committed list until the transaction commits');
    store.abortPending(0);
    assert.deepEqual(view.get('7'), [1, 2, 3, 4]);
    assert.equal(view.base('7'), 0);

    view.dropPrefix('7', 1);
    const point = store.savePending(0);
    view.dropPrefix('7', 2);
    view.append('7', [6]);
    store.restorePending(0, point);
    assert.deepEqual(view.get('7'), [2, 3, 4], 'back to the save point: one value dropped');
    assert.equal(view.base('7'), 1);
    assert.throws(() => view.dropPrefix('7', 4), /cannot drop 4 values of key 7 \(it holds 3\)/);
    assert.throws(() => view.dropPrefix('8', 1), /cannot drop 1 values of key 8 \(it holds 0\)/);
  });

  it('a prefix drop in the changelog: tombstones for the deltas wholly dropped, one drop record with the skip and base', () => {
    const store = new AppendLogStore('events', 'unused');
    const view = store.view(1);
    const commit = () => {
      const m = store.changelogMessages(1);
      store.commitPending(1);
      return m.map((x) => ({ key: String(x.key), value: x.value === null ? null : JSON.parse(String(x.value)) }));
    };
    view.append('9', [1, 2]);
    const [d1] = commit();
    view.append('9', [3, 4, 5]);
    const [d2] = commit();
    view.dropPrefix('9', 3);
    view.append('9', [6]);
    const m = commit();
    assert.equal(m.length, 3);
    assert.match(m[0].key, /^9@[0-9a-f]{12}\./);
    assert.deepEqual(m[0].value, [6], 'the new delta');
    assert.deepEqual(m[1], { key: d1.key, value: null }, 'the first delta lies wholly in the dropped prefix');
    assert.deepEqual(m[2], { key: '9@drop', value: { skip: 1, base: 3 } }, 'skip one value of the second delta');
    assert.notEqual(d2.key, d1.key);
    // Values appended and dropped in the same transaction never reach the changelog.
    view.append('9', [7, 8]);
    view.dropPrefix('9', 5);
    const all = commit();
    assert.deepEqual(all.filter((x) => x.value !== null && Array.isArray(x.value)), []);
    assert.deepEqual(all.find((x) => x.key === '9@drop')!.value, { skip: 0, base: 8 });
    assert.deepEqual(view.get('9'), []);
    assert.equal(view.base('9'), 8);
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
    await takeOver(kafka, `${topic}.writer`);
    const restored = new AppendLogStore('events', topic);
    const records = await restored.restore(kafka, [0, 1]);
    assert.equal(records, 4 * 2 * 3, 'one delta per key and committed transaction');
    for (const p of [0, 1]) {
      assert.deepEqual(restored.entries(p), expected.get(p), `partition ${p}`);
      assert.deepEqual(restored.entries(p), writer.entries(p), `partition ${p}: the writer's own state`);
    }
  });

  it('after prefix drops (some aborted, some with appends in the same transaction) a restored store has the same view and offsets, and drops further on', async () => {
    const kafka = testKafka('medrep-append-store-test');
    const topic = `${uniquePrefix()}events-changelog`;
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [changelogTopicSpec(topic, 1)]);
    await admin.disconnect();
    const producer = kafka.producer({ transactionalId: `${topic}.writer`, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const writer = new AppendLogStore('events', topic);
    const view = writer.view(0);
    // What a reader of every value ever appended sees, and how many of them were dropped.
    const expected = new Map<string, { all: number[]; base: number }>();
    const step = async (t: number, abort: boolean) => {
      const plan = new Map<string, { all: number[]; base: number }>();
      for (const key of ['1', '2', '3']) {
        const e = expected.get(key) ?? { all: [], base: 0 };
        const next = { all: [...e.all], base: e.base };
        const values = Array.from({ length: 3 + ((t + Number(key)) % 4) }, (_, i) => t * 100 + i);
        view.append(key, values);
        next.all.push(...values);
        // Every other transaction drops all but the last four values of key 1 and half of key 2's.
        const kept = next.all.length - next.base;
        const drop = t % 2 === 1 ? (key === '1' ? Math.max(0, kept - 4) : key === '2' ? Math.floor(kept / 2) : 0) : 0;
        view.dropPrefix(key, drop);
        next.base += drop;
        plan.set(key, next);
      }
      const txn = await producer.transaction();
      await txn.send({ topic, messages: writer.changelogMessages(0) });
      if (abort) {
        await txn.abort();
        writer.abortPending(0);
      } else {
        await txn.commit();
        writer.commitPending(0);
        for (const [k, v] of plan) expected.set(k, v);
      }
    };
    try {
      for (let t = 0; t < 7; t++) await step(t, t === 3);
    } finally {
      await producer.disconnect();
    }
    await takeOver(kafka, `${topic}.writer`);
    const restored = new AppendLogStore('events', topic);
    await restored.restore(kafka, [0]);
    const rv = restored.view(0);
    for (const [key, e] of expected) {
      assert.deepEqual(rv.get(key), e.all.slice(e.base), `key ${key}: the kept values`);
      assert.equal(rv.base(key), e.base, `key ${key}: the values dropped`);
      assert.deepEqual(rv.get(key), view.get(key), `key ${key}: the writer's own view`);
    }
    assert.ok(expected.get('1')!.base > 0 && expected.get('2')!.base > 0, 'keys 1 and 2 were pruned');
    const one = expected.get('1')!;
    assert.deepEqual(restored.sizes(0).get('1'), { kept: one.all.length - one.base, base: one.base });
    // The restored store knows its live deltas: a further drop and a second restore agree.
    const second = kafka.producer({ transactionalId: `${topic}.writer2`, idempotent: true, maxInFlightRequests: 1 });
    await second.connect();
    try {
      rv.dropPrefix('2', rv.get('2')!.length - 1);
      rv.append('3', [999]);
      const txn = await second.transaction();
      await txn.send({ topic, messages: restored.changelogMessages(0) });
      await txn.commit();
      restored.commitPending(0);
    } finally {
      await second.disconnect();
    }
    await takeOver(kafka, `${topic}.writer2`);
    const again = new AppendLogStore('events', topic);
    await again.restore(kafka, [0]);
    for (const key of ['1', '2', '3']) {
      assert.deepEqual(again.view(0).get(key), rv.get(key), `key ${key} after the second writer`);
      assert.equal(again.view(0).base(key), rv.base(key));
    }
    assert.equal(again.view(0).get('2')!.length, 1);
  });
});
