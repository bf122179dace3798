// Continuous mode of the trajectory stage (`medrep stream --close-on watermark`): outputs as the
// event-time watermark determines them, with no load to wait for. After each transaction's
// records the partition's watermark (watermarks.ts) moves; then
//   - the incremental labeler moves to it: a sample is emitted once its decision time is behind
//     the watermark, a correction when a late record (within the allowed lateness) changes it;
//     the window holds the person's events known then, before the prediction time;
//   - each person's open chunk closes when full or quiet (transforms/continuousChunks.ts) and is
//     emitted once: the person's state counts the events and chunks emitted (`ce`, `ck`), in the
//     same transaction as the chunk, so a restart never emits an event twice nor loses one;
//   - once a person's chunks or samples are emitted, the person's state is pruned to what is
//     still needed (retention): the events store drops the oldest events that are in emitted
//     chunks and that no window can read any more (transforms/eventRetention.ts, with the
//     labeler's horizon, transforms/labels/horizon.ts), and the labeler's snapshot the conditions
//     no label reads; `ce` counts events of all ever appended (the store's base is the offset);
//   - a transaction with output (events passed on, chunks, samples) ends with an end marker on
//     each output topic, which closes the sink's open shards: what is determined reaches the
//     shards without waiting for a size or age bound or for the next message (so a shard holds at
//     most one trajectory transaction's output: `--transaction-size` trades latency for fewer shards).
import { Id, compareIds, parseId } from '../../schemas/ids';
import { closingChunks } from '../../transforms/continuousChunks';
import { splitOf } from '../../transforms/splits';
import { buildSequence, segmentsAndRanks } from '../../transforms/trajectory';
import { LabelRecord, pruneConditions, retentionHorizon, TaskSummary } from '../../transforms/labels';
import { prunableEvents } from '../../transforms/eventRetention';
import { AppendView } from './appendStore';
import { OutputMessage } from './stage';
import { labelPartition, labelledSample, sortedEvents } from './loadClose';
import { RowBatches } from './rowBatches';
import { EndValue, LateCounts, SampleRow, SequenceRow, sequenceRow, streamMessage } from './streamValues';
import { ContinuousCall, ContinuousTrajectory, EVENT_WIDTH, PersonState, PersonStore, TrajectoryOptions, WATERMARK_KEY, eventTimeMs } from './trajectoryState';
import { assemblePerson } from '../../transforms/personAssembly';
import { advanceWatermark, NO_WATERMARK, observeSource, raiseFloor, WatermarkOptions, WatermarkState } from './watermarks';

/** The partition's watermark state (sources' event times, last watermark) in the person store. */
export const WATERMARKS_KEY = '__watermarks__';

export interface ContinuousOptions extends WatermarkOptions {
  /** A person's open chunk closes once its latest event is this far behind the watermark (ms). */
  chunkQuietMs: number;
  /** Wall clock (tests pass their own). */
  now?: () => number;
  /** Keeps every event and labeler record (no retention pruning): for comparisons. */
  retainAll?: boolean;
}

export function continuousTrajectory(opts: TrajectoryOptions, c: ContinuousOptions): ContinuousTrajectory {
  const now = c.now ?? Date.now;
  return {
    begin(store: PersonStore, events: AppendView, partition: number): ContinuousCall {
      // A copy: the stored object stays as committed if the transaction aborts.
      const stored = store.get(WATERMARKS_KEY) as unknown as WatermarkState | undefined;
      const state: WatermarkState = structuredClone(stored ?? NO_WATERMARK);
      const at = now();
      const call = {
        watermark: state.wm,
        observe(table: string, times: readonly number[]) {
          let latest = Number.NEGATIVE_INFINITY;
          for (let i = 0; i < times.length; i++) if (times[i] > latest) latest = times[i];
          if (times.length > 0) observeSource(state, table, latest, at);
        },
        loadClosed(dataEnd: number | null) {
          if (dataEnd !== null) raiseFloor(state, dataEnd);
        },
        finish(forwarded: boolean): OutputMessage[] {
          const wm = advanceWatermark(state, c, at);
          call.watermark = wm;
          store.set(WATERMARKS_KEY, state as never);
          return emitDetermined(store, events, partition, opts, c, wm, forwarded);
        },
      };
      return call;
    },
  };
}

/** Records for the labeler came since it last ran (visits of index concepts, deaths, conditions). */
function hasLabelRecords(s: PersonState): boolean {
  return (s.lv?.length ?? 0) + (s.ld?.length ?? 0) + (s.lc?.length ?? 0) > 0;
}

