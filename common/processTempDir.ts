// Temporary folders owned by one process: named <stem>-<pid>-XXXXXX, so that the next process
// of the same kind can remove what a killed one (SIGKILL, out of memory) could not.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Whether a process with this id runs (one of another user counts as running). */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the `<stem>-<pid>-*` folders in `parent` whose process no longer runs; returns how many. */
export function removeOrphanedTempDirs(stem: string, parent = os.tmpdir()): number {
  const pattern = new RegExp(`^${stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d+)-`);
  let removed = 0;
  for (const name of fs.readdirSync(parent)) {
    const m = pattern.exec(name);
    if (!m || processRunning(Number(m[1]))) continue;
    fs.rmSync(path.join(parent, name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

/** A fresh `<stem>-<pid>-XXXXXX` folder in `parent`, after removing the orphans of dead processes. */
export function makeProcessTempDir(stem: string, parent = os.tmpdir()): string {
  removeOrphanedTempDirs(stem, parent);
  return fs.mkdtempSync(path.join(parent, `${stem}-${process.pid}-`));
}
