// What the report says about one pipeline output folder, read from that folder alone: its
// manifest (counts, shards with hashes), its decile artifact, and its shards through DuckDB.
// Never a machine path: shards are named relative to the folder. Counts only, no patient rows.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openDuck, queryRows, sqlString } from '../sources/duck';
import { readManifest, type Manifest } from '../sinks/manifest';

export interface TaskFacts {
  task: string;
  candidates: number;
  cohort: number;
  positives: number;
  negatives: number;
  censored: number;
  excluded: Record<string, number>;
  /** Rows of the task's sample shards (the cohort as written). */
  sampleRows: number;
}

export interface RunFacts {
  runner: string;
  complete: boolean;
  persons: number | null;
  personsWithEvents: number;
  records: number;
  visits: number;
  concepts: number;
  age: { n: number; mean: number; sd: number; median: number; q1: number; q3: number } | null;
  sex: { male: number; female: number; other: number };
  tasks: TaskFacts[];
  tasksSkipped: { task: string; reason: string }[];
  /** Per OMOP table: rows read (when the runner counts them), events written (none for person), rows set aside. */
  tables: { table: string; rowsIn: number | null; eventsOut: number | null; rejected: number }[];
  rejectsByReason: { table: string; column: string; reason: string; rows: number }[];
  mapping: { table: string; standard: number; mapped: number; unmapped: number; notInVocabulary: number }[];
  measurementsBinned: number | null;
  measurementEvents: number;
  decileVersion: string | null;
  decileGroups: { conceptId: string; unit: string; count: number; boundaries: number[] }[];
  decileGroupCount: number;
  sequenceLengths: { value: number; n: number }[];
  eventsPerPerson: { value: number; n: number }[];
  shards: { kind: string; path: string; rows: number; bytes: number; sha256: string }[];
  artifacts: { name: string; version: string }[];
}

const OMOP_TABLE: Record<string, string> = {
  condition: 'condition_occurrence', drug: 'drug_exposure', procedure: 'procedure_occurrence', visit: 'visit_occurrence', measurement: 'measurement', death: 'death',
};

export { readManifest };

const num = (v: unknown): number => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : 0);

interface DeciledGroup {
  concept_id: number | string;
  unit: string | null;
  count: number;
  boundaries: number[];
}

function readDeciles(dir: string, manifest: Manifest): { version: string | null; groups: DeciledGroup[] } {
  const rel = (manifest.artifacts as Record<string, { path: string; version: string }>).deciles?.path;
  if (!rel) return { version: null, groups: [] };
  const d = JSON.parse(fs.readFileSync(path.join(dir, rel), 'utf8')) as { version: string; groups: DeciledGroup[] };
  return { version: d.version, groups: d.groups ?? [] };
}

type Duck = Awaited<ReturnType<typeof openDuck>>;
type Row = Record<string, unknown>;
type Counts = Record<string, any>;

/** Values of `expr` with their counts, over the shards of one kind. */
async function valueCounts(conn: Duck, from: string, expr: string): Promise<{ value: number; n: number }[]> {
  const rows = await queryRows<{ value: unknown; n: unknown }>(conn, `SELECT (${expr})::DOUBLE AS value, count(*)::BIGINT AS n FROM ${from} GROUP BY 1 ORDER BY 1`);
  return rows.map((r) => ({ value: num(r.value), n: num(r.n) }));
}

/** What the events shards hold: totals, events per table and per person. */
async function eventFacts(conn: Duck, ev: string | null) {
  const totals = ev
    ? (await queryRows<Row>(conn, `SELECT count(*) AS records, count(DISTINCT person_id) AS persons, count(*) FILTER (WHERE "table" = 'visit') AS visits, count(DISTINCT concept_id) AS concepts FROM ${ev}`))[0]
    : { records: 0, persons: 0, visits: 0, concepts: 0 };
  const perTable = ev ? await queryRows<{ t: string; n: unknown }>(conn, `SELECT "table" AS t, count(*) AS n FROM ${ev} GROUP BY 1`) : [];
  const eventsPerPerson = ev ? await valueCounts(conn, `(SELECT count(*) AS c FROM ${ev} GROUP BY person_id)`, 'c') : [];
  const eventsByTable = new Map(perTable.map((r) => [OMOP_TABLE[r.t] ?? r.t, num(r.n)]));
  return { totals, eventsByTable, eventsPerPerson };
}

