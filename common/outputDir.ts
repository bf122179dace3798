// The output folder of a run belongs to medrep only by proof: it is empty, or it holds a medrep
// manifest or the marker file medrep writes into every folder it claims. A folder with anything
// else in it is refused, whatever the flags. A previous complete output (a manifest) is replaced
// only with --force, and replacing removes only the entries medrep writes; a user's file beside
// them stays. A lock file per writing process keeps a second run out while one runs; the lock of
// a process that no longer runs is taken over.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from './errors';
import { processRunning } from './processTempDir';
import { Logger } from './progress';

export const OUTPUT_MARKER = '.medrep-output.json';
const LOCK_PREFIX = '.medrep-lock.';
/** What medrep writes at the top of an output folder; nothing else is ever removed. */
export const OWNED_ENTRIES = ['events', 'pretrain', 'samples', 'meds', 'artifacts', 'rejects', 'models', '.tmp', 'manifest.json', 'manifest.d', 'report.html'] as const;

export interface ClaimOptions {
  /** The command, for the messages and the marker (`run`, `stream`, `replay` ...). */
  command: string;
  /** Replace a previous complete medrep output (one with a manifest). */
  force?: boolean;
  /**
   * Writers with the same key may write at once and continue each other's output (the workers of
   * one Kafka pipeline); without one, a writer is alone and starts afresh.
   */
  sharedKey?: string;
  log?: Logger;
}

export interface ClaimedOutput {
  dir: string;
  /** Whether an earlier output of the same pipeline is continued (sharedKey matched). */
  continued: boolean;
  /** Removes this process's lock; idempotent. */
  release(): void;
}

interface Marker {
  kind: 'medrep.output';
  command: string;
  shared_key?: string;
}

interface LockInfo {
  pid: number;
  host: string;
  /** The process's start time (Linux: /proc/<pid>/stat field 22), so a reused pid is not taken for the holder. */
  start: string | null;
  command: string;
  shared_key?: string;
}

function processStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) is in parentheses and may hold spaces: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function lockHolderAlive(l: LockInfo): boolean {
  if (l.host !== os.hostname()) return true; // another machine's process: cannot tell, assume it runs
  if (!processRunning(l.pid)) return false;
  const start = processStart(l.pid);
  return l.start === null || start === null || start === l.start;
}

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

function readMarker(dir: string): Marker | null {
  const m = readJson<Marker>(path.join(dir, OUTPUT_MARKER));
  return m?.kind === 'medrep.output' ? m : null;
}

function hasManifest(dir: string): boolean {
  return readJson<{ kind?: string }>(path.join(dir, 'manifest.json'))?.kind === 'medrep.manifest';
}

function describeHolder(l: LockInfo): string {
  return `medrep ${l.command} (pid ${l.pid}${l.host !== os.hostname() ? ` on ${l.host}` : ''})`;
}

/**
 * Takes this process's lock on `dir`: refused while an incompatible writer runs, stale locks of
 * dead processes removed. Two writers that start at the same instant may both be refused, never
 * both admitted.
 */
function lock(dir: string, opts: ClaimOptions): () => void {
  const mine = path.join(dir, `${LOCK_PREFIX}${process.pid}`);
  const info: LockInfo = { pid: process.pid, host: os.hostname(), start: processStart(process.pid), command: opts.command, ...(opts.sharedKey ? { shared_key: opts.sharedKey } : {}) };
  fs.writeFileSync(mine, JSON.stringify(info) + '\n', { flag: 'w' });
  const release = () => fs.rmSync(mine, { force: true });
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(LOCK_PREFIX) || path.join(dir, name) === mine) continue;
    const other = readJson<LockInfo>(path.join(dir, name));
    if (other && lockHolderAlive(other)) {
      if (opts.sharedKey !== undefined && other.shared_key === opts.sharedKey) continue;
      release();
      throw new UserError(`${dir}: ${describeHolder(other)} is writing to this folder; wait for it to end or choose another --out`);
    }
    fs.rmSync(path.join(dir, name), { force: true });
    opts.log?.info(`${dir}: took over the lock of ${other ? describeHolder(other) : name}, which no longer runs`);
  }
  return release;
}

/**
 * Claims `dir` as this run's output folder (created if missing): refuses a folder that medrep
 * cannot prove its own, locks it, and removes a previous output of medrep's (only its own entries)
 * unless the same pipeline continues it.
 */
