// `medrep produce`: loads an OMOP folder (CSV, Parquet or a DuckDB file, read through the same
// sources and checked views as the local runner) into the `omop.<table>` topics. Valid rows go
// out as typed JSON (DuckDB's to_json of the typed view) with their 1-based source row in the
// extra column `__row`, so a stage can name file and row in a reject; rows that fail the schema
// go through the producer's own check to the dead-letter topic with `file:row` as source. After
// every table, one end-of-load marker per partition closes the load (see END_OF_LOAD_HEADER).
import * as path from 'node:path';
import { Kafka } from 'kafkajs';
import { CLINICAL_TABLES } from '../../schemas/omop';
import { q } from '../../schemas/sqlChecks';
import { openDuck, parseDuckJson, stringColumn, streamChunks, numericColumn, queryValue } from '../../sources/duck';
import { finalWatermark } from '../../transforms/labels/time';
import { createOmopViews } from '../../sources/omopViews';
import { openOmopInput } from '../../sources/omopSource';
import { Logger, consoleLogger } from '../../common/progress';
import { createKafka, describeKafkaOptions, KafkaOptions } from './config';
import { formatProduceProgress, InputCompression, OmopMessageFormat, OmopRowProducer, ProduceStats } from './omopProducer';
import { ensureTopics, pipelineTopicSpecs, TopicNames, DEFAULT_PARTITIONS } from './topics';
import { streamTopicSpecs } from './streamTopics';

/** Header that marks a control message (not a row): every reader must skip or interpret it. */
export const CONTROL_HEADER = 'medrep-control';
/** Value of CONTROL_HEADER on the message that ends a load in one partition of one topic. */
export const END_OF_LOAD = 'end-of-load';

/** Consecutive rows of one person per message by default (a tenth of the client cost per row). */
export const DEFAULT_ROWS_PER_MESSAGE = 100;

export interface ProduceOptions {
  omop: string;
  vocab?: string;
  kafka: KafkaOptions;
  partitions?: number;
  batchRows?: number;
  /** Rows of one person and table per message at most (default DEFAULT_ROWS_PER_MESSAGE; 1: a message per row). */
  rowsPerMessage?: number;
  /** How a message holds its rows (default json; arrow: an Arrow record batch, omopInputCodec.ts). */
  messageFormat?: OmopMessageFormat;
  /** Record-batch compression of the input topics (default lz4). */
  compression?: InputCompression;
  /** Send end-of-load markers after the rows (default true): `stream` then closes trajectories. */
  endOfLoad?: boolean;
  log?: Logger;
  /** A ready client (tests pass one with logging off); default: one from `kafka`. */
  client?: Kafka;
}

export interface ProduceResult extends ProduceStats {
  input: { path: string; kind: string };
  markers: number;
}

/** Creates (idempotently) the input, dead-letter and stream topics a load goes through; returns the names created. */
export async function ensureLoadTopics(kafka: Kafka, names: TopicNames, partitions: number): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await ensureTopics(admin, [...pipelineTopicSpecs(names, { partitions }), ...streamTopicSpecs(names, partitions)]);
  } finally {
    await admin.disconnect();
  }
}

