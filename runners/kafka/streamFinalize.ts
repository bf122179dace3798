// The end of `medrep stream` (the sink's worker): the manifest of what is committed (shards of the
// manifest log with every shard the committed offsets cover, MEDS copy, Table-1 counts from the
// samples topic's end markers, committed offsets per group), the artifacts and the rejects (read
// from the dead-letter topic), in the same output layout as `medrep run`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Kafka, KafkaMessage } from 'kafkajs';
import type { DuckDBConnection } from '@duckdb/node-api';
import { Manifest, ManifestShard, writeManifest } from '../../sinks/manifest';
import { RejectSink } from '../../sinks/rejects';
import { ShardEntry } from '../../sinks/shards';
import { queryRows, sqlString } from '../../sources/duck';
import { parseJsonExact } from '../../schemas/exactJson';
import { SkippedTask } from '../../sources/labelInputs';
import { CompiledTask, TaskSummary } from '../../transforms/labels';
import { EVENT_SPECS } from '../../sources/eventSource';
import { consoleLogger } from '../../common/progress';
import { DLQ_HEADERS } from './deadLetter';
import { consumerGroupLag } from './health';
import { ManifestLog } from './manifestLog';
import { readToEnd } from './readToEnd';
import { StreamArtifacts } from './streamArtifacts';
import { decodeStreamValue } from './streamCodec';
import { manifestHeader, reconcileManifestLog, writeStreamArtifacts } from './streamManifest';
import { exportStreamMeds } from './streamMeds';
import { StreamOptions } from './streamOptions';
import { streamTopic } from './streamTopics';
import { LateCounts } from './streamValues';
import { sinkTopics, StreamStage } from './topology';
import { TopicNames } from './topics';

export interface FinalizeScope {
  kafka: Kafka;
  conn: DuckDBConnection;
  names: TopicNames;
  out: string;
  art: StreamArtifacts;
  stages: StreamStage[];
  opts: StreamOptions;
  compiled: CompiledTask[];
  skipped: SkippedTask[];
  complete: boolean;
  manifestLog: ManifestLog;
}

export interface Finalized {
  manifest: string;
  rejects: number;
  shards: ShardEntry[];
  tasks: TaskSummary[];
  notInVocabulary: Record<string, number>;
}

export async function finalizeStream(f: FinalizeScope): Promise<Finalized> {
  const { kafka, conn, names, out, opts } = f;
  const log = opts.log ?? consoleLogger;
  writeStreamArtifacts(out, f.art, f.compiled);
  const { tasks, late } = await labelCounts(kafka, names);
  const rejects = await collectRejects(kafka, names, out);
  const rejectFiles = rejects.close();

  // The sink's shards: its manifest log, with every shard the committed offsets cover.
  const recovered = await reconcileManifestLog(kafka, conn, names, sinkTopics(names, opts), f.manifestLog);
  if (recovered > 0) log.info(`manifest: ${recovered} shard(s) the committed offsets cover were not in manifest.d/; listed now`);
  const shards: ManifestShard[] = f.manifestLog.shards();
  const notInVocabulary = await countNotInVocabulary(conn, out, shards, f.art.vocabulary.index.known);
  if (opts.meds !== false) shards.push(...(await exportStreamMeds(kafka, conn, names, out, shards, f.compiled)));
  const manifest: Manifest = {
    ...manifestHeader(f.art, names, opts, f.compiled, { complete: f.complete }),
    shards,
    rejects: rejectFiles.map((r) => ({ path: path.relative(out, r.path), rows: r.rows })),
    counts: { rejects: rejects.summary(), not_in_vocabulary: notInVocabulary, offsets: await groupOffsets(kafka, names, f.stages), tasks, tasks_skipped: f.skipped, late_records: late },
  };
  return { manifest: writeManifest(out, manifest), rejects: rejects.total, shards, tasks, notInVocabulary };
}

/** Table-1 counts: the labeler's summary of every partition, and late records over every load, from the samples topic's end markers. */
async function labelCounts(kafka: Kafka, names: TopicNames): Promise<{ tasks: TaskSummary[]; late: LateCounts }> {
  const late: LateCounts = { applied: 0, dropped: { visit: 0, death: 0, condition: 0 }, corrections: 0 };
  const lastByPartition = new Map<number, TaskSummary[]>();
  const topic = streamTopic(names, 'samples');
  await readToEnd(kafka, topic, { timeoutMs: 60_000 }, (partition, m) => {
    const v = decodeStreamValue({ topic, value: m.value, headers: m.headers });
    if (v.k !== 'end' || !v.tasks) return;
    // Each load's counts cover the whole partition at its watermark: the last one counts.
    lastByPartition.set(partition, v.tasks);
    if (v.late) {
      late.applied += v.late.applied;
      late.corrections += v.late.corrections;
      for (const k of ['visit', 'death', 'condition'] as const) late.dropped[k] += v.late.dropped[k];
    }
  });
  const tasks = new Map<string, TaskSummary>();
  for (const list of lastByPartition.values()) for (const s of list) tasks.set(s.task, addSummaries(tasks.get(s.task), s));
  return { tasks: [...tasks.values()], late };
}

