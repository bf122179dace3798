// Small synthetic EHR shards with planted signal, written as real Parquet through DuckDB, for the
// BEHRT tests. A person's label is true when one of the "risk" concepts occurs in the history.
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Rng } from '../../trainers/random';
import { splitOf } from '../../transforms/splits';
import type { Sequence } from '../../trainers/behrt/data';
import { sha256 } from '../../transforms/hashing';
import { readFileSync, statSync } from 'node:fs';

export interface SiteOptions {
  persons: number;
  seed: number;
  /** Added to every concept id: a second hospital codes the same process with other ids. */
  conceptOffset?: number;
  /** Number of ordinary concepts per domain. */
  conceptsPerDomain?: number;
  /** Number of phenotype labels (a `labels` column) instead of one binary label. */
  phenotypes?: number;
  maxEvents?: number;
}

export const RISK_CONCEPTS = [1001, 1002, 1003];

/** Sequences of one synthetic site; the label of person p says whether a risk concept occurred. */
export function syntheticSequences(o: SiteOptions): Sequence[] {
  const rng = Rng.fromState(o.seed);
  const per = o.conceptsPerDomain ?? 20;
  const off = o.conceptOffset ?? 0;
  const out: Sequence[] = [];
  for (let p = 1; p <= o.persons; p++) {
    const personId = p + 7919 * o.seed;
    const positive = rng.next() < 0.35;
    const n = 6 + rng.int((o.maxEvents ?? 30) - 6);
    const c: number[] = [-3, rng.next() < 0.5 ? 8507 : 8532];
    const d: (number | null)[] = [null, null];
    const ages: number[] = [0, 0];
    const segs: number[] = [0, 0];
    const ranks: number[] = [0, 0];
    const doms: number[] = [0, 0];
    let age = 20 + rng.int(60);
    const riskAt = positive ? 2 + rng.int(n) : -1;
    const pheno = Array.from({ length: o.phenotypes ?? 0 }, () => false);
    for (let i = 0; i < n; i++) {
      const domain = 1 + rng.int(4);
      let concept = domain * 100 + rng.int(per);
      let decile: number | null = domain === 3 ? rng.int(10) : null;
      if (i + 2 === riskAt) {
        concept = RISK_CONCEPTS[rng.int(RISK_CONCEPTS.length)];
        decile = null;
      }
      if (pheno.length) pheno[concept % pheno.length] = true;
      c.push(concept + off);
      d.push(decile);
      if (rng.next() < 0.2) age = Math.min(119, age + 1);
      ages.push(age);
      segs.push(1 + Math.floor(i / 4));
      ranks.push(i % 4);
      doms.push(domain);
    }
    const seq: Sequence = { personId, conceptIds: c, deciles: d, ages, segments: segs, recordRanks: ranks, domains: doms, split: splitOf(personId) };
    if (pheno.length) seq.labels = pheno;
    else seq.label = positive;
    out.push(seq);
  }
  return out;
}

/** Writes sequences as a Parquet shard with the layout of schemas/records.ts (plus label columns). */
export async function writeSequenceShard(file: string, seqs: Sequence[]): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  const json = file + '.jsonl';
  writeFileSync(json, seqs.map((s) => JSON.stringify({
    person_id: s.personId, chunk: 0, concept_ids: s.conceptIds, deciles: s.deciles, ages: s.ages, segments: s.segments,
    record_ranks: s.recordRanks, domains: s.domains, split: s.split, label: s.label ?? null, labels: s.labels ?? null,
  })).join('\n') + '\n');
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const hasLabels = seqs.some((s) => s.labels);
  const hasLabel = seqs.some((s) => s.label !== undefined);
  await conn.run(`COPY (SELECT person_id::BIGINT AS person_id, chunk::INTEGER AS chunk, concept_ids::BIGINT[] AS concept_ids,
      deciles::TINYINT[] AS deciles, ages::SMALLINT[] AS ages, segments::INTEGER[] AS segments, record_ranks::INTEGER[] AS record_ranks,
      domains::TINYINT[] AS domains, split::VARCHAR AS split
      ${hasLabel ? ", TIMESTAMP '2020-01-01' AS prediction_time, label::BOOLEAN AS label" : ''}${hasLabels ? ', labels::BOOLEAN[] AS labels' : ''}
    FROM read_json('${json}', format='newline_delimited', columns={person_id:'BIGINT', chunk:'INTEGER', concept_ids:'BIGINT[]', deciles:'INTEGER[]',
      ages:'INTEGER[]', segments:'INTEGER[]', record_ranks:'INTEGER[]', domains:'INTEGER[]', split:'VARCHAR', label:'BOOLEAN', labels:'BOOLEAN[]'}))
    TO '${file}' (FORMAT parquet)`);
  conn.closeSync();
  rmSync(json);
}

export function manifestEntry(outDir: string, rel: string, kind: string, rows: number) {
  const p = join(outDir, rel);
  return { kind, path: rel, rows, bytes: statSync(p).size, sha256: sha256(readFileSync(p)) };
}

/** A pipeline-like output folder: pretrain/ and samples/<task>/ shards (the same labels for each task) plus manifest.json. */
export async function writeSite(outDir: string, o: SiteOptions, task: string | string[] = 'risk'): Promise<void> {
  const seqs = syntheticSequences(o);
  await writeSequenceShard(join(outDir, 'pretrain', 'part-0.parquet'), seqs.map(({ label, labels, ...s }) => s));
  const shards = [manifestEntry(outDir, 'pretrain/part-0.parquet', 'pretrain', seqs.length)];
  for (const t of typeof task === 'string' ? [task] : task) {
    await writeSequenceShard(join(outDir, 'samples', t, 'part-0.parquet'), seqs);
    shards.push(manifestEntry(outDir, `samples/${t}/part-0.parquet`, `samples/${t}`, seqs.length));
  }
  writeFileSync(join(outDir, 'manifest.json'), JSON.stringify({ shards }, null, 1));
}

/** Representation vectors in which a site-B concept (id + offset) sits next to its site-A twin. */
export async function writeRepresentations(file: string, dim: number, offsets: number[], seed: number, conceptsPerDomain = 20, noise = 0.05): Promise<void> {
  const rng = Rng.fromState(seed);
  const rows: string[] = [];
  const base: number[] = [];
  for (let dom = 1; dom <= 4; dom++) for (let k = 0; k < conceptsPerDomain; k++) base.push(dom * 100 + k);
  base.push(...RISK_CONCEPTS);
  for (const c of base) {
    const v = Array.from({ length: dim }, () => rng.normal());
    for (const off of offsets) {
      const noisy = v.map((x) => x + noise * rng.normal());
      rows.push(JSON.stringify({ concept_id: c + off, decile: null, vector: noisy }));
    }
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file + '.jsonl', rows.join('\n') + '\n');
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  await conn.run(`COPY (SELECT concept_id::BIGINT AS concept_id, decile::TINYINT AS decile, vector::FLOAT[] AS vector
    FROM read_json('${file}.jsonl', format='newline_delimited', columns={concept_id:'BIGINT', decile:'INTEGER', vector:'DOUBLE[]'})) TO '${file}' (FORMAT parquet)`);
  conn.closeSync();
  rmSync(file + '.jsonl');
}
