// OMOP ids (person, visit, row and concept ids) are signed 64-bit integers. In JavaScript an id is
// an `Id`: a number when it is a safe integer (|id| < 2^53), else a bigint. Every id has exactly
// one form, so ids compare with === and work as Map keys; the common case costs no BigInt.

export type Id = number | bigint;

export const INT64_MIN = -(1n << 63n);
export const INT64_MAX = (1n << 63n) - 1n;
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** The canonical Id of a 64-bit integer given as a bigint. */
export function idOfBigInt(b: bigint): Id {
  return b >= SAFE_MIN && b <= SAFE_MAX ? Number(b) : b;
}

/** An integer literal, optionally with a zero fraction ("12", "-7", " 12.0 "), as OMOP files write ids. */
export const INTEGER_TEXT_RE = /^\s*([+-]?\d+)(?:\.0*)?\s*$/;

/**
 * The Id of a value read from a row (number, bigint or text), or null when it is not an integer
 * or lies outside the signed 64-bit range. A number beyond 2^53 is not trusted: it may already
 * have been rounded.
 */
export function parseId(v: unknown): Id | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : null;
  if (typeof v === 'bigint') return v >= INT64_MIN && v <= INT64_MAX ? idOfBigInt(v) : null;
  if (typeof v !== 'string') return null;
  const m = INTEGER_TEXT_RE.exec(v);
  if (!m) return null;
  const digits = m[1];
  // Up to 15 digits is always a safe integer: skip the BigInt.
  if (digits.length <= 15) return Number(digits) || 0;
  const b = BigInt(digits);
  return b >= INT64_MIN && b <= INT64_MAX ? idOfBigInt(b) : null;
}

/** Why `v` is not a signed 64-bit integer, or null when it is one. */
export function int64Problem(v: unknown): string | null {
  if (parseId(v) !== null) return null;
  if (typeof v === 'number' && Number.isInteger(v)) return 'out of range (a JSON number beyond 2^53 may be rounded: send the id as a decimal string)';
  const text = typeof v === 'string' ? INTEGER_TEXT_RE.exec(v) : null;
  if (text || typeof v === 'bigint') return 'out of range (must be a signed 64-bit integer)';
  return 'not an integer';
}

/** Total order of ids (numbers and bigints compare exactly with < and >). */
export function compareIds(a: Id, b: Id): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The id as a bigint (for hashing and two's-complement arithmetic). */
export const idBigInt = (id: Id): bigint => (typeof id === 'bigint' ? id : BigInt(id));

/**
 * Reader of a BIGINT vector's values as Ids without a BigInt per safe value: the 64-bit words
 * are read as two 32-bit halves and combined when the high half keeps the value below 2^53.
 */
export function int64Reader(values: BigInt64Array): (i: number) => Id {
  const words = new Int32Array(values.buffer, values.byteOffset, values.length * 2);
  return (i) => {
    const hi = words[2 * i + 1];
    // |hi| < 2^21 keeps |value| < 2^53 (the -2^21 edge included: -2^53 itself is not safe).
    if (hi < 0x200000 && hi > -0x200000) return hi * 4294967296 + (words[2 * i] >>> 0);
    return idOfBigInt(values[i]);
  };
}
