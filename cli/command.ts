// A command of `medrep`: its words, its synopsis and summary for the help, its option table, and
// a typed run. The option table is the only place a flag is declared: the parser reads it and the
// help prints it (cli/help.ts).
import { OptionTable, Options, parseOptions, Positionals } from './options';

export interface CommandSpec<T extends OptionTable> {
  /** The words after `medrep`: "run", "train ehr". */
  name: string;
  /** What follows the name in the synopsis line: "--omop DIR|FILE.duckdb --out DIR ...". */
  synopsis: string;
  /** One or two lines: what the command does. */
  summary: string;
  options: T;
  positionals?: Positionals;
  run(options: Options<T>, positional: string[]): Promise<void>;
}

/** A declared command, with the option table typed away: what the dispatcher and the help need. */
export interface Command {
  name: string;
  synopsis: string;
  summary: string;
  options: OptionTable;
  positionals?: Positionals;
  /** Parses the words after the command's name and runs it. */
  execute(argv: readonly string[]): Promise<void>;
}

export function defineCommand<const T extends OptionTable>(spec: CommandSpec<T>): Command {
  return {
    name: spec.name,
    synopsis: spec.synopsis,
    summary: spec.summary,
    options: spec.options,
    positionals: spec.positionals,
    execute: async (argv) => {
      const p = parseOptions(`medrep ${spec.name}`, spec.options, argv, spec.positionals);
      await spec.run(p.options, p.positional);
    },
  };
}
