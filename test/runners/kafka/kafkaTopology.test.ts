// The Kafka runner's declared topology: every stage reads what a producer or an earlier stage
// writes, the status command's groups and the created changelogs come from it, and the trajectory
// stage ticks (re-checks its watermark by the wall clock) in continuous mode only.
import { strict as assert } from 'node:assert';
import { changelogSpecs, internalTopicSpecs, sourceTopicSpecs, STREAM_STAGES, STREAM_TOPOLOGY, StageEnv, stageInputTopics, stageOptions } from '../../../runners/kafka/topology';
import { streamTopic } from '../../../runners/kafka/streamTopics';
import { TopicNames } from '../../../runners/kafka/topics';
import { WATERMARKS_KEY } from '../../../runners/kafka/continuousTrajectory';
import { WatermarkState } from '../../../runners/kafka/watermarks';
import { silentLogger } from '../../../common/progress';

const names = new TopicNames('p.');
const DAY = 86_400_000;

/** Just what building the trajectory stage reads. */
function env(opts: Partial<StageEnv['opts']>): StageEnv {
  return { names, opts: { kafka: { brokers: ['x:1'], topicPrefix: 'p.' }, out: '/nowhere', vocab: '/nowhere', ...opts }, versions: { deciles: 'd', vocabulary: 'v' }, tasks: [], log: silentLogger } as unknown as StageEnv;
}

describe('kafka runner topology', () => {
  it('each stage reads a source topic or what an earlier stage writes; stages in pipeline order', () => {
    assert.deepEqual(STREAM_STAGES, ['canonicalize', 'trajectory', 'sink']);
    const written = new Set(sourceTopicSpecs(names).map((s) => s.topic));
    for (const stage of STREAM_TOPOLOGY) {
      for (const topic of stage.inputs(names)) assert.ok(written.has(topic), `${stage.name} reads ${topic}, which nothing before it writes`);
      for (const o of stage.outputs) written.add(streamTopic(names, o.topic));
    }
    assert.deepEqual(stageInputTopics(names).trajectory, ['p.medrep.canonical']);
    assert.deepEqual(stageInputTopics(names).sink, ['p.medrep.events', 'p.medrep.pretrain', 'p.medrep.samples']);
    assert.deepEqual(internalTopicSpecs(names, 3).map((s) => [s.topic, s.numPartitions]), ['canonical', 'events', 'pretrain', 'samples'].map((t) => [`p.medrep.${t}`, 3]));
  });

  it('every declared store has its compacted changelog, large ones beyond the 1 MB message limit', () => {
    const specs = changelogSpecs(names, 4);
    assert.deepEqual(specs.map((s) => s.topic), ['person', 'pending', 'events'].map((s) => `p.medrep.trajectory.${s}.changelog`).concat('p.medrep.sink.loads.changelog'));
    assert.ok(specs.every((s) => s.configs['cleanup.policy'] === 'compact' && s.numPartitions === 4));
    assert.deepEqual(specs.map((s) => s.configs['max.message.bytes'] !== undefined), [true, true, true, false]);
  });

  it('the trajectory stage ticks in continuous mode only; its tick is due once the source holding the watermark back went idle', () => {
    const trajectory = STREAM_TOPOLOGY[1];
    const marker = stageOptions(trajectory, env({}), { kafka: {} as never, names });
    assert.equal(marker.tick, undefined, 'marker mode: no tick (batch loads stay equal to medrep run)');
    assert.deepEqual([marker.stores, marker.appendStores], [['person', 'pending'], ['events']]);
    const o = stageOptions(trajectory, env({ closeOn: 'watermark', idleTimeoutMs: 2000, outOfOrdernessMs: DAY }), { kafka: {} as never, names });
    assert.equal(o.tick?.everyMs, 1000, 'every half idle timeout');
    const now = Date.now();
    const state = (seenB: number): WatermarkState => ({ sources: { visit: { t: 100 * DAY, seen: now - 5000 }, condition: { t: 50 * DAY, seen: seenB } }, wm: 49 * DAY, floor: null });
    const viewOf = (s: WatermarkState | undefined) => ({ partition: 0, store: <V>() => ({ get: (k: string) => (k === WATERMARKS_KEY ? s : undefined) as V | undefined, set() {}, delete() {}, keys: () => [] }) });
    assert.equal(o.tick!.due(viewOf(state(now))), false, 'an active source holds the watermark where it is');
    assert.equal(o.tick!.due(viewOf(state(now - 5000))), true, 'both idle: the highest counts, the watermark would move');
    assert.equal(o.tick!.due(viewOf({ ...state(now - 5000), wm: 99 * DAY })), false, 'already there');
    assert.equal(o.tick!.due(viewOf(undefined)), false, 'a partition that never saw a record');
  });
});
