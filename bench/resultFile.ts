// Where a benchmark leaves its numbers: bench/results/<file> in the repository (beside the
// sources, not in dist/), stamped with the date and the Node version that produced them.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Writes `result` (its `benchmark` name first, then date and node) as JSON; returns the path. */
export function writeBenchResult(file: string, result: { benchmark: string } & Record<string, unknown>): string {
  const out = path.join(__dirname, '..', '..', 'bench', 'results', file);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const { benchmark, ...rest } = result;
  fs.writeFileSync(out, JSON.stringify({ benchmark, date: new Date().toISOString(), node: process.version, ...rest }, null, 2) + '\n');
  return out;
}
