#!/usr/bin/env node
// Import-direction check (`npm run check:imports`, and the first step of `npm test`): reads every
// .ts file's relative imports and fails, naming file:line, when a module imports one of a higher
// layer; it also fails when a test file is in no suite of scripts/test-suites.mjs or outside the
// folder that mirrors what it tests (test/X/ for X/), or a helper is outside test/helpers/. A module may
// import its own layer and any lower one. The layer table is the one in ARCHITECTURE.md; keep the
// two the same.
//
//   node scripts/check-imports.mjs          # exit 0: clean; exit 1: one line per problem
//   node scripts/check-imports.mjs DIR      # the imports of another tree laid out the same way
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { classificationProblems } from './test-suites.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = process.argv[2] ? path.resolve(process.argv[2]) : REPO;

// Lowest first. A file belongs to the first entry whose prefix its repository path starts with, so
// single files named ahead of their folder take precedence over it.
const LAYERS = [
  { layer: 0, name: 'leaf', prefixes: ['schemas/', 'common/'] },
  { layer: 1, name: 'transforms', prefixes: ['transforms/'] },
  { layer: 2, name: 'sinks', prefixes: ['sinks/', 'figures/'] },
  // Readers of OMOP, MEDS, vocabulary, task and artifact files; the synthetic generator sits beside
  // them: it writes what they read and imports neither runners nor trainers.
  { layer: 3, name: 'sources', prefixes: ['sources/', 'synth/'] },
  // report.html is drawn from an output folder's files; both runners write it at the end of a run.
  { layer: 4, name: 'report', prefixes: ['report/'] },
  { layer: 5, name: 'runners', prefixes: ['runners/'] },
  { layer: 6, name: 'trainers', prefixes: ['trainers/'] },
  // Jobs over runners and trainers together: the external-validation experiment, the local benchmark.
  { layer: 7, name: 'experiments', prefixes: ['experiments/'] },
  { layer: 8, name: 'cli', prefixes: ['cli/'] },
  // Development harnesses: they may import anything; nothing of the product imports them.
  { layer: 9, name: 'dev', prefixes: ['bench/', 'test/'] },
];
const FOLDERS = ['schemas', 'common', 'transforms', 'sinks', 'figures', 'sources', 'synth', 'report', 'runners', 'trainers', 'experiments', 'cli', 'bench', 'test'];

function layerOf(rel) {
  return LAYERS.find((l) => l.prefixes.some((p) => (p.endsWith('/') ? rel.startsWith(p) : rel === p)));
}

function tsFiles(dir) {
  const out = [];
  if (!fs.existsSync(dir)) return out;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

// The module a relative specifier names, as a repository path ('x' -> x.ts or x/index.ts).
function resolveSpecifier(fromFile, spec) {
  const base = path.resolve(path.dirname(fromFile), spec);
  for (const candidate of [base + '.ts', path.join(base, 'index.ts'), base]) {
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return path.relative(ROOT, candidate).split(path.sep).join('/');
  }
  return null;
}

// `from '...'` ends a (possibly multi-line) import or re-export; `import '...'`, `require('...')`
// and `import('...')` name a module directly. Only relative specifiers are between our layers.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)(['"])(\.{1,2}\/[^'"]*)\1/g;

const problems = [];
let checked = 0;
for (const folder of FOLDERS) {
  for (const file of tsFiles(path.join(ROOT, folder))) {
    const rel = path.relative(ROOT, file).split(path.sep).join('/');
    const own = layerOf(rel);
    if (!own) {
      problems.push(`${rel}:1: not in the layer table of scripts/check-imports.mjs`);
      continue;
    }
    checked++;
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines.forEach((text, i) => {
      const trimmed = text.trimStart();
      if (trimmed.startsWith('//') || trimmed.startsWith('*')) return;
      for (const m of text.matchAll(SPECIFIER)) {
        const target = resolveSpecifier(file, m[2]);
        // No source file: a path resolved from dist/ at run time (package.json) or code in a string
        // for a child process; tsc itself reports a source import that names no file.
        if (target === null) continue;
        const theirs = layerOf(target);
        if (!theirs) problems.push(`${rel}:${i + 1}: imports ${target}, which is not in the layer table`);
        else if (theirs.layer > own.layer) {
          problems.push(`${rel}:${i + 1}: ${own.name} (layer ${own.layer}) imports ${target}, of the higher layer ${theirs.name} (${theirs.layer})`);
        }
      }
    });
  }
}

// test/ mirrors the tree: a test of X/ is in test/X/ (X a folder of the tree, e.g. runners/kafka or
// scripts); shared helpers are in test/helpers/, data and worker programs in test/fixtures/.
const DATA_FOLDERS = ['helpers/', 'fixtures/'];
for (const file of tsFiles(path.join(ROOT, 'test'))) {
  const rel = path.relative(path.join(ROOT, 'test'), file).split(path.sep).join('/');
  const inData = DATA_FOLDERS.some((d) => rel.startsWith(d));
  const isTest = rel.endsWith('.test.ts');
  const dir = path.posix.dirname(rel);
  if (isTest && inData) problems.push(`test/${rel}:1: a test file in test/${rel.split('/')[0]}/; put it in the folder that mirrors what it tests`);
  else if (isTest && (dir === '.' || !fs.existsSync(path.join(ROOT, dir)) || !fs.statSync(path.join(ROOT, dir)).isDirectory())) {
    problems.push(`test/${rel}:1: not in a folder that mirrors one of the tree (test/X/ for the folder X/ it tests)`);
  } else if (!isTest && !inData) problems.push(`test/${rel}:1: a helper outside test/helpers/`);
}

// Every test file is in exactly one suite (unit or integration).
if (ROOT === REPO) problems.push(...classificationProblems());

if (problems.length > 0) {
  for (const p of problems) process.stderr.write(p + '\n');
  process.stderr.write(`check-imports: ${problems.length} problem(s) in ${checked} files\n`);
  process.exit(1);
}
process.stdout.write(`check-imports: ${checked} files, every relative import goes to the same or a lower layer, every test file is in a suite\n`);
