// kafkajs's own log entries through medrep's logger, as plain lines at the level they deserve:
// the coordinator and leadership churn of a group starting, rebalancing or riding out a broker
// restart is retried by kafkajs and is information, not an error. What kafkajs gives up on
// reaches the command as an exception (one line, exit 3).
import { logLevel, LogEntry, logCreator } from 'kafkajs';
import { Logger } from '../../common/progress';

/** Errors kafkajs retries by itself while a group forms or a leader moves. */
const TRANSIENT = /coordinator is not available|not coordinator|coordinator is loading|coordinator load in progress|rebalanc|not the leader|leader not available|no leader|unknown member|member id|Restarting the consumer|connection (?:error|closed|timeout)|ECONNREFUSED|ECONNRESET|Broker not connected|The group is rebalancing|Failed to connect to seed broker/i;

/** The line of one entry: `kafka <namespace>: <message> (<error>) group=... topic=...` (counts and names, no data). */
export function formatClientLog(entry: LogEntry): string {
  const l = entry.log as Record<string, unknown> & { message: string };
  const extra = ['groupId', 'topic', 'partition', 'broker', 'retryCount', 'retryTime']
    .filter((k) => l[k] !== undefined && l[k] !== null)
    .map((k) => `${k}=${String(l[k])}`);
  const error = typeof l.error === 'string' ? ` (${l.error})` : '';
  return `kafka ${entry.namespace || 'client'}: ${l.message}${error}${extra.length ? ' ' + extra.join(' ') : ''}`;
}

/** Where an entry goes: `info` for retried churn and notices, `warn` for the rest, null to drop (debug). */
export function clientLogLevel(entry: LogEntry): 'info' | 'warn' | null {
  if (entry.level >= logLevel.INFO) return entry.level === logLevel.INFO ? 'info' : null;
  const l = entry.log as { message?: string; error?: string };
  if (TRANSIENT.test(`${l.message ?? ''} ${l.error ?? ''}`)) return 'info';
  return 'warn';
}

/** A kafkajs logCreator writing to `log`. */
export function clientLogCreator(log: Logger): logCreator {
  return () => (entry: LogEntry) => {
    const level = clientLogLevel(entry);
    if (level) log[level](formatClientLog(entry));
  };
}
