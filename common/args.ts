// A small flag parser: --name value, --flag, and positional words. Unknown flags are errors.
import { UserError } from './errors';

export interface FlagSpec {
  [name: string]: 'string' | 'number' | 'boolean';
}

export interface Parsed {
  positional: string[];
  flags: Record<string, string | number | boolean | undefined>;
}

export function parseArgs(argv: string[], spec: FlagSpec, command: string): Parsed {
  const flags: Parsed['flags'] = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split('=', 2);
    const type = spec[name];
    if (!type) throw new UserError(`${command}: unknown option --${name} (options: ${Object.keys(spec).map((k) => '--' + k).join(' ')})`);
    if (type === 'boolean') {
      flags[name] = inline === undefined ? true : inline !== 'false';
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UserError(`${command}: --${name} needs a value`);
    if (type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new UserError(`${command}: --${name} must be a number, got "${value}"`);
      flags[name] = n;
    } else flags[name] = value;
  }
  return { positional, flags };
}

export function requireFlag(p: Parsed, name: string, command: string): string {
  const v = p.flags[name];
  if (v === undefined || v === '') throw new UserError(`${command}: --${name} is required`);
  return String(v);
}

/** `--help` or `-h` anywhere among a command's arguments. */
export function wantsHelp(argv: string[]): boolean {
  return argv.some((a) => a === '--help' || a === '-h');
}

/** One line per option of a spec: `--name N`, `--name VALUE`, or `--name` for a switch. */
export function optionLines(spec: FlagSpec): string[] {
  return Object.entries(spec).map(([name, type]) => `--${name}${type === 'number' ? ' N' : type === 'string' ? ' VALUE' : ''}`);
}
