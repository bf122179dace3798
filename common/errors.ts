// Errors a user or the machine can cause, and the exit code of each kind. The CLI prints such an
// error as one line and exits with its code; MEDREP_DEBUG=1 adds the stack.

/** Exit codes of every medrep command. */
export const EXIT = {
  ok: 0,
  /** A bug in medrep: the message is one line, MEDREP_DEBUG=1 prints the stack. */
  internal: 1,
  /** Bad options, missing or malformed input, an output folder medrep may not write. */
  user: 2,
  /** The machine: disk full, permission denied, the Kafka broker unreachable after retries. */
  environment: 3,
  /** `medrep replay --verify`: a rebuilt shard differs from the manifest. */
  mismatch: 4,
  /** Stopped by SIGTERM/SIGINT before the end: the output and its manifest are marked incomplete. */
  stopped: 5,
} as const;

/** An error with the exit code it ends the command with; its message is the one line printed. */
export class MedrepError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
    this.name = 'MedrepError';
  }
}

/** Caused by what the user gave: options, input files, the output folder. */
export class UserError extends MedrepError {
  constructor(message: string, exitCode: number = EXIT.user) {
    super(message, exitCode);
    this.name = 'UserError';
  }
}

/** Caused by the machine or the network: disk, permissions, the broker. */
export class EnvironmentError extends MedrepError {
  constructor(message: string) {
    super(message, EXIT.environment);
    this.name = 'EnvironmentError';
  }
}

const DISK_FULL = /ENOSPC|EDQUOT|no space left on device|disk quota exceeded/i;
const NO_PERMISSION = /EACCES|EPERM|EROFS|permission denied|read-only file system/i;
const KAFKA_UNREACHABLE = new Set(['KafkaJSConnectionError', 'KafkaJSNumberOfRetriesExceeded', 'KafkaJSBrokerNotFound', 'KafkaJSConnectionClosedError', 'KafkaJSRequestTimeoutError']);

function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim() !== '')?.trim() ?? s;
}

/** DuckDB names the file and the system's reason in its message only (a COPY's write, say). */
const DUCKDB_FILE_ERROR = /Could not (?:write|open|create|read) file "([^"]+)": ([^\n]+)/;

/** The path a system error names (Node.js: its path; DuckDB: its message), if any. */
function errorPath(e: NodeJS.ErrnoException): string | undefined {
  const p = e.path ?? (e as { dest?: string }).dest ?? (e.code ? undefined : DUCKDB_FILE_ERROR.exec(e.message)?.[1]);
  // Files are written under `<name>.tmp-<pid>` first: the user knows the name.
  return p?.replace(/\.tmp-\d+$/, '');
}

/**
 * What the CLI prints and the code it exits with, for any error: a MedrepError as it is; the
 * machine's own errors (disk full, permission, an unreachable broker), wherever they were raised,
 * as environment errors; anything else as an internal error.
 */
export function classifyError(e: unknown): { line: string; exitCode: number } {
  if (e instanceof MedrepError) return { line: e.message, exitCode: e.exitCode };
  const err = e instanceof Error ? e : new Error(String(e));
  const errno = err as NodeJS.ErrnoException;
  const where = errorPath(errno);
  const text = `${errno.code ?? ''} ${err.message}`;
  const detail = errno.code ?? DUCKDB_FILE_ERROR.exec(err.message)?.[2].trim() ?? firstLine(err.message);
  if (DISK_FULL.test(text)) return { line: `disk full: cannot write ${where ?? 'the output'} (${/^ENOSPC$|^no space left on device$/i.test(detail) ? 'no space left on device' : detail})`, exitCode: EXIT.environment };
  if (NO_PERMISSION.test(text)) return { line: `permission denied: ${where ?? firstLine(err.message)}`, exitCode: EXIT.environment };
  if (errno.code === 'ENOENT' && where) return { line: `not found: ${where}`, exitCode: EXIT.user };
  // DuckDB's cap is the machine's business: commands with --memory-limit say which value to set.
  if (/^Out of Memory Error/.test(err.message)) return { line: `DuckDB ran out of memory: ${firstLine(err.message)}`, exitCode: EXIT.environment };
  // kafkajs wraps the last connection error after its retries; the cause names the broker.
  for (let c: unknown = err; c instanceof Error; c = (c as { cause?: unknown }).cause ?? (c as { originalError?: unknown }).originalError) {
    if (KAFKA_UNREACHABLE.has(c.name)) return { line: `Kafka broker unreachable after retries: ${firstLine(err.message)}`, exitCode: EXIT.environment };
  }
  return { line: `internal error: ${firstLine(err.message)} (MEDREP_DEBUG=1 prints the stack)`, exitCode: EXIT.internal };
}