export async function produceOmop(opts: ProduceOptions): Promise<ProduceResult> {
  const log = opts.log ?? consoleLogger;
  const names = new TopicNames(opts.kafka.topicPrefix);
  const partitions = opts.partitions ?? DEFAULT_PARTITIONS;
  const kafka = opts.client ?? createKafka(opts.kafka, log);
  log.info(`kafka: ${describeKafkaOptions(opts.kafka)}`);
  const created = await ensureLoadTopics(kafka, names, partitions);
  if (created.length) log.info(`created ${created.length} topics`);
  const conn = await openDuck({ memoryLimit: '1GB' });
  const producer = await OmopRowProducer.connect(kafka, {
    names,
    batchRows: opts.batchRows ?? 5000,
    rowsPerMessage: opts.rowsPerMessage ?? DEFAULT_ROWS_PER_MESSAGE,
    messageFormat: opts.messageFormat,
    compression: opts.compression,
    onProgress: (p) => log.info(formatProduceProgress(p)),
  });
  let markers = 0;
  try {
    const input = await openOmopInput(conn, opts.omop, opts.vocab);
    await createOmopViews(conn, input);
    for (const spec of CLINICAL_TABLES) {
      const source = input.tables.get(spec.table);
      if (!source) continue;
      const file = path.basename(source.file);
      for (const r of source.readRejects) await producer.unreadable(spec.table, r.text, `column ${r.column}: ${r.reason}`, `${path.basename(r.file)}:${r.row}`, r.line);
      // Valid rows typed (ids as JSON numbers with every digit, dates as text), the others as read
      // (invalid rows, and later rows of a person_id seen before: the stream rejects those), in file order.
      // json_T lists the rows in file order (DuckDB keeps a scan's order: preserve_insertion_order).
      const sql = `SELECT CAST(__row AS DOUBLE) AS __row, ok, j, k FROM ${q('json_' + spec.table)}`;
      for await (const chunk of streamChunks(conn, sql)) {
        const rows = numericColumn(chunk, 0).values;
        const ok = numericColumn(chunk, 1).values;
        const json = stringColumn(chunk, 2);
        const key = stringColumn(chunk, 3);
        for (let i = 0, count = chunk.rowCount; i < count; i++) {
          // A valid row's JSON (typed view: lower-case columns and __row) goes out as DuckDB wrote it.
          if (ok[i]) {
            await producer.sendChecked(spec.table, json(i)!, key(i)!, `${file}:${rows[i]}`);
            continue;
          }
          const parsed = parseDuckJson(json(i)!);
          const row: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(parsed)) if (k !== '__ok') row[k.toLowerCase()] = v;
          row.__row = rows[i];
          await producer.send(spec.table, row, `${file}:${rows[i]}`);
        }
      }
    }
    await producer.flush();
    if (opts.endOfLoad !== false) markers = await sendEndOfLoad(kafka, names, partitions, await dataEndWatermark(conn));
  } catch (e) {
    // A connected producer keeps the process alive: without this, a bad input hangs the command.
    await producer.close().catch(() => undefined);
    throw e;
  } finally {
    conn.closeSync();
  }
  const stats = await producer.close();
  log.info(`produce done: ${stats.rows} rows, ${stats.deadLettered} dead-lettered, ${markers} end-of-load markers`);
  return { ...stats, input: { path: opts.omop, kind: 'omop' }, markers };
}

/**
 * The event-time watermark a load ends at, as the batch labeler computes it: the last millisecond
 * of the day of the latest visit end (or start), death or condition (time.ts finalWatermark).
 */
export async function dataEndWatermark(conn: Awaited<ReturnType<typeof openDuck>>): Promise<number | null> {
  const ms = (expr: string) => `epoch_ms(CAST(${expr} AS TIMESTAMP))::DOUBLE`;
  const v = await queryValue<number | null>(
    conn,
    `SELECT max(t) FROM (
       SELECT max(${ms('coalesce(visit_end_date, visit_start_date)')}) AS t FROM visit_occurrence
       UNION ALL SELECT max(${ms('death_date')}) FROM death
       UNION ALL SELECT max(${ms('coalesce(CAST(condition_start_datetime AS TIMESTAMP), CAST(condition_start_date AS TIMESTAMP))')}) FROM condition_occurrence)`,
  );
  return v === null ? null : finalWatermark(Number(v));
}

/** Value of an end-of-load marker: the event-time watermark the load closes at (null: none). */
export interface EndOfLoadValue {
  watermark: number | null;
}

/**
 * One end-of-load marker to every partition of every `omop.<table>` topic (idempotent producer).
 * It carries the load's event-time watermark: the labeler decides (or censors) labels there.
 */
export async function sendEndOfLoad(kafka: Kafka, names: TopicNames, partitions: number, watermark: number | null): Promise<number> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const topicMessages = CLINICAL_TABLES.map((t) => ({
      topic: names.omop(t.table),
      messages: Array.from({ length: partitions }, (_, p) => ({ partition: p, key: null, value: JSON.stringify({ watermark } satisfies EndOfLoadValue), headers: { [CONTROL_HEADER]: END_OF_LOAD } })),
    }));
    await producer.sendBatch({ topicMessages, acks: -1 });
    return CLINICAL_TABLES.length * partitions;
  } finally {
    await producer.disconnect();
  }
}
