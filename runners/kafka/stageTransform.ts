// A stage's transform inside one partition's transaction: the context it sees (stores bound to the
// partition, dead letters, the offset to commit, rows read, watermark), its outputs streamed into
// the transaction, and the fallback when it throws: message by message, so that only the messages
// it cannot handle go to the dead-letter topic. An error of the machine (disk full, permission) is
// never a bad message: it goes up as TransformEnvironmentError and aborts the transaction.
import { Message } from 'kafkajs';
import { classifyError, EXIT } from '../../common/errors';
import { AppendLogStore } from './appendStore';
import { deadLetterMessage } from './deadLetter';
import { OutputSender } from './outputSender';
import { OutputMessage, StageContext, StageMessage, StageTransform } from './stageTypes';
import { ChangelogStore, StateStore } from './stateStore';

/** What the transaction commits besides the outputs: the group's next offset, rows read, the watermark. */
export interface CommitPlan {
  next: bigint;
  rowsRead: number | null;
  watermark?: number | null;
}

/** A transform failed because of the machine, not the message: never dead-lettered nor skipped. */
export class TransformEnvironmentError extends Error {
  constructor(readonly machineError: Error) {
    super(machineError.message);
    this.name = 'TransformEnvironmentError';
  }
}

function throwIfEnvironment(e: unknown): void {
  if (classifyError(e).exitCode === EXIT.environment) throw new TransformEnvironmentError(e instanceof Error ? e : new Error(String(e)));
}

export interface ChunkScope {
  stage: string;
  stores: Map<string, StateStore>;
  topic: string;
  partition: number;
  /** The offset after the chunk (a tick: the committed one). */
  chunkEnd: bigint;
  /** The group's committed offset of the partition, as the worker knows it. */
  committed: bigint | undefined;
  deadLetters: Message[];
  commit: CommitPlan;
}

/** The context of one transform call. */
export function chunkContext(s: ChunkScope): StageContext {
  const { stage, stores, topic, partition, chunkEnd, committed, deadLetters, commit } = s;
  return {
    topic,
    partition,
    store: <V>(name: string) => {
      const store = stores.get(name);
      if (!(store instanceof ChangelogStore)) throw new Error(`stage ${stage} has no state store "${name}" (declare it in StageOptions.stores)`);
      return (store as ChangelogStore<V>).view(partition);
    },
    appendStore: (name: string) => {
      const store = stores.get(name);
      if (!(store instanceof AppendLogStore)) throw new Error(`stage ${stage} has no append store "${name}" (declare it in StageOptions.appendStores)`);
      return store.view(partition);
    },
    deadLetter: (m, kind, reason, table, element) => {
      const source = `${m.topic}/${m.partition}@${m.offset}${element ? `#${element.index}` : ''}`;
      deadLetters.push(deadLetterMessage(element ? element.value : m.value, m.key, { kind, reason, table, source, stage }));
    },
    commitThrough: (nextOffset) => {
      const next = BigInt(nextOffset);
      if (next > chunkEnd || (committed !== undefined && next < committed)) {
        throw new Error(`stage ${stage}: commitThrough(${nextOffset}) on ${topic}/${partition} is outside ${committed ?? 'start'}..${chunkEnd}`);
      }
      commit.next = next;
    },
    rowsRead: (rows) => {
      commit.rowsRead = (commit.rowsRead ?? 0) + rows;
    },
    watermark: (ms) => {
      commit.watermark = ms;
    },
  };
}

/** Runs the transform on the whole chunk, its outputs into `sender` as they come; the transform's error, or null. */
export async function transformStreaming(transform: StageTransform, chunk: StageMessage[], ctx: StageContext, sender: OutputSender): Promise<Error | null> {
  try {
    await sender.addOutputs(await transform(chunk, ctx));
    return null;
  } catch (e) {
    throwIfEnvironment(e);
    return e as Error;
  }
}

/** The chunk's state before a failed whole-chunk try: pending writes, dead letters, commit plan. */
export function resetChunk(s: ChunkScope): void {
  for (const store of s.stores.values()) store.abortPending(s.partition);
  s.deadLetters.length = 0;
  s.commit.next = s.chunkEnd;
  s.commit.rowsRead = null;
}

/**
 * The transform message by message after the whole chunk failed: a message that throws is
 * dead-lettered and its writes rolled back. Each message's outputs are gathered before they are
 * sent, so a failure midway leaves nothing of that message in the transaction. Returns the count
 * of dead-lettered messages.
 */
export async function transformEach(transform: StageTransform, chunk: StageMessage[], ctx: StageContext, sender: OutputSender, s: ChunkScope): Promise<number> {
  let failed = 0;
  for (const m of chunk) {
    const saved = [...s.stores.values()].map((store) => [store, store.savePending(s.partition)] as const);
    const dlqBefore = s.deadLetters.length;
    const rowsBefore: number | null = s.commit.rowsRead;
    let outputs: OutputMessage[];
    try {
      outputs = [];
      const result = await transform([m], ctx);
      if (Symbol.asyncIterator in result) for await (const o of result) outputs.push(o);
      else for (const o of result) outputs.push(o);
    } catch (err) {
      throwIfEnvironment(err);
      failed++;
      for (const [store, p] of saved) store.restorePending(s.partition, p);
      s.deadLetters.length = dlqBefore;
      s.commit.rowsRead = rowsBefore;
      ctx.deadLetter(m, 'transform-error', (err as Error).message);
      continue;
    }
    for (const o of outputs) await sender.addOutput(o);
  }
  return failed;
}
