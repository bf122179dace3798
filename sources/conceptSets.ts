// A task's concept sets resolved to concept ids through the vocabulary views (concept,
// concept_relationship, concept_ancestor): id lists as written, ICD-9-CM codes (inline or from a
// CSV) through their "Maps to" targets and all descendants, name patterns over concept names.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { ConceptSetSource, ResolvedConceptSet } from '../transforms/labels';
import { LoadedTask } from './taskFiles';
import { sqlString } from '../common/sql';
import { queryColumns } from './queryColumns';

/** ICD-9-CM codes -> source concepts (concept_code without dots) + their valid "Maps to" targets + all descendants of both. */
async function expandIcd9(conn: DuckDBConnection, codes: string[], where: string): Promise<number[]> {
  for (const c of codes) if (!/^[0-9A-Za-z]+$/.test(c)) throw new Error(`${where}: "${c}" is not an ICD-9 code without dots`);
  if (codes.length === 0) return [];
  const list = codes.map(sqlString).join(', ');
  const [ids] = await queryColumns(
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

/** A resolved set with the definition entry it came from (an icd9_csv entry gives several). */
export interface ResolvedWithSource {
  set: ResolvedConceptSet;
  source: ConceptSetSource;
}

/** Each resolved set with its definition entry, in the order of the definition. */
export async function resolveWithSources(conn: DuckDBConnection, task: LoadedTask): Promise<ResolvedWithSource[]> {
  const resolved: ResolvedWithSource[] = [];
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
          [ids] = await queryColumns(conn, `SELECT DISTINCT concept_id::DOUBLE FROM concept WHERE ${filters.join(' AND ')} ORDER BY 1`);
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
