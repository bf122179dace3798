// Checks of a continuous-mode stream's output (`medrep stream --close-on watermark`), shared by its
// tests: how the pretraining chunks cover the events shards, and new patients' rows that a
// hospital feed sends later (they move the event-time watermark on).
import { Kafka } from 'kafkajs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OmopRowProducer } from '../../runners/kafka/omopProducer';
import { TopicNames } from '../../runners/kafka/topics';
import { lit, sql } from './index';

/** Person ids of the new patients: above every id of the synthetic hospitals. */
export const NEW_PERSON_BASE = 9_000_000;

/**
 * How the chunks of `out` cover its events: token events (domains 1-4) of the persons `where`
 * selects found in no chunk (`lost`), chunk tokens with no such event (`extra`: a duplicate shows
 * here), (person, chunk) pairs seen twice, and persons whose chunk numbers are not 0..k-1.
 */
export async function chunkCoverage(out: string, where = 'true'): Promise<{ events: number; lost: number; extra: number; duplicateChunks: number; gaps: number }> {
  const ev = `SELECT person_id, concept_id, decile FROM read_parquet(${lit(path.join(out, 'events/*.parquet'))}) WHERE domain BETWEEN 1 AND 4 AND (${where})`;
  const pre = `SELECT * FROM read_parquet(${lit(path.join(out, 'pretrain/*.parquet'))}) WHERE ${where}`;
  const tok = `SELECT person_id, unnest(concept_ids[3:]) AS concept_id, unnest(deciles[3:]) AS decile FROM (${pre})`;
  const [r] = await sql<Record<string, bigint>>(`SELECT
    (SELECT count(*) FROM (${ev})) AS events,
    (SELECT count(*) FROM (${ev} EXCEPT ALL ${tok})) AS lost,
    (SELECT count(*) FROM (${tok} EXCEPT ALL ${ev})) AS extra,
    (SELECT count(*) FROM (SELECT person_id, chunk FROM (${pre}) GROUP BY ALL HAVING count(*) > 1)) AS dup,
    (SELECT count(*) FROM (SELECT person_id FROM (${pre}) GROUP BY 1 HAVING max(chunk) + 1 <> count(DISTINCT chunk) OR min(chunk) <> 0)) AS gaps`);
  return { events: Number(r.events), lost: Number(r.lost), extra: Number(r.extra), duplicateChunks: Number(r.dup), gaps: Number(r.gaps) };
}

/** The data's last day as YYYY-MM-DD, `days` later. */
export function dayAfter(ms: number, days: number): string {
  return new Date(ms + days * 86_400_000).toISOString().slice(0, 10);
}

/**
 * `n` new patients, each a person row and one condition on `day`, sent as any producer would
 * (keyed by person_id): copies of the hospital's first person and condition rows with new ids
 * (`base` + 1..n; a later feed passes a higher base so its ids are new too).
 */
export async function sendNewPatients(client: Kafka, names: TopicNames, omop: string, n: number, day: string, base = NEW_PERSON_BASE): Promise<void> {
  const [p] = await sql<{ j: string }>(`SELECT CAST(to_json(p) AS VARCHAR) AS j FROM read_parquet(${lit(path.join(omop, 'person.parquet'))}) p ORDER BY person_id LIMIT 1`);
  const [c] = await sql<{ j: string }>(`SELECT CAST(to_json(c) AS VARCHAR) AS j FROM read_parquet(${lit(path.join(omop, 'condition_occurrence.parquet'))}) c ORDER BY condition_occurrence_id LIMIT 1`);
  const producer = await OmopRowProducer.connect(client, { names });
  for (let i = 1; i <= n; i++) {
    const id = base + i;
    await producer.send('person', JSON.stringify({ ...JSON.parse(p.j), person_id: id }), `new-patients.json:${i}`);
    const condition = { ...JSON.parse(c.j), person_id: id, condition_occurrence_id: id, condition_start_date: day, condition_start_datetime: `${day} 09:00:00`, visit_occurrence_id: null };
    await producer.send('condition_occurrence', JSON.stringify(condition), `new-conditions.json:${i}`);
  }
  await producer.close();
}

/** Files under `dir` (recursively) whose name ends with `suffix`. */
export function filesUnder(dir: string, suffix: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith(suffix)).map((f) => path.join(dir, f));
}
