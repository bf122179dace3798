// A stage's output goes to the broker in requests bounded in messages and bytes (the broker
// refuses requests over socket.request.max.bytes), in order and complete.
import { strict as assert } from 'node:assert';
import { sendSlices } from '../../../runners/kafka/stage';

describe('stage output requests', () => {
  it('split by count and by bytes, keeping order and every message', () => {
    const big = 'x'.repeat(6 * 1024 * 1024);
    const messages = [
      ...Array.from({ length: 2500 }, (_, i) => ({ key: null, value: String(i) })),
      { key: null, value: big }, { key: null, value: big }, { key: null, value: big }, { key: null, value: 'tail' },
    ];
    const slices = sendSlices(messages);
    assert.deepEqual(slices.flat(), messages, 'nothing lost, duplicated or reordered');
    assert.ok(slices.every((s) => s.length <= 1000), 'at most 1000 messages per request');
    const bytes = (s: Array<{ value?: unknown }>) => s.reduce((a, m) => a + Buffer.byteLength(String(m.value)), 0);
    assert.ok(slices.every((s) => s.length === 1 || bytes(s) <= 16 * 1024 * 1024), 'at most 16 MiB per request (a larger message goes alone)');
    assert.deepEqual(slices.map((x) => x.length), [1000, 1000, 502, 2], '1000, 1000, then 500 small + 2 big (12 MiB), then the third big one and the tail');
  });
});
