// When the Kafka sink closes (rolls) a shard. A shard closes once it holds a number of rows or of
// message bytes, at the end of a load, or before a message written a time span after its first
// one. Every rule reads only the messages themselves (rows, value bytes, log timestamps, end
// markers), never the wall clock nor how the broker happened to chunk them: a restart from the
// first offset not on disk draws the same boundaries, so it rebuilds the same files byte for byte.
import { DEFAULT_EVENTS_PER_SHARD, DEFAULT_SEQUENCES_PER_SHARD } from '../../sinks/shards';

export interface ShardBounds {
  /** Rows at most: the shard closes after the message that reaches them (a message is never split). */
  rows: number;
  /** Bytes of message values (the topic's JSON, several times the Parquet file) at most, likewise. */
  bytes: number;
  /**
   * Log time (Kafka message timestamps, ms): a message written this long after the shard's first
   * message starts the next shard. 0: no time bound.
   */
  maxAgeMs: number;
}

export const DEFAULT_SHARD_BYTES = 128 * 1024 * 1024;
export const DEFAULT_SHARD_MAX_AGE_MS = 10 * 60_000;

export interface ShardSizeOptions {
  eventsPerShard?: number;
  sequencesPerShard?: number;
  shardMaxBytes?: number;
  shardMaxAgeMs?: number;
}

/** The bounds of one sink topic: rows as the local runner's shards (sinks/shards.ts), bytes and time shared. */
export function shardBounds(kind: 'events' | 'pretrain' | 'samples', o: ShardSizeOptions): ShardBounds {
  return {
    rows: kind === 'events' ? o.eventsPerShard ?? DEFAULT_EVENTS_PER_SHARD : o.sequencesPerShard ?? DEFAULT_SEQUENCES_PER_SHARD,
    bytes: o.shardMaxBytes ?? DEFAULT_SHARD_BYTES,
    maxAgeMs: o.shardMaxAgeMs ?? DEFAULT_SHARD_MAX_AGE_MS,
  };
}

/** End markers seen per table of one topic partition, and the loads they closed. */
export interface LoadCount {
  readonly counts: Readonly<Record<string, number>>;
  readonly closed: number;
}

export const NO_LOADS: LoadCount = { counts: {}, closed: 0 };

/**
 * One more end marker of `table`. Load k ends once every table of `tables` sent its k-th marker
 * (the trajectory stage's rule), so a table that runs ahead into the next load closes nothing.
 */
export function countEndMarker(state: LoadCount, table: string, tables: readonly string[]): { state: LoadCount; loadEnded: boolean } {
  const counts = { ...state.counts, [table]: (state.counts[table] ?? 0) + 1 };
  let closed = state.closed;
  while (tables.every((t) => (counts[t] ?? 0) > closed)) closed++;
  return { state: { counts, closed }, loadEnded: closed > state.closed };
}
