// manifest.json: every shard with rows, bytes and sha256; the schema version; the versions
// (hashes) of the vocabulary and decile artifacts; counts. Written last and atomically, so a
// manifest always describes complete shards.
//
// A running Kafka stream also keeps a manifest log, OUT/manifest.d/: one small JSON file per
// durable shard, written (atomically) once the shard's input offsets are committed. Readers take
// the union of manifest.json and manifest.d/, so they see a growing output as a finished one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../common/errors';
import { writeFileAtomic } from './parquet';
import { ShardEntry } from './shards';

/** A shard as the manifest lists it; a Kafka run's shards also name the offsets they cover. */
export interface ManifestShard extends ShardEntry {
  topic?: string;
  partition?: number;
  from_offset?: string;
  to_offset?: string;
}

export interface Manifest {
  kind: 'medrep.manifest';
  schema_version: string;
  omop_schema: string;
  runner: 'local' | 'kafka';
  /** false: the run was stopped (SIGTERM) before the end of its input; the shards are what it committed. */
  complete?: boolean;
  /** true: written while the stream runs (from manifest.d/); the stream rewrites it at stop. */
  growing?: boolean;
  input: unknown;
  artifacts: Record<string, { path: string; version: string }>;
  settings: Record<string, unknown>;
  shards: ManifestShard[];
  rejects: { path: string; rows: number }[];
  counts: Record<string, unknown>;
}

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_LOG_DIR = 'manifest.d';

/** One file of manifest.d/: a durable shard of the Kafka sink. */
export interface ManifestLogEntry extends Required<ManifestShard> {
  /** Samples shards: the task. */
  task?: string;
  /** The artifact versions the shard's records carry. */
  versions: { deciles: string; vocabulary: string };
}

export function writeManifest(out: string, manifest: Manifest): string {
  const file = path.join(out, MANIFEST_FILE);
  writeFileAtomic(file, new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n'));
  return file;
}

const pad = (n: number | string, width: number) => String(n).padStart(width, '0');

/**
 * The entry's file name: sorts by topic, partition and first offset (then the task of a samples
 * range), so a listing of manifest.d/ is in the sink's order. Temp files end otherwise.
 */
export function manifestLogName(e: Pick<ManifestLogEntry, 'topic' | 'partition' | 'from_offset' | 'to_offset' | 'task' | 'kind'>): string {
  // A range's corrections of a task beside its samples shard of that task: a name of their own.
  const what = e.kind === 'corrections' ? `${e.task}.corrections` : e.task ?? e.kind;
  return `${e.topic}.p${pad(e.partition, 5)}.${pad(e.from_offset, 20)}.${pad(e.to_offset, 20)}.${what}.json`;
}

const LOG_NAME = /^[^/]+\.p\d{5}\.\d{20}\.\d{20}\.[^/]+\.json$/;

/** Writes one entry atomically; an entry already there (same shard) is kept. Returns whether it wrote. */
export function writeManifestLogEntry(out: string, e: ManifestLogEntry): boolean {
  const file = path.join(out, MANIFEST_LOG_DIR, manifestLogName(e));
  if (fs.existsSync(file)) return false;
  writeFileAtomic(file, new TextEncoder().encode(JSON.stringify(e) + '\n'));
  return true;
}

/** The entries of OUT/manifest.d/ in name order (temp files of an interrupted write are not entries). */
export function readManifestLog(out: string, cache?: Map<string, ManifestLogEntry>): ManifestLogEntry[] {
  const dir = path.join(out, MANIFEST_LOG_DIR);
  if (!fs.existsSync(dir)) return [];
  const list: ManifestLogEntry[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    if (!LOG_NAME.test(name)) continue;
    let e = cache?.get(name);
    if (!e) {
      const file = path.join(dir, name);
      try {
        e = JSON.parse(fs.readFileSync(file, 'utf8')) as ManifestLogEntry;
      } catch (err) {
        throw new UserError(`${file}: not a readable manifest log entry (${(err as Error).message.split('\n')[0]})`);
      }
      if (typeof e?.path !== 'string' || typeof e.kind !== 'string' || typeof e.sha256 !== 'string') throw new UserError(`${file}: a manifest log entry needs string 'kind', 'path' and 'sha256'`);
      cache?.set(name, e);
    }
    list.push(e);
  }
  return list;
}

/** A log entry as manifest.json lists it (the fields of a finished Kafka run's shard). */
export function manifestShardOf(e: ManifestLogEntry): ManifestShard {
  return { kind: e.kind, path: e.path, rows: e.rows, bytes: e.bytes, sha256: e.sha256, topic: e.topic, partition: e.partition, from_offset: e.from_offset, to_offset: e.to_offset };
}

/**
 * The manifest of an output folder (or of a manifest.json file, or of a manifest.d/ folder): the
 * shards of manifest.json and of manifest.d/ beside it, one per path and hash. A folder with only
 * manifest.d/ (a stream that has not written manifest.json yet) reads as a growing Kafka manifest.
 * `lenient`: a manifest.json needs only its shards (files written by hand, other tools).
 */
export function readManifest(target: string, opts: { lenient?: boolean } = {}): Manifest {
  const stat = fs.existsSync(target) ? fs.statSync(target) : null;
  const dir = stat?.isDirectory() && path.basename(target) !== MANIFEST_LOG_DIR ? target : path.dirname(target);
  const file = stat?.isFile() ? target : path.join(dir, MANIFEST_FILE);
  const logDir = path.join(dir, MANIFEST_LOG_DIR);
  const hasFile = fs.existsSync(file);
  if (!hasFile && !fs.existsSync(logDir)) throw new UserError(`${file}: no manifest (is ${dir} a pipeline output folder?)`);
  let m: Manifest;
  if (hasFile) {
    try {
      m = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
    } catch (e) {
      throw new UserError(`${file}: not a readable medrep manifest (${(e as Error).message.split('\n')[0]})`);
    }
    if (!opts.lenient && m?.kind !== 'medrep.manifest') throw new UserError(`${file}: not a medrep manifest (kind ${JSON.stringify(m?.kind)})`);
    if (!Array.isArray(m?.shards)) throw new UserError(`${file}: field 'shards' must be a list`);
    m.shards.forEach((s, i) => {
      if (typeof s?.path !== 'string' || typeof s.kind !== 'string') throw new UserError(`${file}: shards[${i}] needs string 'kind' and 'path'`);
    });
  } else {
    m = { kind: 'medrep.manifest', schema_version: '', omop_schema: '', runner: 'kafka', complete: false, growing: true, input: null, artifacts: {}, settings: {}, shards: [], rejects: [], counts: {} };
  }
  const key = (s: { path: string; sha256: string }) => `${s.path}\t${s.sha256}`;
  const listed = new Set(m.shards.map(key));
  const added = readManifestLog(dir).map(manifestShardOf).filter((s) => !listed.has(key(s)));
  if (added.length === 0) return m;
  return { ...m, shards: [...m.shards, ...added].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) };
}
