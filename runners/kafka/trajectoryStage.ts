// The trajectory stage of `medrep stream`: per-person state in changelog-backed stores; the events
// of a person with a person row go on to medrep.events; those that come before it wait (pending
// store) and are set aside as rejects if the load closes without one. When a load is closed
// (end-of-load markers of every input table seen in the partition) loadClose.ts cuts each person's
// trajectory into pretraining chunks and labels the partition; in continuous mode
// (`--close-on watermark`) the event-time watermark decides instead (continuousTrajectory.ts).
import { closeLoad } from './loadClose';
import { EndValue, EventsBatchValue, LOAD_TABLES, PERSON_STORE, ROWS_PER_MESSAGE, Versions, parseValue, streamMessage, valueRows } from './streamValues';
import { END_KEY, EVENTS_STORE, EVENT_WIDTH, EndState, PENDING_STORE, PendingRow, PersonState, TrajectoryOptions, WATERMARK_KEY, packEvent } from './trajectoryState';
import { ClinicalTable, tableSpec } from '../../schemas/omop';
import { TOKEN_DOMAINS } from '../../transforms/tokens';
import { tableCode } from '../../sources/eventSource';
import { Id, compareIds, parseId } from '../../schemas/ids';
import { stringifyJsonExact } from '../../schemas/exactJson';
import { StageContext, StageMessage, OutputMessage, StageTransform } from './stage';


/** Rows for the events topic as columnar batches, one per table, flushed after each input message. */
class EventsOut {
  private readonly batches = new Map<string, EventsBatchValue>();
  constructor(private readonly topic: string, private readonly partition: number, private readonly versions: Versions, private readonly out: OutputMessage[]) {}

  add(person: Id, row: PendingRow): void {
    const table = row[0];
    let b = this.batches.get(table);
    if (!b) this.batches.set(table, (b = { k: 'events', table, versions: this.versions, p: [], t: [], c: [], s: [], d: [], x: [], u: [], v: [], r: [], n: [], rc: [], sd: [], ed: [] }));
    b.p.push(person);
    b.t.push(row[1]); b.c.push(row[2]); b.s.push(row[3]); b.d.push(row[4]); b.x.push(row[5]);
    b.u.push(row[6]); b.v.push(row[7]); b.r.push(row[8]); b.n.push(row[9]);
    // The sink reads no labeler field (rc, sd, ed): these batches carry none.
    if (b.p.length >= ROWS_PER_MESSAGE) this.flushTable(table);
  }

  flush(): void {
    for (const table of [...this.batches.keys()].sort()) this.flushTable(table);
  }

  private flushTable(table: string): void {
    const b = this.batches.get(table)!;
    this.batches.delete(table);
    if (b.p.length) this.out.push(streamMessage(this.topic, this.partition, b));
  }
}

