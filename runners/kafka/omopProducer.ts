// Loads OMOP rows into the `omop.<table>` topics: every row is checked against its table's JSON
// Schema first; valid rows go out keyed by person_id in batched, gzip-compressed sends, and every
// row that cannot be used (not JSON, not an object, unknown table, wrong types) goes to the
// dead-letter topic with the reason in its headers, and is counted. Nothing is dropped silently.
import { CompressionTypes, Kafka, Message, Partitioners, Producer } from 'kafkajs';
import { ClinicalTable, CLINICAL_TABLES, tableSpec } from '../../schemas/omop';
import { rowValidator } from '../../schemas/rowSchemas';
import { parseId } from '../../schemas/ids';
import { parseJsonExact, stringifyJsonExact } from '../../schemas/exactJson';
import { deadLetterMessage, DeadLetterKind } from './deadLetter';
import { encodeOmopRows, omopArrowHeaders } from './omopInputCodec';
import { TopicNames } from './topics';

export interface ProduceProgress {
  rows: number;
  deadLettered: number;
  bytes: number;
  elapsedMs: number;
  rowsPerSecond: number;
}

export interface ProduceStats extends ProduceProgress {
  /** Valid rows sent, per table. */
  byTable: Record<string, number>;
  /** Dead-lettered rows, per kind of problem. */
  deadLetteredByKind: Record<string, number>;
}

export interface OmopProducerOptions {
  names: TopicNames;
  /** Rows per send request (default 2000). */
  batchRows?: number;
  /**
   * Consecutive rows of one table and one person go out as one message holding a JSON array of up
   * to this many rows (default 1: a message per row). Fewer, larger messages cost the client and
   * the broker far less per row; consumers read both forms (runners/kafka/README.md).
   */
  rowsPerMessage?: number;
  /** Record-batch compression of the input topics (default lz4; gzip for consumers that read only gzip). */
  compression?: InputCompression;
  /** How a message holds its rows: JSON text (default) or an Arrow record batch (omopInputCodec.ts). */
  messageFormat?: OmopMessageFormat;
  /** Called every `progressIntervalMs` (default 5000) and once at the end. */
  onProgress?: (p: ProduceProgress) => void;
  progressIntervalMs?: number;
}

export const INPUT_COMPRESSIONS = ['lz4', 'gzip', 'none'] as const;
export type InputCompression = (typeof INPUT_COMPRESSIONS)[number];
const INPUT_COMPRESSION_TYPES: Record<InputCompression, CompressionTypes> = { lz4: CompressionTypes.LZ4, gzip: CompressionTypes.GZIP, none: CompressionTypes.None };

export const OMOP_MESSAGE_FORMATS = ['json', 'arrow'] as const;
export type OmopMessageFormat = (typeof OMOP_MESSAGE_FORMATS)[number];

const KNOWN_TABLES = new Set<string>(CLINICAL_TABLES.map((t) => t.table));


export class OmopRowProducer {
  private readonly buffers = new Map<string, Message[]>();
  /** Per topic, the rows of the multi-row message being gathered (one person). */
  private readonly gathering = new Map<string, { key: string; table: string; rows: string[]; objects: Record<string, unknown>[] }>();
  private readonly arrow: boolean;
  private readonly rowsPerMessage: number;
  private buffered = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | null = null;
  private readonly started = Date.now();
  private lastProgress = Date.now();
  private readonly stats: ProduceStats = {
    rows: 0,
    deadLettered: 0,
    bytes: 0,
    elapsedMs: 0,
    rowsPerSecond: 0,
    byTable: {},
    deadLetteredByKind: {},
  };
  private readonly batchRows: number;
  /**
   * One send in flight: kafkajs' idempotent producer numbers batches as it sends them, and
   * concurrent sends reach the broker out of order (OUT_OF_ORDER_SEQUENCE_NUMBER). The next batch
   * is built while the previous one is in flight.
   */
  private readonly maxInFlight = 1;
  private readonly compression: CompressionTypes;

  private constructor(
    private readonly producer: Producer,
    private readonly opts: OmopProducerOptions,
  ) {
    this.batchRows = opts.batchRows ?? 2000;
    this.rowsPerMessage = Math.max(1, Math.floor(opts.rowsPerMessage ?? 1));
    this.compression = INPUT_COMPRESSION_TYPES[opts.compression ?? 'lz4'];
    this.arrow = opts.messageFormat === 'arrow';
  }

