// The incremental labeler: per-person state, event time, a watermark. It emits a task's sample
// for a person once the label is determined (see evaluate.ts), each sample once, and a versioned
// correction when a later record changes an emitted sample. Records older than the watermark by
// more than the allowed lateness are counted and not applied. The batch labeler is this labeler
// fed every record and then one final watermark (time.ts finalWatermark).
import { BASE_RULES, CompiledTask, RuleName } from './taskDefinition';
import { Evaluation, evaluate, PersonState } from './evaluate';
import { eventTime, LabelInput, LabelRecord } from './records';
import { dayOf } from './time';
import { TimerHeap } from './timerHeap';
import { retentionHorizon } from './horizon';
import { LabelerSnapshot, PersonSnapshot, personStateOf } from './snapshot';
import { Id, compareIds } from '../../schemas/ids';

export interface LabelerOptions {
  /** How far behind the watermark a record may be and still be applied (ms). Default 0. */
  allowedLatenessMs?: number;
}

export type AddResult = 'applied' | 'late_applied' | 'dropped';

export interface TaskSummary {
  task: string;
  /** Visits with an index visit concept. */
  candidates: number;
  /** Candidate visits by the first rule that excluded them. */
  excluded: Partial<Record<RuleName, number>>;
  /** Candidate visits that passed every rule. */
  eligible: number;
  /** Persons with an index stay: positives + negatives + censored. */
  cohort: number;
  /** Samples with label 1 (multi-label: with any label 1). */
  positives: number;
  negatives: number;
  /** Index stays whose label the watermark does not determine (at the end of a batch: censored). */
  censored: number;
  /** Multi-label tasks: the concept set names and the number of samples positive for each. */
  labelNames?: string[];
  positivesPerLabel?: number[];
}

export interface LabelerSummary {
  watermark: number;
  tasks: TaskSummary[];
  lateApplied: number;
  lateDropped: Record<'visit' | 'death' | 'condition', number>;
  corrections: number;
}

interface Emitted {
  record: LabelRecord;
}

function sameContent(a: LabelRecord, idx: NonNullable<Evaluation['index']>): boolean {
  if (a.retracted) return false;
  if (a.index_visit_id !== idx.visitId || a.prediction_time !== idx.predictionTime || a.label !== idx.label) return false;
  if (a.labels === null || idx.labels === null) return a.labels === idx.labels;
  return a.labels.length === idx.labels.length && a.labels.every((v, i) => v === (idx.labels as number[])[i]);
}

export class IncrementalLabeler {
  private readonly persons = new Map<Id, PersonState>();
  private readonly unsorted = new Set<Id>();
  private readonly dirty = new Set<Id>();
  private readonly timers = new TimerHeap();
  /** Per task: the last evaluation and the last emitted record of every person. */
  private readonly evaluations: Map<Id, Evaluation>[];
  private readonly emitted: Map<Id, Emitted>[];
  private readonly lateness: number;
  private wm = Number.NEGATIVE_INFINITY;
  private lateApplied = 0;
  private corrections = 0;
  private readonly lateDropped = { visit: 0, death: 0, condition: 0 };

  constructor(
    private readonly tasks: CompiledTask[],
    opts: LabelerOptions = {},
  ) {
    const names = new Set(tasks.map((t) => t.name));
    if (names.size !== tasks.length) throw new Error('two tasks share a name');
    this.lateness = opts.allowedLatenessMs ?? 0;
    if (!(this.lateness >= 0)) throw new Error(`allowedLatenessMs must be >= 0, got ${opts.allowedLatenessMs}`);
    this.evaluations = tasks.map(() => new Map());
    this.emitted = tasks.map(() => new Map());
  }

  get watermark(): number {
    return this.wm;
  }

  private state(personId: Id): PersonState {
    let st = this.persons.get(personId);
    if (!st) {
      st = { person: null, visits: new Map(), deathDay: null, conditions: [] };
      this.persons.set(personId, st);
    }
    return st;
  }

