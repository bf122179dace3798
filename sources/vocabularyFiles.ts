// The trainers' reader of a vocabulary folder: Athena downloads (tab-separated, no quoting,
// dates YYYYMMDD, upper-case names such as CONCEPT.csv), CDM CSV exports (comma, RFC 4180
// quotes) or Parquet files (read through DuckDB). Rows are handed to a callback one at a time so
// that the full vocabulary (millions of concepts, tens of millions of links) is never held as
// rows; readVocabularyLinks keeps only the links a representation lookup follows. (The runners
// read the vocabulary through DuckDB views instead: sources/vocabulary.ts, which keeps only the
// "Maps to" closure of the concepts a dataset names.)
import * as fs from 'fs';
import * as path from 'path';
import { DuckDBInstance } from '@duckdb/node-api';
import { sqlString } from '../common/sql';

export type VocabTableName = 'concept' | 'concept_relationship' | 'concept_ancestor' | 'concept_synonym';

export interface VocabFile {
  path: string;
  format: 'tsv' | 'csv' | 'parquet';
}

/** Finds <table>.csv / .tsv / .parquet in dir, any letter case; null when absent. */
export function findVocabFile(dir: string, table: VocabTableName): VocabFile | null {
  if (!fs.existsSync(dir)) throw new Error(`vocabulary folder ${dir} does not exist`);
  const entries = fs.readdirSync(dir);
  for (const ext of ['csv', 'tsv', 'parquet'] as const) {
    const hit = entries.find((e) => e.toLowerCase() === `${table}.${ext}`);
    if (!hit) continue;
    const p = path.join(dir, hit);
    if (ext === 'parquet') return { path: p, format: 'parquet' };
    return { path: p, format: sniffDelimiter(p) };
  }
  return null;
}

export function requireVocabFile(dir: string, table: VocabTableName): VocabFile {
  const f = findVocabFile(dir, table);
  if (!f) throw new Error(`vocabulary folder ${dir} has no ${table} file (${table.toUpperCase()}.csv, ${table}.csv or ${table}.parquet)`);
  return f;
}

function sniffDelimiter(file: string): 'tsv' | 'csv' {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(4096);
  const n = fs.readSync(fd, buf, 0, buf.length, 0);
  fs.closeSync(fd);
  const header = buf.subarray(0, n).toString('utf8').split('\n')[0];
  return header.includes('\t') ? 'tsv' : 'csv';
}

/** Splits one CSV record (RFC 4180); returns null when a quoted field continues on the next line. */
export function splitCsvRecord(line: string): string[] | null {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < line.length) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"') {
        if (line[i + 1] === '"') { field += '"'; i += 2; continue; }
        quoted = false; i++; continue;
      }
      field += ch; i++; continue;
    }
    if (ch === '"') { quoted = true; i++; continue; }
    if (ch === ',') { out.push(field); field = ''; i++; continue; }
    field += ch; i++;
  }
  if (quoted) return null;
  out.push(field);
  return out;
}

/** Calls onLine for every line of a text file (without the newline, \r stripped), streaming. */
export async function forEachLine(file: string, onLine: (line: string, lineNo: number) => void): Promise<number> {
  const stream = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  let rest = '';
  let lineNo = 0;
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of stream) {
    const text = rest + decoder.decode(chunk as Buffer, { stream: true });
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      let line = text.slice(start, nl);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      onLine(line, ++lineNo);
      start = nl + 1;
    }
    rest = text.slice(start);
  }
  rest += decoder.decode();
  if (rest.length > 0) onLine(rest.endsWith('\r') ? rest.slice(0, -1) : rest, ++lineNo);
  return lineNo;
}

/** A row as strings keyed by lower-case column name (only the requested columns). */
export type VocabRow = Record<string, string | null>;

/**
 * Streams the requested columns of a vocabulary table. Empty text fields are null. Missing
 * columns are an error naming the file; a malformed record names the file and line.
 */
