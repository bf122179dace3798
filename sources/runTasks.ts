// Which outcome tasks a run labels: the shipped task files (tasks/*.json) or a user's folder.
// Tasks whose concept lists cannot be found are skipped with a warning naming the file, so a
// run without ../shared/tasks still produces the tasks that need no list.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoadedTask, SHIPPED_TASK_DIR, readTaskDir } from './taskFiles';
import { UserError } from '../common/errors';
import { Logger } from '../common/progress';

export interface TaskSelection {
  /** Task names, 'all' (default) or 'none'. */
  tasks?: string[] | 'all' | 'none';
  /** Folder of task files (default: the shipped tasks/). */
  taskDir?: string;
  /** Folder that the task files' concept lists resolve against. */
  taskConcepts?: string;
}

/** Concept-list files a task definition names (relative to its base folder). */
function referencedFiles(t: LoadedTask): string[] {
  return (t.def.conceptSets ?? [])
    .map((s) => (s as { file?: string }).file)
    .filter((f): f is string => typeof f === 'string')
    .map((f) => path.resolve(t.baseDir, f));
}

export function selectTasks(sel: TaskSelection, log: Logger): LoadedTask[] {
  if (sel.tasks === 'none') return [];
  let all: LoadedTask[];
  try {
    all = readTaskDir(sel.taskDir ?? SHIPPED_TASK_DIR, { conceptDir: sel.taskConcepts });
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  const wanted = sel.tasks === undefined || sel.tasks === 'all' ? all.map((t) => t.def.name) : sel.tasks;
  const out: LoadedTask[] = [];
  for (const name of wanted) {
    const t = all.find((x) => x.def.name === name);
    if (!t) throw new UserError(`unknown task "${name}"; available: ${all.map((x) => x.def.name).join(', ')}`);
    const missing = referencedFiles(t).filter((f) => !fs.existsSync(f));
    if (missing.length) {
      const msg = `task ${name} needs ${missing.join(', ')} (pass --task-concepts DIR)`;
      if (sel.tasks === undefined || sel.tasks === 'all') {
        log.warn(`${msg}; skipped`);
        continue;
      }
      throw new UserError(msg);
    }
    out.push(t);
  }
  return out;
}
