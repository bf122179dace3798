// Reads pretraining and sample shards (Parquet) into in-memory sequences, and the run manifest.
// Shards carry OMOP concept ids and deciles; mapping to model indices happens in vocab.ts.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { sha256 } from '../../transforms/hashing';
import type { Sequence as TrajectoryColumns } from '../../transforms/trajectory';
import { Id, parseId } from '../../schemas/ids';
import { sqlString } from '../../common/sql';
import { MANIFEST_FILE, MANIFEST_LOG_DIR, readManifest, type Manifest, type ManifestShard } from '../../sinks/manifest';

/**
 * A shard row: the trajectory's token columns (as transforms/trajectory.ts makes them) and whose
 * they are. The person id is exact (an Id); concept ids are the vocabulary's (safe integers).
 */
export interface Sequence extends Omit<TrajectoryColumns, 'conceptIds'> {
  conceptIds: number[];
  personId: Id;
  split: string;
  /** Binary tasks. */
  label?: boolean;
  /** Multi-label tasks (the 24 phenotypes). */
  labels?: boolean[];
  predictionTime?: string;
  /** Med-BERT pretraining: the person had a prolonged stay (prolongedStay.ts). */
  prolongedStay?: boolean;
}

export type { Manifest, ManifestShard };

const SEQUENCE_COLUMNS = ['person_id', 'concept_ids', 'deciles', 'ages', 'segments', 'record_ranks', 'domains', 'split'];

let shared: Promise<DuckDBConnection> | null = null;
function duck(): Promise<DuckDBConnection> {
  shared ??= DuckDBInstance.create(':memory:', { threads: '1' }).then((db) => db.connect());
  return shared;
}


/** Reads one or more Parquet shards of sequences (pretraining chunks or labelled samples). */
export async function readSequences(files: string[]): Promise<Sequence[]> {
  const out: Sequence[] = [];
  for (const file of files) out.push(...(await readSequenceFile(file)));
  return out;
}

