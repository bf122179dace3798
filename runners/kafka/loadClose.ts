// A load's close in a trajectory partition: the incremental labeler moves to the load's watermark
// and emits the samples it determines (and corrections); each person with new events emits its
// pretraining chunks (assemblePerson, transforms/personAssembly.ts, as in the local runner). The
// labelling and window helpers are shared with continuous mode.
import { EndValue, LateCounts, PretrainBatchValue, SampleRow, SamplesBatchValue, SequenceRow, sampleRow, sequenceRow, streamMessage } from './streamValues';
import { EVENT_WIDTH, PersonStore, TrajectoryOptions, WATERMARK_KEY, emptyStoredEvent, unpackEvent } from './trajectoryState';
import { RowBatches } from './rowBatches';
import { splitOf } from '../../transforms/splits';
import { PersonEvents, Sequence } from '../../transforms/trajectory';
import { assemblePerson } from '../../transforms/personAssembly';
import { IncrementalLabeler, LabelRecord, TaskSummary } from '../../transforms/labels';
import { Id, compareIds, parseId } from '../../schemas/ids';
import { OutputMessage } from './stage';
import { AppendView } from './appendStore';



/**
 * Closes a load in a partition: the incremental labeler moves to the load's watermark and emits
 * the samples it determines (and corrections of labels emitted by an earlier load); every person
 * with new events emits its pretraining chunks. The state is kept for later loads.
 *
 * The labelling and the watermark change the stores now; the output messages come as a generator,
 * person by person in id order, each batch as soon as it is full, so what is held at once is one
 * person's sequences and one batch per topic, not the load's output. The generator reads the
 * person and events stores as it goes: drain it before the partition's next message is applied.
 */
export function closeLoad(store: PersonStore, events: AppendView, load: number, partition: number, opts: TrajectoryOptions, watermark: number | null): Iterable<OutputMessage> {
  const ids = store.keys().filter((k) => !k.startsWith('__')).map((k) => parseId(k) as Id).sort(compareIds);
  const previous = (store.get(WATERMARK_KEY) as unknown as number | undefined) ?? null;
  const wm = watermark === null ? previous : previous === null ? watermark : Math.max(previous, watermark);
  const labelled = labelPartition(store, ids, opts, previous, wm);
  if (wm !== null) store.set(WATERMARK_KEY, wm as never);
  return loadCloseMessages(store, events, ids, load, partition, opts, wm, labelled);
}

function* loadCloseMessages(
  store: PersonStore, events: AppendView, ids: Id[], load: number, partition: number, opts: TrajectoryOptions, wm: number | null,
  { samples, summary, late }: ReturnType<typeof labelPartition>,
): Generator<OutputMessage> {
  const sampleOut = new RowBatches<SampleRow>((rows) => streamMessage(opts.samplesTopic, partition, { k: 'samples', versions: opts.versions, rows } satisfies SamplesBatchValue));
  const chunkOut = new RowBatches<SequenceRow>((rows) => streamMessage(opts.pretrainTopic, partition, { k: 'pretrain', versions: opts.versions, rows } satisfies PretrainBatchValue));
  for (const id of ids) {
    const s = store.get(String(id))!;
    const emit = samples.get(id) ?? [];
    const dirty = s.ln === load;
    if (!dirty && emit.length === 0) continue;
    // No event, or no person row (its rows were set aside when the load closed).
    if (s.n === 0 || s.b === null) continue;
    const pe = sortedEvents(events.get(String(id)) ?? []);
    const person = assemblePerson(pe, { birthMs: s.b, genderConceptId: s.g, visitStarts: s.vs }, emit, opts.maxEvents, dirty);
    const split = splitOf(id);
    for (const { record, sequence } of person.samples) {
      const full = sampleOut.add(labelledSample(record, sequence, split));
      if (full) yield full;
    }
    for (const [k, sequence] of person.chunks.entries()) {
      const full = chunkOut.add(sequenceRow(id, k, sequence, split));
      if (full) yield full;
    }
  }
  const lastChunks = chunkOut.take();
  if (lastChunks) yield lastChunks;
  const lastSamples = sampleOut.take();
  if (lastSamples) yield lastSamples;
  yield streamMessage(opts.pretrainTopic, partition, { k: 'end', table: 'pretrain' } satisfies EndValue);
  yield streamMessage(opts.samplesTopic, partition, { k: 'end', table: 'samples', watermark: wm, tasks: summary, late } satisfies EndValue);
}

/** A label record and its window as the samples topic's row (a correction says so). */
export function labelledSample(r: LabelRecord, seq: Sequence, split: string): SampleRow {
  return sampleRow(sequenceRow(r.person_id, 0, seq, split), {
    task: r.task, pt: r.prediction_time ?? 0, iv: r.index_visit_id, label: r.label, labels: r.labels,
    ...(r.kind === 'correction' ? { kind: 'correction' as const, version: r.version, retracted: r.retracted } : {}),
  });
}

