// The labelers' inputs from DuckDB: one person's records (person, inpatient-type visits, deaths,
// conditions) read from typed views named as the OMOP tables, and concept sets resolved through
// the vocabulary views (concept, concept_relationship, concept_ancestor). labelBatch runs the
// batch labeler over them and returns the samples and the per-task Table-1 counts.
import { readFileSync } from 'node:fs';
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
  ResolvedConceptSet,
} from '../transforms/labels';
import { LoadedTask } from './taskFiles';
import { Id, parseId } from '../schemas/ids';
import { sqlString } from '../common/sql';

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


/** Columns of a result: DOUBLE columns as numbers, BIGINT id columns as bigints (see `id`). */
async function columns(conn: DuckDBConnection, sql: string): Promise<(number | null)[][]> {
  const reader = await conn.runAndReadAll(sql);
  const cols = reader.getColumnsJS() as (number | null)[][];
  // An empty result has no column arrays: give each column an empty one.
  return Array.from({ length: reader.columnCount }, (_, i) => cols[i] ?? []);
}

/** Reads the records of every person who has a visit with one of `visitConcepts`. */
export async function readLabelInputs(
  conn: DuckDBConnection,
  visitConcepts: number[],
): Promise<{ inputs: LabelInput[]; stats: LabelInputStats }> {
  const concepts = visitConcepts.map((c) => Math.trunc(c)).join(', ') || 'NULL';
  const cohort = `(SELECT DISTINCT person_id FROM visit_occurrence WHERE visit_concept_id IN (${concepts}))`;
  const inputs: LabelInput[] = [];
  const ms = (expr: string) => `epoch_ms(CAST(${expr} AS TIMESTAMP))::DOUBLE`;

  const [pid, gender, birth] = await columns(
    conn,
    `SELECT person_id, coalesce(gender_concept_id, 0),
            ${ms(`coalesce(CAST(birth_datetime AS TIMESTAMP),
                   TRY_CAST(printf('%04d-%02d-%02d', year_of_birth, coalesce(month_of_birth, 1), coalesce(day_of_birth, 1)) AS DATE))`)}
     FROM person WHERE person_id IN ${cohort} ORDER BY person_id`,
  );
  let personsWithoutBirth = 0;
  for (let i = 0; i < pid.length; i++) {
    if (birth[i] === null) {
      personsWithoutBirth++;
      continue;
    }
    inputs.push({ table: 'person', personId: id(pid[i]), birthMs: birth[i] as number, genderConceptId: id(gender[i]) });
  }

  const [vid, vpid, vconcept, vstart, vend] = await columns(
    conn,
    `SELECT visit_occurrence_id, person_id, visit_concept_id::DOUBLE,
            ${ms('visit_start_date')}, ${ms('visit_end_date')}
     FROM visit_occurrence
     WHERE visit_concept_id IN (${concepts}) AND visit_start_date IS NOT NULL
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

  const [dpid, dtime] = await columns(
    conn,
    `SELECT person_id, ${ms('death_date')} FROM death
     WHERE death_date IS NOT NULL AND person_id IN ${cohort} ORDER BY person_id, death_date`,
  );
  for (let i = 0; i < dpid.length; i++) inputs.push({ table: 'death', personId: id(dpid[i]), timeMs: dtime[i] as number });

  const [cpid, cconcept, ctime, cvisit] = await columns(
    conn,
    `SELECT person_id, condition_concept_id::DOUBLE,
            ${ms('coalesce(CAST(condition_start_datetime AS TIMESTAMP), CAST(condition_start_date AS TIMESTAMP))')},
            visit_occurrence_id
     FROM condition_occurrence c
     WHERE coalesce(condition_start_datetime, condition_start_date) IS NOT NULL
       -- Only conditions dated in a candidate stay can matter to a label (ranks, events).
       AND EXISTS (
         SELECT 1 FROM visit_occurrence v
         WHERE v.person_id = c.person_id AND v.visit_concept_id IN (${concepts})
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

  const [maxEvent] = await columns(
    conn,
    `SELECT max(t) FROM (
       SELECT max(${ms('coalesce(visit_end_date, visit_start_date)')}) AS t FROM visit_occurrence
       UNION ALL SELECT max(${ms('death_date')}) FROM death
       UNION ALL SELECT max(${ms('coalesce(CAST(condition_start_datetime AS TIMESTAMP), CAST(condition_start_date AS TIMESTAMP))')}) FROM condition_occurrence)`,
  );
  return {
    inputs,
    stats: {
      persons: pid.length,
      personsWithoutBirth,
      visits: vid.length,
      deaths: dpid.length,
      conditions: cpid.length,
      maxEventMs: maxEvent[0],
    },
  };
}

/** ICD-9-CM codes -> source concepts (concept_code without dots) + their valid "Maps to" targets + all descendants of both. */
async function expandIcd9(conn: DuckDBConnection, codes: string[], where: string): Promise<number[]> {
  for (const c of codes) if (!/^[0-9A-Za-z]+$/.test(c)) throw new Error(`${where}: "${c}" is not an ICD-9 code without dots`);
  if (codes.length === 0) return [];
  const list = codes.map(sqlString).join(', ');
  const [ids] = await columns(
    conn,
    `WITH src AS (
       SELECT concept_id FROM concept
       WHERE vocabulary_id = 'ICD9CM' AND replace(concept_code, '.', '') IN (${list})),
     roots AS (
       SELECT concept_id FROM src
       UNION
       SELECT r.concept_id_2 FROM concept_relationship r JOIN src ON r.concept_id_1 = src.concept_id
       WHERE r.relationship_id = 'Maps to' AND coalesce(r.invalid_reason, '') = '')
     SELECT concept_id::DOUBLE FROM (
       SELECT concept_id FROM roots
       UNION
       SELECT a.descendant_concept_id FROM concept_ancestor a JOIN roots ON a.ancestor_concept_id = roots.concept_id)
     ORDER BY 1`,
  );
  return ids as number[];
}

function readJson(file: string, where: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${where}: cannot read ${file}: ${(e as Error).message}`);
  }
}

/** Minimal CSV (RFC 4180 quotes) to rows of fields. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
    } else field += ch;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Resolves one task's concept sets against the vocabulary views. */
export async function resolveConceptSets(conn: DuckDBConnection, task: LoadedTask): Promise<ResolvedConceptSet[]> {
  return (await resolveWithSources(conn, task)).map((r) => r.set);
}

/** Each resolved set with the definition entry it came from (an icd9_csv entry gives several). */
async function resolveWithSources(conn: DuckDBConnection, task: LoadedTask): Promise<{ set: ResolvedConceptSet; source: ConceptSetSource }[]> {
  const resolved: { set: ResolvedConceptSet; source: ConceptSetSource }[] = [];
  const sources: ConceptSetSource[] = task.def.conceptSets ?? [];
  for (const [n, src] of sources.entries()) {
    const where = `${task.source}: conceptSets[${n}]`;
    const out = { push: (set: ResolvedConceptSet) => resolved.push({ set, source: src }) };
    switch (src.from) {
      case 'ids':
        out.push({ name: src.name, conceptIds: Array.from(new Set(src.ids)).sort((a, b) => a - b) });
        break;
      case 'ids_json': {
        const file = path.resolve(task.baseDir, src.file);
        const json = readJson(file, where) as Record<string, unknown>;
        const ids = json?.[src.key];
        if (!Array.isArray(ids) || !ids.every((x) => Number.isSafeInteger(x)))
          throw new Error(`${where}: ${file} has no list of integer concept ids under "${src.key}"`);
        out.push({ name: src.name, conceptIds: Array.from(new Set(ids as number[])).sort((a, b) => a - b) });
        break;
      }
      case 'icd9_codes':
        out.push({ name: src.name, conceptIds: await expandIcd9(conn, src.codes, where) });
        break;
      case 'icd9_csv': {
        const file = path.resolve(task.baseDir, src.file);
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch (e) {
          throw new Error(`${where}: cannot read ${file}: ${(e as Error).message}`);
        }
        const [header, ...rows] = parseCsv(text);
        const nameCol = header?.indexOf(src.nameColumn) ?? -1;
        const codesCol = header?.indexOf(src.codesColumn) ?? -1;
        if (nameCol < 0 || codesCol < 0)
          throw new Error(`${where}: ${file} lacks column "${nameCol < 0 ? src.nameColumn : src.codesColumn}"`);
        for (const [r, row] of rows.entries()) {
          const name = row[nameCol];
          if (!name) throw new Error(`${file}: row ${r + 1}: empty column "${src.nameColumn}"`);
          const codes = (row[codesCol] ?? '').split(/\s+/).filter((c) => c !== '');
          out.push({ name, conceptIds: await expandIcd9(conn, codes, `${file}: row ${r + 1}, column "${src.codesColumn}"`) });
        }
        break;
      }
      case 'name_regex': {
        const filters = [`regexp_matches(lower(concept_name), ${sqlString(src.pattern)})`];
        if (src.vocabularies) filters.push(`vocabulary_id IN (${src.vocabularies.map(sqlString).join(', ') || 'NULL'})`);
        if (src.domains) filters.push(`domain_id IN (${src.domains.map(sqlString).join(', ') || 'NULL'})`);
        let ids: (number | null)[];
        try {
          [ids] = await columns(conn, `SELECT DISTINCT concept_id::DOUBLE FROM concept WHERE ${filters.join(' AND ')} ORDER BY 1`);
        } catch (e) {
          throw new Error(`${where}: pattern ${JSON.stringify(src.pattern)}: ${(e as Error).message}`);
        }
        out.push({ name: src.name, conceptIds: ids as number[] });
        break;
      }
    }
  }
  return resolved;
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
    const [[icd9]] = await columns(conn, `SELECT count(*)::DOUBLE FROM concept WHERE vocabulary_id = 'ICD9CM'`);
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
