// The manifest of a stream's output: its header (settings, artifact versions, input topics), the
// artifacts it names, and the reconcile of the manifest log against the sink group's committed
// offsets (a shard made durable by a commit whose entry a stop kept from being written).
import * as path from 'node:path';
import { Kafka } from 'kafkajs';
import type { DuckDBConnection } from '@duckdb/node-api';
import { OMOP_SCHEMA_VERSION } from '../../schemas/omop';
import { SCHEMA_VERSION } from '../../schemas/records';
import { Manifest } from '../../sinks/manifest';
import { writeFileAtomic } from '../../sinks/parquet';
import { DEFAULT_MAX_EVENTS } from '../../transforms/trajectory';
import { CompiledTask, taskArtifact } from '../../transforms/labels';
import { queryValue, sqlString } from '../../sources/duck';
import { ManifestLog } from './manifestLog';
import { SinkTopic } from './shardSink';
import { shardBounds } from './shardRoll';
import { StreamArtifacts } from './streamArtifacts';
import { StreamOptions } from './streamOptions';
import { LOAD_TABLES } from './streamValues';
import { TopicNames } from './topics';

/** The manifest's settings: window length and the sink's shard bounds. */
function shardSettings(opts: StreamOptions): Record<string, number> {
  const events = shardBounds('events', opts);
  return {
    max_events: opts.maxEvents ?? DEFAULT_MAX_EVENTS,
    events_per_shard: events.rows,
    sequences_per_shard: shardBounds('pretrain', opts).rows,
    shard_max_bytes: events.bytes,
    shard_max_age_ms: events.maxAgeMs,
  };
}

/** The artifacts of a stream's output (decile boundaries, vocabulary, tasks) as the manifest names them. */
function streamArtifactEntries(art: StreamArtifacts, compiled: CompiledTask[]): Manifest['artifacts'] {
  return {
    vocabulary: { path: 'artifacts/vocabulary.json', version: art.vocabularyArtifact.version },
    deciles: { path: 'artifacts/deciles.json', version: art.deciles.version },
    ...Object.fromEntries(compiled.map((t) => [`task:${t.name}`, { path: `artifacts/tasks/${t.name}.json`, version: taskArtifact(t).hash }])),
  };
}

export function writeStreamArtifacts(out: string, art: StreamArtifacts, compiled: CompiledTask[]): void {
  const writeJson = (rel: string, value: unknown) => writeFileAtomic(path.join(out, rel), new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n'));
  writeJson('artifacts/deciles.json', art.deciles);
  writeJson('artifacts/vocabulary.json', art.vocabularyArtifact);
  for (const t of compiled) writeJson(`artifacts/tasks/${t.name}.json`, taskArtifact(t));
}

/** The manifest's fields before its shards, of the running stream (`growing`) or of the stopped one. */
export function manifestHeader(
  art: StreamArtifacts, names: TopicNames, opts: StreamOptions, compiled: CompiledTask[], state: { complete: boolean; growing?: true },
): Pick<Manifest, 'kind' | 'schema_version' | 'omop_schema' | 'runner' | 'complete' | 'growing' | 'input' | 'artifacts' | 'settings'> {
  return {
    kind: 'medrep.manifest', schema_version: SCHEMA_VERSION, omop_schema: OMOP_SCHEMA_VERSION, runner: 'kafka', ...state,
    input: { brokers: opts.kafka.brokers, topic_prefix: names.prefix, topics: LOAD_TABLES.map((t) => names.omop(t)) },
    artifacts: streamArtifactEntries(art, compiled),
    settings: shardSettings(opts),
  };
}

/** Lists in manifest.d/ the shards on disk that the sink group's committed offsets cover and the log lacks. */
export async function reconcileManifestLog(kafka: Kafka, conn: DuckDBConnection, names: TopicNames, sinks: SinkTopic[], manifestLog: ManifestLog): Promise<number> {
  // A new output has no shard to list (and its group may have no coordinator yet).
  if (!manifestLog.hasUnlistedShards(sinks)) return 0;
  const admin = kafka.admin();
  await admin.connect();
  const committed = new Map<string, bigint>();
  try {
    const groupId = names.group('sink');
    const topics = sinks.map((s) => s.topic);
    for (const t of await retriable(() => admin.fetchOffsets({ groupId, topics }))) {
      for (const p of t.partitions) if (BigInt(p.offset) >= 0n) committed.set(`${t.topic}/${p.partition}`, BigInt(p.offset));
    }
  } finally {
    await admin.disconnect();
  }
  return manifestLog.reconcile(sinks, committed, async (file) => Number(await queryValue<bigint | number>(conn, `SELECT count(*) FROM read_parquet(${sqlString(file)})`)));
}

/** `call`, again after a pause while it fails with an error Kafka calls retriable (a group coordinator still moving or loading). */
async function retriable<T>(call: () => Promise<T>, attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (e) {
      if (i >= attempts || (e as { retriable?: boolean }).retriable !== true) throw e;
      await new Promise((r) => setTimeout(r, Math.min(300 * 2 ** i, 5000)));
    }
  }
}
