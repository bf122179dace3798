// Growable columnar builders that become Arrow vectors without one JS object per row: typed
// arrays for numbers, offset+byte buffers for strings and lists, bitmaps for nulls.
import * as arrow from 'apache-arrow';
import { Id } from '../schemas/ids';

type NumArray = Float64Array | Float32Array | Int32Array | Int16Array | Int8Array | BigInt64Array;
type NumCtor<A> = { new (n: number): A };

class Validity {
  bits = new Uint8Array(64);
  nulls = 0;
  set(i: number, valid: boolean): void {
    const byte = i >> 3;
    if (byte >= this.bits.length) {
      const next = new Uint8Array(Math.max(this.bits.length * 2, byte + 1));
      next.set(this.bits);
      this.bits = next;
    }
    if (valid) this.bits[byte] |= 1 << (i & 7);
    else this.nulls++;
  }
  /** Marks [from, from + n) valid. */
  setValidRange(from: number, n: number): void {
    for (let i = from; i < from + n; i++) this.set(i, true);
  }
  /** Empty again, its bytes kept (zeroed: set() only ORs the valid bits in). */
  clear(): void {
    this.bits.fill(0);
    this.nulls = 0;
  }
  bitmap(length: number): Uint8Array | undefined {
    return this.nulls === 0 ? undefined : this.bits.slice(0, (length + 7) >> 3);
  }
}

/**
 * The next capacity of a full builder: half as much again, not twice, so that the many large
 * builders of a run (a samples batch per task) hold at most half their rows again in slack.
 */
function grownCapacity(capacity: number): number {
  return Math.max(16, Math.ceil(capacity * 1.5));
}

/** Numbers (or bigints for 64-bit types) with optional nulls. */
export class NumberColumn<A extends NumArray> {
  values: A;
  length = 0;
  private validity: Validity | null;
  constructor(private readonly ctor: NumCtor<A>, nullable = false, capacity = 1024) {
    this.values = new ctor(capacity);
    this.validity = nullable ? new Validity() : null;
  }
  private grow(): void {
    const next = new this.ctor(grownCapacity(this.values.length));
    (next as unknown as { set(a: A): void }).set(this.values);
    this.values = next;
  }
  push(v: A extends BigInt64Array ? bigint : number): void {
    if (this.length === this.values.length) this.grow();
    (this.values as unknown as (number | bigint)[])[this.length] = v;
    this.validity?.set(this.length, true);
    this.length++;
  }
  /** Appends every value of `src` (one capacity check for all: the per-token path). */
  pushAll(src: ArrayLike<number>): void {
    const n = src.length;
    while (this.length + n > this.values.length) this.grow();
    const values = this.values as unknown as number[];
    for (let k = 0; k < n; k++) values[this.length + k] = src[k];
    this.validity?.setValidRange(this.length, n);
    this.length += n;
  }
  /** Appends `src`, a null where it holds null. */
  pushAllNullable(src: ArrayLike<number | null>): void {
    const n = src.length;
    if (!this.validity) throw new Error('pushAllNullable on a non-nullable column');
    while (this.length + n > this.values.length) this.grow();
    const values = this.values as unknown as number[];
    for (let k = 0; k < n; k++) {
      const v = src[k];
      if (v === null) this.validity.set(this.length + k, false);
      else {
        values[this.length + k] = v;
        this.validity.set(this.length + k, true);
      }
    }
    this.length += n;
  }
  /** Empty again, its buffers kept for the next rows. */
  clear(): void {
    this.length = 0;
    this.validity?.clear();
  }
  pushNull(): void {
    if (!this.validity) throw new Error('pushNull on a non-nullable column');
    if (this.length === this.values.length) this.grow();
    this.validity.set(this.length, false);
    this.length++;
  }
  data<T extends arrow.DataType>(type: T): arrow.Data<T> {
    return arrow.makeData({
      type,
      length: this.length,
      data: this.values.subarray(0, this.length),
      nullBitmap: this.validity?.bitmap(this.length),
      nullCount: this.validity?.nulls ?? 0,
    } as never) as arrow.Data<T>;
  }
}

