// A stage transaction's output on its way to the broker: per topic, messages are gathered into
// requests bounded in count and bytes and sent as each fills, so an output given as an iterable is
// never held whole. kafkajs groups a request's messages by partition in time quadratic in their
// number, and the broker refuses requests over socket.request.max.bytes (100 MB by default), while
// a load's close can emit gigabytes: hence several requests of one transaction.
import { CompressionTypes, Message, Transaction } from 'kafkajs';
import { OutputMessage, StageOutputs } from './stageTypes';

const SEND_SLICE = 1000;
/** Bytes of message values per produce request at most. */
const SEND_SLICE_BYTES = 16 * 1024 * 1024;

const valueBytes = (m: Message) => (m.value === null || m.value === undefined ? 0 : typeof m.value === 'string' ? Buffer.byteLength(m.value) : m.value.byteLength);

/** A request that holds `count` messages of `bytes` value bytes is full before a message of `size`. */
const full = (count: number, bytes: number, size: number) => count > 0 && (count >= SEND_SLICE || bytes + size > SEND_SLICE_BYTES);

/** Consecutive slices of at most SEND_SLICE messages and about SEND_SLICE_BYTES of values each. */
export function sendSlices(messages: Message[]): Message[][] {
  const slices: Message[][] = [];
  let slice: Message[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = valueBytes(m);
    if (full(slice.length, bytes, size)) {
      slices.push(slice);
      slice = [];
      bytes = 0;
    }
    slice.push(m);
    bytes += size;
  }
  if (slice.length > 0) slices.push(slice);
  return slices;
}

/** What the sender needs of a transaction. */
export type SendTarget = Pick<Transaction, 'send'>;

/** One transaction's messages, sent topic by topic in bounded slices as they are added. */
export class OutputSender {
  private readonly open = new Map<string, { messages: Message[]; bytes: number }>();
  /** Output messages (not dead letters nor changelogs) and the rows they hold. */
  outputs = 0;
  rows = 0;
  /** Whether any request went out: before that, what was added can still be dropped (discard). */
  sentAny = false;

  constructor(
    private readonly txn: SendTarget,
    private readonly compression: 'gzip' | 'none' = 'none',
    /**
     * The consumer's heartbeat, called at most every `keepAliveMs` as messages are added and sent:
     * kafkajs heartbeats only when told, and a load's close computes for longer than the session
     * (10 s) before its first request fills (at 10M rows the group dropped the member mid-close,
     * and the retried close failed the same way).
     */
    private readonly keepAlive?: () => Promise<void>,
    private readonly keepAliveMs = 1000,
  ) {}

  private lastKeepAlive = Date.now();

  private async beat(): Promise<void> {
    if (!this.keepAlive || Date.now() - this.lastKeepAlive < this.keepAliveMs) return;
    this.lastKeepAlive = Date.now();
    await this.keepAlive();
  }

  /** Adds one message of `topic`; sends that topic's request first if the message would overfill it. */
  async add(topic: string, m: Message): Promise<void> {
    await this.beat();
    let slice = this.open.get(topic);
    if (!slice) this.open.set(topic, (slice = { messages: [], bytes: 0 }));
    const size = valueBytes(m);
    if (full(slice.messages.length, slice.bytes, size)) await this.sendTopic(topic);
    slice.messages.push(m);
    slice.bytes += size;
  }

  /** Adds a transform's output message (counted in outputs and rows). */
  async addOutput(o: OutputMessage): Promise<void> {
    this.outputs++;
    this.rows += o.rows ?? 1;
    await this.add(o.topic, { key: o.key ?? null, value: o.value, headers: o.headers, partition: o.partition });
  }

  /** Iterates a transform's outputs (array, iterable or async iterable), sending as requests fill. */
  async addOutputs(outputs: StageOutputs): Promise<void> {
    if (Symbol.asyncIterator in outputs) {
      for await (const o of outputs) await this.addOutput(o);
    } else {
      for (const o of outputs) await this.addOutput(o);
    }
  }

  /** Drops what was added and not sent (only meaningful while nothing was sent: see sentAny). */
  discard(): void {
    this.open.clear();
    this.outputs = 0;
    this.rows = 0;
  }

  /** Sends every topic's last, partly filled request. */
  async flush(): Promise<void> {
    for (const topic of [...this.open.keys()]) await this.sendTopic(topic);
  }

  private async sendTopic(topic: string): Promise<void> {
    const slice = this.open.get(topic);
    if (!slice || slice.messages.length === 0) return;
    const messages = slice.messages;
    slice.messages = [];
    slice.bytes = 0;
    this.sentAny = true;
    const compression = this.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
    await this.txn.send({ topic, messages, compression });
    await this.beat();
  }
}
