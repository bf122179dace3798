// LZ4 frames (the Arrow IPC body compression of the stream topics): what the compressor writes
// reads back byte for byte, for data that compresses, data that does not (stored blocks), empty
// and multi-block input; frames written by the reference lz4 tool (v1.9.4) read back, with
// linked blocks, block checksums, content checksums; a damaged frame is an error, never bytes.
import { strict as assert } from 'node:assert';
import { lz4FrameCompress, lz4FrameDecompress } from '../../../runners/kafka/lz4Frame';
import { prng } from '../../helpers/syntheticOmop';

const TEXT = 'medrep medrep medrep medrep medrep medrep medrep medrep!';
// `printf TEXT | lz4 -BD --content-size`, `lz4 -BX --content-size -9`, `lz4 --no-frame-crc` (lz4 1.9.4).
const REFERENCE = [
  '04224d186c40380000000000000058110000007f6d656472657020070019506472657021000000000ac8729c',
  '04224d187c4038000000000000002c110000007f6d656472657020070019506472657021bc238b56000000000ac8729c',
  '04224d18604082110000007f6d65647265702007001950647265702100000000',
];

function roundTrip(data: Uint8Array): Uint8Array {
  const frame = lz4FrameCompress(data);
  assert.deepEqual(Buffer.from(lz4FrameDecompress(frame)), Buffer.from(data));
  return frame;
}

describe('lz4 frames', () => {
  it('reads back what it writes: repetitive, random, empty, several 4 MiB blocks', () => {
    const random = prng(7);
    const ids = new BigInt64Array(200_000).map((_, i) => BigInt(1_000_000 + (i >> 5)));
    assert.ok(roundTrip(new Uint8Array(ids.buffer)).length < ids.byteLength / 5, 'int64 ids of few persons shrink at least 5x');
    const noise = new Uint8Array(100_000).map(() => Math.floor(random() * 256));
    assert.ok(roundTrip(noise).length <= noise.length + 32, 'incompressible data is stored, not grown');
    roundTrip(new Uint8Array(0));
    roundTrip(new Uint8Array([1, 2, 3]));
    roundTrip(new Uint8Array(9 * 1024 * 1024 + 5).map((_, i) => (i % 251 < 200 ? i % 7 : Math.floor(random() * 256))));
  });

  it('reads frames of the reference lz4 tool', () => {
    for (const hex of REFERENCE) assert.equal(Buffer.from(lz4FrameDecompress(Buffer.from(hex, 'hex'))).toString(), TEXT);
  });

  it('refuses what is not a whole frame', () => {
    const frame = Buffer.from(REFERENCE[0], 'hex');
    assert.throws(() => lz4FrameDecompress(Buffer.from('not a frame')), /^Error: lz4: not an LZ4 frame \(magic number\)$/);
    assert.throws(() => lz4FrameDecompress(frame.subarray(0, 30)), /^Error: lz4: block truncated$/);
    const sizeLie = Buffer.from(frame);
    sizeLie[6] = 99; // content size 99 in the header
    assert.throws(() => lz4FrameDecompress(sizeLie), /^Error: lz4: frame holds 56 bytes, its header says 99$/);
  });
});
