// BEHRT pretraining throughput: MLM training steps on synthetic full-length sequences, in tokens
// per second and peak RSS, for the default size on the CPU backend (the baseline), the default
// size on WASM, and the paper's size on WASM at one or more sequence lengths (a few steps only:
// at 2048 tokens one step takes minutes on two cores). Each configuration runs in its own child
// process so that its peak RSS is its own; the rows record the WASM heap size (it never shrinks,
// so it is the heap's peak) and the load average around each child (the machine is shared).
//   node dist/bench/behrt.js [--steps N] [--paper-steps N] [--paper-warmup N] [--paper-len 512,2048]
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { DEFAULT_MODEL, DEFAULT_TRAIN, PAPER_MODEL, PAPER_TRAIN, type BehrtConfig, type TrainConfig } from '../trainers/behrt/config';
import { tf } from '../trainers/tf';
import { initBackend } from '../trainers/backend';
import { trainBehrt } from '../trainers/behrt/train';
import { Vocabulary } from '../trainers/behrt/vocab';
import type { Sequence } from '../trainers/behrt/data';
import { Rng } from '../trainers/random';
import { formatTable } from '../trainers/metrics/table';
import { writeBenchResult } from './resultFile';

interface Row {
  name: string;
  backend: string;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  tokensPerSequence: number;
  batch: number;
  measuredSteps: number;
  warmupSteps: number;
  seconds: number;
  secondsPerStep: number;
  tokensPerSecond: number;
  peakRssMiB: number;
  /** WASM linear memory at the end (its peak: it only grows); null on the cpu backend. */
  wasmHeapMiB: number | null;
  attentionBlock: number;
  recomputeLayers: boolean;
  wallSeconds: number;
  loadAverageBefore: number;
  loadAverageAfter: number;
}

/** Sequences of exactly `len` tokens over a 2000-concept vocabulary. */
function sequences(n: number, len: number, seed: number): Sequence[] {
  const rng = Rng.fromState(seed);
  return Array.from({ length: n }, (_, p) => {
    const k = len - 2;
    return {
      personId: p + 1,
      conceptIds: [-3, 8507, ...Array.from({ length: k }, () => 1000 + rng.int(2000))],
      deciles: Array(len).fill(null),
      ages: [0, 0, ...Array.from({ length: k }, (_, i) => 30 + Math.floor(i / 200))],
      segments: [0, 0, ...Array.from({ length: k }, (_, i) => 1 + Math.floor(i / 8))],
      recordRanks: [0, 0, ...Array.from({ length: k }, (_, i) => i % 8)],
      domains: [0, 0, ...Array.from({ length: k }, () => 1 + rng.int(4))],
      split: 'pretrain_train',
    };
  });
}

async function child(name: string, backend: 'cpu' | 'wasm', model: BehrtConfig, train: TrainConfig, steps: number, warmup: number): Promise<Omit<Row, 'wallSeconds' | 'loadAverageBefore' | 'loadAverageAfter'>> {
  await initBackend(backend);
  const seqs = sequences(train.batchSize * (steps + warmup), model.maxLen, 1);
  const vocab = Vocabulary.fromSequences(seqs);
  const base = { task: 'pretrain', train: seqs, val: seqs.slice(0, 1), vocab, embeddings: 'vanilla' as const, model, trainCfg: { ...train, epochs: 1 }, seed: 1, shards: [] };
  // Warm-up steps (kernel set-up, first allocations) run but are not counted.
  const times: { tokens: number; seconds: number }[] = [];
  const run = await trainBehrt({ ...base, maxSteps: steps + warmup, onStep: (i) => {
    times.push(i);
    process.stderr.write(`step ${i.step}: ${i.tokens} tokens in ${i.seconds.toFixed(2)} s\n`);
  } });
  run.model.dispose();
  const measured = times.slice(warmup);
  const seconds = measured.reduce((a, t) => a + t.seconds, 0);
  const tokens = measured.reduce((a, t) => a + t.tokens, 0);
  return {
    name, backend, hidden: model.hidden, layers: model.layers, heads: model.heads, intermediate: model.intermediate,
    tokensPerSequence: model.maxLen, batch: train.batchSize, measuredSteps: steps, warmupSteps: warmup, seconds: +seconds.toFixed(2),
    secondsPerStep: +(seconds / steps).toFixed(2), tokensPerSecond: +(tokens / seconds).toFixed(1), peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    wasmHeapMiB: backend === 'wasm' ? Math.round(wasmHeapBytes() / 2 ** 20) : null, attentionBlock: model.attentionBlock, recomputeLayers: model.recomputeLayers,
  };
}

