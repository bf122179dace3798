// The import-direction check (scripts/check-imports.mjs) on this repository and on small trees.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../helpers';

const REPO = path.resolve(__dirname, '../../..');
const SCRIPT = path.join(REPO, 'scripts/check-imports.mjs');

function check(root?: string) {
  const r = spawnSync(process.execPath, [SCRIPT, ...(root ? [root] : [])], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tree(files: Record<string, string>): string {
  const root = tempDir('import-check-');
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return root;
}

describe('import-direction check', () => {
  it('passes on this repository, every test file in a suite', () => {
    const r = check();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /every relative import goes to the same or a lower layer, every test file is in a suite/);
  });

  it('names file and line of an import of a higher layer, exit 1', () => {
    const root = tree({
      'common/errors.ts': 'export class UserError extends Error {}\n',
      'runners/runner.ts': "import { UserError } from '../common/errors';\nexport const x = UserError;\n",
      'sinks/shards.ts': "// a sink\nimport {\n  x,\n} from '../runners/runner';\nexport const y = x;\n",
    });
    const r = check(root);
    assert.equal(r.status, 1);
    assert.deepEqual(r.stderr.trim().split('\n'), [
      'sinks/shards.ts:4: sinks (layer 2) imports runners/runner.ts, of the higher layer runners (5)',
      'check-imports: 1 problem(s) in 3 files',
    ]);
  });

  it('lets a command of cli/ import trainers and a trainer import common/, but not the product import bench/ or a runner import cli/', () => {
    const root = tree({
      'common/errors.ts': 'export const a = 1;\n',
      'trainers/model.ts': "import { a } from '../common/errors';\nexport const m = a;\n",
      'cli/train.ts': "import { m } from '../trainers/model';\nimport { b } from '../bench/run';\nexport const c = m + b;\n",
      'runners/runner.ts': "import { c } from '../cli/train';\nexport const r = c;\n",
      'bench/run.ts': "import { c } from '../cli/train';\nexport const b = 2;\nexport const d = c;\n",
    });
    const r = check(root);
    assert.equal(r.status, 1);
    assert.deepEqual(r.stderr.trim().split('\n'), [
      'runners/runner.ts:1: runners (layer 5) imports cli/train.ts, of the higher layer cli (8)',
      'cli/train.ts:2: cli (layer 8) imports bench/run.ts, of the higher layer dev (9)',
      'check-imports: 2 problem(s) in 5 files',
    ]);
  });

  it('names a test file outside the folder that mirrors what it tests, and a helper outside test/helpers/', () => {
    const root = tree({
      'common/errors.ts': 'export const a = 1;\n',
      'test/common/errors.test.ts': "import { a } from '../../common/errors';\nexport const t = a;\n",
      'test/helpers/index.ts': 'export const h = 1;\n',
      'test/fixtures/worker.ts': 'export const w = 1;\n',
      'test/errors.test.ts': 'export const t = 1;\n',
      'test/runners/errors.test.ts': 'export const t = 1;\n',
      'test/helpers/errors.test.ts': 'export const t = 1;\n',
      'test/common/util.ts': 'export const u = 1;\n',
    });
    const r = check(root);
    assert.equal(r.status, 1);
    assert.deepEqual(r.stderr.trim().split('\n').sort(), [
      'check-imports: 4 problem(s) in 8 files',
      'test/common/util.ts:1: a helper outside test/helpers/',
      'test/errors.test.ts:1: not in a folder that mirrors one of the tree (test/X/ for the folder X/ it tests)',
      'test/helpers/errors.test.ts:1: a test file in test/helpers/; put it in the folder that mirrors what it tests',
      'test/runners/errors.test.ts:1: not in a folder that mirrors one of the tree (test/X/ for the folder X/ it tests)',
    ]);
  });
});
