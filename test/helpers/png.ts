// A PNG read back the way an image viewer would: the signature, every chunk's CRC, the IHDR
// size, and the IDAT stream inflated to exactly one filter byte plus one row of pixels per line.
import { inflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

const CRC = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The decoded image's size; throws naming what is wrong when the bytes are not a valid PNG. */
export function decodePng(bytes: Buffer): { width: number; height: number } {
  if (!bytes.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG signature');
  let at = 8;
  let width = 0;
  let height = 0;
  let rowBytes = 0;
  const idat: Buffer[] = [];
  for (;;) {
    if (at + 12 > bytes.length) throw new Error('PNG ends before IEND');
    const len = bytes.readUInt32BE(at);
    const type = bytes.toString('ascii', at + 4, at + 8);
    const body = bytes.subarray(at + 8, at + 8 + len);
    if (crc(bytes.subarray(at + 4, at + 8 + len)) !== bytes.readUInt32BE(at + 8 + len)) throw new Error(`bad CRC in ${type}`);
    at += 12 + len;
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const depth = body[8];
      const channels = CHANNELS[body[9]];
      if (!channels || body[12] !== 0) throw new Error(`unsupported colour type ${body[9]} or interlace ${body[12]}`);
      rowBytes = Math.ceil((width * channels * depth) / 8);
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
  }
  if (!width || !height) throw new Error('no IHDR');
  const raw = inflateSync(Buffer.concat(idat));
  if (raw.length !== height * (rowBytes + 1)) throw new Error(`IDAT holds ${raw.length} bytes, ${height} rows of ${rowBytes + 1} expected`);
  return { width, height };
}
