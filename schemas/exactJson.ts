// JSON with exact 64-bit integers. JSON.parse reads every number as a double, which rounds an id
// beyond 2^53 without a word; parseJsonExact reads integer literals that are not safe integers
// as bigints (so ids stay exact), and stringifyJsonExact writes bigints as plain JSON numbers.
// A value that parses without a number beyond 2^53 (nearly every row) is JSON.parse's as it is.
import { randomBytes } from 'node:crypto';

// A marker no input can guess: big integer literals travel through JSON.parse as marked strings.
const MARK = `\u0000big-${randomBytes(6).toString('hex')}:`;
const MARK_JSON = JSON.stringify(MARK).slice(1, -1);

/** Turns the marked strings of a parsed value into bigints, in place (faster than a JSON.parse reviver). */
function reviveBig(v: unknown): unknown {
  if (typeof v === 'string') return v.startsWith(MARK) ? BigInt(v.slice(MARK.length)) : v;
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (typeof x === 'string' || (x !== null && typeof x === 'object')) v[i] = reviveBig(x);
    }
    return v;
  }
  const o = v as Record<string, unknown>;
  for (const k in o) {
    const x = o[k];
    if (typeof x === 'string' || (x !== null && typeof x === 'object')) o[k] = reviveBig(x);
  }
  return v;
}

// A string literal (skipped whole, so digits inside it stay text), or an integer literal of 16 or
// more digits that is not part of a fraction or an exponent.
const LITERALS = /"(?:[^"\\]|\\.)*"|(?<![\d.eE+-])-?\d{16,}(?![\d.eE])/g;

/** The text with every unsafe integer literal outside strings wrapped as a marked string. */
function markBigIntegers(text: string): { text: string; marked: boolean } {
  let marked = false;
  const out = text.replace(LITERALS, (lit) => {
    if (lit.charCodeAt(0) === 34 || Number.isSafeInteger(Number(lit))) return lit;
    marked = true;
    return `"${MARK_JSON}${lit}"`;
  });
  return { text: out, marked };
}

/**
 * Whether a parsed value holds a number of magnitude 2^53 or more: JSON.parse rounds monotonically,
 * so every integer literal beyond 2^53 lands there (and a value that holds none had none).
 */
function holdsHugeNumber(v: unknown): boolean {
  if (typeof v === 'number') return v >= 9007199254740992 || v <= -9007199254740992;
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (holdsHugeNumber(v[i])) return true;
    return false;
  }
  const o = v as Record<string, unknown>;
  for (const k in o) if (holdsHugeNumber(o[k])) return true;
  return false;
}

/** JSON.parse, except that an integer literal beyond 2^53 becomes a bigint (exact, any size). */
export function parseJsonExact(text: string): unknown {
  // Parse first: a walk of the values is cheaper than a scan of the text, and rows rarely need more.
  const plain = JSON.parse(text);
  if (!holdsHugeNumber(plain)) return plain;
  const m = markBigIntegers(text);
  return m.marked ? reviveBig(JSON.parse(m.text)) : plain;
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
  // Without a number beyond 2^53 (a walk, cheaper than scanning the text) JSON.stringify is exact; a bigint makes it throw.
  if (!holdsHugeNumber(value)) {
    try {
      return JSON.stringify(value, null, space);
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
    }
  }
  if (space === undefined) return encode(value) ?? 'null';
  return JSON.stringify(value, markBig, space).replace(MARKED_RE, '$1');
}

/** Compact JSON of a value that holds bigints: a direct walk (a JSON.stringify replacer is far slower). */
function encode(v: unknown): string | undefined {
  switch (typeof v) {
    case 'bigint':
      return v.toString();
    case 'number':
      return Number.isInteger(v) && !Number.isSafeInteger(v) && Math.abs(v) < 1e21 ? v.toExponential() : JSON.stringify(v);
    case 'string':
    case 'boolean':
      return JSON.stringify(v);
    case 'object': {
      if (v === null) return 'null';
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return encode((v as { toJSON(): unknown }).toJSON());
      if (Array.isArray(v)) {
        const parts = new Array<string>(v.length);
        for (let i = 0; i < v.length; i++) parts[i] = encode(v[i]) ?? 'null';
        return `[${parts.join(',')}]`;
      }
      const parts: string[] = [];
      for (const k of Object.keys(v)) {
        const x = encode((v as Record<string, unknown>)[k]);
        if (x !== undefined) parts.push(`${JSON.stringify(k)}:${x}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      return undefined; // undefined, functions, symbols: left out, as JSON.stringify does
  }
}
