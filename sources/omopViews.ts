// DuckDB views over an opened OMOP input. For each clinical table T:
//   checked_T: every row with its 1-based row number (__row) and whether it passes the schema (__ok);
//   T:         the valid rows only (with __row), typed, lower-case columns (absent optional columns NULL).
//   json_T:    every row in file order as JSON text (__row, ok, j, k): a valid row typed as T has it
//              (k its person_id in decimal), any other row as read (checked_T), for `medrep produce`.
// The vocabulary tables become typed views concept, concept_relationship, concept_ancestor. Labels,
// reference SQL and the runners all read these, so every reader sees the same rows.
import { DuckDBConnection } from '@duckdb/node-api';
import { CLINICAL_TABLES, ColumnSpec, ColumnType, TableSpec, VOCABULARY_TABLES } from '../schemas/omop';
import { q, rowCheckSql } from '../schemas/sqlChecks';
import { OmopInput, SourceTable, col } from './omopSource';
import { sqlString } from './duck';
import { PERSON_KEY } from './csvRead';

const SQL_TYPE: Record<ColumnType, string> = {
  integer: 'BIGINT',
  number: 'DOUBLE',
  string: 'VARCHAR',
  date: 'DATE',
  datetime: 'TIMESTAMP',
};

/** A column's value typed as in T (`expr` the source column, or NULL when the source has none). */
function typedValue(expr: string, c: ColumnSpec): string {
  if (expr === 'NULL') return `NULL::${SQL_TYPE[c.type]}`;
  return c.type === 'string' ? `CAST(${expr} AS VARCHAR)` : `TRY_CAST(CAST(${expr} AS VARCHAR) AS ${SQL_TYPE[c.type]})`;
}

function typedColumn(expr: string, c: ColumnSpec): string {
  return `${typedValue(expr, c)} AS ${q(c.name)}`;
}

/**
 * The 1-based row number of a source row. A single Parquet file (given, or a CSV table's staged
 * copy) numbers its rows itself (file_row_number), which lets DuckDB scan it in parallel; other
 * sources need a window over the scan, which keeps file order but runs on one thread.
 */
function numberedFile(t: SourceTable): string | null {
  if (t.staged) return t.staged;
  return t.kind === 'parquet' && t.files.length === 1 ? t.files[0] : null;
}

/**
 * The rows of a table as read, with __file_row when the source numbers them. A staged CSV copy's
 * person key stays hidden; `personKeyFilter` (a condition on it) reads the rows of those persons
 * only. Row numbers are the file's, whatever the filter.
 */
function rowSource(t: SourceTable, personKeyFilter: string | null = null): string {
  const hidden = t.stagedPersonKey ? `, ${PERSON_KEY}` : '';
  const where = personKeyFilter !== null && t.stagedPersonKey ? ` WHERE ${personKeyFilter}` : '';
  // A checked CSV copy numbers its records itself: the records set aside keep their numbers.
  if (t.fileRowColumn) {
    const from = t.staged ? `read_parquet(${sqlString(t.staged)})` : t.relation;
    return `(SELECT * EXCLUDE (${q(t.fileRowColumn)}${hidden}), CAST(${q(t.fileRowColumn)} AS BIGINT) AS __file_row FROM ${from}${where})`;
  }
  const file = numberedFile(t);
  if (file) return `(SELECT * EXCLUDE (file_row_number${hidden}), file_row_number AS __file_row FROM read_parquet(${sqlString(file)}, file_row_number = true)${where})`;
  return t.relation;
}

const numberedSource = (t: SourceTable): boolean => numberedFile(t) !== null || t.fileRowColumn !== null;

function rowNumberSql(t: SourceTable): string {
  return numberedSource(t) ? 's.__file_row + 1' : 'row_number() OVER ()';
}

/**
 * Every row of a clinical table in file order as JSON text. One pass over checked_T, the typed
 * columns computed for valid rows only; the person table joins its typed view, whose first row
 * per person_id is the valid one (a later duplicate goes out as read, for the stream to reject).
 */
