// DuckDB's memory cap for a run (--memory-limit): its default follows the machine's memory, and
// DuckDB running out of memory within it is one line saying what to set. Beyond the cap DuckDB
// spills sorts, joins and aggregates to the run's temporary folder.
import * as os from 'node:os';
import { EnvironmentError, UserError } from '../common/errors';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** Share of the machine's memory DuckDB may take by default: the rest is for the JavaScript side and everyone else. */
export const DEFAULT_MEMORY_SHARE = 1 / 16;
/** Bounds of the default: below 512 MiB sorts spill for nothing, beyond 4 GiB they gain little. */
export const DEFAULT_MEMORY_MIN = 512 * MiB;
export const DEFAULT_MEMORY_MAX = 4 * GiB;

const UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: MiB, gib: GiB, tib: 2 ** 40,
};

/** Bytes of a size as DuckDB reads it ('800MB', '1.5GB', '2GiB'); null when it is not one. */
export function parseMemorySize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(text);
  if (!m) return null;
  const bytes = Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()];
  return Number.isFinite(bytes) && bytes > 0 ? bytes : null;
}

/** A size DuckDB reads, in whole MiB (e.g. '1536MiB'). */
export function formatMemorySize(bytes: number): string {
  return `${Math.max(1, Math.round(bytes / MiB))}MiB`;
}

/** The default --memory-limit: a sixteenth of the machine's memory, within [512 MiB, 4 GiB]. */
export function defaultMemoryLimit(totalBytes: number = os.totalmem()): string {
  return formatMemorySize(Math.min(DEFAULT_MEMORY_MAX, Math.max(DEFAULT_MEMORY_MIN, totalBytes * DEFAULT_MEMORY_SHARE)));
}

/** The limit a run uses: the option as given (checked), else the default. */
export function resolveMemoryLimit(option: string | undefined): string {
  if (option === undefined) return defaultMemoryLimit();
  if (parseMemorySize(option) === null) throw new UserError(`--memory-limit ${option}: expected a size such as 800MB, 2GB or 1.5GiB`);
  return option.trim();
}

/** Whether an error is DuckDB's "could not allocate" within its memory cap. */
export function isDuckOutOfMemory(e: unknown): boolean {
  return e instanceof Error && /^Out of Memory Error/.test(e.message);
}

/** DuckDB's out-of-memory error as one line naming the limit and what to set instead (exit 3). */
export function outOfMemoryError(e: Error, limit: string): EnvironmentError {
  const detail = e.message.split('\n')[0].replace(/^Out of Memory Error:\s*/, '');
  // Twice the limit, and never below the default: a tiny limit set by hand gets a usable hint.
  const suggested = Math.max(2 * (parseMemorySize(limit) ?? 0), parseMemorySize(defaultMemoryLimit())!);
  return new EnvironmentError(
    `DuckDB ran out of memory within --memory-limit ${limit} (${detail}); rerun with a larger --memory-limit, ` +
      `e.g. --memory-limit ${formatMemorySize(suggested)} (this machine has ${formatMemorySize(os.totalmem())})`,
  );
}
