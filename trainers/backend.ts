// tfjs backend selection (DESIGN.md section 7): tfjs-node-gpu when installed and a GPU is
// visible, else tfjs-node, else WASM, else plain CPU. The native packages are optional: their
// install downloads libtensorflow, so they are loaded only when present. The WASM backend lacks
// a few kernels that training needs; they are registered here (see wasmKernels.ts).
import { spawnSync } from 'child_process';
import { tf } from './tf';
import { registerWasmTrainingKernels } from './wasmKernels';

export type BackendPreference = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendChoice {
  /** tfjs backend name now active: 'tensorflow', 'wasm' or 'cpu'. */
  backend: string;
  /** Which preference produced it ('tensorflow-gpu' when the GPU build is loaded). */
  chosen: BackendPreference;
  /** Why higher-ranked candidates were skipped. */
  skipped: string[];
}

let lastChoice: BackendChoice | null = null;

/** The choice made by the last selectBackend call (null before the first). */
export function currentBackendChoice(): BackendChoice | null {
  return lastChoice;
}

function tryRequire(name: string): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    require(name);
    return true;
  } catch {
    return false;
  }
}

function gpuVisible(): boolean {
  if (process.env.CUDA_VISIBLE_DEVICES === '' || process.env.CUDA_VISIBLE_DEVICES === '-1') return false;
  const r = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 && /GPU \d+/.test(r.stdout ?? '');
}

async function activate(name: string): Promise<boolean> {
  try {
    return (await tf.setBackend(name)) && tf.getBackend() === name;
  } catch {
    return false;
  }
}

async function tryCandidate(c: BackendPreference, skipped: string[]): Promise<string | null> {
  switch (c) {
    case 'tensorflow-gpu':
      if (!gpuVisible()) { skipped.push('tensorflow-gpu: no GPU visible'); return null; }
      if (!tryRequire('@tensorflow/tfjs-node-gpu')) { skipped.push('tensorflow-gpu: @tensorflow/tfjs-node-gpu not installed'); return null; }
      if (await activate('tensorflow')) return 'tensorflow';
      skipped.push('tensorflow-gpu: backend failed to initialise');
      return null;
    case 'tensorflow':
      if (!tryRequire('@tensorflow/tfjs-node')) { skipped.push('tensorflow: @tensorflow/tfjs-node not installed'); return null; }
      if (await activate('tensorflow')) return 'tensorflow';
      skipped.push('tensorflow: backend failed to initialise');
      return null;
    case 'wasm':
      if (!tryRequire('@tensorflow/tfjs-backend-wasm')) { skipped.push('wasm: @tensorflow/tfjs-backend-wasm not installed'); return null; }
      registerWasmTrainingKernels();
      if (await activate('wasm')) return 'wasm';
      skipped.push('wasm: backend failed to initialise');
      return null;
    case 'cpu':
      if (await activate('cpu')) return 'cpu';
      skipped.push('cpu: backend failed to initialise');
      return null;
  }
}

/**
 * Picks and activates the tfjs backend. Without a preference the order is tensorflow-gpu,
 * tensorflow, wasm, cpu; with one, that backend is tried first and the rest of the order after it
 * (so `--backend wasm` on a machine without WASM still trains, on cpu, and says so).
 * Returns the active tfjs backend name; the choice is logged to stderr.
 */
export async function selectBackend(
  preferred?: BackendPreference,
  log: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<string> {
  if (preferred !== undefined && !BACKEND_PREFERENCES.includes(preferred)) {
    throw new Error(`unknown backend '${String(preferred)}': expected one of ${BACKEND_PREFERENCES.join(', ')}`);
  }
  const order = preferred
    ? BACKEND_PREFERENCES.slice(BACKEND_PREFERENCES.indexOf(preferred))
    : [...BACKEND_PREFERENCES];
  const skipped: string[] = [];
  for (const c of order) {
    const backend = await tryCandidate(c, skipped);
    if (backend) {
      lastChoice = { backend, chosen: c, skipped };
      log(`[medrep] tfjs backend: ${backend} (${c})${skipped.length ? `; skipped ${skipped.join('; ')}` : ''}`);
      return backend;
    }
  }
  throw new Error(`no tfjs backend could be initialised: ${skipped.join('; ')}`);
}

let ready: Promise<string> | null = null;
let readyFor: BackendPreference | undefined | null = null;

/**
 * selectBackend once per preference: the EHR trainers call it at every entry point (train,
 * experiment cell, attention analysis), and a second call with the same preference returns the
 * first choice without trying or logging again.
 */
export function initBackend(preferred?: BackendPreference): Promise<string> {
  if (ready && readyFor === preferred) return ready;
  readyFor = preferred;
  ready = selectBackend(preferred);
  return ready;
}
