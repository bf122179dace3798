// What an omop.<table> message value may be (runners/kafka/README.md "Contract for any producer"):
// JSON text (one row object, or an array of one person's rows), or, when the header
// STREAM_SCHEMA_HEADER names OMOP_ROWS_ARROW, an Arrow IPC stream of record batches of rows of the
// topic's table (one person's rows, as a JSON array). Both decode to plain row objects that the
// canonicalize stage holds to the one row check (schemas/rowSchemas.ts), so a row passes or is
// set aside for the same reason whichever form brought it. Arrow values become what the JSON form
// would hold: int64 as bigint (exact), dates and timestamps as their OMOP text.
import * as arrow from 'apache-arrow';
import { IHeaders } from 'kafkajs';
import { parseId } from '../../schemas/ids';
import { parseJsonExact } from '../../schemas/exactJson';
import { ColumnType, TableSpec } from '../../schemas/omop';
import { STREAM_SCHEMA_HEADER } from '../../schemas/streamSchemas';

/** Header value of an Arrow message of OMOP rows (schema name and version). */
export const OMOP_ROWS_ARROW = 'omop-rows.arrow.v1';
const OMOP_ROWS_PREFIX = 'omop-rows.';

/** A message value that is not a readable row message; `kind` is its dead-letter kind. */
export class OmopInputError extends Error {
  constructor(readonly kind: 'not-json' | 'not-arrow', message: string) {
    super(message);
  }
}

function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const h = headers?.[name];
  if (h === undefined) return undefined;
  return Array.isArray(h) ? h.map(String).join(',') : h.toString();
}

/**
 * The rows of an omop.<table> message: the parsed JSON value (an object, an array, or whatever
 * the text holds: the row check judges it), or the rows of an Arrow batch as an array.
 * Throws OmopInputError when the value cannot be read at all.
 */
export function decodeOmopMessage(m: { value: Buffer | null; headers?: IHeaders }): unknown {
  const schema = headerText(m.headers, STREAM_SCHEMA_HEADER);
  if (schema === undefined) {
    try {
      // Exact: an id written as a JSON number beyond 2^53 is read from its digits, never rounded.
      return parseJsonExact(m.value?.toString() ?? 'null');
    } catch (e) {
      throw new OmopInputError('not-json', (e as Error).message);
    }
  }
  if (schema !== OMOP_ROWS_ARROW) {
    // A later version's layout guessed at would be silently wrong rows.
    const what = schema.startsWith(OMOP_ROWS_PREFIX) ? 'unknown schema version' : 'not a row schema';
    throw new OmopInputError('not-arrow', `${what}: ${STREAM_SCHEMA_HEADER} ${schema} (this build reads ${OMOP_ROWS_ARROW} and JSON without the header)`);
  }
  return decodeArrowRows(m.value);
}

