// `medrep import-representations`: the published MedRep release (a float32 .npy matrix, one row
// per token, and a CSV naming each row's concept) into the representation-table layout
// (concept_id, decile, vector). Streaming: rows are read in blocks at their file offsets, so a
// 22 GB matrix never sits in memory.
import * as fs from 'fs';
import { streamVocabTable } from '../../sources/vocabularyFiles';
import { claimOutputFile } from '../../common/outputDir';
import { RepresentationWriter, WrittenTable, isRepresentationTable } from './table';

export interface NpyHeader {
  dtype: '<f4' | '>f4';
  rows: number;
  cols: number;
  dataOffset: number;
}

/** Parses a .npy header (format versions 1, 2 and 3); only 2-D float32 C-order matrices are accepted. */
export function readNpyHeader(file: string): NpyHeader {
  const fd = fs.openSync(file, 'r');
  try {
    const pre = Buffer.alloc(12);
    const n = fs.readSync(fd, pre, 0, 12, 0);
    if (n < 10 || pre[0] !== 0x93 || pre.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file (bad magic)`);
    const major = pre[6];
    const headerLen = major === 1 ? pre.readUInt16LE(8) : pre.readUInt32LE(8);
    const start = major === 1 ? 10 : 12;
    const hb = Buffer.alloc(headerLen);
    fs.readSync(fd, hb, 0, headerLen, start);
    const h = hb.toString(major === 3 ? 'utf8' : 'latin1');
    const descr = /'descr'\s*:\s*'([^']+)'/.exec(h)?.[1];
    const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(h)?.[1];
    const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(h)?.[1];
    if (descr !== '<f4' && descr !== '>f4') throw new Error(`${file}: dtype ${descr ?? '?'} is not float32 (<f4)`);
    if (fortran !== 'False') throw new Error(`${file}: fortran_order ${fortran ?? '?'}; only C-order (row-major) matrices can be streamed by rows`);
    const dims = (shape ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
    if (dims.length !== 2 || !dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${file}: shape (${shape ?? ''}) is not a 2-D matrix`);
    const dataOffset = start + headerLen;
    const expected = dataOffset + dims[0] * dims[1] * 4;
    const size = fs.fstatSync(fd).size;
    if (size < expected) throw new Error(`${file}: ${size} bytes, the header's shape (${dims.join(', ')}) needs ${expected}`);
    return { dtype: descr, rows: dims[0], cols: dims[1], dataOffset };
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes a float32 matrix as .npy (format 1.0), for tests and round trips. */
export function writeNpy(file: string, data: Float32Array, rows: number, cols: number): void {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre[0] = 0x93; pre.write('NUMPY', 1, 'latin1'); pre[6] = 1; pre[7] = 0; pre.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

export interface ImportOptions {
  npy: string;
  /** CSV/TSV with concept_id (or "<concept_id>_<decile>" tokens), optional decile and row columns. */
  index: string;
  out: string;
  /** Replace an earlier representation table at `out` (a file of any other kind is never replaced). */
  force?: boolean;
  /** Rows per block read and written. */
  blockRows?: number;
  log?: (line: string) => void;
}

function headerOf(file: string): string[] {
  const fd = fs.openSync(file, 'r');
  const b = Buffer.alloc(4096);
  const n = fs.readSync(fd, b, 0, b.length, 0);
  fs.closeSync(fd);
  const line = b.subarray(0, n).toString('utf8').split('\n')[0].replace(/\r$/, '');
  return line.split(line.includes('\t') ? '\t' : ',').map((s) => s.trim().replace(/^"|"$/g, '').toLowerCase());
}

/** Imports the matrix; returns the written table. */
export async function importRepresentations(o: ImportOptions): Promise<WrittenTable> {
  await claimOutputFile(o.out, { force: o.force, what: 'a representation table', isOwn: isRepresentationTable });
  const h = readNpyHeader(o.npy);
  const header = headerOf(o.index);
  if (!header.includes('concept_id')) throw new Error(`${o.index}: header has no concept_id column (found: ${header.join(', ')})`);
  const hasDecile = header.includes('decile');
  const rowCol = ['row', 'index', 'row_index'].find((c) => header.includes(c)) ?? null;
  const cols = ['concept_id', ...(hasDecile ? ['decile'] : []), ...(rowCol ? [rowCol] : [])];
  const format = header.length > 1 && fs.readFileSync(o.index, { encoding: 'utf8', flag: 'r' }).slice(0, 4096).split('\n')[0].includes('\t') ? 'tsv' : 'csv';
  const writer = new RepresentationWriter(o.out, h.cols);
  const fd = fs.openSync(o.npy, 'r');
  try {
    return await importRows(o, h, format, cols, hasDecile, rowCol, writer, fd);
  } catch (e) {
    await writer.abort();
    throw e;
  } finally {
    fs.closeSync(fd);
  }
}

async function importRows(
  o: ImportOptions, h: NpyHeader, format: 'csv' | 'tsv', cols: string[], hasDecile: boolean, rowCol: string | null,
  writer: RepresentationWriter, fd: number,
): Promise<WrittenTable> {
  const blockRows = o.blockRows ?? 4096;
  const rowBytes = h.cols * 4;
  let ids: number[] = [];
  let decs: Array<number | null> = [];
  let rowsIdx: number[] = [];
  const seenRows = new Uint8Array(Math.ceil(h.rows / 8));
  const flush = (): void => {
    if (ids.length === 0) return;
    const vectors = new Float32Array(ids.length * h.cols);
    const bytes = new Uint8Array(vectors.buffer);
    let i = 0;
    while (i < ids.length) {
      // one read for each run of consecutive matrix rows
      let j = i + 1;
      while (j < ids.length && rowsIdx[j] === rowsIdx[j - 1] + 1) j++;
      const want = (j - i) * rowBytes;
      const got = fs.readSync(fd, bytes, i * rowBytes, want, h.dataOffset + rowsIdx[i] * rowBytes);
      if (got !== want) throw new Error(`${o.npy}: short read at matrix row ${rowsIdx[i]}`);
      i = j;
    }
    if (h.dtype === '>f4') {
      const dv = new DataView(vectors.buffer);
      for (let k = 0; k < vectors.length; k++) vectors[k] = dv.getFloat32(k * 4, false);
    }
    writer.append({ conceptIds: ids, deciles: decs, vectors });
    ids = []; decs = []; rowsIdx = [];
  };
  let line = 0;
  await streamVocabTable({ path: o.index, format }, cols, (r, where) => {
    const raw = r.concept_id;
    if (raw === null) throw new Error(`${where}: column concept_id is empty`);
    const m = /^(-?\d+)(?:[_#](\d))?$/.exec(raw.trim());
    if (!m) throw new Error(`${where}: column concept_id is not an id or <id>_<decile> token: '${raw}'`);
    const id = Number(m[1]);
    let dec: number | null = m[2] !== undefined ? Number(m[2]) : null;
    if (hasDecile && r.decile !== null) {
      const d = Number(r.decile);
      if (!(Number.isInteger(d) && d >= 0 && d <= 9)) throw new Error(`${where}: column decile is not 0..9: '${r.decile}'`);
      dec = d;
    }
    const row = rowCol ? Number(r[rowCol]) : line;
    if (!Number.isSafeInteger(row) || row < 0 || row >= h.rows) throw new Error(`${where}: matrix row ${rowCol ? r[rowCol] : row} is outside the ${h.rows} rows of ${o.npy}`);
    if (seenRows[row >> 3] & (1 << (row & 7))) throw new Error(`${where}: matrix row ${row} is named twice`);
    seenRows[row >> 3] |= 1 << (row & 7);
    line++;
    ids.push(id); decs.push(dec); rowsIdx.push(row);
    if (ids.length >= blockRows) flush();
  });
  flush();
  if (line !== h.rows) o.log?.(`[import] ${o.index} names ${line} of the ${h.rows} matrix rows; the other rows are not imported`);
  const w = await writer.close();
  o.log?.(`[import] ${w.rows} vectors of dimension ${w.dim} written to ${o.out}`);
  return w;
}
