// The doc check: the README's commands run, so the docs cannot drift from the code. Every fenced
// block of README.md carries a language; each `sh` block's commands are run in order on small
// data (placeholders such as DIR, OUT, LOCAL become a small synthetic hospital and temporary
// folders; Kafka commands get this run's broker and a topic prefix of their own). A command with
// no rule below fails the check: give it a small-data variant or an exclusion with its reason.
// The BEHRT README's `medrep train ehr` and `medrep experiment external` lines may name only the
// flags their parsers take.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorLine, medrep } from '../helpers/cli';
import { tempDir } from '../helpers';
import { BROKERS, testKafka, uniquePrefix } from '../helpers/kafka';
import { experimentCommand } from '../../cli/experiment';
import { trainEhrCommand } from '../../cli/trainEhr';

const ROOT = path.resolve(__dirname, '../../..');

export interface FencedBlock {
  lang: string;
  /** 1-based line of the opening fence. */
  line: number;
  lines: string[];
}

export function fencedBlocks(markdown: string): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  let open: FencedBlock | null = null;
  markdown.split('\n').forEach((text, i) => {
    const fence = /^\s*```(\S*)\s*$/.exec(text);
    if (fence && !open) open = { lang: fence[1], line: i + 1, lines: [] };
    else if (fence && open) {
      blocks.push(open);
      open = null;
    } else if (open) open.lines.push(text);
  });
  return blocks;
}

/** The commands of a shell block: continuation lines joined, comments dropped, `a && b` split. */
export function commandsOf(block: FencedBlock): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let pending = '';
  let start = 0;
  block.lines.forEach((raw, i) => {
    const text = raw.replace(/(^|\s)#.*$/, '').trimEnd();
    if (!pending) start = block.line + 1 + i;
    if (text.endsWith('\\')) {
      pending += text.slice(0, -1) + ' ';
      return;
    }
    const whole = (pending + text).trim();
    pending = '';
    for (const part of whole.split(/\s+&&\s+/)) if (part) out.push({ line: start, text: part.trim() });
  });
  return out;
}

type Rule = { match: RegExp; exclude: string } | { match: RegExp; variant: (words: string[], scratch: string) => string[]; why: string };

const RULES: Rule[] = [
  { match: /^npm (install|ci)\b/, exclude: 'installs the dependencies from the registry; CI runs it (npm ci in .ci/run) before npm test' },
  { match: /^npm test\b/, exclude: 'npm test is the command that runs this check' },
  {
    match: /^npx medrep demo\b/,
    variant: (w, scratch) => [...w.slice(2), '--out', path.join(scratch, 'demo'), '--persons', '120', '--no-experiment'],
    why: 'the demo on 120 persons, into a test folder, without its closing experiment (that runs in test/experiments/experiment.test.ts and test/report/report.test.ts)',
  },
  { match: /^medrep /, variant: (w) => w.slice(1), why: 'as written, on a 40-person synthetic hospital' },
];

/** Placeholders (DIR, OUT, LOCAL/artifacts ...) become real paths; Kafka commands get this run's broker and topics. */
function substitute(words: string[], omop: string, scratch: string, topicPrefix: string): string[] {
  const out = words.map((w) => {
    const m = /^([A-Z][A-Z_]*)(\/.*)?$/.exec(w);
    if (!m) return w;
    return m[1] === 'DIR' ? omop + (m[2] ?? '') : path.join(scratch, m[1]) + (m[2] ?? '');
  });
  const b = out.indexOf('--brokers');
  if (b >= 0) {
    out[b + 1] = BROKERS;
    out.push('--topic-prefix', topicPrefix);
  }
  return out;
}

/** Removes the topics the Kafka commands made under this run's prefix. */
async function deleteTopics(prefix: string): Promise<void> {
  const admin = testKafka('doc-check').admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length) await admin.deleteTopics({ topics });
  } finally {
    await admin.disconnect();
  }
}

describe('doc check: the README\'s commands run as written (on small data)', function () {
  this.timeout(15 * 60_000);
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = fencedBlocks(readme);
  const topicPrefix = uniquePrefix();
  after(() => deleteTopics(topicPrefix));

  it('every fenced block of README.md names its language (sh blocks are run, text blocks are not commands)', () => {
    const untagged = blocks.filter((b) => !b.lang).map((b) => `README.md:${b.line}`);
    assert.deepEqual(untagged, [], 'tag these blocks sh (commands, run here) or text');
    assert.ok(blocks.some((b) => b.lang === 'sh'));
  });

  it('runs every command of every sh block, in order, each exiting 0 (or excluded with its reason)', async () => {
    const scratch = tempDir('doc-check');
    const omop = path.join(scratch, 'omop');
    assert.equal(medrep(['synth', '--persons', '40', '--seed', '11', '--out', omop]).status, 0);
    const ran: string[] = [];
    for (const block of blocks.filter((b) => b.lang === 'sh' || b.lang === 'bash')) {
      for (const c of commandsOf(block)) {
        const rule = RULES.find((r) => r.match.test(c.text));
        assert.ok(rule, `README.md:${c.line}: \`${c.text}\` has no rule in test/cli/docCheck.test.ts (add a small-data variant, or an exclusion with its reason)`);
        if ('exclude' in rule) {
          process.stdout.write(`      excluded README.md:${c.line} \`${c.text}\`: ${rule.exclude}\n`);
          continue;
        }
        const args = substitute(rule.variant(c.text.split(/\s+/), scratch), omop, scratch, topicPrefix);
        process.stdout.write(`      README.md:${c.line} \`${c.text}\`: ${rule.why}\n`);
        const r = medrep(args, { timeout: 10 * 60_000 });
        assert.equal(r.status, 0, `README.md:${c.line}: \`${c.text}\` (run as medrep ${args.join(' ')}) exited ${r.status}:\n${r.stderr.slice(-2000)}`);
        ran.push(c.text);
      }
    }
    assert.ok(ran.some((t) => t.startsWith('medrep stream')), 'the Kafka commands ran');
  });

  it('trainers/behrt/README.md names only flags that medrep train ehr and medrep experiment external take, and lists all of them; train ehr refuses others', () => {
    const text = fs.readFileSync(path.join(ROOT, 'trainers/behrt/README.md'), 'utf8');
    const parsers: Record<string, Set<string>> = {
      'train ehr': new Set(Object.keys(trainEhrCommand.options)),
      'experiment external': new Set(Object.keys(experimentCommand.options)),
    };
    const wrong: string[] = [];
    text.split('\n').forEach((line, i) => {
      for (const [command, known] of Object.entries(parsers)) {
        const at = line.indexOf(`medrep ${command}`);
        if (at < 0) continue;
        for (const m of line.slice(at).matchAll(/--([a-z][a-z0-9-]*)/g)) if (!known.has(m[1]) && m[1] !== 'help') wrong.push(`line ${i + 1}: ${command} --${m[1]}`);
      }
    });
    assert.deepEqual(wrong, []);
    // A flag the parser does not take is refused, not ignored (a mistyped --epoch must not train 30 epochs).
    const typo = medrep(['train', 'ehr', '--shards', tempDir('typo'), '--task', 'mortality', '--epoch', '1']);
    assert.equal(typo.status, 2);
    assert.match(errorLine(typo), /^medrep: medrep train ehr: unknown option --epoch \(options: --shards --task /);
    // The README's lists of each command's flags are the parsers' sets.
    const flat = text.replace(/\s+/g, ' ');
    for (const [command, known] of Object.entries(parsers)) {
      const m = new RegExp(`\`${command}\` takes exactly the flags of \`medrep ${command} --help\`[^:]*: \`([^\`]+)\``).exec(flat);
      assert.ok(m, `the README lists the flags of ${command}`);
      assert.deepEqual(m[1].split(' ').map((f) => f.replace(/^--/, '')).sort(), [...known].sort(), command);
    }
  });
});
