// The Kafka runner as a declared topology (the idea of Kafka Streams' Topology, kept small): the
// source topics producers write, then each stage with its input topics, its state stores, the
// topics it writes with the schemas (codec) each carries, and how its transform is built. Topic
// creation (`medrep topics`, `medrep stream`), the groups `medrep status` reports and the stages
// `medrep stream` runs are all read from this one declaration.
import { DEFAULT_MAX_EVENTS } from '../../transforms/trajectory';
import { DEFAULT_CHUNK_QUIET_MS } from '../../transforms/continuousChunks';
import { CompiledTask } from '../../transforms/labels';
import { STREAM_TOPIC_SCHEMAS, StreamSchemaKind } from '../../schemas/streamSchemas';
import { Logger } from '../../common/progress';
import { canonicalizeTransform } from './canonicalizeStage';
import { continuousTrajectory, WATERMARKS_KEY } from './continuousTrajectory';
import { ManifestLog } from './manifestLog';
import { shardSinkTransform, SINK_LOADS_STORE, SinkTopic } from './shardSink';
import { shardBounds, ShardSizeOptions } from './shardRoll';
import { StreamArtifacts } from './streamArtifacts';
import { StreamOptions } from './streamOptions';
import { streamTopic, StreamTopic, streamTopicSpecs } from './streamTopics';
import { LOAD_TABLES, PERSON_STORE, Versions } from './streamValues';
import { StageOptions } from './stageTypes';
import { trajectoryTransform } from './trajectoryStage';
import { EVENTS_STORE, PENDING_STORE, TrajectoryOptions } from './trajectoryState';
import { BATCH_TOPIC_MAX_MESSAGE_BYTES, changelogTopicSpec, pipelineTopicSpecs, TopicLayoutOptions, TopicNames, TopicSpec } from './topics';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_OUT_OF_ORDERNESS_MS, watermarkWouldAdvance, WatermarkState } from './watermarks';

/** An output topic and the schemas of its messages, encoded and checked by streamCodec.ts. */
export interface OutputDecl {
  topic: StreamTopic;
  schemas: readonly StreamSchemaKind[];
}

const output = (topic: StreamTopic): OutputDecl => ({ topic, schemas: STREAM_TOPIC_SCHEMAS[topic] });

export interface StoreDecl {
  name: string;
  /** keyValue: the latest value per key; append: lists of numbers whose changelog carries deltas (appendStore.ts). */
  kind: 'keyValue' | 'append';
  /** Its changelog's messages are slices of many states, beyond the broker's default 1 MB. */
  large?: true;
}

/** What a stage is built from when `medrep stream` runs it. */
export interface StageEnv {
  names: TopicNames;
  out: string;
  opts: StreamOptions;
  art: StreamArtifacts;
  versions: Versions;
  tasks: CompiledTask[];
  sinks: SinkTopic[];
  manifestLog: ManifestLog;
  log: Logger;
}

/** The stage options a declaration builds (the rest are the runner's, common to all stages). */
export type StageBuild = Pick<StageOptions, 'transform'> & Partial<Pick<StageOptions, 'tick' | 'watermarkIdleMs' | 'onPhase'>>;

export interface StageDecl<Name extends string = string> {
  name: Name;
  inputs(names: TopicNames): string[];
  stores: readonly StoreDecl[];
  /** Topics between the stages this stage writes, with the schemas each carries (streamCodec.ts); the sink writes files. */
  outputs: readonly OutputDecl[];
  build(env: StageEnv): StageBuild;
}

/** The sink's shard series, one per topic it reads; each topic's writer ends a load with one end marker. */
export function sinkTopics(names: TopicNames, opts: ShardSizeOptions): SinkTopic[] {
  return (['events', 'pretrain', 'samples'] as const).map((kind) => ({ topic: streamTopic(names, kind), kind, dir: kind, bounds: shardBounds(kind, opts), loadTables: [kind] }));
}

const canonicalize: StageDecl<'canonicalize'> = {
  name: 'canonicalize',
  inputs: (names) => LOAD_TABLES.map((t) => names.omop(t)),
  stores: [],
  outputs: [output('canonical')],
  build: (env) => ({ transform: canonicalizeTransform(env.names, streamTopic(env.names, 'canonical'), env.art) }),
};

