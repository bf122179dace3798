// The help texts, all printed from the commands' declarations: `medrep X --help` and
// `medrep help X` are the same text, and `medrep help` is every command's.
import type { Command } from './command';
import { optionLines } from './options';

const TITLE = 'medrep: OMOP CDM to EHR foundation-model training data';

const NOTES = `--out folders: medrep writes only into an empty folder or one it wrote (manifest.json or
.medrep-output.json); an earlier complete output is replaced only with --force; one run at a time.
exit codes: 0 done, 1 internal error, 2 user error (options, input, --out), 3 environment (disk
full, permission, Kafka broker unreachable), 4 replay mismatch, 5 stopped by a signal (the
stream's manifest says "complete": false).`;

const synopsisLine = (c: Command) => `medrep ${c.name}${c.synopsis ? ` ${c.synopsis}` : ''}`;

/** One command: its synopsis, what it does, and every option of its table. */
export function commandHelp(c: Command): string {
  const options = optionLines(c.options);
  return [
    `  ${synopsisLine(c)}`,
    `    ${c.summary}`,
    '  options:',
    ...(options.length ? options.map((l) => `    ${l}`) : ['    (none)']),
  ].join('\n');
}

/** The commands in brief, the notes, then every command's help. */
export function fullHelp(commands: readonly Command[]): string {
  const brief = commands.map((c) => `  ${synopsisLine(c)}\n      ${c.summary}`);
  return [
    TITLE,
    '',
    ...brief,
    '  medrep help [COMMAND]\n      this text, or the options of one command (as medrep COMMAND --help)',
    '',
    NOTES,
    '',
    'every option of every command:',
    '',
    commands.map(commandHelp).join('\n\n'),
  ].join('\n');
}
