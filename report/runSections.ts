// The report's sections about pipeline outputs: Table 1 (one column per site), outcomes per task,
// rows in and out per table, rejects, normalization, decile boundaries, distributions, shards.
import { decilePlots, histogram } from '../figures/charts';
import { count, escapeHtml, figure, para, raw, section, table } from './html';
import type { RunFacts } from './runFacts';

const pct = (part: number, whole: number) => (whole > 0 ? `${(100 * part / whole).toFixed(1)}%` : '–');
const fix1 = (x: number) => x.toFixed(1);

/** The paper's Table 1 shape: dataset characteristics, one column per site. */
export function table1(sites: { name: string; f: RunFacts }[], id = 'table1'): string {
  const row = (label: string, v: (f: RunFacts) => string | number | null) => [label, ...sites.map((s) => v(s.f))];
  const persons = (f: RunFacts) => f.sex.male + f.sex.female + f.sex.other;
  const rows = [
    row('persons (valid person rows)', (f) => f.persons),
    row('persons with events', (f) => f.personsWithEvents),
    row('records (events)', (f) => f.records),
    row('visits', (f) => f.visits),
    row('distinct concepts', (f) => f.concepts),
    row('records per person, mean', (f) => (f.personsWithEvents ? fix1(f.records / f.personsWithEvents) : '–')),
    row('age at last record, mean (SD)', (f) => (f.age ? `${fix1(f.age.mean)} (${fix1(f.age.sd)})` : '–')),
    row('age at last record, median [IQR]', (f) => (f.age ? `${fix1(f.age.median)} [${fix1(f.age.q1)}–${fix1(f.age.q3)}]` : '–')),
    row('female, n (%)', (f) => `${count(f.sex.female)} (${pct(f.sex.female, persons(f))})`),
    row('male, n (%)', (f) => `${count(f.sex.male)} (${pct(f.sex.male, persons(f))})`),
    row('other or unknown sex, n (%)', (f) => `${count(f.sex.other)} (${pct(f.sex.other, persons(f))})`),
  ];
  return table(id, ['characteristic', ...sites.map((s) => s.name)], rows, 'Table 1. Dataset characteristics (age and sex over the persons with a trajectory)');
}

/** Outcomes per task: cohort, positives, censored and the exclusions by rule. */
export function tasksTable(f: RunFacts, id: string, site?: string): string {
  const rows: (string | number | null)[][] = f.tasks.map((t) => [
    t.task, t.candidates, t.cohort, t.sampleRows, t.positives, pct(t.positives, t.cohort), t.negatives, t.censored,
    Object.entries(t.excluded).map(([rule, n]) => `${rule} ${count(n)}`).join(', ') || 'none',
  ]);
  for (const s of f.tasksSkipped) rows.push([s.task, null, null, null, null, '', null, null, `skipped: ${s.reason}`]);
  if (rows.length === 0) return `<p id="${escapeHtml(id)}">No task was labelled in this run${site ? ` (${escapeHtml(site)})` : ''}.</p>`;
  return table(id, ['task', 'candidates', 'cohort', 'sample rows', 'positives', 'positive %', 'negatives', 'censored', 'excluded by rule'], rows,
    `Outcomes per task${site ? ` (${site})` : ''}; censored = label not determinable by the end of the data`);
}

function flowTables(f: RunFacts, p: string): string {
  const flow = table(`${p}rows`, ['table', 'rows in', 'events out', 'rejected'], [
    ...f.tables.map((t) => [t.table, t.rowsIn, t.eventsOut, t.rejected]),
    ['total', f.tables.every((t) => t.rowsIn !== null) ? f.tables.reduce((a, t) => a + (t.rowsIn ?? 0), 0) : null, f.tables.reduce((a, t) => a + (t.eventsOut ?? 0), 0), f.tables.reduce((a, t) => a + t.rejected, 0)],
  ], 'Rows in and out per table (person rows give each trajectory its gender and ages, not events)');
  const note = f.tables.some((t) => t.rowsIn === null) ? para('The Kafka runner counts messages by offset, not rows in per table: "rows in" is left empty.') : '';
  const rejects = f.rejectsByReason.length
    ? table(`${p}rejects`, ['table', 'column', 'reason', 'rows'], f.rejectsByReason.map((r) => [r.table, r.column, r.reason, r.rows]), 'Rejects by reason (rows set aside in rejects/)')
    : `<p id="${escapeHtml(`${p}rejects`)}">No row was set aside.</p>`;
  return flow + note + rejects;
}

