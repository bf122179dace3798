import { strict as assert } from 'assert';
import { tf } from '../../trainers/tf';
import { selectBackend, currentBackendChoice } from '../../trainers/backend';
import { SPLIT_MATMUL_MIN_WORK, WASM_TRAINING_KERNELS, registerWasmTrainingKernels } from '../../trainers/wasmKernels';

/** Runs f on the cpu backend and on wasm; returns both results as plain arrays. */
async function onBoth(f: () => tf.Tensor): Promise<{ cpu: number[]; wasm: number[]; shapeCpu: number[]; shapeWasm: number[] }> {
  await tf.setBackend('cpu');
  const c = f();
  const cpu = Array.from(await c.data());
  const shapeCpu = c.shape;
  await tf.setBackend('wasm');
  const w = f();
  const wasm = Array.from(await w.data());
  return { cpu, wasm, shapeCpu, shapeWasm: w.shape };
}

function assertClose(a: number[], b: number[], tol = 1e-5): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `index ${i}: ${a[i]} vs ${b[i]}`);
}

describe('tfjs backend selection', () => {
  const logs: string[] = [];
  after(async () => { await tf.setBackend('wasm'); });

  it('falls through to wasm when the native packages are absent, and logs why', async () => {
    const name = await selectBackend(undefined, (l) => logs.push(l));
    assert.equal(name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    const choice = currentBackendChoice()!;
    assert.equal(choice.chosen, 'wasm');
    assert.ok(choice.skipped.some((s) => s.startsWith('tensorflow:')), choice.skipped.join('; '));
    assert.match(logs.at(-1)!, /tfjs backend: wasm/);
  });

  it('honours --backend cpu', async () => {
    assert.equal(await selectBackend('cpu', () => {}), 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
  });

  it('rejects an unknown backend name', async () => {
    await assert.rejects(selectBackend('gpu' as never, () => {}), /unknown backend 'gpu'/);
  });
});

describe('WASM training kernels', () => {
  before(async () => { registerWasmTrainingKernels(); await selectBackend('wasm', () => {}); });

  it('registers every kernel listed, on the wasm backend', () => {
    for (const k of WASM_TRAINING_KERNELS) assert.ok(tf.getKernel(k.kernelName, 'wasm'), k.kernelName);
    assert.ok(WASM_TRAINING_KERNELS.some((k) => k.kernelName === 'UnsortedSegmentSum'));
  });

  it('UnsortedSegmentSum float32 2-D matches the cpu backend', async () => {
    const r = await onBoth(() => tf.unsortedSegmentSum(
      tf.tensor2d([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]), tf.tensor1d([2, 0, 2, 1], 'int32'), 4));
    assert.deepEqual(r.shapeWasm, r.shapeCpu);
    assertClose(r.wasm, r.cpu);
    // hand check: segment 2 = row0 + row2
    assert.deepEqual(r.wasm.slice(6, 9), [8, 10, 12]);
    assert.deepEqual(r.wasm.slice(9, 12), [0, 0, 0]);
  });

  it('UnsortedSegmentSum int32 1-D and 3-D inputs match the cpu backend', async () => {
    const a = await onBoth(() => tf.unsortedSegmentSum(tf.tensor1d([5, 6, 7], 'int32'), tf.tensor1d([1, 1, 0], 'int32'), 2));
    assert.deepEqual(a.wasm, a.cpu);
    const x3 = Array.from({ length: 24 }, (_, i) => i * 0.5 - 3);
    const b = await onBoth(() => tf.unsortedSegmentSum(tf.tensor3d(x3, [4, 3, 2]), tf.tensor1d([0, 3, 0, 1], 'int32'), 5));
    assert.deepEqual(b.shapeWasm, [5, 3, 2]);
    assertClose(b.wasm, b.cpu);
  });

  it('the gradient of an embedding lookup (gather) matches the cpu backend', async () => {
    const table = [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [0.7, -0.8, 0.9], [1, 1.1, 1.2]];
    const r = await onBoth(() => tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, tf.tensor1d([0, 2, 2, 3], 'int32')))))(tf.tensor2d(table)));
    assertClose(r.wasm, r.cpu);
    // d/dt sum(g^2) = 2 * t * count(row)
    assert.ok(Math.abs(r.wasm[6] - 2 * 0.7 * 2) < 1e-6);
    assert.deepEqual(r.wasm.slice(3, 6), [0, 0, 0]);
  });
});

