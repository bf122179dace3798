// The Kafka sink's shard rolling, without a broker: the sink transform is driven as the stage
// worker drives it (chunks of one partition, a transaction per chunk that commits the sink's
// store writes and the offset it asks for, or aborts on a crash). Shards close at the row, byte
// and log-time bounds and at the end of a load (every table's marker, however the tables
// interleave); a crash after any transaction and a restart from the committed offset, read in
// other chunks, leave the same files with the same bytes.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChangelogStore } from '../../../runners/kafka/stateStore';
import { ShardBounds } from '../../../runners/kafka/shardRoll';
import { parseShardFileName, shardSinkTransform, SINK_LOADS_STORE, SinkTopic } from '../../../runners/kafka/shardSink';
import { StageContext, StageMessage, StageTransform } from '../../../runners/kafka/stage';
import { EventsBatchValue, LOAD_TABLES, StreamValue } from '../../../runners/kafka/streamValues';
import { encodeStreamValue } from '../../../runners/kafka/streamCodec';
import { sha256 } from '../../../transforms/hashing';
import { prng } from '../../helpers/syntheticOmop';
import { lit, sql, tempDir } from '../../helpers';

const TOPIC = 'medrep.events';
const EVENT_TABLES = LOAD_TABLES.filter((t) => t !== 'person');
let nextRow = 1;

function events(table: string, rows: number, person = 7): EventsBatchValue {
  const ids = Array.from({ length: rows }, () => nextRow++);
  return {
    k: 'events', table, versions: { deciles: 'd', vocabulary: 'v' },
    personId: ids.map(() => person), timeMs: ids.map((i) => 1_600_000_000_000 + i * 60_000), conceptId: ids.map(() => 3004410), sourceConceptId: ids.map(() => 0), decile: ids.map(() => -1),
    value: ids.map(() => null), unit: ids.map(() => null), visitId: ids.map(() => null), rowId: ids, row: ids,
    givenConceptId: ids.map(() => 3004410), startDateMs: ids.map(() => null), endDateMs: ids.map(() => null),
  };
}

const end = (table: string): StreamValue => ({ k: 'end', table, watermark: null });

/** Offset of the i-th message: a transaction's commit marker takes an offset after every third. */
const o = (i: number) => i + Math.floor(i / 3);

/** Messages of partition 0 from offset 0; timestamps 1 s apart unless given. */
function messages(values: StreamValue[], timestamps?: number[]): StageMessage[] {
  return values.map((v, i) => ({
    topic: TOPIC, partition: 0, offset: String(o(i)), timestamp: String(timestamps?.[i] ?? 1_700_000_000_000 + i * 1000),
    key: null, ...encodeStreamValue(v),
  }));
}

const sinkOf = (bounds: Partial<ShardBounds>): SinkTopic => ({
  topic: TOPIC, kind: 'events', dir: 'events', bounds: { rows: 1_000_000, bytes: 1e12, maxAgeMs: 0, ...bounds }, loadTables: LOAD_TABLES,
});

/** One chunk through the sink transform, as the stage worker runs it; returns the offset it asks to commit through. */
function transformChunk(transform: StageTransform, batch: StageMessage[], store: ChangelogStore<unknown>): bigint {
  let next = BigInt(batch[batch.length - 1].offset) + 1n;
  const ctx = {
    topic: TOPIC, partition: 0, store: () => store.view(0),
    commitThrough: (o: string) => (next = BigInt(o)),
    rowsRead: () => undefined,
  } as unknown as StageContext;
  void transform(batch, ctx);
  return next;
}

/** A partition as the stage worker keeps it: the sink's store (committed state survives a crash) and the committed offset. */
class Partition {
  readonly store = new ChangelogStore<unknown>(SINK_LOADS_STORE, 'unused');
  committed = 0;

  /**
   * A worker's life: a fresh transform reads from the committed offset in chunks of `chunk`
   * messages; with `crashAfter` it dies after that many transformed chunks, before the last commits.
   */
  run(out: string, sink: SinkTopic, all: StageMessage[], chunk: number, crashAfter = Infinity): void {
    const transform = shardSinkTransform(out, [sink]);
    let chunks = 0;
    // The consumer starts at the committed offset: the first message there or after it.
    for (let i = all.findIndex((m) => Number(m.offset) >= this.committed); i >= 0 && i < all.length; ) {
      const batch = all.slice(i, i + chunk);
      const next = transformChunk(transform, batch, this.store);
      if (++chunks === crashAfter) {
        this.store.abortPending(0);
        return;
      }
      this.store.commitPending(0);
      this.committed = Number(next);
      i += batch.length;
    }
  }
}

/** Shard files under OUT/events: name -> sha256. */
function shards(out: string): Record<string, string> {
  const dir = path.join(out, 'events');
  if (!fs.existsSync(dir)) return {};
  return Object.fromEntries(fs.readdirSync(dir).sort().map((f) => [f, sha256(fs.readFileSync(path.join(dir, f)))]));
}

