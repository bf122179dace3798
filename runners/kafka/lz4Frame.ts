// LZ4 frame format (lz4.org, "LZ4 Frame Format Description" 1.6.x), compress and decompress, in
// plain JavaScript: Node 20 ships no LZ4 (nor zstd), and Arrow IPC names LZ4_FRAME as one of its
// two body compressions. The compressor is the greedy single-hash matcher of the reference "fast"
// mode; frames carry their content size and independent blocks. The decompressor reads any
// conforming frame (linked or independent blocks, with or without block and content checksums,
// which it skips), so frames from other writers (the lz4 tool, Arrow C++) read back too.

const MAGIC = 0x184d2204;
const MAX_BLOCK = 4 * 1024 * 1024; // BD 7: blocks of up to 4 MiB
const MIN_MATCH = 4;
// The last match starts at least 12 bytes before the end of a block; the last 5 bytes are literals.
const MF_LIMIT = 12;
const LAST_LITERALS = 5;
// 4096 entries, as the reference fast mode: a small table is cleared cheaply for every buffer.
const HASH_BITS = 12;

const P1 = 2654435761;
const P2 = 2246822519;
const P3 = 3266489917;
const P4 = 668265263;
const P5 = 374761393;
const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

/** xxHash32 of a short input (the frame descriptor's header checksum). */
function xxh32Short(b: Uint8Array): number {
  let h = (P5 + b.length) | 0;
  let i = 0;
  for (; i + 4 <= b.length; i += 4) {
    const w = b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
    h = Math.imul(rotl((h + Math.imul(w, P3)) | 0, 17), P4);
  }
  for (; i < b.length; i++) h = Math.imul(rotl((h + Math.imul(b[i], P5)) | 0, 11), P1);
  h = Math.imul(h ^ (h >>> 15), P2);
  h = Math.imul(h ^ (h >>> 13), P3);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Copies n bytes; short runs by hand (a subarray per literal run costs more than the copy). */
function copyBytes(src: Uint8Array, from: number, n: number, dst: Uint8Array, at: number): number {
  if (n < 32) for (let k = 0; k < n; k++) dst[at + k] = src[from + k];
  else dst.set(src.subarray(from, from + n), at);
  return at + n;
}

const read32 = (s: Uint8Array, i: number) => s[i] | (s[i + 1] << 8) | (s[i + 2] << 16) | (s[i + 3] << 24);

function writeLength(dst: Uint8Array, at: number, n: number): number {
  while (n >= 255) {
    dst[at++] = 255;
    n -= 255;
  }
  dst[at++] = n;
  return at;
}

/** One LZ4 block of src[start, end) into dst at `at`; returns the end in dst. */
function compressBlock(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number, table: Int32Array): number {
  table.fill(-1);
  let anchor = start;
  let ip = start;
  const limit = end - MF_LIMIT;
  const matchEnd = end - LAST_LITERALS;
  while (ip < limit) {
    const seq = read32(src, ip);
    const h = Math.imul(seq, P1) >>> (32 - HASH_BITS);
    const ref = table[h];
    table[h] = ip;
    if (ref < 0 || ip - ref > 65535 || read32(src, ref) !== seq) {
      // Skip faster through data that does not compress.
      ip += 1 + ((ip - anchor) >> 6);
      continue;
    }
    let len = MIN_MATCH;
    while (ip + len < matchEnd && src[ip + len] === src[ref + len]) len++;
    const lit = ip - anchor;
    const ml = len - MIN_MATCH;
    const token = at++;
    dst[token] = ((lit >= 15 ? 15 : lit) << 4) | (ml >= 15 ? 15 : ml);
    if (lit >= 15) at = writeLength(dst, at, lit - 15);
    at = copyBytes(src, anchor, lit, dst, at);
    const off = ip - ref;
    dst[at++] = off & 255;
    dst[at++] = off >> 8;
    if (ml >= 15) at = writeLength(dst, at, ml - 15);
    ip += len;
    anchor = ip;
  }
  const lit = end - anchor;
  dst[at++] = (lit >= 15 ? 15 : lit) << 4;
  if (lit >= 15) at = writeLength(dst, at, lit - 15);
  dst.set(src.subarray(anchor, end), at);
  return at + lit;
}

/** An LZ4 frame of `src` (content size in the header, independent blocks, no checksums beyond the header's). */
export function lz4FrameCompress(src: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(src.length / MAX_BLOCK));
  const dst = new Uint8Array(15 + src.length + Math.ceil(src.length / 255) + blocks * 20 + 4);
  const view = new DataView(dst.buffer);
  view.setUint32(0, MAGIC, true);
  dst[4] = 0x68; // version 01, independent blocks, content size present
  dst[5] = 0x70; // 4 MiB blocks
  view.setBigUint64(6, BigInt(src.length), true);
  dst[14] = (xxh32Short(dst.subarray(4, 14)) >>> 8) & 255;
  let at = 15;
  const table = new Int32Array(1 << HASH_BITS);
  for (let start = 0; start < src.length; start += MAX_BLOCK) {
    const end = Math.min(src.length, start + MAX_BLOCK);
    const body = compressBlock(src, start, end, dst, at + 4, table);
    if (body - (at + 4) < end - start) {
      view.setUint32(at, body - (at + 4), true);
      at = body;
    } else {
      // Stored: the high bit marks an uncompressed block.
      view.setUint32(at, (end - start) | 0x80000000, true);
      dst.set(src.subarray(start, end), at + 4);
      at += 4 + (end - start);
    }
  }
  view.setUint32(at, 0, true); // end mark
  return dst.subarray(0, at + 4);
}