describe('WASM Identity (the clone of every tensor saved for backprop)', () => {
  before(async () => { registerWasmTrainingKernels(); await selectBackend('wasm', () => {}); });

  it('shares the data instead of copying it, and the clone outlives its source', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const x = tf.tensor1d([1, -2, 3.5]);
    const before = backend.numDataIds();
    const y = x.clone();
    assert.equal(backend.numDataIds(), before, 'a copy would add a data id');
    x.dispose();
    assert.deepEqual(Array.from(await y.data()), [1, -2, 3.5]);
    y.dispose();
    assert.equal(backend.numDataIds(), before - 1);
  });

  it('gradients through saved tensors match the cpu backend', async () => {
    // d/dx sum(x * exp(x) * sigmoid(x)) saves x, exp(x) and sigmoid(x) for the backward pass.
    const r = await onBoth(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.mul(x, tf.exp(x)), tf.sigmoid(x))))(tf.tensor1d([-1.5, 0, 0.25, 2])));
    assertClose(r.wasm, r.cpu, 1e-5);
    // Hand check at x = 0: exp(0) * sigmoid(0) = 0.5.
    assert.ok(Math.abs(r.wasm[1] - 0.5) < 1e-6);
  });
});

describe('WASM BatchMatMul with transposed operands', () => {
  before(async () => { await selectBackend('wasm', () => {}); });
  const A = Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i) * 2);
  const B = Array.from({ length: 2 * 4 * 5 }, (_, i) => Math.cos(i * 1.3));
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as Array<[boolean, boolean]>) {
    it(`transposeA=${ta} transposeB=${tb}, batched and 2-D, matches the cpu backend`, async () => {
      const r3 = await onBoth(() => tf.matMul(tf.tensor3d(A, ta ? [2, 4, 3] : [2, 3, 4]), tf.tensor3d(B, tb ? [2, 5, 4] : [2, 4, 5]), ta, tb));
      assert.deepEqual(r3.shapeWasm, [2, 3, 5]);
      assertClose(r3.wasm, r3.cpu, 1e-4);
      const r2 = await onBoth(() => tf.matMul(tf.tensor2d(A.slice(0, 12), ta ? [4, 3] : [3, 4]), tf.tensor2d(B.slice(0, 20), tb ? [5, 4] : [4, 5]), ta, tb));
      assertClose(r2.wasm, r2.cpu, 1e-4);
    });
  }
  it('splits large batches into per-item products (equal batches, a batch of 1 on either side) with the cpu backend\'s values', async () => {
    // 48 x 40 x 32 = 61440 multiply-adds per item: above SPLIT_MATMUL_MIN_WORK, so split.
    assert.ok(48 * 40 * 32 >= SPLIT_MATMUL_MIN_WORK);
    const vals = (n: number, f: number) => Array.from({ length: n }, (_, i) => Math.sin(i * f));
    const cases: Array<[number[], number[], boolean, boolean]> = [
      [[2, 3, 48, 40], [2, 3, 40, 32], false, false],
      [[2, 3, 40, 48], [2, 3, 32, 40], true, true],
      [[48, 40], [3, 40, 32], false, false],
      [[1, 3, 48, 40], [1, 3, 32, 40], false, true],
      [[4, 48, 40], [1, 40, 32], false, false],
    ];
    for (const [sa, sb, ta, tb] of cases) {
      const r = await onBoth(() => tf.matMul(tf.tensor(vals(sa.reduce((x, y) => x * y, 1), 0.37), sa), tf.tensor(vals(sb.reduce((x, y) => x * y, 1), 0.91), sb), ta, tb));
      assert.deepEqual(r.shapeWasm, r.shapeCpu, `${sa} x ${sb}`);
      assertClose(r.wasm, r.cpu, 1e-3);
    }
    await tf.setBackend('wasm');
    const before = tf.memory().numBytes;
    const a = tf.ones([3, 48, 40]);
    const b = tf.ones([3, 40, 32]);
    const c = tf.matMul(a, b);
    // Hand check: every entry of ones x ones is the inner size.
    assert.ok((await c.data()).every((x) => x === 40));
    for (const t of [a, b, c]) t.dispose();
    assert.equal(tf.memory().numBytes, before);
  });

  it('leaves no intermediate tensors behind', async () => {
    await tf.setBackend('wasm');
    const before = tf.memory().numBytes;
    const a = tf.tensor2d(A.slice(0, 12), [4, 3]);
    const b = tf.tensor2d(B.slice(0, 20), [5, 4]);
    tf.matMul(a, b, true, true).dispose();
    a.dispose(); b.dispose();
    assert.equal(tf.memory().numBytes, before);
  });
});
