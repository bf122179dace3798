// One option parser for every command: argv is checked against the command's declared option
// table and comes back as typed options (camelCase keys: --max-events -> maxEvents). A bad flag
// is a UserError of one line naming the command and the flag (exit 2). The same tables render
// `medrep X --help` and `medrep help`, so the help cannot drift from what the parser takes.
import { UserError } from '../common/errors';

interface Base {
  /** One line: what the option does. */
  help: string;
  /** The placeholder in the help (`--out DIR`); a default by type otherwise. */
  value?: string;
  required?: boolean;
  /** Given several times, its values are collected in order. */
  repeatable?: boolean;
}

/** Bounds of a numeric option; the error says "must be above 0" / "must be at least 1". */
interface Bounds {
  above?: number;
  atLeast?: number;
}

export type OptionSpec =
  | (Base & { type: 'string'; default?: string })
  | (Base & Bounds & { type: 'int'; default?: number })
  | (Base & Bounds & { type: 'number'; default?: number })
  | (Base & { type: 'bool' })
  | (Base & { type: 'list'; items?: 'string'; default?: readonly string[] })
  | (Base & { type: 'list'; items: 'int' | 'number'; default?: readonly number[] })
  | (Base & { type: 'enum'; values: readonly string[]; default?: string });

export type OptionTable = Record<string, OptionSpec>;

/** Words after the command that are not flags (`medrep report OUT`). */
export interface Positionals {
  /** Their placeholder in the synopsis, e.g. "OUT". */
  name: string;
  min: number;
  max: number;
}

/** `max-events` -> `maxEvents`. */
type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;

type One<S> = S extends { type: 'string' } ? string
  : S extends { type: 'int' | 'number' } ? number
    : S extends { type: 'bool' } ? boolean
      : S extends { type: 'list'; items: 'int' | 'number' } ? number[]
        : S extends { type: 'list' } ? string[]
          : S extends { type: 'enum'; values: readonly (infer V)[] } ? V
            : never;
type Value<S> = S extends { repeatable: true } ? One<S>[] : One<S>;
/** Always present after parsing: switches (false when absent), repeatables ([]), required options and those with a default. */
type Always<S> = S extends { type: 'bool' } ? true
  : S extends { repeatable: true } ? true
    : S extends { required: true } ? true
      : S extends { default: unknown } ? true
        : false;

export type Options<T extends OptionTable> =
  { [K in keyof T & string as Always<T[K]> extends true ? Camel<K> : never]: Value<T[K]> }
  & { [K in keyof T & string as Always<T[K]> extends true ? never : Camel<K>]?: Value<T[K]> };

export interface Parsed<T extends OptionTable> {
  options: Options<T>;
  positional: string[];
}