/** A plain Uint8Array (one shape for the hot loops, not a Buffer) over memory that is not zero-filled. */
function uninitialized(n: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

class Output {
  bytes: Uint8Array;
  length = 0;
  constructor(capacity: number) {
    // Not zero-filled: every byte up to `length` is written before it is read.
    this.bytes = uninitialized(Math.max(64, capacity));
  }
  reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    const next = uninitialized(Math.max(this.bytes.length * 2, this.length + n));
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }
}

function decompressBlock(src: Uint8Array, ip: number, end: number, out: Output): void {
  while (ip < end) {
    const token = src[ip++];
    let lit = token >> 4;
    if (lit === 15) {
      let b: number;
      do lit += b = src[ip++];
      while (b === 255);
    }
    out.reserve(lit);
    out.length = copyBytes(src, ip, lit, out.bytes, out.length);
    ip += lit;
    if (ip >= end) break;
    const off = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    let ml = token & 15;
    if (ml === 15) {
      let b: number;
      do ml += b = src[ip++];
      while (b === 255);
    }
    ml += MIN_MATCH;
    if (off === 0 || off > out.length) throw new Error(`lz4: match offset ${off} before the start of the output`);
    out.reserve(ml);
    const bytes = out.bytes;
    const from = out.length - off;
    let to = out.length;
    if (ml < 32) for (let k = 0; k < ml; k++) bytes[to++] = bytes[from + k];
    else {
      // An overlapping match repeats the last `off` bytes: copy the repeated part, doubling.
      for (let left = ml; left > 0; ) {
        const n = Math.min(to - from, left);
        bytes.copyWithin(to, from, from + n);
        to += n;
        left -= n;
      }
    }
    out.length += ml;
  }
}

/** The content of an LZ4 frame. Throws on anything that is not one (bad magic, version, truncation). */
export function lz4FrameDecompress(src: Uint8Array): Uint8Array {
  if (src.length < 7) throw new Error('lz4: frame shorter than its header');
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new Error('lz4: not an LZ4 frame (magic number)');
  const flg = src[4];
  if (flg >> 6 !== 1) throw new Error(`lz4: frame version ${flg >> 6} (reads 1)`);
  const blockChecksum = (flg & 0x10) !== 0;
  const hasSize = (flg & 0x08) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  const hasDict = (flg & 0x01) !== 0;
  let at = 6;
  let size = 0;
  if (hasSize) {
    size = Number(view.getBigUint64(at, true));
    at += 8;
  }
  if (hasDict) at += 4;
  at += 1; // header checksum
  const out = new Output(hasSize ? size : src.length * 4);
  for (;;) {
    if (at + 4 > src.length) throw new Error('lz4: frame truncated');
    const word = view.getUint32(at, true);
    at += 4;
    if (word === 0) break;
    const n = word & 0x7fffffff;
    if (at + n > src.length) throw new Error('lz4: block truncated');
    if (word & 0x80000000) {
      out.reserve(n);
      out.bytes.set(src.subarray(at, at + n), out.length);
      out.length += n;
    } else decompressBlock(src, at, at + n, out);
    at += n + (blockChecksum ? 4 : 0);
  }
  if (contentChecksum) at += 4;
  if (hasSize && out.length !== size) throw new Error(`lz4: frame holds ${out.length} bytes, its header says ${size}`);
  return out.bytes.subarray(0, out.length);
}
