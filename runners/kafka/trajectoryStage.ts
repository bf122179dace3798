// The trajectory stage of `medrep stream`: per-person state in changelog-backed stores; the events
// of a person with a person row go on to medrep.events; those that come before it wait (pending
// store) and are set aside as rejects if the load closes without one. When a load is closed
// (end-of-load markers of every input table seen in the partition) loadClose.ts cuts each person's
// trajectory into pretraining chunks and labels the partition; in continuous mode
// (`--close-on watermark`) the event-time watermark decides instead (continuousTrajectory.ts).
import { closeLoad } from './loadClose';
import { EndValue, EventsBatchValue, LOAD_TABLES, PERSON_STORE, PersonsBatchValue, ROWS_PER_MESSAGE, Versions, eventsBatch, parseValue, streamMessage, valueRows } from './streamValues';
import { ContinuousCall, END_KEY, EVENTS_STORE, EVENT_WIDTH, EndState, PENDING_STORE, PendingRow, PersonState, PersonStore, TrajectoryOptions, WATERMARK_KEY, packEvent, pendingEvent, pendingRow } from './trajectoryState';
import { CanonicalEvent, emptyCanonicalEvent } from '../../schemas/canonicalEvent';
import { eventAt, eventCount, pushEvent } from '../../schemas/eventColumns';
import { TOKEN_DOMAINS } from '../../transforms/tokens';
import { Id, compareIds, parseId } from '../../schemas/ids';
import { stringifyJsonExact } from '../../schemas/exactJson';
import { StageContext, StageMessage, OutputMessage, StageTransform } from './stage';
import { AppendView } from './appendStore';
import { KeyValueView } from './stateStore';


/** Rows for the events topic as columnar batches, one per table, flushed after each input message. */
class EventsOut {
  private readonly batches = new Map<string, EventsBatchValue>();
  constructor(private readonly topic: string, private readonly partition: number, private readonly versions: Versions, private readonly out: OutputMessage[]) {}

  add(e: CanonicalEvent): void {
    const table = e.omopTable;
    let b = this.batches.get(table);
    if (!b) this.batches.set(table, (b = eventsBatch(table, this.versions)));
    // The sink reads no labeler field: these batches carry none.
    pushEvent(b, e);
    if (eventCount(b) >= ROWS_PER_MESSAGE) this.flushTable(table);
  }

  flush(): void {
    for (const table of [...this.batches.keys()].sort()) this.flushTable(table);
  }

  private flushTable(table: string): void {
    const b = this.batches.get(table)!;
    this.batches.delete(table);
    if (eventCount(b)) this.out.push(streamMessage(this.topic, this.partition, b));
  }
}

export function trajectoryTransform(opts: TrajectoryOptions): StageTransform {
  const indexConcepts = new Set(opts.tasks.flatMap((t) => Array.from(t.indexConcepts)));
  return (messages: StageMessage[], ctx: StageContext): Iterable<OutputMessage> => run(new TrajectoryCall(opts, indexConcepts, ctx), messages);
}

/**
 * The call's output as the stage sends it: each message's output once it is applied, a load's
 * close as it goes (a slice at a time, never the whole partition in memory). The stage drains the
 * generator before it commits, and a message is applied only after the one before it is drained.
 */
function* run(call: TrajectoryCall, messages: StageMessage[]): Generator<OutputMessage> {
  for (const m of messages) yield* call.message(m);
  yield* call.finish();
}

/**
 * One call of the trajectory transform on a chunk of one partition: the person states and pending
 * rows it touched (written back to the stores by `save`), and the output messages in order.
 */
class TrajectoryCall {
  private readonly store: PersonStore;
  private readonly events: AppendView;
  private readonly pendingStore: KeyValueView<PendingRow[]>;
  private readonly continuous: ContinuousCall | undefined;
  private readonly out: OutputMessage[] = [];
  /** Whether this call has handed on any output (continuous mode closes differently then). */
  private forwarded = false;
  private readonly released: EventsOut;
  private readonly touched = new Map<string, PersonState>();
  /** Waiting rows by person (an empty list: released or set aside, deleted from the store on save). */
  private readonly pending = new Map<string, PendingRow[]>();
  /** The load the rows of this call belong to (1-based). */
  private openLoad: number;
  private readonly packed: Id[] = new Array(EVENT_WIDTH);
  /** Slots for the event at hand and an earlier one of the same batch. */
  private readonly event = emptyCanonicalEvent();
  private readonly earlier = emptyCanonicalEvent();

