// Our LZ4 frame codec (runners/kafka/lz4Frame.ts) against registry packages on a typical events
// batch: 2000 canonical events as the canonicalize stage sends them, encoded uncompressed with the
// stream codec, then compressed and decompressed whole by each codec (best of 20 rounds each).
// The packages are not dependencies: install them in a folder of their own and name it.
//
//   npm install --prefix /tmp/lz4eval lz4js@0.2.0 lz4-wasm-nodejs@0.9.2
//   node bench/lz4Packages.mjs /tmp/lz4eval EVENTS_SHARD.parquet
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.MEDREP_STREAM_COMPRESSION = 'none';
const here = path.dirname(fileURLToPath(import.meta.url));
const ours = createRequire(path.join(here, '..', 'dist', 'index.js'));
const theirs = createRequire(path.join(process.argv[2], 'package.json'));
const { lz4FrameCompress, lz4FrameDecompress } = ours('./runners/kafka/lz4Frame');
const { encodeStreamValue } = ours('./runners/kafka/streamCodec');
const { openDuck } = ours('./sources/duck');

const conn = await openDuck();
const rows = (await conn.runAndReadAll(`SELECT person_id, epoch_ms(time)::DOUBLE AS t, concept_id, source_concept_id, coalesce(decile, -1) AS d, value, unit, visit_occurrence_id
  FROM read_parquet('${process.argv[3]}') LIMIT 2000`)).getRowObjects();
const col = (k, f = (x) => x) => rows.map((r) => (r[k] === null ? null : f(r[k])));
const n = rows.length;
const batch = {
  k: 'events', table: 'measurement', versions: { deciles: 'd'.repeat(64), vocabulary: 'v'.repeat(64) },
  p: col('person_id'), t: col('t'), c: col('concept_id'), s: col('source_concept_id'), d: col('d'), x: col('value'), u: col('unit'), v: col('visit_occurrence_id'),
  r: rows.map((_, i) => BigInt(i + 1)), n: rows.map((_, i) => i + 1), rc: col('concept_id'), sd: new Array(n).fill(null), ed: new Array(n).fill(null),
};
const raw = new Uint8Array(encodeStreamValue(batch).value);

const lz4js = theirs('lz4js');
const wasm = theirs('lz4-wasm-nodejs');
const codecs = {
  'ours (lz4Frame.ts, LZ4 frame)': [lz4FrameCompress, lz4FrameDecompress],
  'lz4js 0.2.0 (pure JS, LZ4 frame)': [(b) => lz4js.compress(b), (b) => lz4js.decompress(b)],
  'lz4-wasm-nodejs 0.9.2 (WASM, size-prefixed block, not a frame)': [(b) => wasm.compress(b), (b) => wasm.decompress(b)],
};
const best = (f) => {
  let t = Infinity;
  for (let i = 0; i < 20; i++) {
    const s = process.hrtime.bigint();
    f();
    t = Math.min(t, Number(process.hrtime.bigint() - s) / 1e6);
  }
  return t;
};
console.log(`events batch: ${n} rows, ${raw.length} bytes uncompressed Arrow IPC`);
for (const [name, [enc, dec]] of Object.entries(codecs)) {
  const c = enc(raw);
  const back = dec(c);
  if (Buffer.compare(Buffer.from(back), Buffer.from(raw)) !== 0) throw new Error(`${name}: round trip differs`);
  // Ours must read theirs where both are frames (interchangeable on the wire).
  const e = best(() => enc(raw));
  const d = best(() => dec(c));
  console.log(`${name.padEnd(64)} ratio ${(raw.length / c.length).toFixed(2)}  encode ${(raw.length / e / 1e3).toFixed(0)} MB/s  decode ${(raw.length / d / 1e3).toFixed(0)} MB/s`);
}
const cross = lz4FrameDecompress(lz4js.compress(raw));
console.log(`lz4js frame read by ours: ${Buffer.compare(Buffer.from(cross), Buffer.from(raw)) === 0 ? 'same bytes' : 'DIFFERENT'}`);
conn.closeSync();