/** What the pretraining shards hold: sequence lengths, and per person the sex and the age at the last event. */
async function personFacts(conn: Duck, pre: string | null): Promise<Pick<RunFacts, 'sequenceLengths' | 'sex' | 'age'>> {
  const sequenceLengths = pre ? await valueCounts(conn, pre, 'len(concept_ids)') : [];
  // One row per person: the gender token (second of the first chunk) and the age at the last event.
  const personRows = pre
    ? `(SELECT arg_min(concept_ids[2], chunk) AS gender, max(list_last(ages)) AS age FROM ${pre} GROUP BY person_id)`
    : null;
  const sexRows = personRows ? await queryRows<{ gender: unknown; n: unknown }>(conn, `SELECT gender::BIGINT::VARCHAR AS gender, count(*) AS n FROM ${personRows} GROUP BY 1`) : [];
  const ageRow = personRows
    ? (await queryRows<Row>(conn, `SELECT count(age) AS n, avg(age) AS mean, coalesce(stddev_samp(age), 0) AS sd, quantile_cont(age, 0.5) AS median, quantile_cont(age, 0.25) AS q1, quantile_cont(age, 0.75) AS q3 FROM ${personRows}`))[0]
    : null;
  const sex = { male: 0, female: 0, other: 0 };
  for (const r of sexRows) {
    const k = String(r.gender) === '8507' ? 'male' : String(r.gender) === '8532' ? 'female' : 'other';
    sex[k] += num(r.n);
  }
  const age = ageRow && num(ageRow.n) > 0
    ? { n: num(ageRow.n), mean: num(ageRow.mean), sd: num(ageRow.sd), median: num(ageRow.median), q1: num(ageRow.q1), q3: num(ageRow.q3) }
    : null;
  return { sequenceLengths, sex, age };
}

/** Per OMOP table: rows read, events written and rows set aside; the rejects by reason. */
function tableFacts(counts: Counts, eventsByTable: Map<string, number>): Pick<RunFacts, 'tables' | 'rejectsByReason'> {
  const rejectsByReason = Object.entries((counts.rejects ?? {}) as Record<string, number>).map(([key, rows]) => {
    // RejectSink's key: "<table>.<column>: <reason>".
    const m = /^([^.]+)\.([^:]*): (.*)$/s.exec(key);
    return m ? { table: m[1], column: m[2], reason: m[3], rows } : { table: '', column: '', reason: key, rows };
  });
  const rejectedOf = (t: string) => rejectsByReason.filter((r) => r.table === t).reduce((a, r) => a + r.rows, 0);
  const rowsIn = (counts.rows_in ?? null) as Record<string, number> | null;
  const tableNames = [...new Set([...Object.keys(rowsIn ?? {}), ...eventsByTable.keys(), ...rejectsByReason.map((r) => r.table).filter(Boolean), 'person'])].sort();
  const persons = personCount(counts);
  // Person rows become each trajectory's gender and ages, not events; the valid ones are counts.persons.
  const tableRow = (t: string) => t === 'person'
    ? { table: t, rowsIn: persons === null ? null : persons + rejectedOf(t), eventsOut: null, rejected: rejectedOf(t) }
    : { table: t, rowsIn: rowsIn ? rowsIn[t] ?? 0 : null, eventsOut: eventsByTable.get(t) ?? 0, rejected: rejectedOf(t) };
  return { tables: tableNames.map(tableRow), rejectsByReason };
}

const personCount = (counts: Counts): number | null => (typeof counts.persons === 'number' ? counts.persons : null);

