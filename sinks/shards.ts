// Shard series: a folder of part-00000.parquet, part-00001.parquet, ... each bounded in rows and
// written atomically, with an entry per shard for the manifest.
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { WrittenFile, writeParquetAtomic } from './parquet';

/** Rows per shard by default: events, and pretraining sequences or samples (both runners). */
export const DEFAULT_EVENTS_PER_SHARD = 250_000;
export const DEFAULT_SEQUENCES_PER_SHARD = 20_000;

export interface ShardEntry {
  kind: string;
  /** Path relative to the output folder. */
  path: string;
  rows: number;
  bytes: number;
  sha256: string;
}

/**
 * A shard as the columns DuckDB receives (numbers; text as codes) and the SELECT over them that
 * gives the shard's layout; toTable() builds the same rows as Arrow, for other writers.
 */
export interface StagedShard {
  staging: arrow.Table;
  select: string;
  toTable(): arrow.Table;
}

export type ShardData = arrow.Table | StagedShard;

export const shardTable = (data: ShardData): arrow.Table => (data instanceof arrow.Table ? data : data.toTable());

/** Encodes shards off the caller's turn (duckShardWriter.ts: on DuckDB's threads). */
export interface ShardWriter {
  /** Queues a shard (waiting first if too many are queued); `done` resolves when its file is durable. */
  write(target: string, data: ShardData): Promise<{ done: Promise<WrittenFile> }>;
  /** Waits for every queued shard. */
  close(): Promise<void>;
  /** After a failure elsewhere: stops; queued shards may be lost. */
  terminate(): Promise<void>;
}

export class ShardSeries {
  readonly entries: ShardEntry[] = [];
  private readonly queued: Promise<void>[] = [];
  private count = 0;
  /** With a writer, shards are encoded off the caller's turn; `finish()` waits for them. */
  constructor(
    readonly kind: string,
    private readonly outDir: string,
    private readonly relDir: string,
    private readonly pool: ShardWriter | null = null,
  ) {}

  private nextPath(): string {
    return path.posix.join(this.relDir, `part-${String(this.count++).padStart(5, '0')}.parquet`);
  }

  private record(index: number, rel: string, f: WrittenFile): void {
    this.entries[index] = { kind: this.kind, path: rel, rows: f.rows, bytes: f.bytes, sha256: f.sha256 };
  }

  /**
   * Queues a shard. `release` is called once the writer no longer reads `data` (its file written,
   * or failed: the failure is finish()'s to report), so that the caller may reuse its buffers.
   */
  async write(data: ShardData, release?: () => void): Promise<void> {
    const index = this.count;
    const rel = this.nextPath();
    if (!this.pool) {
      this.record(index, rel, writeParquetAtomic(path.join(this.outDir, rel), shardTable(data)));
      release?.();
      return;
    }
    const { done } = await this.pool.write(path.join(this.outDir, rel), data);
    if (release) done.then(release, release);
    this.queued.push(done.then((f) => this.record(index, rel, f)));
  }

  /** Waits until every shard is durable; entries are then complete and in order. */
  async finish(): Promise<ShardEntry[]> {
    await Promise.all(this.queued.splice(0));
    return this.entries;
  }
}