/** A person's stored events (trajectoryState.ts) in the local runner's order: time, table, row id, source row. */
export function sortedEvents(list: readonly Id[]): PersonEvents {
  const n = list.length / EVENT_WIDTH;
  const times = new Float64Array(n);
  const tables = new Int32Array(n);
  const rowIds: Id[] = new Array(n);
  const rows = new Float64Array(n);
  const concepts: Id[] = new Array(n);
  const deciles = new Int8Array(n);
  const domains = new Int8Array(n);
  const e = emptyStoredEvent();
  for (let i = 0; i < n; i++) {
    unpackEvent(list, i, e);
    times[i] = e.timeMs;
    tables[i] = e.tableCode;
    rowIds[i] = e.rowId;
    rows[i] = e.row;
    concepts[i] = e.conceptId;
    deciles[i] = e.decile;
    domains[i] = e.domain;
  }
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => times[a] - times[b] || tables[a] - tables[b] || compareIds(rowIds[a], rowIds[b]) || rows[a] - rows[b]);
  const conceptIds: Id[] = new Array(n);
  const pe: PersonEvents = { times: new Float64Array(n), conceptIds, deciles: new Int8Array(n), domains: new Int8Array(n), length: n };
  for (let k = 0; k < n; k++) {
    const i = order[k];
    pe.times[k] = times[i];
    conceptIds[k] = concepts[i];
    pe.deciles[k] = deciles[i];
    pe.domains[k] = domains[i];
  }
  return pe;
}

/**
 * The incremental labeler of the partition, restored from every person's state (records applied
 * by earlier loads, labels emitted), fed the records of this load (those older than the previous
 * watermark by more than the allowed lateness are dropped and counted), moved to the watermark.
 * Returns what it emits, by person: samples now determined and corrections; the rest is censored.
 */
export function labelPartition(
  store: PersonStore,
  ids: Id[],
  opts: TrajectoryOptions,
  previous: number | null,
  watermark: number | null,
): { samples: Map<Id, LabelRecord[]>; summary: TaskSummary[]; late: LateCounts } {
  const samples = new Map<Id, LabelRecord[]>();
  const late: LateCounts = { applied: 0, dropped: { visit: 0, death: 0, condition: 0 }, corrections: 0 };
  if (opts.tasks.length === 0) return { samples, summary: [], late };
  const labeler = IncrementalLabeler.restore(
    opts.tasks,
    { watermark: previous, lateApplied: 0, corrections: 0, lateDropped: { visit: 0, death: 0, condition: 0 }, persons: [] },
    { allowedLatenessMs: opts.allowedLatenessMs ?? 0 },
  );
  const touched = ids.filter((id) => {
    const s = store.get(String(id))!;
    return s.lab !== undefined || (s.lv?.length ?? 0) > 0; // else in no cohort: no index visit
  });
  // First every person's state as of the last load (restoring re-derives what was emitted: nothing
  // new), then this load's records: restorePerson evaluates every person changed so far.
  for (const id of touched) {
    const lab = store.get(String(id))!.lab;
    if (lab && labeler.restorePerson(lab).length > 0) throw new Error(`labeler state of person ${id} does not match its emitted labels`);
  }
  for (const id of touched) {
    const s = store.get(String(id))!;
    if (s.b !== null) labeler.add({ table: 'person', personId: id, birthMs: s.b, genderConceptId: s.g });
    for (const [visitId, conceptId, startMs, endMs] of s.lv ?? []) labeler.add({ table: 'visit', personId: id, visitId, conceptId, startMs, endMs });
    for (const t of s.ld ?? []) labeler.add({ table: 'death', personId: id, timeMs: t });
    for (const [conceptId, timeMs, visitId] of s.lc ?? []) labeler.add({ table: 'condition', personId: id, conceptId, timeMs, visitId });
  }
  for (const r of labeler.advanceWatermark(watermark ?? Number.NEGATIVE_INFINITY)) {
    let list = samples.get(r.person_id);
    if (!list) samples.set(r.person_id, (list = []));
    list.push(r);
  }
  // The labeler's state replaces the records of this load in the store.
  for (const id of touched) {
    const s = store.get(String(id))!;
    store.set(String(id), { ...s, lv: undefined, ld: undefined, lc: undefined, lab: labeler.snapshotPerson(id) ?? undefined });
  }
  const summary = labeler.summary();
  return { samples, summary: summary.tasks, late: { applied: summary.lateApplied, dropped: summary.lateDropped, corrections: summary.corrections } };
}

/** Records of a later load that came behind the watermark, and corrections emitted. */
