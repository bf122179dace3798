// `medrep report OUT`: OUT/report.html, one self-contained page about a medrep output folder,
// read from that folder's own artifacts. A pipeline output (manifest.json) gets its Table 1,
// flows, normalization, deciles, distributions and shards; an experiment output (results.json
// beside site-a/ and site-b/) gets both sites' Table 1 and the results with their figures.
// The page holds no time stamp and no machine path: the same folder gives the same bytes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../common/errors';
import { Logger } from '../common/progress';
import { writeFileAtomic } from '../sinks/parquet';
import { experimentSections, readResults } from './experimentSections';
import { page, section } from './html';
import { readManifest, readRunFacts } from './runFacts';
import { runSections, table1, tasksTable } from './runSections';

export const REPORT_FILE = 'report.html';

type Part = { id: string; title: string; html: string };

async function runPage(dir: string): Promise<string> {
  const m = readManifest(dir);
  const f = await readRunFacts(dir);
  const parts = await runSections(f, { prefix: '', withTable1: true });
  const input = (m.input as { name?: string } | null)?.name;
  const meta = `${m.runner} runner, manifest schema ${m.schema_version}${input ? `, input ${input}` : ''}${m.growing ? ', RUNNING (the shards made durable so far)' : f.complete ? '' : ', INCOMPLETE (stopped before the end of its input)'}`;
  return page('medrep run report', meta, parts, parts.map((p) => p.html));
}

const SITES = [['site-a', 'site A', 'a-'], ['site-b', 'site B', 'b-']] as const;

async function experimentPage(dir: string): Promise<string> {
  const r = readResults(dir);
  const sites = await Promise.all(SITES.map(async ([sub, name, prefix]) => ({ name, prefix, f: await readRunFacts(path.join(dir, sub)) })));
  const parts: Part[] = [{
    id: 'characteristics', title: 'Table 1',
    html: section('characteristics', 'Table 1', table1(sites.map((s) => ({ name: s.name, f: s.f }))), ...sites.map((s) => tasksTable(s.f, `${s.prefix}tasks`, s.name))),
  }];
  parts.push(...(await experimentSections(dir, r)));
  for (const s of sites) parts.push(...(await runSections(s.f, { prefix: s.prefix, site: s.name, withTable1: false })).filter((p) => !p.id.endsWith('outcomes')));
  const meta = `external validation: ${r.tasks.length} task(s), ${[...new Set(r.rows.map((x) => x.embeddings))].length} embedding arms, backend ${r.backend}`;
  return page('medrep experiment report', meta, parts, parts.map((p) => p.html));
}

function isExperiment(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'results.json')) && SITES.every(([sub]) => fs.existsSync(path.join(dir, sub, 'manifest.json')));
}

/** Writes DIR/report.html (atomically) and returns its path. */
export async function writeReport(dirIn: string): Promise<string> {
  const dir = path.resolve(dirIn);
  let html: string;
  if (isExperiment(dir)) html = await experimentPage(dir);
  else if (fs.existsSync(path.join(dir, 'manifest.json'))) html = await runPage(dir);
  else throw new UserError(`${dir}: not a medrep output folder (no manifest.json, and no results.json with site-a/ and site-b/)`);
  const file = path.join(dir, REPORT_FILE);
  writeFileAtomic(file, new TextEncoder().encode(html));
  return file;
}

/** The report at the end of a command: its path on the log; a failure is a warning, the run's outputs stand. */
export async function reportAfterRun(dir: string, log: Logger): Promise<void> {
  try {
    log.info(`report: ${await writeReport(dir)}`);
  } catch (e) {
    log.warn(`report: not written (${(e as Error).message.split('\n')[0]})`);
  }
}
