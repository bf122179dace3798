// One pipeline output folder as the trainers see it: its pretraining sequences and the labelled
// samples of each task, with the shard list (paths and hashes) they came from.
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { listShards, readSequences, shardSetHash, type ManifestShard, type Sequence } from './data';

export interface SiteData {
  dir: string;
  shards: ManifestShard[];
  sequences: Sequence[];
}

export async function loadSiteTask(dir: string, task: string): Promise<SiteData> {
  const shards = listShards(dir, task);
  if (shards.length === 0) throw new Error(`${dir}: no ${task === 'pretrain' ? 'pretraining' : `samples/${task}`} shards`);
  const sequences = await readSequences(shards.map((s) => resolve(dir, s.path)));
  return { dir, shards, sequences };
}

/** Task names with sample shards in an output folder. */
export function sampleTasks(dir: string): string[] {
  const root = join(dir, 'samples');
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
}

export const siteHash = (s: SiteData) => shardSetHash(s.shards);

export function bySplit(seqs: Sequence[], splits: string[], what: string, where: string): Sequence[] {
  const out = seqs.filter((s) => splits.includes(s.split));
  if (out.length === 0) throw new Error(`${where}: no ${what} sequences (splits ${splits.join(', ')})`);
  return out;
}
