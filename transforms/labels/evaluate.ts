// The task logic, written once: given one person's records and a watermark, which stay is the
// index of a task, its prediction time and label, whether that label is determined yet, and which
// rule excluded each other candidate stay. Pure; the batch and the incremental labelers call it.
import { CompiledTask, INDEX_ONLY_RULES, RuleName } from './taskDefinition';
import { ConditionRecord, PersonRecord, VisitRecord } from './records';
import { ageYears, dayEnd, dayOf, dayStart } from './time';
import { drawBelow, drawKey } from './draw';
import { Id } from '../../schemas/ids';

export interface PersonState {
  person: PersonRecord | null;
  visits: Map<Id, VisitRecord>;
  /** Earliest death day of the person, or null. */
  deathDay: number | null;
  /** Sorted by time. */
  conditions: ConditionRecord[];
}

export interface IndexOutcome {
  visitId: Id;
  predictionTime: number;
  label: 0 | 1 | null;
  labels: number[] | null;
  /** The label is determined once the watermark is at or past this time. */
  determinedAt: number;
}

export interface Evaluation {
  /** Visits with an index visit concept. */
  candidates: number;
  /** Candidates by the first rule they fail. */
  excluded: Partial<Record<RuleName, number>>;
  eligible: number;
  index: IndexOutcome | null;
}

interface Stay {
  visit: VisitRecord;
  startDay: number;
  endDay: number | null;
  /** Day of the first code of the task's (single) concept set dated in the stay. */
  firstEventDay: number | null;
  /** Time of the first record of the prediction rank, null when the stay has fewer ranks. */
  rankTime: number | null;
  codeInFirstRanks: boolean;
  labels: number[] | null;
}

