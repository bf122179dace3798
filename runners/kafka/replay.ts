// `medrep replay`: rebuilds the shards of a Kafka run from the retained topics and checks them,
// shard by shard, against the manifest's hashes (audit: "was the model trained on exactly this?").
// Each shard of the manifest names its topic, partition and offset range; the shards that start
// at or after the replay start (--from-offsets FILE, or the first offsets at --from-time ISO) are
// read back (read_committed, as the sink read them) and encoded by the sink's own code.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Kafka } from 'kafkajs';
import { writeFileAtomic, writeParquetAtomic } from '../../sinks/parquet';
import { Manifest, ManifestShard, readManifest } from '../../sinks/manifest';
import { UserError } from '../../common/errors';
import { withOutputDir } from '../../common/outputDir';
import { Logger, consoleLogger } from '../../common/progress';
import { createKafka, KafkaOptions } from './config';
import { readToEnd } from './readToEnd';
import { correctionsBytes, sampleCorrections, sampleTable, shardTable } from './shardSink';
import { sha256 } from '../../transforms/hashing';
import { StreamValue } from './streamValues';
import { decodeStreamValue } from './streamCodec';

export interface ReplayOptions {
  kafka: KafkaOptions;
  out: string;
  /** manifest.json of the run to verify (with manifest.d/ beside it), or its manifest.d/ folder. */
  verify: string;
  /** JSON file {"<topic>": {"<partition>": <first offset>}}; topics not named are not replayed. */
  fromOffsets?: string;
  /** ISO time: every topic from the first offset whose timestamp is at or after it. */
  fromTime?: string;
  log?: Logger;
  client?: Kafka;
  /** Replace a previous medrep output in `out`. */
  force?: boolean;
}

export interface ReplayedShard {
  path: string;
  rows: number;
  expected: string;
  actual: string;
  match: boolean;
}

export interface ReplayResult {
  shards: ReplayedShard[];
  matched: number;
  /** Shards of the manifest that start before the replay start. */
  skipped: number;
}

export async function runReplay(opts: ReplayOptions): Promise<ReplayResult> {
  return withOutputDir(opts.out, { command: 'replay', force: opts.force, log: opts.log }, () => replayInto(opts));
}

async function replayInto(opts: ReplayOptions): Promise<ReplayResult> {
  const log = opts.log ?? consoleLogger;
  const manifest = readVerifiedManifest(opts.verify);
  const shards = manifest.shards.filter((s) => s.topic !== undefined && (s.kind === 'events' || s.kind === 'pretrain' || s.kind === 'samples' || s.kind === 'corrections'));
  const topics = [...new Set(shards.map((s) => s.topic!))].sort();
  const kafka = opts.client ?? createKafka(opts.kafka, log);
  const start = opts.fromOffsets ? startFromFile(opts.fromOffsets) : await startAtTime(kafka, topics, opts.fromTime);
  const chosen = shards.filter((s) => {
    const first = start.get(`${s.topic}/${s.partition}`);
    return first !== undefined && BigInt(s.from_offset!) >= first;
  });
  if (chosen.length === 0) throw new UserError(`no shard of ${opts.verify} starts at or after the replay start: nothing to replay`);
  log.info(`replay: ${chosen.length} of ${shards.length} shards start at or after the replay start`);

  const results: ReplayedShard[] = [];
  for (const topic of topics) {
    const mine = chosen.filter((s) => s.topic === topic);
    if (mine.length) results.push(...(await rebuildShards(kafka, topic, mine, opts.out)));
  }
  results.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { shards: results, matched: results.filter((r) => r.match).length, skipped: shards.length - chosen.length };
}

/** manifest.json, with the entries of manifest.d/ beside it (a running or stopped stream), of a Kafka run. */
function readVerifiedManifest(verify: string): Manifest {
  let manifest: Manifest;
  try {
    manifest = readManifest(verify);
  } catch (e) {
    throw new UserError(`--verify ${verify}: cannot read the manifest (${(e as Error).message})`);
  }
  if (manifest.runner !== 'kafka') throw new UserError(`--verify ${verify}: not the manifest of a Kafka run (runner ${manifest.runner}); only those name topics and offsets`);
  return manifest;
}

