// Event-time watermarks (runners/kafka/watermarks.ts) and the continuous chunk rule
// (transforms/continuousChunks.ts): pure functions, no broker.
import { strict as assert } from 'node:assert';
import { advanceWatermark, NO_WATERMARK, observeSource, raiseFloor, stageWatermark, watermarkMetadata, watermarkOfMetadata, watermarkText, WatermarkState } from '../../../runners/kafka/watermarks';
import { closingChunks } from '../../../transforms/continuousChunks';

const DAY = 86_400_000;
const opts = { outOfOrdernessMs: DAY, idleTimeoutMs: 30_000 };
const fresh = (): WatermarkState => structuredClone(NO_WATERMARK);

describe('event-time watermarks', () => {
  it('is the lowest active source\'s latest event time minus the out-of-orderness', () => {
    const s = fresh();
    assert.equal(advanceWatermark(s, opts, 0), null, 'no event yet: no watermark');
    observeSource(s, 'measurement', 10 * DAY, 0);
    observeSource(s, 'condition_occurrence', 5 * DAY, 0);
    observeSource(s, 'measurement', 7 * DAY, 0); // an older row does not move a source back
    assert.equal(advanceWatermark(s, opts, 1000), 4 * DAY);
  });

  it('a source quiet for the idle timeout no longer holds it back; all quiet: the highest counts', () => {
    const s = fresh();
    observeSource(s, 'measurement', 10 * DAY, 0);
    observeSource(s, 'death', 2 * DAY, 0);
    assert.equal(advanceWatermark(s, opts, 29_999), DAY);
    observeSource(s, 'measurement', 12 * DAY, 20_000);
    assert.equal(advanceWatermark(s, opts, 30_000), 11 * DAY, 'death idle since 0');
    assert.equal(advanceWatermark(s, opts, 60_000), 11 * DAY, 'both idle: the highest');
  });

  it('never goes back, and an end-of-load marker raises it to the declared data end', () => {
    const s = fresh();
    observeSource(s, 'measurement', 10 * DAY, 0);
    assert.equal(advanceWatermark(s, opts, 0), 9 * DAY);
    observeSource(s, 'death', 3 * DAY, 1000); // a new, late source
    assert.equal(advanceWatermark(s, opts, 1000), 9 * DAY);
    raiseFloor(s, 20 * DAY);
    assert.equal(advanceWatermark(s, opts, 1000), 20 * DAY);
  });

  it('the stage watermark is the lowest partition not idle; metadata round-trips; text is ISO', () => {
    assert.equal(stageWatermark([{ wm: 5, idle: false }, { wm: 2, idle: true }, { wm: null, idle: false }]), 5);
    assert.equal(stageWatermark([{ wm: 5, idle: true }, { wm: 2, idle: true }]), 5);
    assert.equal(stageWatermark([]), null);
    assert.equal(watermarkOfMetadata(watermarkMetadata(12345)), 12345);
    assert.equal(watermarkOfMetadata(watermarkMetadata(null)), null);
    assert.equal(watermarkOfMetadata(''), undefined);
    assert.equal(watermarkOfMetadata('not json'), undefined);
    assert.equal(watermarkText(Date.UTC(2020, 0, 2)), '2020-01-02T00:00:00Z');
    assert.equal(watermarkText(null), 'none');
  });
});

describe('continuous pretraining chunks', () => {
  const times = [1, 2, 3, 4, 5, 6, 7].map((d) => d * DAY);
  const at = (i: number) => times[i];

  it('full chunks close as soon as they are full, whatever the watermark', () => {
    assert.deepEqual(closingChunks(0, 7, at, null, 3, 30 * DAY), [[0, 3], [3, 6]]);
    assert.deepEqual(closingChunks(3, 7, at, null, 3, 30 * DAY), [[3, 6]]);
  });

  it('the open rest closes once its latest event is the quiet span behind the watermark', () => {
    assert.deepEqual(closingChunks(6, 7, at, 7 * DAY + 30 * DAY - 1, 3, 30 * DAY), [], 'not quiet yet');
    assert.deepEqual(closingChunks(6, 7, at, 7 * DAY + 30 * DAY, 3, 30 * DAY), [[6, 7]]);
    assert.deepEqual(closingChunks(0, 7, at, 100 * DAY, 3, 30 * DAY), [[0, 3], [3, 6], [6, 7]]);
    assert.deepEqual(closingChunks(7, 7, at, 100 * DAY, 3, 30 * DAY), [], 'nothing open');
  });

  it('a late event (older than closed ones) joins the open chunk, never a closed one', () => {
    const late = [...times, 0.5 * DAY];
    assert.deepEqual(closingChunks(7, 8, (i) => late[i], 40 * DAY, 3, 30 * DAY), [[7, 8]]);
  });
});