async function readSequenceFile(file: string): Promise<Sequence[]> {
  const conn = await duck();
  const src = `read_parquet(${sqlString(file)})`;
  const cols = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${src}`)).getRowObjectsJS().map((r) => String(r.column_name));
  const missing = SEQUENCE_COLUMNS.filter((c) => !cols.includes(c));
  if (missing.length) throw new Error(`${file}: missing column(s) ${missing.join(', ')} of a sequence shard`);
  const extra = [
    cols.includes('label') ? 'label' : null,
    cols.includes('labels') ? 'labels' : null,
    cols.includes('prediction_time') ? "strftime(prediction_time, '%Y-%m-%dT%H:%M:%S') AS prediction_time" : null,
  ].filter((x): x is string => x !== null);
  // person_id as text, read exactly; concept ids as DOUBLE (plain numbers), checked below to be exact.
  const sql = `SELECT person_id::VARCHAR AS person_id, concept_ids::DOUBLE[] AS concept_ids, deciles::INTEGER[] AS deciles,
      ages::INTEGER[] AS ages, segments::INTEGER[] AS segments, record_ranks::INTEGER[] AS record_ranks,
      domains::INTEGER[] AS domains, split${extra.length ? ', ' + extra.join(', ') : ''} FROM ${src}`;
  const rows = (await conn.runAndReadAll(sql)).getRowObjectsJS();
  return rows.map((r, i) => toSequence(r, file, i + 1));
}

function idOf(v: unknown, where: string): Id {
  const id = parseId(v);
  if (id === null) throw new Error(`${where}: not a 64-bit integer id`);
  return id;
}

function toSequence(r: Record<string, unknown>, file: string, row: number): Sequence {
  const where = (col: string) => `${file}: row ${row}, column ${col}`;
  const list = <T>(col: string): T[] => {
    const v = r[col];
    if (!Array.isArray(v)) throw new Error(`${where(col)}: expected a list, got ${v === null ? 'null' : typeof v}`);
    return v as T[];
  };
  const conceptIds = list<number>('concept_ids');
  const n = conceptIds.length;
  const seq: Sequence = {
    personId: idOf(r.person_id, where('person_id')),
    conceptIds,
    deciles: list<number | null>('deciles'),
    ages: list<number>('ages'),
    segments: list<number>('segments'),
    recordRanks: list<number>('record_ranks'),
    domains: list<number>('domains'),
    split: String(r.split),
  };
  for (const [col, arr] of [['deciles', seq.deciles], ['ages', seq.ages], ['segments', seq.segments], ['record_ranks', seq.recordRanks], ['domains', seq.domains]] as const) {
    if (arr.length !== n) throw new Error(`${where(col)}: ${arr.length} values but concept_ids has ${n}`);
  }
  if (n < 2) throw new Error(`${where('concept_ids')}: a sequence needs at least [CLS] and the gender token`);
  conceptIds.forEach((c, i) => {
    if (c === null) throw new Error(`${where('concept_ids')}[${i}]: null concept id`);
    if (!Number.isSafeInteger(c)) throw new Error(`${where('concept_ids')}[${i}]: concept id beyond 2^53 (the model vocabulary takes vocabulary concept ids)`);
  });
  if ('label' in r) {
    if (r.label === null) throw new Error(`${where('label')}: null label`);
    seq.label = Boolean(r.label);
  }
  if ('labels' in r) {
    const labels = r.labels;
    if (!Array.isArray(labels) || labels.some((x) => x === null)) throw new Error(`${where('labels')}: expected a list of booleans without nulls`);
    seq.labels = labels.map(Boolean);
  }
  if (typeof r.prediction_time === 'string') seq.predictionTime = r.prediction_time;
  return seq;
}

/** Whether an output folder has a manifest: manifest.json, or the log of a running stream. */
export function hasManifest(outDir: string): boolean {
  return existsSync(join(outDir, MANIFEST_FILE)) || existsSync(join(outDir, MANIFEST_LOG_DIR));
}

/** The shards an output folder's manifest lists (manifest.json and manifest.d/, sinks/manifest.ts). */
export function manifestShards(outDir: string): ManifestShard[] {
  return readManifest(outDir, { lenient: true }).shards;
}

/** Whether a manifest shard belongs to pretraining or to the samples of `task`. */
export function shardMatches(s: ManifestShard, task: string): boolean {
  const path = s.path.replace(/\\/g, '/');
  if (task === 'pretrain') return s.kind === 'pretrain' || path.startsWith('pretrain/');
  // Corrections (samples/<task>/corrections/*.json) are label revisions, not training shards.
  if (s.kind === 'corrections' || !path.endsWith('.parquet')) return false;
  return path.startsWith(`samples/${task}/`) || s.kind === `samples/${task}` || (s.kind === 'samples' && path.includes(`/${task}/`));
}

/**
 * The shards of `task` in an output folder: from its manifest when there is one, else every
 * Parquet file under pretrain/ or samples/<task>/ (sorted, so the order is stable).
 */
export function listShards(outDir: string, task: string): ManifestShard[] {
  if (hasManifest(outDir)) {
    return manifestShards(outDir).filter((s) => shardMatches(s, task)).sort((a, b) => a.path.localeCompare(b.path));
  }
  const dir = task === 'pretrain' ? join(outDir, 'pretrain') : join(outDir, 'samples', task);
  if (!existsSync(dir)) throw new Error(`${outDir}: no ${task === 'pretrain' ? 'pretrain/' : `samples/${task}/`} folder and no manifest.json`);
  const files = readdirSync(dir).filter((f) => f.endsWith('.parquet')).sort();
  return files.map((f) => {
    const p = join(dir, f);
    const bytes = readFileSync(p);
    return { kind: task === 'pretrain' ? 'pretrain' : `samples/${task}`, path: relative(outDir, p), rows: -1, bytes: statSync(p).size, sha256: sha256(bytes) };
  });
}

/** One hash naming exactly which shard versions a model saw. */
export function shardSetHash(shards: ManifestShard[]): string {
  return `sha256:${sha256(shards.map((s) => `${s.path}\t${s.sha256}`).sort().join('\n'))}`;
}