const TWO32 = 4294967296;

/**
 * int64 (or timestamp) values pushed as Ids: a number is split into two 32-bit halves, which is
 * exact for every safe integer (and for multiples of 8 up to 2^56, e.g. microseconds of a
 * millisecond time) and avoids a BigInt per value; a bigint (an id beyond 2^53) is written whole.
 */
export class Int64Column {
  private words: Int32Array;
  private big: BigInt64Array | null = null;
  length = 0;
  private validity: Validity | null;
  constructor(nullable = false, capacity = 1024) {
    this.words = new Int32Array(capacity * 2);
    this.validity = nullable ? new Validity() : null;
  }
  private ensure(): void {
    this.reserve(1);
  }
  /** Room for `n` more values (the bigint view is made again over a new buffer). */
  private reserve(n: number): void {
    while ((this.length + n) * 2 > this.words.length) {
      const next = new Int32Array(grownCapacity(this.words.length / 2) * 2);
      next.set(this.words);
      this.words = next;
      this.big = null;
    }
  }
  push(v: Id): void {
    this.ensure();
    if (typeof v === 'bigint') {
      this.big ??= new BigInt64Array(this.words.buffer);
      this.big[this.length] = v;
      this.validity?.set(this.length, true);
      this.length++;
      return;
    }
    const hi = Math.floor(v / TWO32);
    const lo = v - hi * TWO32;
    this.words[this.length * 2] = lo | 0;
    this.words[this.length * 2 + 1] = hi | 0;
    this.validity?.set(this.length, true);
    this.length++;
  }
  /** Appends every id of `src` (one capacity check for all). */
  pushAll(src: ArrayLike<Id>): void {
    const n = src.length;
    this.reserve(n);
    const words = this.words;
    for (let k = 0; k < n; k++) {
      const v = src[k];
      const at = this.length + k;
      if (typeof v === 'bigint') {
        this.big ??= new BigInt64Array(this.words.buffer);
        this.big[at] = v;
        continue;
      }
      const hi = Math.floor(v / TWO32);
      words[at * 2] = (v - hi * TWO32) | 0;
      words[at * 2 + 1] = hi | 0;
    }
    this.validity?.setValidRange(this.length, n);
    this.length += n;
  }
  /** Empty again, its buffers kept for the next rows. */
  clear(): void {
    this.length = 0;
    this.validity?.clear();
  }
  pushNull(): void {
    if (!this.validity) throw new Error('pushNull on a non-nullable column');
    this.ensure();
    this.words[this.length * 2] = 0;
    this.words[this.length * 2 + 1] = 0;
    this.validity.set(this.length, false);
    this.length++;
  }
  data<T extends arrow.DataType>(type: T): arrow.Data<T> {
    const values = new BigInt64Array(this.words.buffer, 0, this.length);
    return arrow.makeData({
      type,
      length: this.length,
      data: values,
      nullBitmap: this.validity?.bitmap(this.length),
      nullCount: this.validity?.nulls ?? 0,
    } as never) as arrow.Data<T>;
  }
}

const encoder = new TextEncoder();

