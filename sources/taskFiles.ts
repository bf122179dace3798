// Reading task definition files (tasks/*.json): a user adds a task by adding a file. Relative
// file references inside a task (concept lists) resolve against the task file's folder, or
// against `conceptDir` when given.
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { TaskDefinition, validateTaskDefinition } from '../transforms/labels/taskDefinition';

export interface LoadedTask {
  def: TaskDefinition;
  /** The file it came from. */
  source: string;
  /** Folder that relative concept-list paths resolve against. */
  baseDir: string;
}

/** The folder of the shipped task files. */
export const SHIPPED_TASK_DIR = path.resolve(__dirname, '..', '..', 'tasks');

export function readTaskFile(file: string, opts: { conceptDir?: string } = {}): LoadedTask {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read task definition: ${(e as Error).message}`);
  }
  const def = validateTaskDefinition(json, file);
  const expected = path.basename(file, '.json');
  if (def.name !== expected) throw new Error(`${file}: task name "${def.name}" differs from the file name "${expected}"`);
  return { def, source: file, baseDir: opts.conceptDir ?? path.dirname(path.resolve(file)) };
}

/** Every *.json file of a folder, by file name. */
export function readTaskDir(dir: string, opts: { conceptDir?: string } = {}): LoadedTask[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  if (files.length === 0) throw new Error(`${dir}: no task definition (*.json) found`);
  return files.map((f) => readTaskFile(path.join(dir, f), opts));
}

/** Shipped tasks by name (all when `names` is omitted). */
export function shippedTasks(names?: string[], opts: { conceptDir?: string } = {}): LoadedTask[] {
  const all = readTaskDir(SHIPPED_TASK_DIR, opts);
  if (!names) return all;
  return names.map((n) => {
    const t = all.find((x) => x.def.name === n);
    if (!t) throw new Error(`unknown task "${n}"; shipped: ${all.map((x) => x.def.name).join(', ')}`);
    return t;
  });
}
