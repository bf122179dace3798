// The docs and the option tables agree: every flag a doc names after `medrep <command>` is in that
// command's table, every other flag the docs name is in some command's table (or is another
// program's, listed below with its program), and every table flag is in `medrep help <command>`.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { COMMANDS, findCommand, helpText } from '../../cli';

const ROOT = path.resolve(__dirname, '../../..');
const DOCS = ['README.md', 'ARCHITECTURE.md', 'runners/kafka/README.md', 'synth/README.md', 'tasks/README.md', 'trainers/behrt/README.md', 'transforms/labels/README.md'];

/** Flags of other programs that the docs name, with the program. */
const OTHER_PROGRAMS: Record<string, string> = {
  'cpu-prof': 'node (a CPU profile of a medrep run)',
  'paper-len': 'the benchmark harness dist/bench/behrt.js',
  'no-pipelined': 'the benchmark harness dist/bench/kafka.js',
  workers: 'the benchmark harness dist/bench/kafka.js',
  'stage-profile': 'the benchmark harness dist/bench/kafka.js',
  result: 'the benchmark harness dist/bench/kafka.js',
  keep: 'the benchmark harness dist/bench/kafka.js',
  quick: 'the benchmark harness dist/bench/representationsQuality.js',
  table: 'the benchmark harness dist/bench/representationsQuality.js',
};

const FLAG = /(?<![\w-])--([a-z][a-z0-9-]*)/g;

/** The code of a Markdown file: fenced blocks line by line and inline code spans, with their line numbers. */
function codeOf(text: string): { line: number; code: string }[] {
  const out: { line: number; code: string }[] = [];
  let fenced = false;
  text.split('\n').forEach((l, i) => {
    if (/^\s*```/.test(l)) fenced = !fenced;
    else if (fenced) out.push({ line: i + 1, code: l });
    else for (const m of l.matchAll(/`([^`]+)`/g)) out.push({ line: i + 1, code: m[1] });
  });
  return out;
}

describe('cli docs: the flags the docs name are the flags the commands take', () => {
  const docs = DOCS.map((f) => ({ file: f, text: fs.readFileSync(path.join(ROOT, f), 'utf8') }));
  const anyTable = new Set(COMMANDS.flatMap((c) => Object.keys(c.options)));

  it('each flag written after `medrep <command>` in the docs\' code is in that command\'s table', () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const { file, text } of docs) {
      for (const { line, code } of codeOf(text)) {
        // One segment per command named: `medrep produce ... && medrep stream ...`.
        for (const segment of code.split(/(?=\bmedrep [a-z])/)) {
          const m = /^medrep ([a-z-]+)(?: ([a-z-]+))?/.exec(segment);
          const found = m && findCommand([m[1], m[2] ?? '']);
          if (!found) continue;
          for (const f of segment.matchAll(FLAG)) {
            checked++;
            if (f[1] !== 'help' && !(f[1] in found.command.options)) wrong.push(`${file}:${line}: medrep ${found.command.name} has no --${f[1]}`);
          }
        }
      }
    }
    assert.deepEqual(wrong, []);
    assert.ok(checked > 100, `flags checked: ${checked}`);
  });

  it('every other flag the docs name is in some command\'s table, or is another program\'s', () => {
    const wrong: string[] = [];
    for (const { file, text } of docs) {
      text.split('\n').forEach((l, i) => {
        for (const f of l.matchAll(FLAG)) if (f[1] !== 'help' && !anyTable.has(f[1]) && !OTHER_PROGRAMS[f[1]]) wrong.push(`${file}:${i + 1}: --${f[1]}`);
      });
    }
    assert.deepEqual(wrong, []);
    const named = new Set(docs.flatMap((d) => [...d.text.matchAll(FLAG)].map((f) => f[1])));
    for (const other of Object.keys(OTHER_PROGRAMS)) assert.ok(named.has(other), `--${other} is still named by a doc (else drop it from OTHER_PROGRAMS)`);
  });

  it('every flag of every table is in `medrep help <command>`', () => {
    for (const c of COMMANDS) {
      const help = helpText(['help', ...c.name.split(' ')])!;
      for (const flag of Object.keys(c.options)) assert.match(help, new RegExp(`^    --${flag}(\\s|$)`, 'm'), `${c.name} --${flag}`);
    }
  });
});