/** The shards' first and last offsets. */
const ranges = (out: string) => Object.keys(shards(out)).map((f) => {
  const r = parseShardFileName(f)!;
  return [Number(r.from), Number(r.to)];
});
/** Offset ranges of message index ranges. */
const at = (list: number[][]) => list.map(([a, b]) => [o(a), o(b)]);
/** The offset after the last of n messages: all consumed, nothing pending. */
const after = (n: number) => o(n - 1) + 1;

/**
 * Three loads in random interleavings: each table's marker comes after its own rows, tables run
 * ahead of each other into the next load; log time with gaps, so every bound fires.
 */
function threeLoads(seed: number): StageMessage[] {
  const rand = prng(seed);
  const values: StreamValue[] = [];
  const timestamps: number[] = [];
  let t = 1_700_000_000_000;
  const push = (v: StreamValue) => {
    values.push(v);
    t += rand() < 0.05 ? 20_000 : Math.floor(rand() * 500);
    timestamps.push(t);
  };
  const sent = new Map<string, number>(LOAD_TABLES.map((x) => [x, 0]));
  for (let load = 1; load <= 3; load++) {
    for (let i = 0; i < 60; i++) {
      push(events(EVENT_TABLES[Math.floor(rand() * EVENT_TABLES.length)], 1 + Math.floor(rand() * 40), Math.floor(rand() * 5)));
      // A table's marker of this load, now and then (each at most once per load).
      const table = LOAD_TABLES[Math.floor(rand() * LOAD_TABLES.length)];
      if (rand() < 0.08 && sent.get(table)! < load) {
        push(end(table));
        sent.set(table, load);
      }
    }
    for (const table of LOAD_TABLES) {
      if (sent.get(table)! < load) {
        push(end(table));
        sent.set(table, load);
      }
    }
  }
  return messages(values, timestamps);
}

describe('kafka sink: shards roll by rows, bytes, log time and load end, the same after a restart', () => {
  it('closes at the end of a load, when every table sent its marker, not at each marker; a table running ahead closes nothing', async () => {
    const values: StreamValue[] = [
      events('measurement', 300), // 0
      end('measurement'), // 1
      events('condition_occurrence', 300), // 2
      ...['person', 'visit_occurrence', 'condition_occurrence', 'drug_exposure', 'procedure_occurrence'].map(end), // 3..7
      events('measurement', 200), // 8: the next load's rows, before death's first marker
      end('measurement'), // 9: measurement's second marker
      end('death'), // 10: every table sent its first marker: load 1 ends
      events('visit_occurrence', 100), // 11
      ...['person', 'visit_occurrence', 'condition_occurrence', 'drug_exposure', 'procedure_occurrence', 'death'].map(end), // 12..17: load 2 ends
    ];
    const out = tempDir('sink-load');
    const part = new Partition();
    part.run(out, sinkOf({}), messages(values), 4);
    assert.deepEqual(ranges(out), at([[0, 10], [11, 17]]));
    assert.equal(part.committed, after(18), 'everything durable');
    const [n] = await sql<{ n: number }>(`SELECT CAST(count(*) AS DOUBLE) AS n FROM read_parquet(${lit(path.join(out, 'events/*.parquet'))})`);
    assert.equal(n.n, 900);
  });

  it('closes after the message that reaches the rows or bytes bound, and before the message written the time bound after its first', () => {
    const values = Array.from({ length: 10 }, (_, i) => events(EVENT_TABLES[i % EVENT_TABLES.length], 100));
    const byRows = tempDir('sink-rows');
    new Partition().run(byRows, sinkOf({ rows: 250 }), messages(values), 4);
    assert.deepEqual(ranges(byRows), at([[0, 2], [3, 5], [6, 8]]), 'three messages of 100 rows reach 250');

    // Messages of one size: a bound of 2.5 messages is reached by the third.
    const same = messages(Array.from({ length: 10 }, () => values[0]));
    const byBytes = tempDir('sink-bytes');
    new Partition().run(byBytes, sinkOf({ bytes: same[0].value!.length * 2.5 }), same, 4);
    assert.deepEqual(ranges(byBytes), at([[0, 2], [3, 5], [6, 8]]));

    // Written at 0, 1, 2, ... 9 s (log time): a 2.5 s bound closes before the message at 3 s, 6 s, 9 s.
    const byTime = tempDir('sink-time');
    const part = new Partition();
    part.run(byTime, sinkOf({ maxAgeMs: 2500 }), messages(values), 4);
    assert.deepEqual(ranges(byTime), at([[0, 2], [3, 5], [6, 8]]));
    // The open shard (the tenth message) waits in memory for a later message or marker: not committed.
    assert.equal(part.committed, o(9));
  });

  it('rows without any end marker (a foreign producer): shards only at the bounds, the rest stays uncommitted', () => {
    const values = Array.from({ length: 6 }, () => events('drug_exposure', 50));
    const out = tempDir('sink-nomarkers');
    const part = new Partition();
    part.run(out, sinkOf({ rows: 120 }), messages(values), 2);
    assert.deepEqual(ranges(out), at([[0, 2], [3, 5]]));
    assert.equal(part.committed, after(6));
    const tail = tempDir('sink-nomarkers-tail');
    const p2 = new Partition();
    p2.run(tail, sinkOf({}), messages(values), 2);
    assert.deepEqual(ranges(tail), []);
    assert.equal(p2.committed, 0, 'nothing durable, nothing committed');
  });

  it('a crash after any transaction, then a restart from the committed offset in other chunks, leaves the same files with the same bytes', () => {
    const all = threeLoads(11);
    const sink = sinkOf({ rows: 400, bytes: 60_000, maxAgeMs: 15_000 });
    const reference = tempDir('sink-ref');
    const ref = new Partition();
    ref.run(reference, sink, all, 1000);
    const expected = shards(reference);
    assert.ok(Object.keys(expected).length >= 8, `several shards (${Object.keys(expected).length})`);
    assert.equal(ref.committed, after(all.length));

    const chunks = Math.ceil(all.length / 7);
    for (let crashAfter = 1; crashAfter < chunks; crashAfter += 2) {
      const out = tempDir(`sink-crash-${crashAfter}`);
      const part = new Partition();
      part.run(out, sink, all, 7, crashAfter);
      assert.ok(part.committed < after(all.length), 'crashed mid-load');
      // What the dead worker wrote past the committed offset is gone too (it died before the rename,
      // say): the restart must rebuild it, not find it.
      for (const f of Object.keys(shards(out))) if (Number(parseShardFileName(f)!.from) >= part.committed) fs.rmSync(path.join(out, 'events', f));
      part.run(out, sink, all, 5);
      assert.equal(part.committed, after(all.length));
      assert.deepEqual(shards(out), expected, `crash after chunk ${crashAfter}: same shard files, same bytes`);
    }
  });

  it('two workers passing a partition back and forth, with fenced and failed transactions whose files stay on disk, leave only the files of one uninterrupted run', () => {
    const all = threeLoads(23);
    const sink = sinkOf({ rows: 400, bytes: 60_000, maxAgeMs: 15_000 });
    const reference = tempDir('sink-two-ref');
    new Partition().run(reference, sink, all, 1000);
    const expected = shards(reference);
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const out = tempDir(`sink-two-${seed}`);
      const steps = shareBetweenWorkers(out, sink, all, prng(seed));
      assert.ok(steps.fenced > 0 && steps.failed > 0 && steps.takes > 4, `schedule ${seed} had fenced and failed transactions: ${JSON.stringify(steps)}`);
      // Every file on disk, those of the transactions that never committed included.
      assert.deepEqual(shards(out), expected, `schedule ${seed}: the files of one run, no other`);
    }
  });
});

