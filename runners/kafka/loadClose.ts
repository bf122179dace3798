// A load's close in a trajectory partition: the incremental labeler moves to the load's watermark
// and emits the samples it determines (and corrections); each person with new events emits its
// pretraining chunks. The labelling and window helpers are shared with continuous mode.
import { EndValue, LateCounts, PretrainBatchValue, ROWS_PER_MESSAGE, SampleRow, SamplesBatchValue, SequenceRow, TOKENS_PER_MESSAGE, streamMessage } from './streamValues';
import { EVENT_WIDTH, PersonStore, TrajectoryOptions, WATERMARK_KEY } from './trajectoryState';
import { splitOf } from '../../transforms/splits';
import { PersonEvents, PersonInfo, buildSequence, chunkRanges, segmentsAndRanks } from '../../transforms/trajectory';
import { IncrementalLabeler, LabelRecord, TaskSummary } from '../../transforms/labels';
import { windowBefore } from '../../transforms/trajectory';
import { Id, compareIds, parseId } from '../../schemas/ids';
import { OutputMessage } from './stage';
import { AppendView } from './appendStore';



/**
 * Closes a load in a partition: the incremental labeler moves to the load's watermark and emits
 * the samples it determines (and corrections of labels emitted by an earlier load); every person
 * with new events emits its pretraining chunks. The state is kept for later loads.
 */
export function closeLoad(store: PersonStore, events: AppendView, load: number, partition: number, opts: TrajectoryOptions, watermark: number | null): OutputMessage[] {
  const out: OutputMessage[] = [];
  const ids = store.keys().filter((k) => !k.startsWith('__')).map((k) => parseId(k) as Id).sort(compareIds);
  const previous = (store.get(WATERMARK_KEY) as unknown as number | undefined) ?? null;
  const wm = watermark === null ? previous : previous === null ? watermark : Math.max(previous, watermark);
  const { samples, summary, late } = labelPartition(store, ids, opts, previous, wm);
  if (wm !== null) store.set(WATERMARK_KEY, wm as never);
  let sampleRows: SampleRow[] = [];
  let sampleTokens = 0;
  const flushSamples = () => {
    if (sampleRows.length) out.push(streamMessage(opts.samplesTopic, partition, { k: 'samples', versions: opts.versions, rows: sampleRows } satisfies SamplesBatchValue));
    sampleRows = [];
    sampleTokens = 0;
  };
  let rows: SequenceRow[] = [];
  let tokens = 0;
  const flush = () => {
    if (rows.length) out.push(streamMessage(opts.pretrainTopic, partition, { k: 'pretrain', versions: opts.versions, rows } satisfies PretrainBatchValue));
    rows = [];
    tokens = 0;
  };
  for (const id of ids) {
    const s = store.get(String(id))!;
    const emit = samples.get(id) ?? [];
    const dirty = s.ln === load;
    if (!dirty && emit.length === 0) continue;
    // No event, or no person row (its rows were set aside when the load closed).
    if (s.n === 0 || s.b === null) continue;
    const pe = sortedEvents(events.get(String(id)) ?? []);
    const n = pe.length;
    const info = { birthMs: s.b, genderConceptId: s.g, visitStarts: s.vs };
    const sr = segmentsAndRanks(pe, s.vs);
    const split = splitOf(id);
    for (const r of emit) {
      const row = sampleRowOf(r, pe, info, sr, split, opts.maxEvents);
      sampleRows.push(row);
      sampleTokens += row.c.length;
      if (sampleRows.length >= ROWS_PER_MESSAGE || sampleTokens >= TOKENS_PER_MESSAGE) flushSamples();
    }
    if (!dirty) continue;
    chunkRanges(n, opts.maxEvents).forEach(([from, to], k) => {
      const seq = buildSequence(pe, info, from, to, sr);
      rows.push({ p: id, chunk: k, split, c: seq.conceptIds, d: seq.deciles, a: seq.ages, s: seq.segments, r: seq.recordRanks, m: seq.domains });
      tokens += seq.conceptIds.length;
      if (rows.length >= ROWS_PER_MESSAGE || tokens >= TOKENS_PER_MESSAGE) flush();
    });
  }
  flush();
  flushSamples();
  out.push(streamMessage(opts.pretrainTopic, partition, { k: 'end', table: 'pretrain' } satisfies EndValue));
  out.push(streamMessage(opts.samplesTopic, partition, { k: 'end', table: 'samples', watermark: wm, tasks: summary, late } satisfies EndValue));
  return out;
}

/** A labeler's record as a sample row: the window of the person's events before its prediction time. */
export function sampleRowOf(r: LabelRecord, pe: PersonEvents, info: PersonInfo, sr: ReturnType<typeof segmentsAndRanks>, split: string, maxEvents: number): SampleRow {
  const [from, to] = r.prediction_time === null ? [0, 0] : windowBefore(pe, r.prediction_time, maxEvents);
  const seq = buildSequence(pe, info, from, to, sr);
  return {
    task: r.task, p: r.person_id, chunk: 0, split, pt: r.prediction_time ?? 0, iv: r.index_visit_id, label: r.label, labels: r.labels,
    c: seq.conceptIds, d: seq.deciles, a: seq.ages, s: seq.segments, r: seq.recordRanks, m: seq.domains,
    ...(r.kind === 'correction' ? { kind: 'correction' as const, version: r.version, retracted: r.retracted } : {}),
  };
}

/** A person's packed events in the local runner's order: time, table, row id, source row. */
export function sortedEvents(list: readonly Id[]): PersonEvents {
  const n = list.length / EVENT_WIDTH;
  // Time, packed fields and source row are numbers; row id and concept are exact Ids.
  const at = (i: number, field: number) => list[i * EVENT_WIDTH + field] as number;
  const id = (i: number, field: number) => list[i * EVENT_WIDTH + field];
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => at(a, 0) - at(b, 0) || (at(a, 1) >> 8) - (at(b, 1) >> 8) || compareIds(id(a, 2), id(b, 2)) || at(a, 3) - at(b, 3));
  const conceptIds: Id[] = new Array(n);
  const pe: PersonEvents = { times: new Float64Array(n), conceptIds, deciles: new Int8Array(n), domains: new Int8Array(n), length: n };
  for (let k = 0; k < n; k++) {
    const i = order[k];
    const packed = at(i, 1);
    pe.times[k] = at(i, 0);
    conceptIds[k] = id(i, 4);
    pe.deciles[k] = ((packed >> 4) & 15) - 1;
    pe.domains[k] = packed & 15;
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
