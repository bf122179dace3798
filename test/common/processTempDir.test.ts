import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeProcessTempDir } from '../../common/processTempDir';
import { tempDir } from '../helpers';

describe('temporary folders owned by a process', () => {
  it("removes a killed process's folder when the next one starts, and keeps those of running processes", () => {
    const parent = tempDir('process-tmp');
    // A process that has exited: its folder is an orphan.
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const orphan = path.join(parent, `medrep-stream-duckdb-${dead}-abc123`);
    fs.mkdirSync(orphan);
    fs.writeFileSync(path.join(orphan, 'spill.tmp'), 'x');
    // This process runs: its folder stays; so do other stems and names that only look alike.
    const mine = path.join(parent, `medrep-stream-duckdb-${process.pid}-def456`);
    const other = path.join(parent, `medrep-other-${dead}-abc123`);
    const unlike = path.join(parent, 'medrep-stream-duckdb-notapid');
    for (const d of [mine, other, unlike]) fs.mkdirSync(d);

    const made = makeProcessTempDir('medrep-stream-duckdb', parent);
    assert.ok(path.basename(made).startsWith(`medrep-stream-duckdb-${process.pid}-`), made);
    assert.ok(fs.statSync(made).isDirectory());
    assert.equal(fs.existsSync(orphan), false, 'the dead process left it: removed');
    for (const d of [mine, other, unlike]) assert.ok(fs.existsSync(d), `${path.basename(d)} kept`);
  });
});