export async function streamVocabTable(file: VocabFile, columns: string[], onRow: (row: VocabRow, where: string) => void): Promise<number> {
  const want = columns.map((c) => c.toLowerCase());
  if (file.format === 'parquet') return streamParquet(file.path, want, onRow);
  let idx: number[] | null = null;
  let pending = '';
  let pendingStart = 0;
  let rows = 0;
  let width = 0;
  await forEachLine(file.path, (line, lineNo) => {
    if (idx === null) {
      const header = (file.format === 'tsv' ? line.split('\t') : splitCsvRecord(line) ?? []).map((h) => h.trim().toLowerCase().replace(/^\ufeff/, ''));
      width = header.length;
      idx = want.map((c) => {
        const i = header.indexOf(c);
        if (i < 0) throw new Error(`${file.path}: header has no column ${c} (found: ${header.join(', ')})`);
        return i;
      });
      return;
    }
    let fields: string[] | null;
    if (file.format === 'tsv') {
      if (line.length === 0) return;
      fields = line.split('\t');
    } else {
      const text = pending ? `${pending}\n${line}` : line;
      if (!pending) pendingStart = lineNo;
      if (text.length === 0) return;
      fields = splitCsvRecord(text);
      if (fields === null) { pending = text; return; }
      pending = '';
    }
    const where = `${file.path}:${file.format === 'csv' ? pendingStart : lineNo}`;
    if (fields.length < width) throw new Error(`${where}: ${fields.length} fields, header has ${width}`);
    const row: VocabRow = {};
    for (let k = 0; k < want.length; k++) {
      const v = fields[idx[k]];
      row[want[k]] = v === '' ? null : v;
    }
    rows++;
    onRow(row, where);
  });
  if (pending) throw new Error(`${file.path}:${pendingStart}: quoted field is not closed before the end of the file`);
  return rows;
}

async function streamParquet(file: string, columns: string[], onRow: (row: VocabRow, where: string) => void): Promise<number> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  let rows = 0;
  try {
    const described = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${sqlString(file)})`)).getRows().map((r) => String(r[0]));
    const lower = described.map((c) => c.toLowerCase());
    const select = columns.map((c) => {
      const i = lower.indexOf(c);
      if (i < 0) throw new Error(`${file}: has no column ${c} (found: ${described.join(', ')})`);
      return `CAST("${described[i]}" AS VARCHAR)`;
    });
    const result = await conn.stream(`SELECT ${select.join(', ')} FROM read_parquet(${sqlString(file)})`);
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const cols = chunk.getColumns();
      for (let i = 0, count = chunk.rowCount; i < count; i++) {
        const row: VocabRow = {};
        for (let k = 0; k < columns.length; k++) {
          const v = cols[k][i];
          row[columns[k]] = v === null || v === '' ? null : String(v);
        }
        rows++;
        onRow(row, `${file}: row ${rows}`);
      }
    }
  } finally {
    conn.closeSync();
    db.closeSync();
  }
  return rows;
}

/** Parses an id field; an error names the place and column. */
export function parseId(v: string | null, where: string, column: string): number {
  if (v === null) throw new Error(`${where}: column ${column} is empty`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${where}: column ${column} is not an integer id: '${v}'`);
  return n;
}

export interface ConceptRow {
  concept_id: number;
  concept_name: string;
  domain_id: string;
  vocabulary_id: string;
  concept_class_id: string;
  standard_concept: string | null;
}

export async function streamConcepts(dir: string, onRow: (c: ConceptRow) => void): Promise<number> {
  const f = requireVocabFile(dir, 'concept');
  return streamVocabTable(f, ['concept_id', 'concept_name', 'domain_id', 'vocabulary_id', 'concept_class_id', 'standard_concept'], (r, where) => {
    onRow({
      concept_id: parseId(r.concept_id, where, 'concept_id'),
      concept_name: r.concept_name ?? '',
      domain_id: r.domain_id ?? '',
      vocabulary_id: r.vocabulary_id ?? '',
      concept_class_id: r.concept_class_id ?? '',
      standard_concept: r.standard_concept,
    });
  });
}

/** Streams CONCEPT_RELATIONSHIP rows; rows with an invalid_reason (deprecated links) are skipped and counted. */
export async function streamRelationships(
  dir: string, onRow: (id1: number, id2: number, relationshipId: string) => void,
): Promise<{ rows: number; invalid: number }> {
  const f = requireVocabFile(dir, 'concept_relationship');
  let invalid = 0;
  if (f.format === 'tsv') return streamRelationshipsTsv(f.path, onRow);
  const rows = await streamVocabTable(f, ['concept_id_1', 'concept_id_2', 'relationship_id', 'invalid_reason'], (r, where) => {
    if (r.invalid_reason !== null) { invalid++; return; }
    onRow(parseId(r.concept_id_1, where, 'concept_id_1'), parseId(r.concept_id_2, where, 'concept_id_2'), r.relationship_id ?? '');
  });
  return { rows, invalid };
}

