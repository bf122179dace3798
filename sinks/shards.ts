// Shard series: a folder of part-00000.parquet, part-00001.parquet, ... each bounded in rows and
// written atomically, with an entry per shard for the manifest.
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { WrittenFile, writeParquetAtomic } from './parquet';
import { ParquetWriterPool } from './parquetWorker';

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

export class ShardSeries {
  readonly entries: ShardEntry[] = [];
  private readonly queued: Promise<void>[] = [];
  private count = 0;
  /** With a pool, shards are encoded on a worker thread; `finish()` waits for them. */
  constructor(
    readonly kind: string,
    private readonly outDir: string,
    private readonly relDir: string,
    private readonly pool: ParquetWriterPool | null = null,
  ) {}

  private nextPath(): string {
    return path.posix.join(this.relDir, `part-${String(this.count++).padStart(5, '0')}.parquet`);
  }

  private record(index: number, rel: string, f: WrittenFile): void {
    this.entries[index] = { kind: this.kind, path: rel, rows: f.rows, bytes: f.bytes, sha256: f.sha256 };
  }

  async write(table: arrow.Table): Promise<void> {
    const index = this.count;
    const rel = this.nextPath();
    if (!this.pool) {
      this.record(index, rel, writeParquetAtomic(path.join(this.outDir, rel), table));
      return;
    }
    const { done } = await this.pool.write(path.join(this.outDir, rel), table);
    this.queued.push(done.then((f) => this.record(index, rel, f)));
  }

  /** Waits until every shard is durable; entries are then complete and in order. */
  async finish(): Promise<ShardEntry[]> {
    await Promise.all(this.queued.splice(0));
    return this.entries;
  }
}
