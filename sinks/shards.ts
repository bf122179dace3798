// Shard series: a folder of part-00000.parquet, part-00001.parquet, ... each bounded in rows and
// written atomically, with an entry per shard for the manifest.
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { WrittenFile, writeParquetAtomic } from './parquet';

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
  constructor(
    readonly kind: string,
    private readonly outDir: string,
    private readonly relDir: string,
  ) {}

  write(table: arrow.Table): ShardEntry {
    const rel = path.posix.join(this.relDir, `part-${String(this.entries.length).padStart(5, '0')}.parquet`);
    const f: WrittenFile = writeParquetAtomic(path.join(this.outDir, rel), table);
    const entry = { kind: this.kind, path: rel, rows: f.rows, bytes: f.bytes, sha256: f.sha256 };
    this.entries.push(entry);
    return entry;
  }
}
