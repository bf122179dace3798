// The Kafka sink's manifest log (OUT/manifest.d/, layout in sinks/manifest.ts): a shard is listed
// once the transaction that commits its input offsets has committed, never before, so every entry
// names a shard that a restart would not write again. A crash between that commit and the entry's
// write leaves a shard the committed offsets cover without an entry: `reconcile` (at start and at
// stop) lists it from the file on disk. manifest.json is rewritten from the log on each new entry,
// every `intervalMs` (entries of other sink processes) and at stop (the full manifest).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sha256 } from '../../transforms/hashing';
import { Manifest, ManifestLogEntry, manifestShardOf, readManifestLog, writeManifest, writeManifestLogEntry } from '../../sinks/manifest';
import { parseShardFileName, SinkObserver, SinkShard, SinkTopic } from './shardSink';

/** A shard file under OUT/<sink dir> named by its offset range. */
export function sinkShardFiles(out: string, sinks: SinkTopic[]): Array<Omit<SinkShard, 'rows'>> {
  const list: Array<Omit<SinkShard, 'rows'>> = [];
  for (const s of sinks) {
    const top = path.join(out, s.dir);
    if (!fs.existsSync(top)) continue;
    // Samples: one folder per task.
    const dirs = s.kind === 'samples' ? fs.readdirSync(top).sort().map((t) => [path.posix.join(s.dir, t), t]) : [[s.dir, undefined]];
    for (const [rel, task] of dirs) {
      const dir = path.join(out, rel!);
      if (!fs.statSync(dir).isDirectory()) continue;
      for (const name of fs.readdirSync(dir).sort()) {
        const range = parseShardFileName(name);
        if (range && range.topic === s.topic) list.push({ path: path.posix.join(rel!, name), kind: s.kind, ...(task ? { task } : {}), range });
      }
      // A task's corrections: samples/<task>/corrections/<range>.json.
      const corrections = path.join(dir, 'corrections');
      if (task === undefined || !fs.existsSync(corrections)) continue;
      for (const name of fs.readdirSync(corrections).sort()) {
        const range = name.endsWith('.json') ? parseShardFileName(name.replace(/\.json$/, '.parquet')) : null;
        if (range && range.topic === s.topic) list.push({ path: path.posix.join(rel!, 'corrections', name), kind: 'corrections', task, range });
      }
    }
  }
  return list.sort((a, b) => (a.path < b.path ? -1 : 1));
}

const contentOf = (bytes: Buffer) => ({ bytes: bytes.length, sha256: sha256(bytes) });

const partitionKey = (topic: string, partition: number) => `${topic}/${partition}`;

export class ManifestLog implements SinkObserver {
  /** Per topic partition: shards written in transactions not known to be committed yet. */
  private readonly pending = new Map<string, Map<string, SinkShard>>();
  /** Per topic partition: the offset the sink last asked to commit through. */
  private readonly through = new Map<string, bigint>();
  private readonly cache = new Map<string, ManifestLogEntry>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly out: string,
    private readonly versions: ManifestLogEntry['versions'],
    /** The header of the manifest.json written while the stream runs (shards come from the log). */
    private readonly header: Omit<Manifest, 'shards'>,
    private readonly warn: (line: string) => void,
  ) {}

  /** The sink wrote (or found) a shard in the transaction in flight. */
  written(s: SinkShard): void {
    const key = partitionKey(s.range.topic, s.range.partition);
    let map = this.pending.get(key);
    if (!map) this.pending.set(key, (map = new Map()));
    map.set(s.path, s);
  }

  /** The sink asks to commit the partition's offsets through `next` (exclusive). */
  commitThrough(topic: string, partition: number, next: bigint): void {
    this.through.set(partitionKey(topic, partition), next);
  }

  /**
   * The transaction of the partition committed: the shards its committed offset covers are
   * durable and get their entries (a shard of an aborted transaction waits until a later commit
   * covers it again: the same file, since boundaries depend only on the messages).
   */
  committed(topic: string, partition: number): number {
    const key = partitionKey(topic, partition);
    const map = this.pending.get(key);
    const next = this.through.get(key);
    if (!map || next === undefined) return 0;
    let n = 0;
    for (const [p, s] of map) {
      if (s.range.to >= next) continue;
      if (this.record(s)) n++;
      map.delete(p);
    }
    if (n > 0) this.rewrite();
    return n;
  }

  private record(s: SinkShard): boolean {
    // The sink hashed what it wrote; a shard it found on disk (or a reconciled one) is read here.
    const content = s.content ?? contentOf(fs.readFileSync(path.join(this.out, s.path)));
    return writeManifestLogEntry(this.out, {
      kind: s.kind, path: s.path, ...(s.task ? { task: s.task } : {}), rows: s.rows, bytes: content.bytes, sha256: content.sha256,
      topic: s.range.topic, partition: s.range.partition, from_offset: s.range.from.toString(), to_offset: s.range.to.toString(), versions: this.versions,
    });
  }

  /** Whether a shard file on disk has no entry in the log. */
  hasUnlistedShards(sinks: SinkTopic[]): boolean {
    const listed = new Set(readManifestLog(this.out, this.cache).map((e) => e.path));
    return sinkShardFiles(this.out, sinks).some((f) => !listed.has(f.path));
  }

  /**
   * Lists the shards on disk that the committed offsets cover and the log lacks (a crash after a
   * commit, before the entry): `committed` maps topic/partition to the group's committed offset,
   * `rows` counts a file's rows. Returns the entries it wrote.
   */
  async reconcile(sinks: SinkTopic[], committed: Map<string, bigint>, rows: (file: string) => Promise<number>): Promise<number> {
    const listed = new Set(readManifestLog(this.out, this.cache).map((e) => e.path));
    let n = 0;
    for (const f of sinkShardFiles(this.out, sinks)) {
      const next = committed.get(partitionKey(f.range.topic, f.range.partition));
      if (listed.has(f.path) || next === undefined || f.range.to >= next) continue;
      const file = path.join(this.out, f.path);
      const count = f.kind === 'corrections' ? (JSON.parse(fs.readFileSync(file, 'utf8')) as unknown[]).length : await rows(file);
      if (this.record({ ...f, rows: count })) n++;
    }
    return n;
  }

  /** The log's entries, as manifest.json lists shards (path order). */
  shards(): ReturnType<typeof manifestShardOf>[] {
    return readManifestLog(this.out, this.cache).map(manifestShardOf).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** manifest.json of the running stream: the header and every entry of the log. */
  rewrite(): void {
    writeManifest(this.out, { ...this.header, shards: this.shards() });
  }

  /** Rewrites manifest.json every `ms` (0: never) until stop(). */
  start(ms: number): void {
    // A failed rewrite (disk full) leaves the previous manifest.json; the next one or the stop retries.
    const tick = () => {
      try {
        this.rewrite();
      } catch (e) {
        this.warn(`manifest: manifest.json not rewritten (${(e as Error).message.split('\n')[0]}); the log in manifest.d/ is complete`);
      }
    };
    if (ms > 0) this.timer = setInterval(tick, ms);
    this.timer?.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