  constructor(private readonly opts: TrajectoryOptions, private readonly indexConcepts: Set<number>, private readonly ctx: StageContext) {
    this.store = ctx.store<PersonState | string[]>(PERSON_STORE) as never;
    this.events = ctx.appendStore(EVENTS_STORE);
    this.pendingStore = ctx.store<PendingRow[]>(PENDING_STORE);
    this.continuous = opts.continuous?.begin(this.store, this.events, ctx.partition);
    this.released = new EventsOut(opts.eventsTopic, ctx.partition, opts.versions, this.out);
    this.openLoad = this.endState().closed + 1;
  }

  *message(m: StageMessage): Generator<OutputMessage> {
    const value = parseValue(m);
    this.ctx.rowsRead(valueRows(value));
    if (value.k === 'persons') this.persons(m, value);
    else if (value.k === 'events') this.clinicalRows(m, value);
    else if (value.k === 'end') yield* this.endOfLoad(m, value);
    yield* this.takeOut();
  }

  /** Saves the touched state; the rest of the call's output, with continuous mode's closes. */
  *finish(): Generator<OutputMessage> {
    this.save();
    if (this.continuous) this.out.push(...this.continuous.finish(this.forwarded || this.out.length > 0));
    this.ctx.watermark?.(this.continuous ? this.continuous.watermark : ((this.store.get(WATERMARK_KEY) as unknown as number | undefined) ?? null));
    yield* this.takeOut();
  }

  /** The output collected so far, handed on and forgotten. */
  private *takeOut(): Generator<OutputMessage> {
    if (this.out.length === 0) return;
    this.forwarded = true;
    yield* this.out.splice(0, this.out.length);
  }

  private stateOf(id: Id): PersonState {
    const key = String(id);
    let s = this.touched.get(key);
    if (!s) {
      s = (this.store.get(key) as PersonState | undefined) ?? { b: null, g: 0, pr: 0, n: 0, vs: [] };
      this.touched.set(key, s);
    }
    return s;
  }

  private pendingOf(key: string): PendingRow[] | undefined {
    let list = this.pending.get(key);
    if (list === undefined) {
      const stored = this.pendingStore.get(key);
      if (stored === undefined) return undefined;
      this.pending.set(key, (list = [...stored]));
    }
    return list;
  }

  private endState(): EndState {
    return (this.store.get(END_KEY) as unknown as EndState | undefined) ?? { counts: {}, closed: 0, watermark: null };
  }

  /** A row of a person with a person row joins the person's trajectory state. */
  private apply(s: PersonState, e: CanonicalEvent): void {
    s.n++;
    s.ln = this.openLoad;
    if (TOKEN_DOMAINS.has(e.domain)) this.events.append(String(e.personId), packEvent(e, this.packed));
    else if (e.table === 'visit') s.vs.push(e.timeMs);
  }

  /** A waiting row's event joins the person's state and goes on to the events topic. */
  private release(person: Id, s: PersonState, row: PendingRow): void {
    const e = pendingEvent(person, row, this.event);
    this.apply(s, e);
    this.released.add(e);
  }

  private save(): void {
    for (const [k, s] of this.touched) this.store.set(k, s);
    this.touched.clear();
    for (const [k, list] of this.pending) {
      if (list.length) this.pendingStore.set(k, list);
      else if (this.pendingStore.get(k) !== undefined) this.pendingStore.delete(k);
    }
    this.pending.clear();
  }

  /** A load closes: the rows still waiting have no person row; they are set aside with the reason. */
  private setAsideWaiting(m: StageMessage): void {
    this.save();
    const keys = this.pendingStore.keys().map((k) => parseId(k) as Id).sort(compareIds);
    let rows = 0;
    for (const id of keys) {
      const key = String(id);
      const s = this.stateOf(id);
      const list = this.pendingOf(key)!;
      for (const row of list) {
        if (s.b !== null) {
          this.release(id, s, row);
          continue;
        }
        const e = pendingEvent(id, row, this.event);
        const reason = s.rj !== undefined ? `person rejected (${s.rj})` : 'person_id not in the person table';
        const value = stringifyJsonExact({ person_id: id, __row: e.row });
        this.ctx.deadLetter(m, 'invalid-row', `column person_id: ${reason}`, e.omopTable, { value, index: rows++ });
      }
      list.length = 0;
    }
    this.released.flush();
    if (keys.length) this.opts.onSetAside?.(this.ctx.partition, keys.length, rows);
    this.save();
  }

