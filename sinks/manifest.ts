// manifest.json: every shard with rows, bytes and sha256; the schema version; the versions
// (hashes) of the vocabulary and decile artifacts; counts. Written last and atomically, so a
// manifest always describes complete shards.
import * as path from 'node:path';
import { writeFileAtomic } from './parquet';
import { ShardEntry } from './shards';

export interface Manifest {
  kind: 'medrep.manifest';
  schema_version: string;
  omop_schema: string;
  runner: 'local' | 'kafka';
  /** false: the run was stopped (SIGTERM) before the end of its input; the shards are what it committed. */
  complete?: boolean;
  input: unknown;
  artifacts: Record<string, { path: string; version: string }>;
  settings: Record<string, unknown>;
  shards: ShardEntry[];
  rejects: { path: string; rows: number }[];
  counts: Record<string, unknown>;
}

export function writeManifest(out: string, manifest: Manifest): string {
  const file = path.join(out, 'manifest.json');
  writeFileAtomic(file, new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n'));
  return file;
}