function wasmHeapBytes(): number {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } };
  return b.wasm ? b.wasm.HEAPU8.buffer.byteLength : 0;
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    const spec = JSON.parse(process.argv[3]);
    const row = await child(spec.name, spec.backend, spec.model, spec.train, spec.steps, spec.warmup);
    process.stdout.write('\nROW ' + JSON.stringify(row) + '\n');
    return;
  }
  const steps = arg('steps', 5);
  const paperSteps = arg('paper-steps', 1);
  const lenArg = process.argv.indexOf('--paper-len');
  const paperLens = lenArg >= 0 ? process.argv[lenArg + 1].split(',').map(Number) : [PAPER_MODEL.maxLen];
  // A paper-size step takes minutes on two cores: by default its first step is the measurement.
  const paperWarmup = arg('paper-warmup', 0);
  const configs = [
    { name: 'default (baseline)', backend: 'cpu', model: DEFAULT_MODEL, train: DEFAULT_TRAIN, steps, warmup: 1 },
    { name: 'default', backend: 'wasm', model: DEFAULT_MODEL, train: DEFAULT_TRAIN, steps, warmup: 1 },
    ...paperLens.map((len) => ({ name: `paper, ${len} tokens`, backend: 'wasm', model: { ...PAPER_MODEL, maxLen: len }, train: { ...PAPER_TRAIN, batchSize: 1 }, steps: paperSteps, warmup: paperWarmup })),
  ];
  // --paper-no-recompute: the longest paper length once more without gradient checkpointing
  // (blocked attention only), to weigh the recomputation's time against its memory.
  if (process.argv.includes('--paper-no-recompute')) {
    const len = Math.max(...paperLens);
    configs.push({ name: `paper, ${len} tokens, no layer recompute`, backend: 'wasm', model: { ...PAPER_MODEL, maxLen: len, recomputeLayers: false }, train: { ...PAPER_TRAIN, batchSize: 1 }, steps: paperSteps, warmup: paperWarmup });
  }
  const rows: Row[] = [];
  // A configuration that dies (e.g. the WASM heap's 4 GB limit) is recorded, not fatal.
  const failures: { name: string; wallSeconds: number; error: string }[] = [];
  for (const c of configs) {
    const loadAverageBefore = +loadavg()[0].toFixed(2);
    const started = Date.now();
    // stderr is collected (and echoed after the child) so that a failure's cause goes into the results.
    const r = spawnSync(process.execPath, [__filename, '--child', JSON.stringify(c)], { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] });
    process.stderr.write(r.stderr ?? '');
    if (r.status !== 0) {
      const cause = (r.stderr ?? '').split('\n').find((l) => /Error|Aborted|out of memory/i.test(l)) ?? `exit status ${r.status}, signal ${r.signal}`;
      failures.push({ name: c.name, wallSeconds: +((Date.now() - started) / 1000).toFixed(1), error: cause.trim() });
      console.error(`failed: ${c.name} on ${c.backend}: ${cause.trim()}`);
      continue;
    }
    const out = r.stdout;
    const line = out.split('\n').find((l) => l.startsWith('ROW '));
    if (!line) throw new Error(`benchmark child ${c.name}/${c.backend} printed no result`);
    const wallSeconds = +((Date.now() - started) / 1000).toFixed(1);
    rows.push({ ...(JSON.parse(line.slice(4)) as Row), wallSeconds, loadAverageBefore, loadAverageAfter: +loadavg()[0].toFixed(2) });
    console.error(`done: ${c.name} on ${c.backend} in ${wallSeconds} s`);
  }
  const baseline = rows[0].tokensPerSecond;
  const table = formatTable(
    ['config', 'backend', 'hidden x layers', 'tokens/seq', 'batch', 'warm-up + measured steps', 's/step', 'tokens/s', 'vs baseline', 'peak RSS MiB', 'WASM heap MiB', 'load avg'],
    rows.map((r) => [r.name, r.backend, `${r.hidden} x ${r.layers}`, String(r.tokensPerSequence), String(r.batch), `${r.warmupSteps} + ${r.measuredSteps}`, r.secondsPerStep.toFixed(2), r.tokensPerSecond.toFixed(1), (r.tokensPerSecond / baseline).toFixed(3), String(r.peakRssMiB), r.wasmHeapMiB === null ? '-' : String(r.wasmHeapMiB), `${r.loadAverageBefore} -> ${r.loadAverageAfter}`]),
  );
  console.log(table);
  for (const f of failures) console.log(`FAILED ${f.name} after ${f.wallSeconds} s: ${f.error}`);
  const file = writeBenchResult('behrt.json', {
    benchmark: 'behrt-pretraining', cpus: require('node:os').cpus().length,
    command: `node dist/bench/behrt.js ${process.argv.slice(2).join(' ')}`.trim(), loadAverageAtEnd: loadavg().map((x) => +x.toFixed(2)),
    baseline: 'default size on the CPU backend', rows: rows.map((r) => ({ ...r, ratioToBaseline: +(r.tokensPerSecond / baseline).toFixed(3) })), failures,
  });
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