export const camel = (flag: string): string => flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** "a", "a or b", "a, b or c". */
export function orList(words: readonly string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
}
const andList = (words: readonly string[]) => (words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`);

/** `--help` or `-h` anywhere among a command's arguments. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--help' || a === '-h');
}

function numberOf(command: string, flag: string, spec: Bounds & { type: 'int' | 'number' }, text: string): number {
  const n = text.trim() === '' ? NaN : Number(text);
  if (!(spec.type === 'int' ? Number.isInteger(n) : Number.isFinite(n))) throw new UserError(`${command}: --${flag} must be ${spec.type === 'int' ? 'an integer' : 'a number'}, got "${text}"`);
  if (spec.above !== undefined && !(n > spec.above)) throw new UserError(`${command}: --${flag} must be above ${spec.above}, got ${text}`);
  if (spec.atLeast !== undefined && !(n >= spec.atLeast)) throw new UserError(`${command}: --${flag} must be at least ${spec.atLeast}, got ${text}`);
  return n;
}

function valueOf(command: string, flag: string, spec: OptionSpec, text: string): unknown {
  switch (spec.type) {
    case 'string':
      return text;
    case 'int':
    case 'number':
      return numberOf(command, flag, spec, text);
    case 'enum': {
      if (!spec.values.includes(text)) {
        const allowed = spec.values.length === 2 ? orList(spec.values) : `one of ${spec.values.join(', ')}`;
        throw new UserError(`${command}: --${flag} must be ${allowed}, got "${text}"`);
      }
      return text;
    }
    case 'list': {
      const items = text.split(',').map((x) => x.trim()).filter(Boolean);
      const numeric = spec.items;
      return numeric === 'int' || numeric === 'number' ? items.map((x) => numberOf(command, flag, { type: numeric }, x)) : items;
    }
    case 'bool':
      return text !== 'false';
  }
}

/**
 * Checks `argv` (the words after the command) against `table`. Flags are `--name value`,
 * `--name=value`, or `--name` alone for a switch (`--name=false` turns it off).
 */
export function parseOptions<const T extends OptionTable>(command: string, table: T, argv: readonly string[], positionals?: Positionals): Parsed<T> {
  const out: Record<string, unknown> = {};
  const positional: string[] = [];
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (!word.startsWith('--')) {
      if (!positionals || positional.length >= positionals.max) throw new UserError(`${command}: unexpected argument "${word}" (${command} --help lists its options)`);
      positional.push(word);
      continue;
    }
    const eq = word.indexOf('=');
    const flag = eq < 0 ? word.slice(2) : word.slice(2, eq);
    const inline = eq < 0 ? undefined : word.slice(eq + 1);
    const spec = table[flag];
    if (!spec) throw new UserError(`${command}: unknown option --${flag} (options: ${Object.keys(table).map((k) => `--${k}`).join(' ')})`);
    if (given.has(flag) && !spec.repeatable) throw new UserError(`${command}: --${flag} given twice (it takes one value)`);
    given.add(flag);
    let text = inline;
    if (text === undefined && spec.type !== 'bool') {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UserError(`${command}: --${flag} needs a value`);
      text = next;
      i++;
    }
    const value = spec.type === 'bool' && text === undefined ? true : valueOf(command, flag, spec, text!);
    const key = camel(flag);
    if (spec.repeatable) out[key] = [...((out[key] as unknown[] | undefined) ?? []), value];
    else out[key] = value;
  }
  const missing = Object.entries(table).filter(([flag, s]) => s.required && !given.has(flag)).map(([flag]) => `--${flag}`);
  if (missing.length) {
    const required = Object.entries(table).filter(([, s]) => s.required).map(([flag]) => `--${flag}`);
    throw new UserError(required.length === 1 ? `${command}: ${required[0]} is required` : `${command}: ${andList(required)} are required (missing ${missing.join(', ')})`);
  }
  if (positionals && positional.length < positionals.min) throw new UserError(`${command}: give ${positionals.name} (${command} ${positionals.name})`);
  for (const [flag, s] of Object.entries(table)) {
    const key = camel(flag);
    if (key in out) continue;
    if (s.type === 'bool') out[key] = false;
    else if (s.repeatable) out[key] = [];
    else if (s.default !== undefined) out[key] = Array.isArray(s.default) ? [...s.default] : s.default;
  }
  return { options: out as Options<T>, positional };
}

/** The placeholder of an option's value in the help: `N`, `X`, `a|b`, `a,b`, or the declared one. */
function placeholder(spec: OptionSpec): string {
  if (spec.value) return spec.value;
  switch (spec.type) {
    case 'bool': return '';
    case 'int': return 'N';
    case 'number': return 'N';
    case 'enum': return spec.values.join('|');
    case 'list': return spec.items === 'int' || spec.items === 'number' ? 'N,N' : 'A,B';
    case 'string': return 'VALUE';
  }
}

/** One line per option: `--name VALUE   help (required) (default: x) (repeatable)`. */
export function optionLines(table: OptionTable): string[] {
  const heads = Object.entries(table).map(([flag, s]) => `--${flag}${placeholder(s) ? ` ${placeholder(s)}` : ''}`);
  const width = Math.min(34, Math.max(0, ...heads.map((h) => h.length)) + 2);
  return Object.values(table).map((s, i) => {
    const notes = [
      s.required ? 'required' : '',
      'default' in s && s.default !== undefined ? `default ${Array.isArray(s.default) ? s.default.join(',') : String(s.default)}` : '',
      s.repeatable ? 'repeatable' : '',
    ].filter(Boolean);
    const head = heads[i].length + 2 > width ? `${heads[i]}  ` : heads[i].padEnd(width);
    return `${head}${s.help}${notes.length ? ` (${notes.join('; ')})` : ''}`;
  });
}