export function trajectoryTransform(opts: TrajectoryOptions): StageTransform {
  const indexConcepts = new Set(opts.tasks.flatMap((t) => Array.from(t.indexConcepts)));
  return (messages: StageMessage[], ctx: StageContext): OutputMessage[] => {
    const store = ctx.store<PersonState | string[]>(PERSON_STORE);
    const events = ctx.appendStore(EVENTS_STORE);
    const pendingStore = ctx.store<PendingRow[]>(PENDING_STORE);
    const continuous = opts.continuous?.begin(store as never, events, ctx.partition);
    const out: OutputMessage[] = [];
    const released = new EventsOut(opts.eventsTopic, ctx.partition, opts.versions, out);
    const touched = new Map<string, PersonState>();
    const stateOf = (id: Id): PersonState => {
      const key = String(id);
      let s = touched.get(key);
      if (!s) {
        s = (store.get(key) as PersonState | undefined) ?? { b: null, g: 0, pr: 0, n: 0, vs: [] };
        touched.set(key, s);
      }
      return s;
    };
    // Waiting rows by person (an empty list: released or set aside, deleted from the store on save).
    const pending = new Map<string, PendingRow[]>();
    const pendingOf = (key: string): PendingRow[] | undefined => {
      let list = pending.get(key);
      if (list === undefined) {
        const stored = pendingStore.get(key);
        if (stored === undefined) return undefined;
        pending.set(key, (list = [...stored]));
      }
      return list;
    };
    const endState = (): EndState => (store.get(END_KEY) as unknown as EndState | undefined) ?? { counts: {}, closed: 0, watermark: null };
    let openLoad = endState().closed + 1;
    const event: Id[] = new Array(EVENT_WIDTH);
    // A row of a person with a person row joins the person's trajectory state.
    const apply = (person: Id, s: PersonState, row: PendingRow) => {
      const table = row[0];
      const ev = tableSpec(table as ClinicalTable).events!;
      s.n++;
      s.ln = openLoad;
      if (TOKEN_DOMAINS.has(ev.domain)) {
        event[0] = row[1];
        event[1] = packEvent(tableCode(table), row[4], ev.domain);
        event[2] = row[8];
        event[3] = row[9];
        event[4] = row[2];
        events.append(String(person), event);
      } else if (ev.eventTable === 'visit') s.vs.push(row[1]);
    };
    const save = () => {
      for (const [k, s] of touched) store.set(k, s);
      touched.clear();
      for (const [k, list] of pending) {
        if (list.length) pendingStore.set(k, list);
        else if (pendingStore.get(k) !== undefined) pendingStore.delete(k);
      }
      pending.clear();
    };
    // A load closes: the rows still waiting have no person row; they are set aside with the reason.
    const setAsideWaiting = (m: StageMessage) => {
      save();
      const keys = pendingStore.keys().map((k) => parseId(k) as Id).sort(compareIds);
      let rows = 0;
      for (const id of keys) {
        const key = String(id);
        const s = stateOf(id);
        const list = pendingOf(key)!;
        for (const row of list) {
          if (s.b !== null) {
            apply(id, s, row);
            released.add(id, row);
            continue;
          }
          const reason = s.rj !== undefined ? `person rejected (${s.rj})` : 'person_id not in the person table';
          const value = stringifyJsonExact({ person_id: id, __row: row[9] });
          ctx.deadLetter(m, 'invalid-row', `column person_id: ${reason}`, row[0], { value, index: rows++ });
        }
        list.length = 0;
      }
      released.flush();
      if (keys.length) opts.onSetAside?.(ctx.partition, keys.length, rows);
      save();
    };
    for (const m of messages) {
      const value = parseValue(m);
      ctx.rowsRead(valueRows(value));
      if (value.k === 'persons') {
        for (let i = 0; i < value.p.length; i++) {
          const s = stateOf(value.p[i]);
          if (s.b !== null) {
            // The same source row again (a load sent twice) changes nothing. Another row of the same
            // person_id is a reject, as in the local runner: the later one in the source (rows
            // without a source row number cannot be told apart, so every repeat is a reject).
            if (s.pr === value.n[i] && s.pr !== 0) continue;
            const later = Math.max(s.pr, value.n[i]);
            const dup = { value: stringifyJsonExact({ person_id: value.p[i], __row: later }), index: i };
            ctx.deadLetter(m, 'invalid-row', 'column person_id: duplicate person_id', 'person', dup);
            if (value.n[i] >= s.pr) continue;
          }
          s.b = value.b[i];
          s.g = value.g[i];
          s.pr = value.n[i];
          // Rows that came before their person row go on now.
          const waiting = pendingOf(String(value.p[i]));
          if (waiting) {
            for (const row of waiting) {
              apply(value.p[i], s, row);
              released.add(value.p[i], row);
            }
            waiting.length = 0;
          }
        }
        const rp = value.rp ?? [];
        for (let i = 0; i < rp.length; i++) stateOf(rp[i]).rj = value.rw![i];
        released.flush();
      } else if (value.k === 'events') {
        continuous?.observe(value.table, value.t);
        const ev = tableSpec(value.table as ClinicalTable).events!;
        let allKnown = true;
        for (let i = 0; i < value.p.length; i++) {
          const s = stateOf(value.p[i]);
          const row: PendingRow = [value.table, value.t[i], value.c[i], value.s[i], value.d[i], value.x[i], value.u[i], value.v[i], value.r[i], value.n[i]];
          if (s.b !== null) {
            apply(value.p[i], s, row);
            if (!allKnown) released.add(value.p[i], row);
          } else {
            if (allKnown) {
              // The first row without a person: the rows before it go out as a batch of their own.
              allKnown = false;
              for (let j = 0; j < i; j++) released.add(value.p[j], [value.table, value.t[j], value.c[j], value.s[j], value.d[j], value.x[j], value.u[j], value.v[j], value.r[j], value.n[j]]);
            }
            const key = String(value.p[i]);
            let list = pendingOf(key);
            if (!list) pending.set(key, (list = []));
            list.push(row);
          }
          if (opts.tasks.length === 0) continue;
          // What the labeler reads (sources/labelInputs.ts): index visits by their dates, deaths, conditions,
          // of every row (those of a person without a person row are excluded there as no_person, as locally).
          // The labeler takes concept ids as the vocabulary's numbers (labelInputs reads them as DOUBLE):
          // a bigint concept is in no concept set either way.
          const rc = Number(value.rc[i]);
          if (ev.eventTable === 'visit' && indexConcepts.has(rc) && value.sd[i] !== null) (s.lv ??= []).push([value.v[i] ?? value.r[i], rc, value.sd[i]!, value.ed[i]]);
          else if (ev.eventTable === 'death' && value.sd[i] !== null) (s.ld ??= []).push(value.sd[i]!);
          else if (ev.eventTable === 'condition') (s.lc ??= []).push([rc, value.t[i], value.v[i]]);
        }
        // Every row's person known: the batch goes on as it came.
        if (allKnown) out.push({ topic: opts.eventsTopic, partition: ctx.partition, key: null, value: m.value, headers: m.headers, rows: value.p.length });
        else released.flush();
      } else if (value.k === 'end') {
        save();
        // Load k closes once every input table has sent its k-th end-of-load marker.
        const prev = endState();
        const counts = { ...prev.counts, [value.table]: (prev.counts[value.table] ?? 0) + 1 };
        const wm = value.watermark ?? null;
        const watermark = wm === null ? prev.watermark : prev.watermark === null ? wm : Math.max(prev.watermark, wm);
        let closed = prev.closed;
        while (LOAD_TABLES.every((t) => (counts[t] ?? 0) > closed)) {
          if (closed === prev.closed) setAsideWaiting(m);
          closed++;
          if (continuous) {
            continuous.loadClosed(watermark);
            continue;
          }
          out.push(streamMessage(opts.eventsTopic, ctx.partition, { k: 'end', table: 'events' } satisfies EndValue));
          out.push(...closeLoad(store as never, events, closed, ctx.partition, opts, watermark));
        }
        store.set(END_KEY, { counts, closed, watermark } as never);
        openLoad = closed + 1;
      }
    }
    save();
    if (continuous) out.push(...continuous.finish(out.length > 0));
    ctx.watermark?.(continuous ? continuous.watermark : ((store.get(WATERMARK_KEY) as unknown as number | undefined) ?? null));
    return out;
  };
}

