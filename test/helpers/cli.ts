// Runs the `medrep` command as a user does: a child process, its exit code and its output.
import { spawn, spawnSync, SpawnSyncOptions } from 'node:child_process';
import * as path from 'node:path';

export const MEDREP_BIN = path.resolve(__dirname, '../../../bin/medrep.js');

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `medrep ...args`, to its end. */
export function medrep(args: string[], opts: SpawnSyncOptions = {}): CliResult {
  const r = spawnSync(process.execPath, [MEDREP_BIN, ...args], { encoding: 'utf8', ...opts });
  return { status: r.status, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** `medrep ...args` started in the background; `done` resolves at its end. */
export function medrepAsync(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(process.execPath, [MEDREP_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

/** The last non-empty line of a command's stderr: the one error line. */
export function errorLine(r: CliResult): string {
  return r.stderr.trim().split('\n').pop() ?? '';
}
