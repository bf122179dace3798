// The option parser of every command (cli/options.ts) and the help printed from the same tables.
import { strict as assert } from 'node:assert';
import { COMMANDS, findCommand, helpText, runCommandLine } from '../../cli';
import { commandHelp, fullHelp } from '../../cli/help';
import { Options, parseOptions } from '../../cli/options';
import { classifyError, EXIT, UserError } from '../../common/errors';

const TABLE = {
  out: { type: 'string', value: 'DIR', required: true, help: 'output folder' },
  vocab: { type: 'string', required: true, help: 'vocabulary' },
  'max-events': { type: 'int', above: 0, help: 'events per window' },
  rate: { type: 'number', atLeast: 0, default: 1.5, help: 'a rate' },
  format: { type: 'enum', values: ['csv', 'parquet'], default: 'csv', help: 'format' },
  site: { type: 'enum', values: ['A', 'B', 'C'], help: 'site' },
  seeds: { type: 'list', items: 'int', help: 'seeds' },
  tasks: { type: 'list', help: 'tasks' },
  group: { type: 'string', repeatable: true, help: 'a group' },
  force: { type: 'bool', help: 'replace' },
} as const;

const parse = (argv: string[]) => parseOptions('medrep x', TABLE, argv).options;
const BASE = ['--out', 'o', '--vocab', 'v'];

/** The one line a command line fails with, as `medrep` prints it, and its exit code. */
function failure(f: () => unknown): { line: string; exitCode: number } {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof UserError, String(e));
    return classifyError(e);
  }
  assert.fail('no error');
}