  /** Person rows: birth and gender join the state, and the rows that came before them go on. */
  private persons(m: StageMessage, value: PersonsBatchValue): void {
    for (let i = 0; i < value.p.length; i++) {
      const s = this.stateOf(value.p[i]);
      if (s.b !== null) {
        // The same source row again (a load sent twice) changes nothing. Another row of the same
        // person_id is a reject, as in the local runner: the later one in the source (rows
        // without a source row number cannot be told apart, so every repeat is a reject).
        if (s.pr === value.n[i] && s.pr !== 0) continue;
        const later = Math.max(s.pr, value.n[i]);
        const dup = { value: stringifyJsonExact({ person_id: value.p[i], __row: later }), index: i };
        this.ctx.deadLetter(m, 'invalid-row', 'column person_id: duplicate person_id', 'person', dup);
        if (value.n[i] >= s.pr) continue;
      }
      s.b = value.b[i];
      s.g = value.g[i];
      s.pr = value.n[i];
      const waiting = this.pendingOf(String(value.p[i]));
      if (waiting) {
        for (const row of waiting) this.release(value.p[i], s, row);
        waiting.length = 0;
      }
    }
    const rp = value.rp ?? [];
    for (let i = 0; i < rp.length; i++) this.stateOf(rp[i]).rj = value.rw![i];
    this.released.flush();
  }

  /**
   * Clinical rows: those of a person with a person row join its state and go on to the events
   * topic (the message as it came when every row's person is known); the others wait.
   */
  private clinicalRows(m: StageMessage, value: EventsBatchValue): void {
    this.continuous?.observe(value.table, value.timeMs);
    const n = eventCount(value);
    let allKnown = true;
    for (let i = 0; i < n; i++) {
      const e = eventAt(value, value.table, i, this.event);
      const s = this.stateOf(e.personId);
      if (s.b !== null) {
        this.apply(s, e);
        if (!allKnown) this.released.add(e);
      } else {
        if (allKnown) {
          // The first row without a person: the rows before it go out as a batch of their own.
          allKnown = false;
          for (let j = 0; j < i; j++) this.released.add(eventAt(value, value.table, j, this.earlier));
        }
        const key = String(e.personId);
        let list = this.pendingOf(key);
        if (!list) this.pending.set(key, (list = []));
        list.push(pendingRow(e));
      }
      if (this.opts.tasks.length) this.labelerRecord(s, e.table, value, i);
    }
    if (allKnown) this.out.push({ topic: this.opts.eventsTopic, partition: this.ctx.partition, key: null, value: m.value, headers: m.headers, rows: n });
    else this.released.flush();
  }

  /**
   * What the labeler reads (sources/labelInputs.ts): index visits by their dates, deaths,
   * conditions, of every row (those of a person without a person row are excluded there as
   * no_person, as locally). The labeler takes concept ids as the vocabulary's numbers
   * (labelInputs reads them as DOUBLE): a bigint concept is in no concept set either way.
   */
  private labelerRecord(s: PersonState, eventTable: string, value: EventsBatchValue, i: number): void {
    const rc = Number(value.givenConceptId[i]);
    const start = value.startDateMs[i];
    if (eventTable === 'visit' && this.indexConcepts.has(rc) && start !== null) (s.lv ??= []).push([value.visitId[i] ?? value.rowId[i], rc, start, value.endDateMs[i]]);
    else if (eventTable === 'death' && start !== null) (s.ld ??= []).push(start);
    else if (eventTable === 'condition') (s.lc ??= []).push([rc, value.timeMs[i], value.visitId[i]]);
  }

  /** An end-of-load marker: load k closes once every input table has sent its k-th marker. */
  private *endOfLoad(m: StageMessage, value: EndValue): Generator<OutputMessage> {
    this.save();
    const prev = this.endState();
    const counts = { ...prev.counts, [value.table]: (prev.counts[value.table] ?? 0) + 1 };
    const wm = value.watermark ?? null;
    const watermark = wm === null ? prev.watermark : prev.watermark === null ? wm : Math.max(prev.watermark, wm);
    let closed = prev.closed;
    while (LOAD_TABLES.every((t) => (counts[t] ?? 0) > closed)) {
      if (closed === prev.closed) this.setAsideWaiting(m);
      closed++;
      if (this.continuous) {
        this.continuous.loadClosed(watermark);
        continue;
      }
      this.out.push(streamMessage(this.opts.eventsTopic, this.ctx.partition, { k: 'end', table: 'events' } satisfies EndValue));
      yield* this.takeOut();
      // Drained here, before the next load's close or message changes the stores it reads.
      yield* closeLoad(this.store, this.events, closed, this.ctx.partition, this.opts, watermark);
      this.forwarded = true;
    }
    this.store.set(END_KEY, { counts, closed, watermark } as never);
    this.openLoad = closed + 1;
  }
}
