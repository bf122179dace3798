// The `medrep` command line: finds the command of the first words, parses its options against its
// table and runs it. Every error ends with one line on stderr and the exit code of its kind
// (common/errors.ts EXIT: 2 user, 3 environment, 1 internal); MEDREP_DEBUG=1 adds the stack.
import { classifyError, UserError } from '../common/errors';
import { analyzeCommand } from './analyze';
import { benchCommand } from './bench';
import type { Command } from './command';
import { demoCommand } from './demo';
import { experimentCommand } from './experiment';
import { commandHelp, fullHelp } from './help';
import { importRepresentationsCommand } from './importRepresentations';
import { wantsHelp } from './options';
import { produceCommand } from './produce';
import { replayCommand } from './replay';
import { reportCommand } from './report';
import { runCommand } from './run';
import { statusCommand } from './status';
import { streamCommand } from './stream';
import { synthCommand } from './synth';
import { topicsCommand } from './topics';
import { trainEhrCommand } from './trainEhr';
import { trainRepresentationsCommand } from './trainRepresentations';

/** Every command, in the order of the help. */
export const COMMANDS: readonly Command[] = [
  demoCommand, runCommand, synthCommand, benchCommand, trainRepresentationsCommand, trainEhrCommand, experimentCommand,
  reportCommand, analyzeCommand, importRepresentationsCommand, topicsCommand, statusCommand, produceCommand, streamCommand, replayCommand,
];

/** The command the first words name, and the words after them. */
export function findCommand(argv: readonly string[]): { command: Command; rest: string[] } | null {
  for (const words of [2, 1]) {
    const command = COMMANDS.find((c) => c.name === argv.slice(0, words).join(' '));
    if (command) return { command, rest: argv.slice(words) };
  }
  return null;
}

/** A command word that only starts two-word commands (`train` -> representations, ehr). */
function groupError(word: string, next: string | undefined): UserError | null {
  const subs = COMMANDS.filter((c) => c.name.startsWith(`${word} `)).map((c) => `"${c.name.slice(word.length + 1)}"`);
  if (subs.length === 0) return null;
  return new UserError(`medrep ${word}: expected ${subs.join(' or ')}, got "${next ?? ''}"`);
}

/** The help of a command, or of every command of a group (`train` -> train representations, train ehr). */
function helpFor(words: readonly string[]): string | null {
  const found = findCommand(words);
  if (found) return commandHelp(found.command);
  const group = COMMANDS.filter((c) => c.name.startsWith(`${words[0]} `));
  return group.length ? group.map(commandHelp).join('\n\n') : null;
}

/** The help a command line asks for (`help`, `help X`, `X --help`), or null when it asks for none. */
export function helpText(argv: readonly string[]): string | null {
  if (argv.length === 0 || (argv[0] === 'help' && argv.length === 1)) return fullHelp(COMMANDS);
  if (argv[0] === 'help') {
    const help = helpFor(argv.slice(1));
    if (help === null) throw new UserError(`medrep help: unknown command "${argv.slice(1).join(' ')}" (medrep help lists the commands)`);
    return help;
  }
  return wantsHelp(argv) ? helpFor(argv) : null;
}

/** Runs one command line (the words after `medrep`); errors are thrown, not printed. */
export async function runCommandLine(argv: readonly string[]): Promise<void> {
  const help = helpText(argv);
  if (help !== null) {
    process.stdout.write(help + '\n');
    return;
  }
  const found = findCommand(argv);
  if (!found) throw groupError(argv[0], argv[1]) ?? new UserError(`unknown command "${argv[0]}" (medrep help lists the commands)`);
  await found.command.execute(found.rest);
}

export async function main(argv: string[]): Promise<void> {
  try {
    await runCommandLine(argv);
  } catch (e) {
    const { line, exitCode } = classifyError(e);
    process.stderr.write(`medrep: ${line}\n`);
    if (process.env.MEDREP_DEBUG === '1' && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    process.exitCode = exitCode;
  }
}