/** Streams CONCEPT_ANCESTOR rows (absent file: zero rows). */
export async function streamAncestors(dir: string, onRow: (ancestor: number, descendant: number, minLevels: number) => void): Promise<number> {
  const f = findVocabFile(dir, 'concept_ancestor');
  if (!f) return 0;
  return streamVocabTable(f, ['ancestor_concept_id', 'descendant_concept_id', 'min_levels_of_separation'], (r, where) => {
    onRow(parseId(r.ancestor_concept_id, where, 'ancestor_concept_id'), parseId(r.descendant_concept_id, where, 'descendant_concept_id'),
      r.min_levels_of_separation === null ? 1 : Number(r.min_levels_of_separation));
  });
}

/** Streams CONCEPT_SYNONYM rows (absent file: zero rows). */
export async function streamSynonyms(dir: string, onRow: (conceptId: number, synonym: string) => void): Promise<number> {
  const f = findVocabFile(dir, 'concept_synonym');
  if (!f) return 0;
  return streamVocabTable(f, ['concept_id', 'concept_synonym_name'], (r, where) => {
    if (r.concept_synonym_name) onRow(parseId(r.concept_id, where, 'concept_id'), r.concept_synonym_name);
  });
}

/**
 * Fast path for Athena's tab-separated CONCEPT_RELATIONSHIP (tens of millions of rows): fields
 * are cut by position, without a row object per line.
 */
async function streamRelationshipsTsv(
  file: string, onRow: (id1: number, id2: number, relationshipId: string) => void,
): Promise<{ rows: number; invalid: number }> {
  let c1 = -1, c2 = -1, cr = -1, ci = -1, width = 0;
  let rows = 0;
  let invalid = 0;
  const fields: string[] = [];
  await forEachLine(file, (line, lineNo) => {
    if (c1 < 0) {
      const h = line.split('\t').map((x) => x.trim().toLowerCase().replace(/^\ufeff/, ''));
      [c1, c2, cr, ci] = ['concept_id_1', 'concept_id_2', 'relationship_id', 'invalid_reason'].map((c) => {
        const i = h.indexOf(c);
        if (i < 0) throw new Error(`${file}: header has no column ${c} (found: ${h.join(', ')})`);
        return i;
      });
      width = h.length;
      return;
    }
    if (line.length === 0) return;
    fields.length = 0;
    let start = 0;
    for (;;) {
      const t = line.indexOf('\t', start);
      if (t < 0) { fields.push(line.slice(start)); break; }
      fields.push(line.slice(start, t));
      start = t + 1;
    }
    if (fields.length < width) throw new Error(`${file}:${lineNo}: ${fields.length} fields, header has ${width}`);
    rows++;
    if (fields[ci] !== '') { invalid++; return; }
    const where = `${file}:${lineNo}`;
    onRow(parseId(fields[c1] || null, where, 'concept_id_1'), parseId(fields[c2] || null, where, 'concept_id_2'), fields[cr]);
  });
  return { rows, invalid };
}

/** The relationship rows a representation lookup follows (any order; self links included as read). */
export interface VocabularyLinks {
  /** [source, target] pairs of relationship_id "Maps to". */
  mapsTo: Array<[number, number]>;
  /** [child, parent] pairs of relationship_id "Is a". */
  isA: Array<[number, number]>;
  /** [ancestor, descendant, min_levels_of_separation] rows of CONCEPT_ANCESTOR. */
  ancestors: Array<[number, number, number]>;
}

/**
 * "Maps to" and "Is a" rows of CONCEPT_RELATIONSHIP and, where present, CONCEPT_ANCESTOR rows of
 * 1..maxAncestorLevels levels (default 3: the full table is large).
 */
export async function readVocabularyLinks(dir: string, o: { maxAncestorLevels?: number } = {}): Promise<VocabularyLinks> {
  const maxLevels = o.maxAncestorLevels ?? 3;
  const links: VocabularyLinks = { mapsTo: [], isA: [], ancestors: [] };
  await streamRelationships(dir, (a, b, rel) => {
    if (rel === 'Maps to') links.mapsTo.push([a, b]);
    else if (rel === 'Is a') links.isA.push([a, b]);
  });
  await streamAncestors(dir, (anc, desc, lvl) => { if (lvl > 0 && lvl <= maxLevels) links.ancestors.push([anc, desc, lvl]); });
  return links;
}