/** Index of the first condition at or after `t` (conditions sorted by time). */
function lowerBound(conds: ConditionRecord[], t: number): number {
  let lo = 0;
  let hi = conds.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (conds[mid].timeMs < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The stay's facts from the conditions dated from its admission day through its discharge day. */
function stayFacts(task: CompiledTask, st: PersonState, visit: VisitRecord): Stay {
  const startDay = dayOf(visit.startMs);
  const endDay = visit.endMs === null ? null : dayOf(visit.endMs);
  const stay: Stay = { visit, startDay, endDay, firstEventDay: null, rankTime: null, codeInFirstRanks: false, labels: null };
  if (endDay === null || endDay < startDay) return stay;
  const from = lowerBound(st.conditions, dayStart(startDay));
  const to = lowerBound(st.conditions, dayEnd(endDay) + 1);
  const rule = task.def.label.rule;
  if (rule === 'event_during_stay') {
    const set = task.sets[0].ids;
    for (let i = from; i < to; i++) {
      if (set.has(st.conditions[i].conceptId)) {
        stay.firstEventDay = dayOf(st.conditions[i].timeMs);
        break;
      }
    }
  } else if (rule === 'codes_during_stay') {
    const rank = task.def.predictionTime.rank as number;
    let seen = 0;
    let last = Number.NaN;
    let i = from;
    for (; i < to; i++) {
      const t = st.conditions[i].timeMs;
      if (t !== last) {
        seen++;
        last = t;
        if (seen === rank) break;
      }
      if (task.anyCode.has(st.conditions[i].conceptId)) stay.codeInFirstRanks = true;
    }
    if (seen === rank) {
      stay.rankTime = st.conditions[i].timeMs;
      stay.labels = task.sets.map(() => 0);
      for (let j = i; j < to; j++) {
        const c = st.conditions[j].conceptId;
        task.sets.forEach((s, k) => {
          if (s.ids.has(c)) (stay.labels as number[])[k] = 1;
        });
      }
    }
  }
  return stay;
}

/** The first rule the stay fails, or null when it is eligible. `forReadmission` skips index-only rules. */
function failedRule(task: CompiledTask, st: PersonState, stay: Stay, forReadmission: boolean): RuleName | null {
  const c = task.def.cohort;
  if (st.person === null) return 'no_person';
  const age = ageYears(st.person.birthMs, stay.visit.startMs);
  if (age < c.age.min || age > c.age.max) return 'age_out_of_range';
  if (stay.endDay === null) return 'no_end_date';
  if (stay.endDay - stay.startDay < c.minStayDays) return 'stay_shorter_than_min';
  const death = st.deathDay;
  for (const rule of c.exclusions ?? []) {
    if (forReadmission && INDEX_ONLY_RULES.has(rule)) continue;
    switch (rule) {
      case 'starts_on_or_after_death':
        if (death !== null && stay.startDay >= death) return rule;
        break;
      case 'died_during_stay':
        if (death !== null && death <= stay.endDay) return rule;
        break;
      case 'event_on_admission_day':
        if (stay.firstEventDay === stay.startDay) return rule;
        break;
      case 'too_few_record_ranks':
        if (stay.rankTime === null) return rule;
        break;
      case 'code_in_first_record_ranks':
        if (stay.codeInFirstRanks) return rule;
        break;
    }
  }
  return null;
}

/** Later admission first: admission day, then discharge day, then visit id. */
function laterThan(a: Stay, b: Stay): boolean {
  if (a.startDay !== b.startDay) return a.startDay > b.startDay;
  if (a.endDay !== b.endDay) return (a.endDay as number) > (b.endDay as number);
  return a.visit.visitId > b.visit.visitId;
}

function latest(stays: Stay[]): Stay | null {
  let best: Stay | null = null;
  for (const s of stays) if (best === null || laterThan(s, best)) best = s;
  return best;
}

function select(task: CompiledTask, eligible: Stay[]): Stay | null {
  switch (task.def.cohort.select) {
    case 'latest':
      return latest(eligible);
    case 'latest_with_event_else_latest':
      return latest(eligible.filter((s) => s.firstEventDay !== null)) ?? latest(eligible);
    case 'seeded_draw': {
      let best: Stay | null = null;
      let bestKey = 0n;
      for (const s of eligible) {
        const k = drawKey(task.seed, s.visit.visitId);
        if (best === null || k < bestKey) {
          best = s;
          bestKey = k;
        }
      }
      return best;
    }
  }
}

export function evaluate(task: CompiledTask, st: PersonState): Evaluation {
  const stays: Stay[] = [];
  for (const v of st.visits.values()) if (task.indexConcepts.has(v.conceptId)) stays.push(stayFacts(task, st, v));
  const excluded: Partial<Record<RuleName, number>> = {};
  const eligible: Stay[] = [];
  // A stay's eligibility can change until every record dated up to its discharge day is in.
  let settledAt = Number.NEGATIVE_INFINITY;
  for (const s of stays) {
    settledAt = Math.max(settledAt, dayEnd(s.endDay ?? s.startDay));
    const rule = failedRule(task, st, s, false);
    if (rule === null) eligible.push(s);
    else excluded[rule] = (excluded[rule] ?? 0) + 1;
  }
  const chosen = select(task, eligible);
  const result: Evaluation = { candidates: stays.length, excluded, eligible: eligible.length, index: null };
  if (chosen === null) return result;
  const startDay = chosen.startDay;
  const endDay = chosen.endDay as number;
  let predictionTime: number;
  switch (task.def.predictionTime.rule) {
    case 'admission_day_plus_1':
      predictionTime = dayStart(startDay + 1);
      break;
    case 'discharge_day_plus_1':
      predictionTime = dayStart(endDay + 1);
      break;
    case 'day_before_occurrence':
      predictionTime =
        chosen.firstEventDay !== null
          ? dayStart(chosen.firstEventDay - 1)
          : dayStart(startDay + drawBelow(task.seed, chosen.visit.visitId, endDay - startDay));
      break;
    case 'record_rank':
      predictionTime = chosen.rankTime as number;
      break;
  }
  let label: 0 | 1 | null = null;
  let labels: number[] | null = null;
  let labelKnownAt = Number.NEGATIVE_INFINITY;
  switch (task.def.label.rule) {
    case 'death_during_stay': {
      const d = st.deathDay;
      label = d !== null && d > startDay && d <= endDay ? 1 : 0;
      if (label === 0) labelKnownAt = dayEnd(endDay);
      break;
    }
    case 'stay_length_at_least':
      label = endDay - startDay >= (task.def.label.days as number) ? 1 : 0;
      break;
    case 'readmission_within': {
      const days = task.def.label.days as number;
      const readmitted = stays.some(
        (s) => s !== chosen && s.startDay > endDay && s.startDay <= endDay + days && failedRule(task, st, s, true) === null,
      );
      label = readmitted ? 1 : 0;
      if (!readmitted) labelKnownAt = dayEnd(endDay + days);
      break;
    }
    case 'codes_during_stay':
      labels = chosen.labels as number[];
      break;
    case 'event_during_stay':
      label = chosen.firstEventDay !== null ? 1 : 0;
      break;
  }
  result.index = {
    visitId: chosen.visit.visitId,
    predictionTime,
    label,
    labels,
    determinedAt: Math.max(labelKnownAt, settledAt),
  };
  return result;
}
