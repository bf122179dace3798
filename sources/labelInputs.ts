// The labelers' inputs from DuckDB: one person's records (person, inpatient-type visits, deaths,
// conditions) read from typed views named as the OMOP tables, and the tasks compiled with their
// concept sets (resolved in conceptSets.ts). labelBatch runs the batch labeler over them and
// returns the samples and the per-task Table-1 counts.
import * as path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import {
  CompiledTask,
  compileTask,
  ConceptSetSource,
  finalWatermark,
  LabelerSummary,
  LabelInput,
  LabelRecord,
  labelRecords,
} from '../transforms/labels';
import { LoadedTask } from './taskFiles';
import { Id, parseId } from '../schemas/ids';
import { queryColumns } from './queryColumns';
import { resolveWithSources } from './conceptSets';

/** A BIGINT id column's value (bigint from DuckDB) as an exact Id. */
const id = (v: unknown): Id => parseId(v) as Id;
const idOrNull = (v: unknown): Id | null => (v === null ? null : id(v));

export interface LabelInputStats {
  persons: number;
  /** Person rows whose birth date cannot be formed (their stays are excluded as no_person). */
  personsWithoutBirth: number;
  visits: number;
  deaths: number;
  /** Conditions dated within a candidate stay (the only ones a label can depend on). */
  conditions: number;
  /** Latest event time read (visit end or start, death, condition), epoch ms. */
  maxEventMs: number | null;
}

/** SQL of an instant as epoch milliseconds (DOUBLE). */
const ms = (expr: string) => `epoch_ms(CAST(${expr} AS TIMESTAMP))::DOUBLE`;
/** A condition's start: its datetime when given, else its date. */
const CONDITION_START = 'coalesce(CAST(condition_start_datetime AS TIMESTAMP), CAST(condition_start_date AS TIMESTAMP))';

/** The candidate visits' concepts as an SQL list, and the persons who have such a visit. */
interface Cohort {
  concepts: string;
  persons: string;
}

/** Person records of the cohort; a person whose birth date cannot be formed is counted, not read. */
async function readPersons(conn: DuckDBConnection, cohort: Cohort, inputs: LabelInput[]): Promise<{ persons: number; withoutBirth: number }> {
  const [pid, gender, birth] = await queryColumns(
    conn,
    `SELECT person_id, coalesce(gender_concept_id, 0),
            ${ms(`coalesce(CAST(birth_datetime AS TIMESTAMP),
                   TRY_CAST(printf('%04d-%02d-%02d', year_of_birth, coalesce(month_of_birth, 1), coalesce(day_of_birth, 1)) AS DATE))`)}
     FROM person WHERE person_id IN ${cohort.persons} ORDER BY person_id`,
  );
  let withoutBirth = 0;
  for (let i = 0; i < pid.length; i++) {
    if (birth[i] === null) {
      withoutBirth++;
      continue;
    }
    inputs.push({ table: 'person', personId: id(pid[i]), birthMs: birth[i] as number, genderConceptId: id(gender[i]) });
  }
  return { persons: pid.length, withoutBirth };
}

/** The candidate visits (of the cohort's visit concepts, with a start date). */
async function readVisits(conn: DuckDBConnection, cohort: Cohort, inputs: LabelInput[]): Promise<number> {
  const [vid, vpid, vconcept, vstart, vend] = await queryColumns(
    conn,
    `SELECT visit_occurrence_id, person_id, visit_concept_id::DOUBLE,
            ${ms('visit_start_date')}, ${ms('visit_end_date')}
     FROM visit_occurrence
     WHERE visit_concept_id IN (${cohort.concepts}) AND visit_start_date IS NOT NULL
     ORDER BY person_id, visit_occurrence_id`,
  );
  for (let i = 0; i < vid.length; i++) {
    inputs.push({
      table: 'visit',
      personId: id(vpid[i]),
      visitId: id(vid[i]),
      conceptId: vconcept[i] as number,
      startMs: vstart[i] as number,
      endMs: vend[i],
    });
  }
  return vid.length;
}

/** The cohort's dated deaths. */
async function readDeaths(conn: DuckDBConnection, cohort: Cohort, inputs: LabelInput[]): Promise<number> {
  const [dpid, dtime] = await queryColumns(
    conn,
    `SELECT person_id, ${ms('death_date')} FROM death
     WHERE death_date IS NOT NULL AND person_id IN ${cohort.persons} ORDER BY person_id, death_date`,
  );
  for (let i = 0; i < dpid.length; i++) inputs.push({ table: 'death', personId: id(dpid[i]), timeMs: dtime[i] as number });
  return dpid.length;
}