const trajectory: StageDecl<'trajectory'> = {
  name: 'trajectory',
  inputs: (names) => [streamTopic(names, 'canonical')],
  stores: [
    { name: PERSON_STORE, kind: 'keyValue', large: true },
    { name: PENDING_STORE, kind: 'keyValue', large: true },
    { name: EVENTS_STORE, kind: 'append', large: true },
  ],
  outputs: [output('events'), output('pretrain'), output('samples')],
  build: ({ names, opts, versions, tasks, log }) => {
    const t: TrajectoryOptions = {
      maxEvents: opts.maxEvents ?? DEFAULT_MAX_EVENTS, eventsTopic: streamTopic(names, 'events'), pretrainTopic: streamTopic(names, 'pretrain'), samplesTopic: streamTopic(names, 'samples'),
      versions, tasks, allowedLatenessMs: opts.allowedLatenessMs,
      onSetAside: (p, persons, rows) => log.warn(`trajectory: partition ${p}: ${rows} rows of ${persons} persons without a person row set aside (rejects)`),
    };
    const idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (opts.closeOn !== 'watermark') return { transform: trajectoryTransform(t), watermarkIdleMs: idleTimeoutMs };
    const watermarks = { outOfOrdernessMs: opts.outOfOrdernessMs ?? DEFAULT_OUT_OF_ORDERNESS_MS, idleTimeoutMs };
    t.continuous = continuousTrajectory(t, { ...watermarks, chunkQuietMs: opts.chunkQuietMs ?? DEFAULT_CHUNK_QUIET_MS });
    return {
      transform: trajectoryTransform(t),
      watermarkIdleMs: idleTimeoutMs,
      // Sources go idle by the wall clock, not by a record: a quiet partition's watermark is
      // re-checked every half idle timeout, and moves (emitting what it now determines) with no input.
      tick: {
        everyMs: idleTimeoutMs / 2,
        due: (view) => watermarkWouldAdvance(view.store<WatermarkState>(PERSON_STORE).get(WATERMARKS_KEY), watermarks, Date.now()),
      },
    };
  },
};

const sink: StageDecl<'sink'> = {
  name: 'sink',
  inputs: (names) => sinkTopics(names, {}).map((s) => s.topic),
  stores: [{ name: SINK_LOADS_STORE, kind: 'keyValue' }],
  outputs: [],
  build: ({ out, sinks, manifestLog, opts }) => ({
    transform: shardSinkTransform(out, sinks, manifestLog),
    // A shard is listed once the transaction with its offsets committed, never before.
    onPhase: (phase, info) => {
      opts.onPhase?.(phase, info);
      if (phase === 'committed') manifestLog.committed(info.topic, info.partition);
    },
  }),
};

/** The stages in pipeline order: each one's input is written by the ones before it. */
export const STREAM_TOPOLOGY = [canonicalize, trajectory, sink] as const;
export type StreamStage = (typeof STREAM_TOPOLOGY)[number]['name'];
export const STREAM_STAGES: readonly StreamStage[] = STREAM_TOPOLOGY.map((s) => s.name);

/** The topics producers write (`omop.<table>`) and the dead-letter topic: what `medrep topics` creates. */
export function sourceTopicSpecs(names: TopicNames, opts: TopicLayoutOptions = {}): TopicSpec[] {
  return pipelineTopicSpecs(names, opts);
}

/** The topics each stage's consumer group reads. */
export function stageInputTopics(names: TopicNames): Record<StreamStage, string[]> {
  return Object.fromEntries(STREAM_TOPOLOGY.map((s) => [s.name, s.inputs(names)])) as Record<StreamStage, string[]>;
}

/** The topics between the stages (every stage's outputs), with the partition count of the inputs. */
export function internalTopicSpecs(names: TopicNames, partitions: number): TopicSpec[] {
  const written = new Set(STREAM_TOPOLOGY.flatMap((s) => s.outputs.map((o) => streamTopic(names, o.topic))));
  return streamTopicSpecs(names, partitions).filter((spec) => written.has(spec.topic));
}

/** Every stage's state store changelog, compacted, with the partition count of the inputs. */
export function changelogSpecs(names: TopicNames, partitions: number): TopicSpec[] {
  return STREAM_TOPOLOGY.flatMap((stage) =>
    stage.stores.map((store) => {
      const spec = changelogTopicSpec(names.changelog(stage.name, store.name), partitions);
      return store.large ? { ...spec, configs: { ...spec.configs, 'max.message.bytes': BATCH_TOPIC_MAX_MESSAGE_BYTES } } : spec;
    }),
  );
}

/** The stage options of a declared stage, with the runner's common ones. */
export function stageOptions(
  decl: StageDecl,
  env: StageEnv,
  common: Omit<StageOptions, 'stage' | 'inputTopics' | 'transform' | 'stores' | 'appendStores'>,
): StageOptions {
  return {
    ...common,
    stage: decl.name,
    inputTopics: decl.inputs(env.names),
    stores: decl.stores.filter((s) => s.kind === 'keyValue').map((s) => s.name),
    appendStores: decl.stores.filter((s) => s.kind === 'append').map((s) => s.name),
    ...decl.build(env),
  };
}