/** The first offset to replay per `topic/partition`, from a JSON file {"<topic>": {"<partition>": <offset>}}. */
function startFromFile(fromOffsets: string): Map<string, bigint> {
  let file: Record<string, Record<string, string | number>>;
  try {
    file = JSON.parse(fs.readFileSync(fromOffsets, 'utf8'));
  } catch (e) {
    throw new UserError(`--from-offsets ${fromOffsets}: cannot read (${(e as Error).message})`);
  }
  const start = new Map<string, bigint>();
  for (const [topic, parts] of Object.entries(file)) for (const [p, o] of Object.entries(parts)) start.set(`${topic}/${p}`, BigInt(o));
  return start;
}

/** The first offset per `topic/partition` whose timestamp is at or after the ISO time `fromTime`. */
async function startAtTime(kafka: Kafka, topics: string[], fromTime: string | undefined): Promise<Map<string, bigint>> {
  const ms = Date.parse(fromTime ?? '');
  if (!Number.isFinite(ms)) throw new UserError(`--from-time: "${fromTime}" is not an ISO time`);
  const start = new Map<string, bigint>();
  const admin = kafka.admin();
  await admin.connect();
  let anyAfter = false;
  try {
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      for (const o of await admin.fetchTopicOffsetsByTimestamp(topic, ms)) {
        // -1: nothing at or after the time; the replay starts at the end (nothing of it).
        const end = BigInt(ends.find((e) => e.partition === o.partition)!.high);
        const off = BigInt(o.offset) < 0n ? end : BigInt(o.offset);
        if (off < end) anyAfter = true;
        start.set(`${topic}/${o.partition}`, off);
      }
    }
  } finally {
    await admin.disconnect();
  }
  if (!anyAfter) {
    throw new UserError(`--from-time ${new Date(ms).toISOString()} is after the last message of the run's topics (${topics.join(', ')}): nothing to replay; give an earlier time`);
  }
  return start;
}

/** Reads one topic's chosen shard ranges back (read_committed) and writes each shard with the sink's code, against its manifest hash. */
async function rebuildShards(kafka: Kafka, topic: string, mine: ManifestShard[], out: string): Promise<ReplayedShard[]> {
  const partitions = [...new Set(mine.map((s) => s.partition!))];
  const values = new Map<ManifestShard, StreamValue[]>(mine.map((s) => [s, []]));
  await readToEnd(kafka, topic, { partitions, timeoutMs: 120_000 }, (partition, m) => {
    const o = BigInt(m.offset);
    for (const s of mine) {
      if (s.partition === partition && o >= BigInt(s.from_offset!) && o <= BigInt(s.to_offset!)) values.get(s)!.push(decodeStreamValue({ topic, value: m.value, headers: m.headers }));
    }
  });
  const results: ReplayedShard[] = [];
  for (const s of mine) {
    if (s.kind === 'corrections') {
      // samples/<task>/corrections/<range>.json
      const list = sampleCorrections(values.get(s)!).get(path.posix.basename(path.posix.dirname(path.posix.dirname(s.path)))) ?? [];
      const bytes = correctionsBytes(list);
      writeFileAtomic(path.join(out, s.path), bytes);
      const actual = sha256(bytes);
      results.push({ path: s.path, rows: list.length, expected: s.sha256, actual, match: actual === s.sha256 && list.length === s.rows });
      continue;
    }
    const table = s.kind === 'samples' ? sampleTable(values.get(s)!, path.posix.basename(path.posix.dirname(s.path))) : shardTable(s.kind as 'events' | 'pretrain', values.get(s)!);
    const w = writeParquetAtomic(path.join(out, s.path), table);
    results.push({ path: s.path, rows: w.rows, expected: s.sha256, actual: w.sha256, match: w.sha256 === s.sha256 && w.rows === s.rows });
  }
  return results;
}