/** Conditions dated within a candidate visit: the only ones a label can depend on (ranks, events). */
async function readConditions(conn: DuckDBConnection, cohort: Cohort, inputs: LabelInput[]): Promise<number> {
  const [cpid, cconcept, ctime, cvisit] = await queryColumns(
    conn,
    `SELECT person_id, condition_concept_id::DOUBLE,
            ${ms(CONDITION_START)},
            visit_occurrence_id
     FROM condition_occurrence c
     WHERE coalesce(condition_start_datetime, condition_start_date) IS NOT NULL
       AND EXISTS (
         SELECT 1 FROM visit_occurrence v
         WHERE v.person_id = c.person_id AND v.visit_concept_id IN (${cohort.concepts})
           AND CAST(coalesce(CAST(c.condition_start_datetime AS TIMESTAMP), CAST(c.condition_start_date AS TIMESTAMP)) AS DATE)
               BETWEEN v.visit_start_date AND v.visit_end_date)
     ORDER BY person_id, 3, condition_concept_id`,
  );
  for (let i = 0; i < cpid.length; i++) {
    inputs.push({
      table: 'condition',
      personId: id(cpid[i]),
      conceptId: cconcept[i] as number,
      timeMs: ctime[i] as number,
      visitId: idOrNull(cvisit[i]),
    });
  }
  return cpid.length;
}

/** The latest event time of the tables (visit end or start, death, condition), epoch ms. */
async function readMaxEventMs(conn: DuckDBConnection): Promise<number | null> {
  const [maxEvent] = await queryColumns(
    conn,
    `SELECT max(t) FROM (
       SELECT max(${ms('coalesce(visit_end_date, visit_start_date)')}) AS t FROM visit_occurrence
       UNION ALL SELECT max(${ms('death_date')}) FROM death
       UNION ALL SELECT max(${ms(CONDITION_START)}) FROM condition_occurrence)`,
  );
  return maxEvent[0];
}

/** Reads the records of every person who has a visit with one of `visitConcepts`. */
export async function readLabelInputs(
  conn: DuckDBConnection,
  visitConcepts: number[],
): Promise<{ inputs: LabelInput[]; stats: LabelInputStats }> {
  const concepts = visitConcepts.map((c) => Math.trunc(c)).join(', ') || 'NULL';
  const cohort = { concepts, persons: `(SELECT DISTINCT person_id FROM visit_occurrence WHERE visit_concept_id IN (${concepts}))` };
  const inputs: LabelInput[] = [];
  const { persons, withoutBirth } = await readPersons(conn, cohort, inputs);
  const visits = await readVisits(conn, cohort, inputs);
  const deaths = await readDeaths(conn, cohort, inputs);
  const conditions = await readConditions(conn, cohort, inputs);
  const maxEventMs = await readMaxEventMs(conn);
  return { inputs, stats: { persons, personsWithoutBirth: withoutBirth, visits, deaths, conditions, maxEventMs } };
}

/** A task not labelled, and why (one line). */
export interface SkippedTask {
  task: string;
  reason: string;
}

/** Sources resolved through the vocabulary; id lists name their concepts themselves. */
const VOCABULARY_RESOLVED = new Set<ConceptSetSource['from']>(['icd9_codes', 'icd9_csv', 'name_regex']);

/** Why the sets of these sources resolve to nothing in the vocabulary of `conn`. */
async function whyEmpty(conn: DuckDBConnection, sources: ConceptSetSource[], emptyNames: string[], total: number): Promise<string> {
  const src = sources[0];
  if (src.from === 'icd9_csv' || src.from === 'icd9_codes') {
    const [[icd9]] = await queryColumns(conn, `SELECT count(*)::DOUBLE FROM concept WHERE vocabulary_id = 'ICD9CM'`);
    const lists = src.from === 'icd9_csv' ? `${emptyNames.length === total ? `all ${total}` : `${emptyNames.length} of ${total}`} ICD-9-CM lists of ${path.basename(src.file)}` : `the ICD-9-CM list "${src.name}"`;
    return icd9 === 0
      ? `${lists} resolve to no concept: the vocabulary has no ICD9CM concepts (pass --vocab DIR with an Athena vocabulary that includes ICD9CM)`
      : `${lists} resolve to no concept: none of their codes is an ICD9CM concept_code of the vocabulary`;
  }
  if (src.from === 'name_regex') return `the name pattern ${JSON.stringify(src.pattern)} of "${src.name}" matches no concept of the vocabulary${src.vocabularies ? ` in ${src.vocabularies.join(', ')}` : ''}${src.domains ? ` (domain ${src.domains.join(', ')})` : ''}`;
  return `concept set "${emptyNames[0]}" is empty`;
}

/**
 * Resolves and compiles every task. A task whose vocabulary-resolved concept sets all resolve to
 * no concept is skipped (it would emit only negatives); one with some empty sets is kept with a
 * warning naming them (their labels are all negative).
 */
export async function compileTasks(conn: DuckDBConnection, tasks: LoadedTask[]): Promise<{
  compiled: CompiledTask[];
  skipped: SkippedTask[];
  warnings: string[];
  conceptSets: { task: string; name: string; concepts: number }[];
}> {
  const compiled: CompiledTask[] = [];
  const skipped: SkippedTask[] = [];
  const warnings: string[] = [];
  const conceptSets: { task: string; name: string; concepts: number }[] = [];
  for (const t of tasks) {
    const resolved = await resolveWithSources(conn, t);
    const viaVocabulary = resolved.filter((r) => VOCABULARY_RESOLVED.has(r.source.from));
    const empty = viaVocabulary.filter((r) => r.set.conceptIds.length === 0);
    if (empty.length > 0) {
      const why = await whyEmpty(conn, empty.map((r) => r.source), empty.map((r) => r.set.name), viaVocabulary.length);
      if (empty.length === resolved.length) {
        skipped.push({ task: t.def.name, reason: why });
        continue;
      }
      warnings.push(`task ${t.def.name}: ${why}; their labels (${empty.map((r) => r.set.name).join(', ')}) are all negative`);
    }
    for (const r of resolved) conceptSets.push({ task: t.def.name, name: r.set.name, concepts: r.set.conceptIds.length });
    compiled.push(compileTask(t.def, resolved.map((r) => r.set)));
  }
  return { compiled, skipped, warnings, conceptSets };
}