  /** Applies one record, unless it is older than the watermark by more than the allowed lateness. */
  add(input: LabelInput): AddResult {
    const t = eventTime(input);
    let result: AddResult = 'applied';
    if (t !== null && t <= this.wm) {
      if (t <= this.wm - this.lateness) {
        this.lateDropped[input.table as 'visit' | 'death' | 'condition']++;
        return 'dropped';
      }
      this.lateApplied++;
      result = 'late_applied';
    }
    const st = this.state(input.personId);
    switch (input.table) {
      case 'person':
        st.person = { personId: input.personId, birthMs: input.birthMs, genderConceptId: input.genderConceptId };
        break;
      case 'visit':
        // A re-sent visit row replaces the earlier one.
        st.visits.set(input.visitId, {
          personId: input.personId,
          visitId: input.visitId,
          conceptId: input.conceptId,
          startMs: input.startMs,
          endMs: input.endMs,
        });
        break;
      case 'death': {
        const d = dayOf(input.timeMs);
        if (st.deathDay === null || d < st.deathDay) st.deathDay = d;
        break;
      }
      case 'condition':
        st.conditions.push({ personId: input.personId, conceptId: input.conceptId, timeMs: input.timeMs, visitId: input.visitId });
        this.unsorted.add(input.personId);
        break;
    }
    this.dirty.add(input.personId);
    return result;
  }

  /** Moves the watermark forward (never back) and emits what became determined. */
  advanceWatermark(w: number): LabelRecord[] {
    if (w > this.wm) this.wm = w;
    while (this.timers.size > 0 && this.timers.peek() <= this.wm) this.dirty.add(this.timers.pop());
    return this.flush();
  }

  /** Re-evaluates the persons whose records changed and emits samples and corrections. */
  flush(): LabelRecord[] {
    const out: LabelRecord[] = [];
    const persons = Array.from(this.dirty).sort(compareIds);
    this.dirty.clear();
    for (const personId of persons) {
      const st = this.persons.get(personId) as PersonState;
      if (this.unsorted.delete(personId)) st.conditions.sort((a, b) => a.timeMs - b.timeMs || a.conceptId - b.conceptId);
      let nextTimer = Number.POSITIVE_INFINITY;
      this.tasks.forEach((task, k) => {
        const ev = evaluate(task, st);
        this.evaluations[k].set(personId, ev);
        const rec = this.emit(task, k, personId, ev);
        if (rec) out.push(rec);
        if (ev.index && ev.index.determinedAt > this.wm) nextTimer = Math.min(nextTimer, ev.index.determinedAt);
      });
      if (nextTimer !== Number.POSITIVE_INFINITY) this.timers.push(nextTimer, personId);
    }
    return out;
  }

  private emit(task: CompiledTask, k: number, personId: Id, ev: Evaluation): LabelRecord | null {
    const prev = this.emitted[k].get(personId)?.record ?? null;
    const idx = ev.index;
    if (prev === null && (idx === null || idx.determinedAt > this.wm)) return null; // nothing to say yet
    const live = prev !== null && !prev.retracted;
    let rec: LabelRecord | null = null;
    if (idx !== null && idx.determinedAt <= this.wm) {
      if (prev === null || !sameContent(prev, idx)) {
        rec = {
          task: task.name,
          person_id: personId,
          version: prev === null ? 1 : prev.version + 1,
          kind: prev === null ? 'sample' : 'correction',
          retracted: false,
          index_visit_id: idx.visitId,
          prediction_time: idx.predictionTime,
          label: idx.label,
          labels: idx.labels,
          watermark: this.wm,
        };
      }
    } else if (live && (idx === null || idx.visitId !== prev.index_visit_id)) {
      // The emitted sample's stay is no longer the person's index: withdraw it now; its
      // successor, if any, is emitted once determined.
      rec = {
        task: task.name,
        person_id: personId,
        version: prev.version + 1,
        kind: 'correction',
        retracted: true,
        index_visit_id: null,
        prediction_time: null,
        label: null,
        labels: null,
        watermark: this.wm,
      };
    }
    if (rec) {
      if (rec.kind === 'correction') this.corrections++;
      this.emitted[k].set(personId, { record: rec });
    }
    return rec;
  }

  /** The earliest prediction time of a sample or correction it may still emit for the person (horizon.ts). */
  earliestOpenPredictionTime(personId: Id): number {
    return retentionHorizon(this.tasks, this.snapshotPerson(personId) ?? undefined, Number.isFinite(this.wm) ? this.wm : null, this.lateness);
  }

  /** One person's state, or null when the labeler has seen nothing of the person. */
  snapshotPerson(personId: Id): PersonSnapshot | null {
    const st = this.persons.get(personId);
    if (!st) return null;
    if (this.unsorted.delete(personId)) st.conditions.sort((a, b) => a.timeMs - b.timeMs || a.conceptId - b.conceptId);
    const emitted: Record<string, LabelRecord> = {};
    this.tasks.forEach((t, k) => {
      const e = this.emitted[k].get(personId);
      if (e) emitted[t.name] = e.record;
    });
    return {
      personId,
      person: st.person,
      visits: Array.from(st.visits.values()).sort((a, b) => compareIds(a.visitId, b.visitId)),
      deathDay: st.deathDay,
      conditions: st.conditions.slice(),
      emitted,
    };
  }