/** UTF-8 strings with optional nulls; repeated strings are encoded once. */
export class StringColumn {
  private bytes = new Uint8Array(4096);
  private byteLength = 0;
  private offsets = new Int32Array(1025);
  length = 0;
  private validity: Validity | null;
  private readonly cache = new Map<string, Uint8Array>();
  constructor(nullable = false) {
    this.validity = nullable ? new Validity() : null;
  }
  private ensure(extra: number): void {
    if (this.length + 1 >= this.offsets.length) {
      const next = new Int32Array(this.offsets.length * 2);
      next.set(this.offsets);
      this.offsets = next;
    }
    if (this.byteLength + extra > this.bytes.length) {
      const next = new Uint8Array(Math.max(this.bytes.length * 2, this.byteLength + extra));
      next.set(this.bytes.subarray(0, this.byteLength));
      this.bytes = next;
    }
  }
  push(s: string): void {
    let enc = this.cache.get(s);
    if (!enc) {
      enc = encoder.encode(s);
      if (this.cache.size < 100_000) this.cache.set(s, enc);
    }
    this.pushBytes(enc);
  }
  pushBytes(enc: Uint8Array): void {
    this.ensure(enc.length);
    this.bytes.set(enc, this.byteLength);
    this.byteLength += enc.length;
    this.validity?.set(this.length, true);
    this.offsets[++this.length] = this.byteLength;
  }
  /** ASCII prefix, then `a:b` as digits (an origin `table:row id:row`), without building a JS string for a safe id. */
  pushPrefixedIntegerPair(prefix: Uint8Array, a: Id, b: number): void {
    this.ensure(prefix.length + 45);
    this.bytes.set(prefix, this.byteLength);
    this.byteLength += prefix.length;
    this.writeInteger(a);
    this.bytes[this.byteLength++] = 58; // ':'
    this.writeInteger(b);
    this.validity?.set(this.length, true);
    this.offsets[++this.length] = this.byteLength;
  }
  private writeInteger(id: Id): void {
    if (typeof id === 'bigint') {
      const digits = encoder.encode(id.toString());
      this.bytes.set(digits, this.byteLength);
      this.byteLength += digits.length;
      return;
    }
    let n = id;
    if (n < 0) {
      this.bytes[this.byteLength++] = 45; // '-'
      n = -n;
    }
    // Digits written from the last, in place: no view object per value on this per-row path.
    let digits = 1;
    for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
    let at = this.byteLength + digits - 1;
    do {
      this.bytes[at--] = 48 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
    this.byteLength += digits;
  }
  pushNull(): void {
    if (!this.validity) throw new Error('pushNull on a non-nullable column');
    this.ensure(0);
    this.validity.set(this.length, false);
    this.offsets[++this.length] = this.byteLength;
  }
  data(): arrow.Data<arrow.Utf8> {
    return arrow.makeData({
      type: new arrow.Utf8(),
      length: this.length,
      valueOffsets: this.offsets.slice(0, this.length + 1),
      data: this.bytes.slice(0, this.byteLength),
      nullBitmap: this.validity?.bitmap(this.length),
      nullCount: this.validity?.nulls ?? 0,
    });
  }
}

interface ChildColumn {
  length: number;
  data<T extends arrow.DataType>(type: T): arrow.Data<T>;
}

/** list<T> built from a child column and offsets. */
export class ListColumn<C extends ChildColumn> {
  private offsets = new Int32Array(1025);
  length = 0;
  constructor(readonly child: C) {}
  /** Call after pushing one row's items to `child`. */
  endRow(): void {
    if (this.length + 1 >= this.offsets.length) {
      const next = new Int32Array(this.offsets.length * 2);
      next.set(this.offsets);
      this.offsets = next;
    }
    this.offsets[++this.length] = this.child.length;
  }
  data<T extends arrow.DataType>(itemType: T): arrow.Data<arrow.List<T>> {
    const type = new arrow.List(new arrow.Field('item', itemType, true));
    return arrow.makeData({
      type,
      length: this.length,
      valueOffsets: this.offsets.slice(0, this.length + 1),
      child: this.child.data(itemType),
      nullCount: 0,
    } as never) as unknown as arrow.Data<arrow.List<T>>;
  }
}

/** A record batch from named Data, in the order of `fields` (schema metadata optional). */
export function tableOf(fields: arrow.Field[], columns: Record<string, arrow.Data>, metadata?: Map<string, string>): arrow.Table {
  const schema = new arrow.Schema(fields, metadata);
  const length = columns[fields[0].name].length;
  const data = arrow.makeData({
    type: new arrow.Struct(fields),
    length,
    nullCount: 0,
    children: fields.map((f) => columns[f.name]),
  });
  return new arrow.Table(schema, new arrow.RecordBatch(schema, data));
}