/** Rejects: every dead letter (producer and stages), with file and row where the row says them. */
async function collectRejects(kafka: Kafka, names: TopicNames, out: string): Promise<RejectSink> {
  fs.rmSync(path.join(out, 'rejects'), { recursive: true, force: true });
  const rejects = new RejectSink(path.join(out, 'rejects'));
  await readToEnd(kafka, names.dlq, { timeoutMs: 60_000 }, (_p, m) => rejects.add(rejectOf(m)));
  return rejects;
}

/** A dead letter as a reject row. */
function rejectOf(m: KafkaMessage): Parameters<RejectSink['add']>[0] {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) if (v !== undefined) h[k] = v.toString();
  const text = m.value?.toString() ?? '';
  let values: unknown = text;
  try {
    values = parseJsonExact(text);
  } catch {
    /* kept as text */
  }
  const header = h[DLQ_HEADERS.reason] ?? 'dead-lettered';
  // "<kind>: column <c>: <reason>[; column ...]": the first column and its reason, as the local
  // runner's reject names them (the header keeps every problem and the kind).
  const first = /^([a-z-]+): column (\S+?): (.*?)(?:; column \S+?: .*)?$/.exec(header);
  const source = h[DLQ_HEADERS.source] ?? '';
  const row = typeof values === 'object' && values !== null && typeof (values as { __row?: unknown }).__row === 'number'
    ? (values as { __row: number }).__row
    : Number(/:(\d+)$/.exec(source)?.[1] ?? 0);
  // The physical line only where the producer read the file (medrep produce: records it could not read).
  const line = h[DLQ_HEADERS.line] !== undefined && /^\d+$/.test(h[DLQ_HEADERS.line]) ? Number(h[DLQ_HEADERS.line]) : undefined;
  return {
    file: source, table: h[DLQ_HEADERS.table] || 'unknown', row, ...(line !== undefined ? { line } : {}),
    column: first?.[2] ?? '(row)', reason: first?.[3] ?? header, ...(first ? { kind: first[1] } : {}), values,
  };
}

/** Each stage group's committed offsets and lag, for the manifest. */
async function groupOffsets(kafka: Kafka, names: TopicNames, stages: StreamStage[]): Promise<Record<string, unknown>> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets: Record<string, unknown> = {};
  try {
    for (const s of stages) offsets[names.group(s)] = (await consumerGroupLag(admin, names.group(s))).map((l) => ({ topic: l.topic, partition: l.partition, committed: l.committed.toString(), high: l.high.toString(), lag: l.lag.toString() }));
  } finally {
    await admin.disconnect();
  }
  return offsets;
}

/**
 * Event rows per OMOP table whose concept the vocabulary lacks, read from the event shards (exact
 * whichever workers canonicalized them): such a row keeps its own id, which no vocabulary concept
 * has, while a standard, mapped or unmapped row's concept is in the vocabulary (or 0).
 */
async function countNotInVocabulary(conn: DuckDBConnection, out: string, shards: ShardEntry[], known: ReadonlySet<number>): Promise<Record<string, number>> {
  const events = shards.filter((s) => s.kind === 'events');
  if (!events.length) return {};
  const files = events.map((s) => sqlString(path.join(out, s.path))).join(', ');
  const rows = await queryRows<{ table: string; concept_id: number; n: number }>(
    conn,
    `SELECT "table", CAST(concept_id AS DOUBLE) AS concept_id, CAST(count(*) AS DOUBLE) AS n FROM read_parquet([${files}]) WHERE concept_id <> 0 GROUP BY ALL`,
  );
  const omopTable = new Map(EVENT_SPECS.map((sp) => [sp.events!.eventTable as string, sp.table as string]));
  const counts: Record<string, number> = {};
  for (const r of rows) if (!known.has(r.concept_id)) counts[omopTable.get(r.table)!] = (counts[omopTable.get(r.table)!] ?? 0) + r.n;
  return Object.fromEntries(Object.entries(counts).sort());
}

/** Sum of two partitions' Table-1 counts of one task. */
function addSummaries(a: TaskSummary | undefined, b: TaskSummary): TaskSummary {
  if (!a) return JSON.parse(JSON.stringify(b)) as TaskSummary;
  const excluded = { ...a.excluded };
  for (const [rule, n] of Object.entries(b.excluded)) excluded[rule as keyof typeof excluded] = (excluded[rule as keyof typeof excluded] ?? 0) + (n ?? 0);
  return {
    ...a,
    candidates: a.candidates + b.candidates, excluded, eligible: a.eligible + b.eligible, cohort: a.cohort + b.cohort,
    positives: a.positives + b.positives, negatives: a.negatives + b.negatives, censored: a.censored + b.censored,
    ...(a.positivesPerLabel && b.positivesPerLabel ? { positivesPerLabel: a.positivesPerLabel.map((x, i) => x + b.positivesPerLabel![i]) } : {}),
  };
}
