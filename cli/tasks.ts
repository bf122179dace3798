// The task options of the commands that write labels (run, stream): which tasks, from where.
import type { TaskSelection } from '../sources/runTasks';
import type { Options } from './options';

export const TASK_OPTIONS = {
  tasks: { type: 'string', value: 'all|none|a,b', help: 'outcome tasks to label (default all shipped tasks)' },
  'task-dir': { type: 'string', value: 'DIR', help: 'folder of your own task files (default the shipped tasks/)' },
  'task-concepts': { type: 'string', value: 'DIR', help: 'folder of the concept lists the task files name (default ../shared/tasks)' },
} as const;

export function taskSelection(o: Options<typeof TASK_OPTIONS>): TaskSelection {
  const t = o.tasks;
  return {
    tasks: t === undefined || t === 'all' ? 'all' : t === 'none' ? 'none' : t.split(',').map((x) => x.trim()).filter(Boolean),
    taskDir: o.taskDir,
    taskConcepts: o.taskConcepts,
  };
}