export function claimOutputDir(dirIn: string, opts: ClaimOptions): ClaimedOutput {
  const dir = path.resolve(dirIn);
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new UserError(`${dir}: --out must be a folder, this is a file`);
  fs.mkdirSync(dir, { recursive: true });
  const entries = fs.readdirSync(dir).filter((n) => !n.startsWith(LOCK_PREFIX));
  const marker = readMarker(dir);
  const manifest = hasManifest(dir);
  if (entries.length > 0 && !marker && !manifest) {
    const shown = entries.sort().slice(0, 3).join(', ') + (entries.length > 3 ? ', ...' : '');
    throw new UserError(`${dir}: not empty and not a medrep output folder (holds ${shown}; no manifest.json or ${OUTPUT_MARKER}); medrep writes only into an empty folder or one of its own`);
  }
  const release = lock(dir, opts);
  try {
    const continued = opts.sharedKey !== undefined && marker?.shared_key === opts.sharedKey;
    if (entries.length > 0 && !continued) {
      if (manifest && !opts.force) {
        throw new UserError(`${dir}: holds the output of an earlier medrep run (manifest.json); pass --force to replace it, or choose another --out`);
      }
      for (const name of OWNED_ENTRIES) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    }
    const m: Marker = { kind: 'medrep.output', command: opts.command, ...(opts.sharedKey ? { shared_key: opts.sharedKey } : {}) };
    if (!continued) fs.writeFileSync(path.join(dir, OUTPUT_MARKER), JSON.stringify(m, null, 2) + '\n');
    let released = false;
    const onExit = () => release();
    process.once('exit', onExit);
    return {
      dir,
      continued,
      release: () => {
        if (released) return;
        released = true;
        process.off('exit', onExit);
        release();
      },
    };
  } catch (e) {
    release();
    throw e;
  }
}

/** Whether a live process other than this one holds a lock on `dir`. */
function otherWriters(dir: string): boolean {
  return fs.readdirSync(dir).some((name) => {
    if (!name.startsWith(LOCK_PREFIX) || name === `${LOCK_PREFIX}${process.pid}`) return false;
    const l = readJson<LockInfo>(path.join(dir, name));
    return l !== null && lockHolderAlive(l);
  });
}

/**
 * Removes the temporary files this process left in `dir` after a failure: files are written as
 * `<name>.tmp-<pid>` and renamed when complete, so such a name is never a finished file.
 */
export function removeOwnTempFiles(dir: string): number {
  const suffix = `.tmp-${process.pid}`;
  let removed = 0;
  const walk = (d: string) => {
    let list: fs.Dirent[];
    try {
      list = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of list) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith(suffix)) {
        fs.rmSync(full, { force: true });
        removed++;
      }
    }
  };
  for (const name of OWNED_ENTRIES) walk(path.join(dir, name));
  return removed;
}

/**
 * Claims `dir` for the duration of `body` and releases it afterwards; when `body` fails, the
 * temporary files it left are removed first (a full disk stays no fuller than before).
 */
export async function withOutputDir<T>(dir: string, opts: ClaimOptions, body: (claimed: ClaimedOutput) => Promise<T>): Promise<T> {
  const claimed = claimOutputDir(dir, opts);
  try {
    return await body(claimed);
  } catch (e) {
    removeOwnTempFiles(claimed.dir);
    // The scratch folder, unless another writer of the same pipeline may be using it.
    if (!otherWriters(claimed.dir)) fs.rmSync(path.join(claimed.dir, '.tmp'), { recursive: true, force: true });
    throw e;
  } finally {
    claimed.release();
  }
}

/**
 * Checks that `file` may be written as a single output file: absent, or a file medrep wrote
 * (`isOwn` proves it from the content) and `force` given; anything else is refused and left as it
 * is. The writer then writes it atomically (temporary name, rename).
 */
export async function claimOutputFile(file: string, opts: { force?: boolean; what: string; isOwn: (file: string) => Promise<boolean> }): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return; // absent: written fresh
  }
  if (!stat.isFile()) throw new UserError(`${file}: --out must name a file, this is ${stat.isDirectory() ? 'a folder' : 'not a regular file'}`);
  if (!(await opts.isOwn(file))) {
    throw new UserError(`${file}: exists and is not ${opts.what} medrep wrote; medrep does not overwrite it (choose another --out)`);
  }
  if (!opts.force) throw new UserError(`${file}: holds ${opts.what} of an earlier medrep run; pass --force to replace it, or choose another --out`);
}