  static async connect(kafka: Kafka, opts: OmopProducerOptions): Promise<OmopRowProducer> {
    // Idempotent: a retried send after a broker hiccup does not duplicate rows.
    // Java's murmur2 partitioner: a person's rows land where any Java producer would put them.
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    return new OmopRowProducer(producer, opts);
  }

  /**
   * Queues one row of `table`. `row` is a parsed object or the JSON text (string or bytes) of one;
   * `source` names where it came from (e.g. `person.csv:12`) for the dead-letter headers.
   * Resolves at once unless enough rows are buffered to send.
   */
  async send(table: string, row: unknown, source: string): Promise<void> {
    if (this.failure) throw this.failure;
    const raw = typeof row === 'string' || Buffer.isBuffer(row) ? row : null;
    let obj: unknown = row;
    if (raw !== null) {
      try {
        // Exact: ids beyond 2^53 keep every digit (as bigints) through the check and the send.
        obj = parseJsonExact(raw.toString());
      } catch (e) {
        this.deadLetter(raw, null, 'not-json', (e as Error).message, source, table);
        return this.maybeSend();
      }
    }
    if (!KNOWN_TABLES.has(table)) {
      this.deadLetter(raw ?? safeJson(obj), null, 'unknown-table', `no OMOP table named "${table}"`, source, table);
      return this.maybeSend();
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      this.deadLetter(raw ?? safeJson(obj), null, 'not-an-object', 'a row must be a JSON object', source, table);
      return this.maybeSend();
    }
    const values = obj as Record<string, unknown>;
    const problems = rowValidator(tableSpec(table as ClinicalTable)).check(values);
    // The key is the person_id in decimal ("0012" and 12 are one person, on one partition).
    const personId = parseId(values.person_id) ?? values.person_id;
    const key = personId === undefined || personId === null ? null : String(personId);
    if (problems.length > 0) {
      const reason = problems.map((p) => `column ${p.column}: ${p.reason}`).join('; ');
      this.deadLetter(raw ?? safeJson(values), key, 'invalid-row', reason, source, table);
      return this.maybeSend();
    }
    this.gather(table, key!, values, raw);
    this.stats.rows++;
    this.stats.byTable[table] = (this.stats.byTable[table] ?? 0) + 1;
    return this.maybeSend();
  }

  /**
   * Queues a row that already passed the row check (the input's typed view, which holds only rows
   * that pass sources' SQL check, the local runner's): its JSON text as written, keyed by its
   * person_id in decimal. Nothing is parsed or checked again here; the stream checks every row.
   */
  async sendChecked(table: string, json: string, key: string, source: string): Promise<void> {
    if (this.failure) throw this.failure;
    // Arrow messages are built from parsed rows.
    if (this.arrow) return this.send(table, json, source);
    this.gather(table, key, null, json);
    this.stats.rows++;
    this.stats.byTable[table] = (this.stats.byTable[table] ?? 0) + 1;
    return this.maybeSend();
  }

  /** Dead-letters a source record that could not be read as a row (a malformed CSV record). */
  async unreadable(table: string, record: string, reason: string, source: string, line?: number): Promise<void> {
    if (this.failure) throw this.failure;
    this.deadLetter(record, null, 'invalid-row', reason, source, table, line);
    return this.maybeSend();
  }

  /** Sends everything buffered and waits for the broker to acknowledge it. */
  async flush(): Promise<void> {
    this.sendBuffered();
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
  }

  /** Flushes, disconnects and returns the final counts. */
  async close(): Promise<ProduceStats> {
    try {
      await this.flush();
    } finally {
      await this.producer.disconnect();
    }
    this.reportProgress();
    return this.snapshot();
  }

  snapshot(): ProduceStats {
    const elapsedMs = Date.now() - this.started;
    return {
      ...this.stats,
      byTable: { ...this.stats.byTable },
      deadLetteredByKind: { ...this.stats.deadLetteredByKind },
      elapsedMs,
      rowsPerSecond: elapsedMs > 0 ? (this.stats.rows * 1000) / elapsedMs : 0,
    };
  }

