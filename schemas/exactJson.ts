// JSON with exact 64-bit integers. JSON.parse reads every number as a double, which rounds an id
// beyond 2^53 without a word; parseJsonExact reads integer literals that are not safe integers
// as bigints (so ids stay exact), and stringifyJsonExact writes bigints as plain JSON numbers.
// Text without a run of 16 digits cannot hold such a literal and goes straight to JSON.parse.
import { randomBytes } from 'node:crypto';

const LONG_DIGITS = /\d{16}/;
// A marker no input can guess: big integer literals travel through JSON.parse as marked strings.
const MARK = `\u0000big-${randomBytes(6).toString('hex')}:`;
const MARK_JSON = JSON.stringify(MARK).slice(1, -1);

function reviveBig(_key: string, v: unknown): unknown {
  return typeof v === 'string' && v.startsWith(MARK) ? BigInt(v.slice(MARK.length)) : v;
}

const isDigit = (c: number) => c >= 48 && c <= 57;

/** The text with every unsafe integer literal outside strings wrapped as a marked string. */
function markBigIntegers(text: string): { text: string; marked: boolean } {
  let out = '';
  let last = 0;
  let marked = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // Skip a string literal (escapes included).
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
      continue;
    }
    if (c !== 45 && !isDigit(c)) continue;
    const start = i;
    if (c === 45) i++;
    while (i < n && isDigit(text.charCodeAt(i))) i++;
    const next = i < n ? text.charCodeAt(i) : -1;
    const isFraction = next === 46 || next === 101 || next === 69;
    if (isFraction) {
      // A number with a fraction or exponent stays a double: skip the rest of it.
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (isDigit(d) || d === 43 || d === 45 || d === 46 || d === 101 || d === 69) i++;
        else break;
      }
    }
    const literal = text.slice(start, i);
    i--;
    if (isFraction || literal.replace('-', '').length < 16 || Number.isSafeInteger(Number(literal))) continue;
    out += text.slice(last, start) + `"${MARK_JSON}${literal}"`;
    last = start + literal.length;
    marked = true;
  }
  return marked ? { text: out + text.slice(last), marked } : { text, marked };
}

/** JSON.parse, except that an integer literal beyond 2^53 becomes a bigint (exact, any size). */
export function parseJsonExact(text: string): unknown {
  if (!LONG_DIGITS.test(text)) return JSON.parse(text);
  const m = markBigIntegers(text);
  return m.marked ? JSON.parse(m.text, reviveBig) : JSON.parse(text);
}

// A double that is an integer beyond 2^53 (a value, not an id) is written in exponent form, so
// that parseJsonExact reads it back as the same double rather than as a bigint.
const MARK_DOUBLE = `\u0001dbl-${MARK.slice(5)}`;
const MARK_DOUBLE_JSON = JSON.stringify(MARK_DOUBLE).slice(1, -1);

function markBig(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return MARK + v.toString();
  if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v) && Math.abs(v) < 1e21) return MARK_DOUBLE + v.toExponential();
  return v;
}

const escapeRe = (s: string) => s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
const MARKED_RE = new RegExp(`"(?:${escapeRe(MARK_JSON)}|${escapeRe(MARK_DOUBLE_JSON)})([-+.e\\d]+)"`, 'g');

/**
 * JSON.stringify that writes a bigint as a JSON number with all its digits (and an integral
 * double beyond 2^53 in exponent form), so parseJsonExact gives back the same values.
 */
export function stringifyJsonExact(value: unknown, space?: number): string {
  try {
    const text = JSON.stringify(value, null, space);
    if (text === undefined || !LONG_DIGITS.test(text)) return text;
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
  }
  return JSON.stringify(value, markBig, space).replace(MARKED_RE, '$1');
}
