import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { splitProfile } from '../../bench/cpuProfile';
import { medsEtlInput, medsEtlMissing } from '../../bench/medsEtl';

const frame = (functionName: string, url = '') => ({ functionName, url, scriptId: '0', lineNumber: 0, columnNumber: 0 });

describe('local benchmark harness', () => {
  it('charges each CPU profile sample to one part of the run, the first in priority among its callers', () => {
    // root -> streamEvents -> finishPerson -> push (sequence batch); streamEvents -> push (event batch)
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)'), children: [2, 6, 7] },
        { id: 2, callFrame: frame('streamEvents', 'file:///x/dist/runners/local/localRunner.js'), children: [3, 5] },
        { id: 3, callFrame: frame('finishPerson', 'file:///x/dist/runners/local/localAssembly.js'), children: [4] },
        { id: 4, callFrame: frame('push', 'file:///x/dist/sinks/sequenceShards.js') },
        { id: 5, callFrame: frame('push', 'file:///x/dist/sinks/eventShards.js') },
        { id: 6, callFrame: frame('(idle)') },
        { id: 7, callFrame: frame('(garbage collector)') },
      ],
      samples: [4, 4, 5, 2, 6, 7],
      timeDeltas: [1e6, 1e6, 2e6, 5e5, 3e6, 25e4],
    };
    const main = splitProfile(profile, false);
    assert.deepEqual(main.parts, {
      'per-person assembly': 2,
      'event columns (EventBatch)': 2,
      'event pass: read + canonicalize': 0.5,
      'garbage collector': 0.25,
    });
    assert.equal(main.busy, 4.75);
    assert.equal(main.idle, 3);
    // A worker thread's samples are one part of their own, whatever the frames.
    assert.deepEqual(splitProfile(profile, true).parts, { 'worker threads': 4.75 });
  });

  it('the meds_etl comparison names why it is skipped when its venv is absent', () => {
    const venv = fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-no-venv-'));
    try {
      const reason = medsEtlMissing(venv);
      assert.ok(reason?.startsWith('no venv at ') && reason.endsWith('(run bench/meds-etl-venv.sh)'), reason ?? 'null');
    } finally {
      fs.rmSync(venv, { recursive: true, force: true });
    }
  });

  it("meds_etl's input links the real files, and is made again when a link's file is gone", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-meds-etl-input-'));
    try {
      // The dataset reached through a linked folder, as a worktree's bench/data is.
      const real = path.join(root, 'real');
      fs.mkdirSync(real);
      fs.writeFileSync(path.join(real, 'person.csv'), 'person_id,year_of_birth\n1,1970\n');
      fs.symlinkSync(real, path.join(root, 'via'));
      const input = await medsEtlInput(path.join(root, 'via'));
      assert.equal(fs.readlinkSync(path.join(input, 'person.csv')), fs.realpathSync(path.join(real, 'person.csv')));
      // A copy whose link went dangling (made through a folder since removed) is not reused.
      fs.rmSync(path.join(input, 'person.csv'));
      fs.symlinkSync(path.join(root, 'gone', 'person.csv'), path.join(input, 'person.csv'));
      await medsEtlInput(path.join(root, 'via'));
      assert.ok(fs.existsSync(path.join(input, 'person.csv')), 'the dangling link is replaced');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