  private deadLetter(
    value: Buffer | string,
    key: string | null,
    kind: DeadLetterKind,
    reason: string,
    source: string,
    table: string,
    line?: number,
  ): void {
    this.push(this.opts.names.dlq, deadLetterMessage(value, key, { kind, reason, source, table, stage: 'produce', ...(line !== undefined ? { line } : {}) }));
    this.stats.deadLettered++;
    this.stats.deadLetteredByKind[kind] = (this.stats.deadLetteredByKind[kind] ?? 0) + 1;
  }

  /** Adds a valid row to the message of its person being gathered for its table's topic. */
  private gather(table: string, key: string, row: Record<string, unknown> | null, raw: Buffer | string | null): void {
    const topic = this.opts.names.omop(table);
    let g = this.gathering.get(topic);
    if (g && (g.key !== key || g.rows.length + g.objects.length >= this.rowsPerMessage)) {
      this.closeGathered(topic);
      g = undefined;
    }
    if (!g) this.gathering.set(topic, (g = { key, table, rows: [], objects: [] }));
    // Arrow keeps the parsed rows for the columns; JSON the text as it came (never written again).
    if (this.arrow) g.objects.push(row!);
    else g.rows.push(raw !== null ? raw.toString() : stringifyJsonExact(row));
    this.buffered++;
    if (this.rowsPerMessage === 1) this.closeGathered(topic);
  }

  private closeGathered(topic: string): void {
    const g = this.gathering.get(topic);
    if (!g) return;
    this.gathering.delete(topic);
    const message: Message = this.arrow
      ? { key: g.key, value: encodeOmopRows(tableSpec(g.table as ClinicalTable), g.objects), headers: omopArrowHeaders() }
      : { key: g.key, value: g.rows.length === 1 ? g.rows[0] : `[${g.rows.join(',')}]` };
    this.push(topic, message, 0);
  }

  /** Queues a message; `rows` is what it adds to the send threshold (gathered rows count already). */
  private push(topic: string, message: Message, rows = 1): void {
    let buf = this.buffers.get(topic);
    if (!buf) this.buffers.set(topic, (buf = []));
    buf.push(message);
    this.buffered += rows;
    const v = message.value;
    this.stats.bytes += v === null || v === undefined ? 0 : typeof v === 'string' ? v.length : v.byteLength;
  }

  private async maybeSend(): Promise<void> {
    if (this.buffered >= this.batchRows) {
      this.sendBuffered();
      while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
      if (this.failure) throw this.failure;
    }
    if (this.opts.onProgress && Date.now() - this.lastProgress >= (this.opts.progressIntervalMs ?? 5000)) {
      this.reportProgress();
    }
  }

  private sendBuffered(): void {
    for (const topic of [...this.gathering.keys()]) this.closeGathered(topic);
    if (this.buffered === 0) return;
    const topicMessages = [...this.buffers.entries()].map(([topic, messages]) => ({ topic, messages }));
    this.buffers.clear();
    this.buffered = 0;
    const p: Promise<void> = this.producer
      .sendBatch({ topicMessages, compression: this.compression, acks: -1 })
      .then(
        () => undefined,
        (e: Error) => {
          this.failure ??= new Error(`sending rows to Kafka failed: ${e.message}`);
        },
      )
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private reportProgress(): void {
    this.lastProgress = Date.now();
    if (!this.opts.onProgress) return;
    const s = this.snapshot();
    this.opts.onProgress({ rows: s.rows, deadLettered: s.deadLettered, bytes: s.bytes, elapsedMs: s.elapsedMs, rowsPerSecond: s.rowsPerSecond });
  }
}

function safeJson(v: unknown): string {
  try {
    return stringifyJsonExact(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** One line of progress for logs (counts only, never rows). */
export function formatProduceProgress(p: ProduceProgress): string {
  return `produced ${p.rows.toLocaleString('en-US')} rows (${Math.round(p.rowsPerSecond).toLocaleString('en-US')}/s), dead-lettered ${p.deadLettered}, ${(p.bytes / 1e6).toFixed(1)} MB in ${(p.elapsedMs / 1000).toFixed(1)} s`;
}
