// Reads the fields of an `omop.<table>` JSON row the way the local runner's SQL reads the typed
// views (sources/eventSource.ts): ids as exact Ids (0 when absent), the time as
// coalesce(datetime, date) in epoch milliseconds (UTC, date-only at 00:00), the source row number.
import { EventMapping } from '../../schemas/omop';
import type { OmopEventRow } from '../../schemas/canonicalEvent';
import { Id, parseId } from '../../schemas/ids';
import { digitsAt } from '../../schemas/rowSchemas';

const DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?/;

/** Epoch ms of an OMOP date or datetime text, or null. */
export function timeMs(v: unknown): number | null {
  if (typeof v !== 'string') return null;
  // YYYY-MM-DD and YYYY-MM-DD HH:MM:SS (DuckDB's DATE and TIMESTAMP text) without the regex.
  if ((v.length === 10 || (v.length === 19 && v.charCodeAt(13) === 58 && v.charCodeAt(16) === 58)) && v.charCodeAt(4) === 45 && v.charCodeAt(7) === 45) {
    const y = digitsAt(v, 0, 4), mo = digitsAt(v, 5, 2), d = digitsAt(v, 8, 2);
    const long = v.length === 19;
    const sep = long ? v.charCodeAt(10) : 32;
    const h = long ? digitsAt(v, 11, 2) : 0, mi = long ? digitsAt(v, 14, 2) : 0, sec = long ? digitsAt(v, 17, 2) : 0;
    if (y >= 0 && mo >= 0 && d >= 0 && h >= 0 && mi >= 0 && sec >= 0 && (sep === 32 || sep === 84)) return Date.UTC(y, mo - 1, d, h, mi, sec, 0);
  }
  const m = DATETIME_RE.exec(v);
  if (!m) return null;
  const ms = m[7] ? Math.floor(Number((m[7] + '000').slice(0, 3))) : 0;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], m[4] ? +m[4] : 0, m[5] ? +m[5] : 0, m[6] ? +m[6] : 0, ms);
}

export function intOr(v: unknown, fallback: number): number;
export function intOr(v: unknown, fallback: null): number | null;
export function intOr(v: unknown, fallback: number | null): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) return Number(v);
  return fallback;
}

/** An id column's value (a JSON number, a bigint of parseJsonExact or a decimal string) as an exact Id. */
export function idOr(v: unknown, fallback: Id): Id;
export function idOr(v: unknown, fallback: null): Id | null;
export function idOr(v: unknown, fallback: Id | null): Id | null {
  return parseId(v) ?? fallback;
}

export function numberOrNull(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

/**
 * Reads a JSON row's event fields into `into` (reused across rows), as the local runner's SQL
 * reads the typed view. False when the row has no readable date: it makes no event.
 */
export function readEventRow(row: Record<string, unknown>, ev: EventMapping, into: OmopEventRow): boolean {
  const t = timeMs(ev.datetimeColumn ? row[ev.datetimeColumn] : null) ?? timeMs(row[ev.dateColumn]);
  if (t === null) return false;
  const rn = intOr(row.__row, 0);
  const unitSource = ev.unitSourceColumn ? row[ev.unitSourceColumn] : null;
  into.personId = idOr(row.person_id, 0);
  into.timeMs = t;
  into.conceptId = idOr(row[ev.conceptColumn], 0);
  into.sourceConceptId = ev.sourceConceptColumn ? idOr(row[ev.sourceConceptColumn], 0) : 0;
  into.value = ev.valueColumn ? numberOrNull(row[ev.valueColumn]) : null;
  into.unitConceptId = ev.unitConceptColumn ? idOr(row[ev.unitConceptColumn], 0) : 0;
  into.unitSource = typeof unitSource === 'string' ? unitSource : unitSource === null || unitSource === undefined ? null : String(unitSource);
  into.visitId = ev.visitColumn ? idOr(row[ev.visitColumn], null) : null;
  into.rowId = (ev.idColumn ? idOr(row[ev.idColumn], null) : null) ?? rn;
  into.row = rn;
  return true;
}

/** Birth time as BIRTH_TIMESTAMP_SQL computes it: birth_datetime, else year/month/day (missing parts 1). */
export function birthMs(row: Record<string, unknown>): number {
  const dt = timeMs(row.birth_datetime);
  if (dt !== null) return dt;
  const y = intOr(row.year_of_birth, 1970);
  const m = intOr(row.month_of_birth, 1);
  const d = intOr(row.day_of_birth, 1);
  const valid = m >= 1 && m <= 12 && d >= 1 && d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
  return valid ? Date.UTC(y, m - 1, d) : Date.UTC(y, 0, 1);
}
