import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { runCommandLine } from '../../../cli';
import { importRepresentations, readNpyHeader, writeNpy } from '../../../trainers/representations/importRepresentations';
import { loadRepresentations } from '../../../trainers/representations/table';
import { tempDir } from '../../helpers';
import { errorLine, medrep } from '../../helpers/cli';

describe('import-representations (.npy + concept index)', () => {
  let dir: string;
  before(() => { dir = tempDir('import'); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const rows = 7;
  const cols = 5;
  const data = Float32Array.from({ length: rows * cols }, (_, i) => Math.fround(Math.sin(i) * 10));
  const row = (r: number) => Array.from(data.subarray(r * cols, (r + 1) * cols));

  it('round-trips a matrix in the numpy format, in small blocks, ids and deciles from the index', async () => {
    const npy = path.join(dir, 'm.npy');
    writeNpy(npy, data, rows, cols);
    // the header is what numpy writes: 64-byte aligned data, version 1.0
    const h = readNpyHeader(npy);
    assert.deepEqual([h.rows, h.cols, h.dataOffset % 64], [rows, cols, 0]);
    const index = path.join(dir, 'index.csv');
    fs.writeFileSync(index, 'concept_id\n3004410\n3004410_0\n3004410_9\n201826\n1503297\n4329847\n40481087\n');
    const out = path.join(dir, 'imported.parquet');
    const w = await importRepresentations({ npy, index, out, blockRows: 3 });
    assert.equal(w.rows, 7);
    const t = await loadRepresentations(out);
    assert.equal(t.dim, cols);
    assert.deepEqual(Array.from(t.get(3004410, null)!), row(0));
    assert.deepEqual(Array.from(t.get(3004410, 9)!), row(2));
    assert.deepEqual(Array.from(t.get(40481087, null)!), row(6));
  });

  it('follows a row column (any order) and a decile column; rows not named are left out', async () => {
    const npy = path.join(dir, 'm2.npy');
    writeNpy(npy, data, rows, cols);
    const index = path.join(dir, 'index2.csv');
    fs.writeFileSync(index, 'row,concept_id,decile\n6,11,\n2,12,3\n3,13,\n0,14,\n');
    const out = path.join(dir, 'imported2.parquet');
    const logs: string[] = [];
    await importRepresentations({ npy, index, out, blockRows: 2, log: (l) => logs.push(l) });
    const t = await loadRepresentations(out);
    assert.equal(t.size, 4);
    assert.deepEqual(Array.from(t.get(11, null)!), row(6));
    assert.deepEqual(Array.from(t.get(12, 3)!), row(2));
    assert.deepEqual(Array.from(t.get(14, null)!), row(0));
    assert.ok(logs.some((l) => /names 4 of the 7 matrix rows/.test(l)));
  });

  it('reads big-endian float32 and refuses other dtypes, Fortran order and rows out of range', async () => {
    const mk = (descr: string, fortran: string, body: Buffer, shape = `(${rows}, ${cols})`) => {
      let header = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
      header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
      const pre = Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0, header.length & 255, header.length >> 8]);
      const f = path.join(dir, `x${Math.random().toString(36).slice(2)}.npy`);
      fs.writeFileSync(f, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
      return f;
    };
    const be = Buffer.alloc(rows * cols * 4);
    data.forEach((v, i) => be.writeFloatBE(v, i * 4));
    const index = path.join(dir, 'index3.csv');
    fs.writeFileSync(index, 'concept_id\n1\n2\n3\n4\n5\n6\n7\n');
    const out = path.join(dir, 'be.parquet');
    await importRepresentations({ npy: mk('>f4', 'False', be), index, out });
    assert.deepEqual(Array.from((await loadRepresentations(out)).get(5, null)!), row(4));
    assert.throws(() => readNpyHeader(mk('<f8', 'False', Buffer.alloc(rows * cols * 8))), /dtype <f8 is not float32/);
    assert.throws(() => readNpyHeader(mk('<f4', 'True', be)), /fortran_order True/);
    assert.throws(() => readNpyHeader(mk('<f4', 'False', Buffer.alloc(8))), /needs \d+/);
    const bad = path.join(dir, 'index4.csv');
    fs.writeFileSync(bad, 'row,concept_id\n0,1\n9,2\n');
    await assert.rejects(importRepresentations({ npy: mk('>f4', 'False', be), index: bad, out: path.join(dir, 'bad.parquet') }), /index4\.csv:3: matrix row 9 is outside the 7 rows/);
    await assert.rejects(runCommandLine(['import-representations', '--npy', 'x.npy']), /--npy, --index and --out are required/);
  });

  it('--out: never overwrites a file medrep did not write; an earlier table only with --force (exit 2, one line)', async () => {
    const npy = path.join(dir, 'g.npy');
    writeNpy(npy, data, rows, cols);
    const index = path.join(dir, 'g.csv');
    fs.writeFileSync(index, 'concept_id\n1\n2\n3\n4\n5\n6\n7\n');
    const run = (out: string, ...extra: string[]) => medrep(['import-representations', '--npy', npy, '--index', index, '--out', out, ...extra]);
    const oneLine = (r: ReturnType<typeof medrep>, pattern: RegExp) => {
      assert.equal(r.status, 2, r.stderr);
      assert.match(errorLine(r), pattern);
      assert.ok(!/^\s+at /m.test(r.stderr), r.stderr);
    };
    // A file of the user's (also a Parquet file of another layout) stays as it was, with or without --force.
    const notes = path.join(dir, 'notes.parquet');
    fs.writeFileSync(notes, 'my notes\n');
    for (const extra of [[], ['--force']]) oneLine(run(notes, ...extra), /notes\.parquet: exists and is not a representation table medrep wrote; medrep does not overwrite it/);
    assert.equal(fs.readFileSync(notes, 'utf8'), 'my notes\n');
    const other = path.join(dir, 'other.parquet');
    const { openDuck } = await import('../../../sources/duck');
    const conn = await openDuck();
    await conn.run(`COPY (SELECT 1 AS concept_id, 'x' AS vector) TO '${other}' (FORMAT parquet)`);
    conn.closeSync();
    const otherBytes = fs.readFileSync(other);
    oneLine(run(other, '--force'), /other\.parquet: exists and is not a representation table medrep wrote/);
    assert.deepEqual(fs.readFileSync(other), otherBytes);
    // A folder is not a file.
    oneLine(run(dir), /--out must name a file, this is a folder/);
    // A table medrep wrote: refused without --force, replaced with it.
    const table = path.join(dir, 'table.parquet');
    assert.equal(run(table).status, 0);
    const first = fs.statSync(table).mtimeMs;
    oneLine(run(table), /table\.parquet: holds a representation table of an earlier medrep run; pass --force to replace it/);
    assert.equal(fs.statSync(table).mtimeMs, first, 'left as it was');
    const r = run(table, '--force');
    assert.equal(r.status, 0, r.stderr);
    assert.equal((await loadRepresentations(table)).size, 7);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp')), [], 'no temporary file left');
  });
});