function jsonRowsSql(table: string, typedFields: string, personId: string): string {
  const checked = q('checked_' + table);
  if (table === 'person') {
    return `SELECT c.__row AS __row, CAST(t.__row IS NOT NULL AS TINYINT) AS ok,
        CASE WHEN t.__row IS NOT NULL THEN CAST(to_json(t) AS VARCHAR) ELSE CAST(to_json(c) AS VARCHAR) END AS j,
        CAST(t.person_id AS VARCHAR) AS k
      FROM ${checked} c LEFT JOIN ${q(table)} t ON t.__row = c.__row ORDER BY c.__row`;
  }
  // No ORDER BY: a scan keeps file order (preserve_insertion_order, sources/duck.ts); a sort costs more than the scan.
  return `SELECT c.__row AS __row, CAST(c.__ok AS TINYINT) AS ok,
      CASE WHEN c.__ok THEN CAST(to_json(struct_pack(__row := c.__row, ${typedFields})) AS VARCHAR) ELSE CAST(to_json(c) AS VARCHAR) END AS j,
      CASE WHEN c.__ok THEN CAST(${personId} AS VARCHAR) END AS k
    FROM ${checked} c`;
}

/**
 * checked_T's rows: every row with its number (__row) and whether it passes the schema (__ok).
 * With `personKeyFilter`, the same rows of some persons only, read from a staged copy's person
 * key so that Parquet statistics skip the others (the caller still filters by the typed person_id).
 */
export function checkedRowsSql(spec: TableSpec, t: SourceTable, personKeyFilter: string | null = null): string {
  return `SELECT ${rowNumberSql(t)} AS __row, (${rowCheckSql(spec, t.types)}) AS __ok, s.*${numberedSource(t) ? ' EXCLUDE (__file_row)' : ''} FROM ${rowSource(t, personKeyFilter)} s`;
}

export async function createOmopViews(conn: DuckDBConnection, input: OmopInput): Promise<void> {
  for (const spec of CLINICAL_TABLES) {
    const t = input.tables.get(spec.table);
    const source = (src: string, c: ColumnSpec) => (t && t.columns.has(c.name) ? `${src}.${col(t, c.name)}` : 'NULL');
    const typed = (src: string) => spec.columns.map((c) => typedColumn(source(src, c), c)).join(', ');
    const personIdColumn = spec.columns.find((c) => c.name === 'person_id')!;
    if (!t) {
      // An absent optional table is an empty one, so every query can name it.
      await conn.run(`CREATE OR REPLACE VIEW ${q(spec.table)} AS SELECT CAST(0 AS BIGINT) AS __row, ${typed('x')} FROM (SELECT 1) x WHERE false`);
      continue;
    }
    await conn.run(`CREATE OR REPLACE VIEW ${q('checked_' + spec.table)} AS ${checkedRowsSql(spec, t)}`);
    await conn.run(
      `CREATE OR REPLACE VIEW ${q(spec.table)} AS SELECT c.__row AS __row, ${typed('c')} FROM ${q('checked_' + spec.table)} c WHERE c.__ok${
        // A person_id seen twice is a reject (sources/persons.ts); every reader sees the first row only.
        spec.table === 'person' ? ' QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY c.__row) = 1' : ''
      }`,
    );
    await conn.run(`CREATE OR REPLACE VIEW ${q('json_' + spec.table)} AS ${jsonRowsSql(spec.table, spec.columns.map((c) => `${q(c.name)} := ${typedValue(source('c', c), c)}`).join(', '), typedValue(source('c', personIdColumn), personIdColumn))}`);
  }
  for (const [name, cols] of Object.entries(VOCABULARY_TABLES)) {
    const t = input.tables.get(name);
    const typed = cols.map((c) => typedColumn(t && t.columns.has(c.name) ? col(t, c.name) : 'NULL', c)).join(', ');
    const from = t ? `${t.relation}` : '(SELECT 1) x WHERE false';
    // Text vocabularies are parsed once into DuckDB (which spills beyond its memory limit):
    // mapping, labels and MEDS codes each read them, and re-parsing a large CSV is slow.
    const kind = t?.kind === 'csv' ? 'TABLE' : 'VIEW';
    await conn.run(`DROP VIEW IF EXISTS ${q(name)}`);
    await conn.run(`CREATE OR REPLACE ${kind} ${q(name)} AS SELECT ${typed} FROM ${from}`);
  }
}