function emitDetermined(store: PersonStore, events: AppendView, partition: number, opts: TrajectoryOptions, c: ContinuousOptions, wm: number | null, forwarded: boolean): OutputMessage[] {
  const out: OutputMessage[] = [];
  const ids = store.keys().filter((k) => !k.startsWith('__')).map((k) => parseId(k) as Id).sort(compareIds);
  // The labeler runs when the watermark moved or records came (a late one may correct a label).
  const previous = (store.get(WATERMARK_KEY) as unknown as number | undefined) ?? null;
  let samples = new Map<Id, LabelRecord[]>();
  let labelled: { summary: TaskSummary[]; late: LateCounts } | null = null;
  const moved = wm !== null && (previous === null || wm > previous);
  if (opts.tasks.length > 0 && wm !== null && (moved || ids.some((id) => hasLabelRecords(store.get(String(id)) as PersonState)))) {
    const r = labelPartition(store, ids, opts, previous, wm);
    samples = r.samples;
    labelled = { summary: r.summary, late: r.late };
    store.set(WATERMARK_KEY, wm as never);
  }
  const labelerWatermark = (store.get(WATERMARK_KEY) as unknown as number | undefined) ?? null;
  const lateness = opts.allowedLatenessMs ?? 0;
  const sampleOut = new RowBatches<SampleRow>((rows) => streamMessage(opts.samplesTopic, partition, { k: 'samples', versions: opts.versions, rows }));
  const chunkOut = new RowBatches<SequenceRow>((rows) => streamMessage(opts.pretrainTopic, partition, { k: 'pretrain', versions: opts.versions, rows }));
  const send = (m: OutputMessage | null) => {
    if (m) out.push(m);
  };
  for (const id of ids) {
    const key = String(id);
    const s = store.get(key) as PersonState;
    if (s.b === null) continue; // no person row: nothing of this person is used
    const list = events.get(key) ?? [];
    // Indexes into the kept events: `ce` counts from the first event ever appended.
    const base = events.base(key) / EVENT_WIDTH;
    const n = list.length / EVENT_WIDTH;
    const emit = samples.get(id) ?? [];
    const closed = (s.ce ?? 0) - base;
    const timeAt = (i: number) => eventTimeMs(list, i);
    const ranges = n > closed ? closingChunks(closed, n, timeAt, wm, opts.maxEvents, c.chunkQuietMs) : [];
    // The state is pruned when the person emits or brings events (what it keeps only changes then).
    if (ranges.length === 0 && emit.length === 0 && (c.retainAll || !events.appended(key))) continue;
    const info = { birthMs: s.b, genderConceptId: s.g, visitStarts: s.vs };
    const split = splitOf(id);
    if (emit.length > 0) {
      for (const { record, sequence } of assemblePerson(sortedEvents(list), info, emit, opts.maxEvents, false).samples) send(sampleOut.add(labelledSample(record, sequence, split)));
    }
    let chunk = s.ck ?? 0;
    for (const [from, to] of ranges) {
      // A chunk's events in time order among themselves (its segments and ranks counted within it).
      const pe = sortedEvents(list.slice(from * EVENT_WIDTH, to * EVENT_WIDTH));
      const seq = buildSequence(pe, info, 0, pe.length, segmentsAndRanks(pe, s.vs));
      send(chunkOut.add(sequenceRow(id, chunk++, seq, split)));
    }
    const emitted = ranges.length > 0 ? ranges[ranges.length - 1][1] : closed;
    let next: PersonState = ranges.length > 0 ? { ...s, ce: base + emitted, ck: chunk } : s;
    if (!c.retainAll) {
      const drop = prunableEvents(timeAt, n, emitted, retentionHorizon(opts.tasks, s.lab, labelerWatermark, lateness), opts.maxEvents, s.vs);
      if (drop > 0) events.dropPrefix(key, drop * EVENT_WIDTH);
      const lab = s.lab && pruneConditions(s.lab, labelerWatermark, lateness);
      if (lab !== s.lab) next = { ...next, lab };
    }
    if (next !== s) store.set(key, next);
  }
  send(sampleOut.take());
  send(chunkOut.take());
  if (!forwarded && sampleOut.added + chunkOut.added === 0) return out;
  out.push(streamMessage(opts.eventsTopic, partition, { k: 'end', table: 'events' } satisfies EndValue));
  out.push(streamMessage(opts.pretrainTopic, partition, { k: 'end', table: 'pretrain' } satisfies EndValue));
  const labels = labelled ? { tasks: labelled.summary, late: labelled.late } : {};
  out.push(streamMessage(opts.samplesTopic, partition, { k: 'end', table: 'samples', watermark: wm, ...labels } satisfies EndValue));
  return out;
}
