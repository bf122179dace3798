import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openDuck } from '../../sources/duck';
import { generateSynthetic } from '../../synth';
import { classifyError, EXIT } from '../../common/errors';
import { tempDir } from '../helpers';
import { CliResult, errorLine, MEDREP_BIN, medrep } from '../helpers/cli';

/** The error is one line on stderr (after any progress lines) and no stack trace. */
/** A spawnSync result as the CLI helpers give it. */
function asResult(r: ReturnType<typeof spawnSync>): CliResult {
  return { status: r.status, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr) };
}

function assertOneLine(r: CliResult, code: number, pattern: RegExp): void {
  assert.equal(r.status, code, r.stderr);
  assert.match(errorLine(r), pattern);
  assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('medrep: ')).length, 1, r.stderr);
  assert.ok(!/^\s+at /m.test(r.stderr), `no stack trace:\n${r.stderr}`);
}

/** Files and folders under `dir` whose names say they are temporary. */
function temporaryFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (/\.tmp/.test(e.name)) found.push(path.relative(dir, path.join(d, e.name)));
      if (e.isDirectory()) walk(path.join(d, e.name));
    }
  };
  walk(dir);
  return found;
}

describe('errors: one line, the exit code of their kind, nothing left behind', function () {
  let omop: string;
  before(async () => {
    omop = path.join(tempDir('err-omop'), 'omop');
    await generateSynthetic({ persons: 300, seed: 3, out: omop, format: 'parquet', site: 'A' });
  });

  it('disk full (a 4 MiB tmpfs): exit 3, one line naming the file, no temporary file left', () => {
    const mnt = tempDir('err-tmpfs');
    const report = path.join(tempDir('err-report'), 'after.txt');
    // A private mount namespace: the tmpfs vanishes with the shell, whatever happens to the test.
    // The filler leaves about 280 KiB, less than the run's 700 KiB of shards.
    const script = [
      `mount -t tmpfs -o size=4m tmpfs '${mnt}'`,
      `head -c 3900000 /dev/zero > '${mnt}/filler'`,
      `'${process.execPath}' '${MEDREP_BIN}' run --omop '${omop}' --out '${mnt}/out' --tasks none 2>'${report}.err'`,
      'rc=$?',
      `find '${mnt}/out' > '${report}'`,
      'exit $rc',
    ].join('\n');
    const unshare = process.getuid?.() === 0 ? ['-m'] : ['-r', '-m'];
    const r = spawnSync('unshare', [...unshare, 'sh', '-c', script], { encoding: 'utf8' });
    const result: CliResult = { status: r.status, signal: r.signal, stdout: r.stdout, stderr: fs.readFileSync(`${report}.err`, 'utf8') };
    assertOneLine(result, EXIT.environment, new RegExp(`^medrep: disk full: cannot write ${mnt}/out/\\S+ \\(no space left on device\\)$`));
    const left = fs.readFileSync(report, 'utf8').trim().split('\n').map((l) => path.relative(`${mnt}/out`, l));
    assert.deepEqual(left.filter((l) => /\.tmp/.test(l)), [], `no temporary file left: ${left.join(' ')}`);
    assert.ok(!left.includes('manifest.json'), 'no manifest for a run that did not finish');
  });

  it('an unreadable input file: exit 3, one line naming it', () => {
    // Root reads any file: as root the run drops the capabilities that bypass file permissions
    // (setpriv), so it may not read this one but still reads the checkout wherever it lies.
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-perm-'));
    try {
      fs.chmodSync(root, 0o755);
      const input = path.join(root, 'omop');
      fs.cpSync(omop, input, { recursive: true });
      for (const f of fs.readdirSync(input)) fs.chmodSync(path.join(input, f), 0o644);
      fs.chmodSync(input, 0o755);
      const locked = path.join(input, 'measurement.parquet');
      fs.chmodSync(locked, 0o000);
      const out = path.join(root, 'out');
      fs.mkdirSync(out);
      const args = ['run', '--omop', input, '--out', out];
      const opts = { cwd: root, env: { ...process.env, HOME: root } };
      const noDacCaps = ['--inh-caps=-dac_override,-dac_read_search', '--bounding-set=-dac_override,-dac_read_search'];
      const r = process.getuid?.() === 0 ? asResult(spawnSync('setpriv', [...noDacCaps, process.execPath, MEDREP_BIN, ...args], { encoding: 'utf8', ...opts })) : medrep(args, opts);
      assertOneLine(r, EXIT.environment, new RegExp(`^medrep: cannot read ${locked}: permission denied$`));
      assert.deepEqual(temporaryFiles(out), []);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('a DuckDB database without a person table: exit 2, the table named as a table', async () => {
    const file = path.join(tempDir('err-duck'), 'cdm.duckdb');
    const conn = await openDuck();
    try {
      await conn.run(`ATTACH '${file}' AS cdm`);
      await conn.run('CREATE TABLE cdm.visit_occurrence (visit_occurrence_id BIGINT, person_id BIGINT)');
      await conn.run('DETACH cdm');
    } finally {
      conn.closeSync();
    }
    const out = path.join(tempDir('err-duck-out'), 'out');
    const r = medrep(['run', '--omop', file, '--out', out]);
    assertOneLine(r, EXIT.user, new RegExp(`^medrep: ${file}: required OMOP table person not found \\(no table named person in any schema of the database \\(any case\\)\\)$`));
    assert.ok(!/person\.csv/.test(r.stderr));
    assert.deepEqual(temporaryFiles(out), []);
  });

  it('MEDREP_DEBUG=1 adds the stack to the one line', () => {
    const plain = medrep(['run', '--omop', '/no/such/folder', '--out', tempDir('err-debug')]);
    assertOneLine(plain, EXIT.user, /^medrep: OMOP input not found: \/no\/such\/folder$/);
    const debug = medrep(['run', '--omop', '/no/such/folder', '--out', tempDir('err-debug')], { env: { ...process.env, MEDREP_DEBUG: '1' } });
    assert.equal(debug.status, EXIT.user);
    assert.match(debug.stderr, /^medrep: OMOP input not found: \/no\/such\/folder\nUserError: OMOP input not found[^\n]*\n\s+at /);
  });

  it('classifies the machine\'s own errors wherever they were raised', () => {
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', path: '/data/out/events/part-00003.parquet.tmp-4242' });
    assert.deepEqual(classifyError(enospc), { line: 'disk full: cannot write /data/out/events/part-00003.parquet (no space left on device)', exitCode: 3 });
    const duck = new Error('IO Error: Could not write file "/data/out/events/part-00001.parquet.tmp-4242": No space left on device');
    assert.deepEqual(classifyError(duck), { line: 'disk full: cannot write /data/out/events/part-00001.parquet (no space left on device)', exitCode: 3 });
    const kafka = Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:1'), { name: 'KafkaJSNumberOfRetriesExceeded' });
    assert.deepEqual(classifyError(kafka), { line: 'Kafka broker unreachable after retries: Connection error: connect ECONNREFUSED 127.0.0.1:1', exitCode: 3 });
    assert.deepEqual(classifyError(new TypeError('x is undefined')), { line: 'internal error: x is undefined (MEDREP_DEBUG=1 prints the stack)', exitCode: 1 });
  });
});

describe('help', () => {
  it('`medrep <command> --help` prints that command\'s options and exits 0', () => {
    for (const [args, options] of [
      [['run', '--help'], ['--omop', '--out', '--force', '--no-meds', '--tasks']],
      [['stream', '-h'], ['--brokers', '--exit-when-idle', '--force', '--health-interval', '--events-per-shard', '--shard-max-mb', '--shard-max-age']],
      [['produce', '--help'], ['--omop', '--rows-per-message', '--markers']],
      [['train', 'ehr', '--help'], ['--shards', '--task', '--init', '--embeddings']],
      [['status', '--help'], ['--brokers', '--group', '--topic-prefix']],
      [['synth', '--help'], ['--persons', '--rows', '--inject-errors']],
    ] as const) {
      const r = medrep([...args]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, new RegExp(`^  medrep ${args[0]}`));
      for (const o of options) assert.ok(r.stdout.includes(o), `${args.join(' ')}: ${o} listed\n${r.stdout}`);
    }
  });

  it('a shard bound of the stream that is not above 0 (or for --shard-max-age, below 0): exit 2, one line naming it, before any broker is asked', () => {
    for (const [flag, value, want] of [['--shard-max-mb', '0', 'above 0'], ['--events-per-shard', '-5', 'above 0'], ['--shard-max-age', '-1', 'at least 0']]) {
      const r = medrep(['stream', '--brokers', '127.0.0.1:1', '--out', path.join(tempDir('bound'), 'out'), '--vocab', 'nowhere', flag, value]);
      assertOneLine(r, 2, new RegExp(`^medrep: medrep stream: ${flag} must be ${want}, got ${value}$`));
    }
  });

  it('run takes the shard sizes of stream: a size not above 0 is exit 2, one line naming it, before any input is read', () => {
    for (const flag of ['--events-per-shard', '--sequences-per-shard']) {
      const r = medrep(['run', '--omop', 'nowhere', '--out', path.join(tempDir('bound'), 'out'), flag, '0']);
      assertOneLine(r, 2, new RegExp(`^medrep: medrep run: ${flag} must be above 0, got 0$`));
    }
  });

  it('`medrep help` lists every option of every command', () => {
    const r = medrep(['help']);
    assert.equal(r.status, 0);
    for (const o of ['--omop', '--persons', '--no-experiment', '--inject-errors', '--rows-per-message', '--from-offsets', '--verify', '--retention-ms', '--group', '--text-epochs', '--npy', '--follow', '--omop-a', '--repeat', '--with-medtok', '--codebook-size', '--per-person', '--endpoint-model']) {
      assert.ok(r.stdout.includes(o), `${o} listed`);
    }
  });
});