export interface LabelBatchOptions {
  /** The final watermark (epoch ms): label windows past it are censored. Default: the last
   * millisecond of the day of the latest record read (time.ts finalWatermark). */
  dataEndMs?: number;
}

export interface LabelBatchResult {
  samples: LabelRecord[];
  summary: LabelerSummary;
  /** The watermark the batch ended at: label windows past it are censored. */
  finalWatermark: number;
  tasks: CompiledTask[];
  /** Tasks not labelled: their concept sets resolve to no concept in this vocabulary. */
  skipped: SkippedTask[];
  /** One line each: tasks kept although some of their concept sets resolve to nothing. */
  warnings: string[];
  conceptSets: { task: string; name: string; concepts: number }[];
  inputs: LabelInputStats;
}

/** The views the labelers read, each with the columns they use. */
export const LABEL_VIEWS: Record<string, string[]> = {
  person: ['person_id', 'gender_concept_id', 'year_of_birth', 'month_of_birth', 'day_of_birth', 'birth_datetime'],
  visit_occurrence: ['visit_occurrence_id', 'person_id', 'visit_concept_id', 'visit_start_date', 'visit_end_date'],
  death: ['person_id', 'death_date'],
  condition_occurrence: ['person_id', 'condition_concept_id', 'condition_start_date', 'condition_start_datetime', 'visit_occurrence_id'],
  concept: ['concept_id', 'concept_name', 'domain_id', 'vocabulary_id', 'concept_code'],
  concept_relationship: ['concept_id_1', 'concept_id_2', 'relationship_id', 'invalid_reason'],
  concept_ancestor: ['ancestor_concept_id', 'descendant_concept_id'],
};

/** Fails with the missing view or column named, before any label is computed. */
export async function checkLabelViews(conn: DuckDBConnection): Promise<void> {
  const reader = await conn.runAndReadAll(
    `SELECT lower(table_name), lower(column_name) FROM information_schema.columns WHERE table_schema = current_schema()`,
  );
  const have = new Map<string, Set<string>>();
  for (const [t, c] of reader.getRowsJS() as [string, string][]) {
    if (!have.has(t)) have.set(t, new Set());
    (have.get(t) as Set<string>).add(c);
  }
  for (const [view, cols] of Object.entries(LABEL_VIEWS)) {
    const present = have.get(view);
    if (!present) throw new Error(`labels: no table or view named ${view} (the labelers read ${Object.keys(LABEL_VIEWS).join(', ')})`);
    const missing = cols.filter((c) => !present.has(c));
    if (missing.length) throw new Error(`labels: ${view} lacks column(s) ${missing.join(', ')}`);
  }
}

/** Batch labelling of every task over the views of `conn`. */
export async function labelBatch(conn: DuckDBConnection, tasks: LoadedTask[], opts: LabelBatchOptions = {}): Promise<LabelBatchResult> {
  await checkLabelViews(conn);
  const { compiled, skipped, warnings, conceptSets } = await compileTasks(conn, tasks);
  const visitConcepts = Array.from(new Set(compiled.flatMap((t) => Array.from(t.indexConcepts)))).sort((a, b) => a - b);
  const { inputs, stats } = await readLabelInputs(conn, visitConcepts);
  const end = opts.dataEndMs ?? (stats.maxEventMs === null ? Number.NEGATIVE_INFINITY : finalWatermark(stats.maxEventMs));
  const { samples, summary } = labelRecords(compiled, inputs, end);
  return { samples, summary, finalWatermark: end, tasks: compiled, skipped, warnings, conceptSets, inputs: stats };
}

/** The per-task counts as a text table, like the paper's Table 1; skipped tasks say so. */
export function formatLabelSummary(summary: LabelerSummary, skipped: SkippedTask[] = []): string {
  const head = ['task', 'cohort', 'positives', 'negatives', 'censored', 'candidates', 'excluded by rule'];
  const rows = summary.tasks.map((s) => [
    s.task,
    String(s.cohort),
    String(s.positives),
    String(s.negatives),
    String(s.censored),
    String(s.candidates),
    Object.entries(s.excluded)
      .map(([r, n]) => `${r}=${n}`)
      .join(' ') || '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const skippedLine = (s: SkippedTask) => `${s.task.padEnd(widths[0])}  skipped: its concept sets resolve to no concept in this vocabulary`;
  return [line(head), ...rows.map(line), ...skipped.map(skippedLine)].join('\n');
}