/**
 * Two sink workers (each its own transform, with its memory between chunks, and its own copy of
 * the store) share one partition as a consumer group would: a worker that takes the partition
 * restores the committed store, reads from the committed offset and fences the other (whose
 * transactions then abort, after its transform wrote what it closed); a transaction may also fail
 * on its own, its outcome unknown to the worker (committed or not), and the worker takes the
 * partition again. Runs until the end is committed.
 */
function shareBetweenWorkers(out: string, sink: SinkTopic, all: StageMessage[], rand: () => number) {
  const durable = { entries: new Map<string, unknown>(), committed: 0, epoch: 0 };
  const steps = { takes: 0, commits: 0, fenced: 0, failed: 0 };
  const workers = [0, 1].map((w) => ({
    transform: shardSinkTransform(out, [sink]),
    store: new ChangelogStore<unknown>(SINK_LOADS_STORE, `unused-${w}`),
    epoch: -1,
    /** Where its consumer reads next; null: not ready (restore and seek first). */
    position: null as number | null,
  }));
  const end = after(all.length);
  for (let step = 0; durable.committed < end; step++) {
    assert.ok(step < 10_000, 'the schedule ends');
    const w = workers[Math.floor(rand() * 2)];
    if (w.position === null || rand() < 0.04) {
      w.store.drop(0);
      for (const [k, v] of durable.entries) w.store.set(0, k, v);
      w.store.commitPending(0);
      w.position = durable.committed;
      w.epoch = ++durable.epoch;
      steps.takes++;
      continue;
    }
    const from = all.findIndex((m) => Number(m.offset) >= w.position!);
    if (from < 0) continue;
    const batch = all.slice(from, from + 1 + Math.floor(rand() * 9));
    const next = transformChunk(w.transform, batch, w.store);
    // A failed transaction (one in ten) aborted, or committed without the worker knowing.
    const outcome = w.epoch !== durable.epoch ? 'fenced' : rand() >= 0.1 ? 'committed' : rand() < 0.5 ? 'committed unknown' : 'aborted';
    if (outcome === 'fenced' || outcome === 'aborted') w.store.abortPending(0);
    else {
      w.store.commitPending(0);
      durable.entries = new Map(w.store.entries(0));
      durable.committed = Number(next);
      steps.commits++;
    }
    if (outcome !== 'fenced' && outcome !== 'committed') steps.failed++;
    if (outcome === 'fenced') steps.fenced++;
    // After a failure the worker starts over from the broker; after a commit it reads on.
    w.position = outcome === 'committed' ? Number(batch[batch.length - 1].offset) + 1 : null;
  }
  return steps;
}