  /** The whole state, persons in id order (JSON-safe: infinities become null). */
  snapshot(): LabelerSnapshot {
    if (this.dirty.size > 0) throw new Error('flush() or advanceWatermark() before snapshot(): some records are not evaluated yet');
    const ids = Array.from(this.persons.keys()).sort(compareIds);
    return {
      watermark: Number.isFinite(this.wm) ? this.wm : null,
      lateApplied: this.lateApplied,
      corrections: this.corrections,
      lateDropped: { ...this.lateDropped },
      persons: ids.map((id) => this.snapshotPerson(id) as PersonSnapshot),
    };
  }

  /** Loads one person's state (from a state store) and re-evaluates it; emits what that decides. */
  restorePerson(snap: PersonSnapshot): LabelRecord[] {
    this.persons.set(snap.personId, personStateOf(snap));
    this.tasks.forEach((t, k) => {
      const rec = snap.emitted[t.name];
      if (rec) this.emitted[k].set(snap.personId, { record: rec });
      else this.emitted[k].delete(snap.personId);
    });
    this.dirty.add(snap.personId);
    return this.flush();
  }

  /** A labeler with the state of `snap` (after a restart or a rebalance). */
  static restore(tasks: CompiledTask[], snap: LabelerSnapshot, opts: LabelerOptions = {}): IncrementalLabeler {
    const lab = new IncrementalLabeler(tasks, opts);
    lab.wm = snap.watermark ?? Number.NEGATIVE_INFINITY;
    lab.lateApplied = snap.lateApplied;
    lab.corrections = snap.corrections;
    Object.assign(lab.lateDropped, snap.lateDropped);
    for (const p of snap.persons) {
      const out = lab.restorePerson(p);
      // The snapshot was taken after a flush: restoring re-derives the same state and emits nothing.
      if (out.length > 0) throw new Error(`snapshot of person ${p.personId} is inconsistent with its emitted labels`);
    }
    return lab;
  }

  /** The current samples: the latest version of every (task, person), retracted ones left out. */
  currentSamples(): LabelRecord[] {
    const out: LabelRecord[] = [];
    this.emitted.forEach((m) => {
      for (const { record } of m.values()) if (!record.retracted) out.push(record);
    });
    return out.sort((a, b) => (a.task < b.task ? -1 : a.task > b.task ? 1 : compareIds(a.person_id, b.person_id)));
  }

  /** Table-1 counts per task at the current watermark. */
  summary(): LabelerSummary {
    const tasks = this.tasks.map((task, k): TaskSummary => {
      const s: TaskSummary = { task: task.name, candidates: 0, excluded: {}, eligible: 0, cohort: 0, positives: 0, negatives: 0, censored: 0 };
      if (task.multiLabel) {
        s.labelNames = task.sets.map((x) => x.name);
        s.positivesPerLabel = task.sets.map(() => 0);
      }
      for (const ev of this.evaluations[k].values()) {
        s.candidates += ev.candidates;
        s.eligible += ev.eligible;
        for (const [rule, n] of Object.entries(ev.excluded) as [RuleName, number][]) s.excluded[rule] = (s.excluded[rule] ?? 0) + n;
        const idx = ev.index;
        if (!idx) continue;
        s.cohort++;
        if (idx.determinedAt > this.wm) s.censored++;
        else if (idx.labels) {
          if (idx.labels.some((v) => v === 1)) s.positives++;
          else s.negatives++;
          idx.labels.forEach((v, i) => ((s.positivesPerLabel as number[])[i] += v));
        } else if (idx.label === 1) s.positives++;
        else s.negatives++;
      }
      // Rules in the order they apply, so the summary serialises the same way every run.
      const order: RuleName[] = [...BASE_RULES, ...(task.def.cohort.exclusions ?? [])];
      s.excluded = Object.fromEntries(order.filter((r) => s.excluded[r] !== undefined).map((r) => [r, s.excluded[r]]));
      return s;
    });
    return { watermark: this.wm, tasks, lateApplied: this.lateApplied, lateDropped: { ...this.lateDropped }, corrections: this.corrections };
  }
}