function decodeArrowRows(value: Buffer | null): Record<string, unknown>[] {
  let table: arrow.Table;
  try {
    // apache-arrow reads a few stray bytes as an empty table: rows would vanish without a dead letter.
    if (value === null || value.length < 8 || value.readUInt32LE(0) !== 0xffffffff) throw new Error('no IPC stream message at its start');
    table = arrow.tableFromIPC(value);
    if (table.schema.fields.length === 0) throw new Error('no schema with columns');
  } catch (e) {
    throw new OmopInputError('not-arrow', `not an Arrow IPC stream (${(e as Error).message})`);
  }
  const columns = table.schema.fields.map((f) => ({ name: f.name, read: reader(f.type, table.getChild(f.name)!) }));
  const rows: Record<string, unknown>[] = new Array(table.numRows);
  for (let i = 0; i < table.numRows; i++) {
    const row: Record<string, unknown> = {};
    for (const c of columns) row[c.name] = c.read(i);
    rows[i] = row;
  }
  return rows;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** 'YYYY-MM-DD' of a UTC epoch-ms value (the day an Arrow date names). */
function dateText(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** 'YYYY-MM-DD HH:MM:SS[.mmm]' of a timestamp (wall time, as a datetime without zone). */
function datetimeText(ms: number): string {
  const d = new Date(ms);
  const frac = d.getUTCMilliseconds() ? `.${pad(d.getUTCMilliseconds(), 3)}` : '';
  return `${dateText(ms)} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${frac}`;
}

/** How a column's value at row i reads as the JSON form's value (null stays null). */
function reader(type: arrow.DataType, v: arrow.Vector): (i: number) => unknown {
  const text = arrow.DataType.isDate(type) ? dateText : arrow.DataType.isTimestamp(type) ? datetimeText : null;
  if (text) {
    return (i) => {
      const x = v.get(i) as number | null;
      return x === null || !Number.isFinite(x) ? null : text(x);
    };
  }
  // A 64-bit integer as exact JSON reads it: a number within 2^53, a bigint beyond.
  if (type.typeId === arrow.Type.Int) {
    return (i) => {
      const x = v.get(i) as number | bigint | null;
      return typeof x === 'bigint' && x >= -MAX_SAFE && x <= MAX_SAFE ? Number(x) : x ?? null;
    };
  }
  // Floats, strings, dictionary-coded strings as they are; any other kind of value goes to the
  // row check as it is, which names the column it does not fit.
  return (i) => v.get(i) ?? null;
}

// ---------------------------------------------------------------------------------------------
// writing (medrep produce --message-format arrow)

const DAY_MS = 86_400_000;
const DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/** Epoch ms of an OMOP date or datetime text; a zone suffix is ignored, as the stages read it (rowFields.ts timeMs). */
function epochMs(s: string): number | null {
  const m = DATETIME_RE.exec(s);
  if (!m) return null;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], m[4] ? +m[4] : 0, m[5] ? +m[5] : 0, m[6] ? +m[6] : 0, m[7] ? Number(m[7].padEnd(3, '0')) : 0);
}

const ARROW_TYPE: Record<ColumnType, () => arrow.DataType> = {
  integer: () => new arrow.Int64(),
  number: () => new arrow.Float64(),
  string: () => new arrow.Utf8(),
  date: () => new arrow.DateDay(),
  datetime: () => new arrow.TimestampMillisecond(),
};

/** A checked row's value as the Arrow column of its type takes it. */
function arrowValue(type: ColumnType, x: unknown): unknown {
  if (x === null || x === undefined || x === '') return null;
  switch (type) {
    case 'integer': {
      const id = parseId(x);
      return id === null ? null : BigInt(id);
    }
    case 'number':
      return Number(x);
    case 'string':
      return String(x);
    case 'date': {
      const ms = epochMs(String(x));
      return ms === null ? null : new Date(Math.floor(ms / DAY_MS) * DAY_MS);
    }
    case 'datetime':
      return epochMs(String(x));
  }
}

/** The header of an Arrow row message. */
export const omopArrowHeaders = (): IHeaders => ({ [STREAM_SCHEMA_HEADER]: OMOP_ROWS_ARROW });

/**
 * An Arrow IPC stream of rows of `spec`'s table (rows that passed the row check): one column per
 * column of the table (int64 ids, float64 numbers, utf8 text, date32 dates, timestamp[ms]
 * datetimes) and `__row` (float64) when the rows carry it. Other extra columns are not sent.
 */
export function encodeOmopRows(spec: TableSpec, rows: readonly Record<string, unknown>[]): Buffer {
  const vectors: Record<string, arrow.Vector> = {};
  for (const col of spec.columns) {
    vectors[col.name] = arrow.vectorFromArray(rows.map((r) => arrowValue(col.type, r[col.name])), ARROW_TYPE[col.type]() as never);
  }
  if (rows.some((r) => r.__row !== undefined && r.__row !== null)) {
    vectors.__row = arrow.vectorFromArray(rows.map((r) => arrowValue('number', r.__row)), new arrow.Float64() as never);
  }
  const bytes = arrow.tableToIPC(new arrow.Table(vectors), 'stream');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