describe('cli options: one parser from the declared tables', () => {
  it('gives typed options: camelCase keys, defaults, switches false when absent, repeatables as lists', () => {
    const o = parse([...BASE, '--max-events=64', '--seeds', '1, 2,3', '--tasks', 'a,b', '--group', 'g1', '--group', 'g2', '--force']);
    // Compile-time types, checked by tsc: the declared type of each option.
    const typed: { out: string; maxEvents?: number; rate: number; format: 'csv' | 'parquet'; seeds?: number[]; group: string[]; force: boolean } = o;
    assert.deepEqual(typed, { out: 'o', vocab: 'v', maxEvents: 64, seeds: [1, 2, 3], tasks: ['a', 'b'], group: ['g1', 'g2'], force: true, rate: 1.5, format: 'csv' });
    assert.deepEqual(parse([...BASE, '--force=false', '--format', 'parquet']), { out: 'o', vocab: 'v', force: false, group: [], rate: 1.5, format: 'parquet' });
    // @ts-expect-error an option the table does not declare is not a key of the options
    assert.equal(o.maxEvent, undefined);
    const site: Options<typeof TABLE>['site'] = 'C';
    assert.equal(site, 'C');
  });

  it('refuses an unknown flag, a missing value, a bad number or choice: one line naming the command and the flag, exit 2', () => {
    const cases: [string[], string][] = [
      [[...BASE, '--bogus'], 'medrep x: unknown option --bogus (options: --out --vocab --max-events --rate --format --site --seeds --tasks --group --force)'],
      [[...BASE, '--max-events'], 'medrep x: --max-events needs a value'],
      [[...BASE, '--max-events', '--force'], 'medrep x: --max-events needs a value'],
      [[...BASE, '--max-events', '2.5'], 'medrep x: --max-events must be an integer, got "2.5"'],
      [[...BASE, '--max-events', 'ten'], 'medrep x: --max-events must be an integer, got "ten"'],
      [[...BASE, '--max-events', '0'], 'medrep x: --max-events must be above 0, got 0'],
      [[...BASE, '--rate', '-1'], 'medrep x: --rate must be at least 0, got -1'],
      [[...BASE, '--rate', 'fast'], 'medrep x: --rate must be a number, got "fast"'],
      [[...BASE, '--format', 'xlsx'], 'medrep x: --format must be csv or parquet, got "xlsx"'],
      [[...BASE, '--site', 'D'], 'medrep x: --site must be one of A, B, C, got "D"'],
      [[...BASE, '--seeds', '1,x'], 'medrep x: --seeds must be an integer, got "x"'],
      [[...BASE, '--out', 'p'], 'medrep x: --out given twice (it takes one value)'],
      [[...BASE, 'stray'], 'medrep x: unexpected argument "stray" (medrep x --help lists its options)'],
      [['--out', 'o'], 'medrep x: --out and --vocab are required (missing --vocab)'],
    ];
    for (const [argv, line] of cases) assert.deepEqual(failure(() => parse(argv)), { line, exitCode: EXIT.user }, argv.join(' '));
  });

  it('a command line of medrep: the command named by its first words, its table checked before anything runs', async () => {
    assert.equal(findCommand(['train', 'ehr', '--task', 'x'])?.command.name, 'train ehr');
    assert.deepEqual(findCommand(['run', '--out', 'o'])?.rest, ['--out', 'o']);
    const rejected = async (argv: string[]) => {
      const e = await runCommandLine(argv).then(() => null, (x: unknown) => x);
      assert.ok(e instanceof UserError, `${argv.join(' ')}: ${String(e)}`);
      return e.message;
    };
    assert.equal(await rejected(['run', '--out', 'o', '--max-event', '3']), `medrep run: unknown option --max-event (options: ${Object.keys(findCommand(['run'])!.command.options).map((f) => `--${f}`).join(' ')})`);
    assert.equal(await rejected(['stream', '--out', 'o', '--vocab', 'v', '--shard-max-mb', '0']), 'medrep stream: --shard-max-mb must be above 0, got 0');
    assert.equal(await rejected(['produce', '--omop', 'x', '--markers', 'some']), 'medrep produce: --markers must be end-of-load or none, got "some"');
    assert.equal(await rejected(['train']), 'medrep train: expected "representations" or "ehr", got ""');
    assert.equal(await rejected(['experiment', 'internal']), 'medrep experiment: expected "external", got "internal"');
    assert.equal(await rejected(['frobnicate']), 'unknown command "frobnicate" (medrep help lists the commands)');
    assert.equal(await rejected(['report']), 'medrep report: give OUT (medrep report OUT)');
  });

  it('`medrep X --help` and `-h` print what `medrep help X` prints, for every command', () => {
    for (const c of COMMANDS) {
      const words = c.name.split(' ');
      const help = helpText(['help', ...words]);
      assert.equal(help, commandHelp(c));
      assert.equal(helpText([...words, '--help']), help, c.name);
      assert.equal(helpText([...words, '--out', 'x', '-h']), help, c.name);
    }
    assert.equal(helpText(['help']), fullHelp(COMMANDS));
    assert.equal(helpText([]), fullHelp(COMMANDS));
    assert.equal(helpText(['run', '--out', 'o']), null);
    assert.equal(helpText(['help', 'train']), helpText(['train', '--help']));
    assert.match(helpText(['train', '-h'])!, /^  medrep train representations [^]*\n\n  medrep train ehr /);
    assert.throws(() => helpText(['help', 'nothing']), /^UserError: medrep help: unknown command "nothing"/);
  });

  it('every command\'s table renders: each flag with its value, default and whether it is required, in its help and in medrep help', () => {
    const all = fullHelp(COMMANDS);
    for (const c of COMMANDS) {
      const help = commandHelp(c);
      assert.ok(help.startsWith(`  medrep ${c.name}`), help);
      assert.ok(all.includes(help), `medrep help holds the help of ${c.name}`);
      const lines = help.split('\n').slice(3);
      assert.equal(lines.length, Math.max(1, Object.keys(c.options).length), c.name);
      Object.entries(c.options).forEach(([flag, spec], i) => {
        assert.match(lines[i], new RegExp(`^    --${flag}(\\s|$)`), `${c.name}: ${lines[i]}`);
        assert.ok(lines[i].includes(spec.help), `${c.name} --${flag}: its help text`);
        assert.equal(lines[i].includes('required'), spec.required === true || spec.help.includes('required'), `${c.name} --${flag}: required`);
        if ('default' in spec && spec.default !== undefined) assert.ok(lines[i].includes('default '), `${c.name} --${flag}: its default`);
      });
    }
    const run = commandHelp(findCommand(['run'])!.command);
    assert.match(run, /^    --out DIR +output folder \(empty, or one medrep wrote\) \(required\)$/m);
    assert.match(commandHelp(findCommand(['synth'])!.command), /^    --format csv\|parquet +table file format \(default csv\)$/m);
  });
});