/** The decile artifact's version, group count and its most frequent labs. */
function decileFacts(dir: string, manifest: Manifest): Pick<RunFacts, 'decileVersion' | 'decileGroupCount' | 'decileGroups'> {
  const deciles = readDeciles(dir, manifest);
  return {
    decileVersion: deciles.version,
    decileGroupCount: deciles.groups.length,
    // The most frequent labs first (ties by concept id, so the page is the same every time).
    decileGroups: [...deciles.groups]
      .sort((a, b) => b.count - a.count || String(a.concept_id).localeCompare(String(b.concept_id)) || String(a.unit).localeCompare(String(b.unit)))
      .slice(0, 9)
      .map((g) => ({ conceptId: String(g.concept_id), unit: g.unit ?? '', count: g.count, boundaries: g.boundaries })),
  };
}

/** The manifest's per-task counts (with the rows of each task's sample shards), skipped tasks and mapping counts. */
function labelAndMappingFacts(counts: Counts, shards: RunFacts['shards']): Pick<RunFacts, 'tasks' | 'tasksSkipped' | 'mapping'> {
  const sampleRows = (task: string) => shards.filter((s) => s.kind === 'samples' && s.path.startsWith(`samples/${task}/`)).reduce((a, s) => a + s.rows, 0);
  return {
    tasks: ((counts.tasks ?? []) as any[]).map((t) => ({
      task: t.task, candidates: t.candidates, cohort: t.cohort, positives: t.positives, negatives: t.negatives, censored: t.censored, excluded: t.excluded ?? {}, sampleRows: sampleRows(t.task),
    })),
    tasksSkipped: ((counts.tasks_skipped ?? []) as { task: string; reason: string }[]).map((t) => ({ task: t.task, reason: t.reason })),
    mapping: Object.entries((counts.mapping ?? {}) as Record<string, Record<string, number>>).sort().map(([t, m]) => ({
      table: t, standard: m.standard ?? 0, mapped: m.mapped ?? 0, unmapped: m.unmapped ?? 0, notInVocabulary: m.not_in_vocabulary ?? 0,
    })),
  };
}

export async function readRunFacts(dir: string): Promise<RunFacts> {
  const manifest = readManifest(dir);
  const counts = manifest.counts as Counts;
  const shards = manifest.shards.map((s) => ({ kind: s.kind, path: s.path, rows: s.rows, bytes: s.bytes, sha256: s.sha256 }));
  const files = (kind: string) => shards.filter((s) => s.kind === kind).map((s) => sqlString(path.join(dir, s.path)));
  const events = files('events');
  const pretrain = files('pretrain');
  const conn = await openDuck({ threads: 2 });
  try {
    const ev = events.length ? `read_parquet([${events.join(',')}])` : null;
    const pre = pretrain.length ? `read_parquet([${pretrain.join(',')}])` : null;
    const { totals, eventsByTable, eventsPerPerson } = await eventFacts(conn, ev);
    const { sequenceLengths, sex, age } = await personFacts(conn, pre);
    const { tasks, tasksSkipped, mapping } = labelAndMappingFacts(counts, shards);
    const { tables, rejectsByReason } = tableFacts(counts, eventsByTable);
    return {
      runner: manifest.runner,
      complete: manifest.complete !== false,
      persons: personCount(counts),
      personsWithEvents: num(totals.persons),
      records: num(totals.records),
      visits: num(totals.visits),
      concepts: num(totals.concepts),
      age,
      sex,
      tasks,
      tasksSkipped,
      tables,
      rejectsByReason,
      mapping,
      measurementsBinned: typeof counts.measurements_binned === 'number' ? counts.measurements_binned : null,
      measurementEvents: eventsByTable.get('measurement') ?? 0,
      ...decileFacts(dir, manifest),
      sequenceLengths,
      eventsPerPerson,
      shards,
      artifacts: Object.entries(manifest.artifacts as Record<string, { version: string }>).map(([name, a]) => ({ name, version: a.version })),
    };
  } finally {
    conn.closeSync();
  }
}