function normalizationTable(f: RunFacts, p: string): string {
  const t = f.mapping.length
    ? table(`${p}normalization`, ['table', 'standard', 'mapped (Maps to)', 'unmapped', 'not in vocabulary'], f.mapping.map((m) => [m.table, m.standard, m.mapped, m.unmapped, m.notInVocabulary]), 'Concept normalization')
    : para('This runner records no normalization counts per table.');
  const binned = f.measurementsBinned !== null
    ? para(`${count(f.measurementsBinned)} of ${count(f.measurementEvents)} measurement events binned into deciles (${pct(f.measurementsBinned, f.measurementEvents)}), ${count(f.decileGroupCount)} (concept, unit) groups fitted.`)
    : para(`${count(f.decileGroupCount)} (concept, unit) decile groups.`);
  return t + binned;
}

export async function runSections(f: RunFacts, o: { prefix: string; site?: string; withTable1: boolean }): Promise<{ id: string; title: string; html: string }[]> {
  const p = o.prefix;
  const on = o.site ? ` — ${o.site}` : '';
  const out: { id: string; title: string; html: string }[] = [];
  const add = (id: string, title: string, ...parts: string[]) => out.push({ id: `${p}${id}`, title: `${title}${on}`, html: section(`${p}${id}`, `${title}${on}`, ...parts) });
  if (o.withTable1) add('characteristics', 'Table 1', table1([{ name: o.site ?? 'this run', f }], `${p}table1`), tasksTable(f, `${p}tasks`, o.site));
  else add('outcomes', 'Outcomes', tasksTable(f, `${p}tasks`, o.site));
  add('flow', 'Rows and rejects', flowTables(f, p));
  const plots = f.decileGroups.length
    ? figure(await decilePlots(f.decileGroups.map((g) => ({ label: `${g.conceptId} ${g.unit || '(no unit)'}, n=${count(g.count)}`, boundaries: g.boundaries }))),
      `Decile boundaries (the 11 quantiles 0, 0.1, …, 1) of the ${f.decileGroups.length} most frequent labs, each titled concept id, unit and values fitted on; artifact ${f.decileVersion ?? '–'}`)
    : para('No decile group was fitted.');
  add('normalization', 'Normalization and deciles', normalizationTable(f, p), plots);
  const hists: string[] = [];
  if (f.sequenceLengths.length) hists.push(figure(await histogram(f.sequenceLengths, { x: 'tokens per pretraining sequence', y: 'sequences' }), 'Sequence length (tokens per pretraining chunk, [CLS] and gender included)'));
  if (f.eventsPerPerson.length) hists.push(figure(await histogram(f.eventsPerPerson, { x: 'events per person', y: 'persons' }), 'Events per person'));
  add('distributions', 'Distributions', hists.length ? `<div class="grid">${hists.join('')}</div>` : para('No events were written.'));
  add('shards', 'Shards', shardTable(f, p), table(`${p}artifacts`, ['artifact', 'version'], f.artifacts.map((a) => [a.name, raw(`<span class="hash">${escapeHtml(a.version)}</span>`)]), 'Artifacts'));
  return out;
}

function shardTable(f: RunFacts, p: string): string {
  const kinds = [...new Set(f.shards.map((s) => s.kind))];
  const byKind = table(`${p}shardkinds`, ['kind', 'shards', 'rows', 'bytes'], kinds.map((k) => {
    const of = f.shards.filter((s) => s.kind === k);
    return [k, of.length, of.reduce((a, s) => a + s.rows, 0), of.reduce((a, s) => a + s.bytes, 0)];
  }), 'Shards by kind');
  const rows = f.shards.map((s) => [s.kind, raw(`<code>${escapeHtml(s.path)}</code>`), s.rows, s.bytes, raw(`<span class="hash">${escapeHtml(s.sha256)}</span>`)]);
  return byKind + table(`${p}shardlist`, ['kind', 'path', 'rows', 'bytes', 'sha256'], rows, `${f.shards.length} shards (from manifest.json)`);
}
