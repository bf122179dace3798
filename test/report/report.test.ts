import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { OMOP, tempDir } from '../helpers';
import { errorLine, medrep } from '../helpers/cli';
import { launchBrowser, openFile, testOutputDir } from '../helpers/browser';
import { escapeHtml, table } from '../../report/html';

const MAX_BYTES = 2 * 1024 * 1024;
const n = (x: number) => x.toLocaleString('en-US');

/** The body rows of a table as arrays of cell texts. */
function rowsOf(page: Page, id: string): Promise<string[][]> {
  return page.$$eval(`table#${id} tbody tr`, (trs) => trs.map((tr) => [...tr.children].map((c) => (c.textContent ?? '').trim())));
}

/** Every SVG in an element, with its rendered size and the text it holds. */
function svgsIn(page: Page, selector: string): Promise<{ w: number; h: number; text: string }[]> {
  return page.$$eval(`${selector} svg`, (svgs) => svgs.map((s) => {
    const r = s.getBoundingClientRect();
    return { w: r.width, h: r.height, text: s.textContent ?? '' };
  }));
}

async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(testOutputDir('report'), `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

describe('report.html: one self-contained page per run, checked in a real headless browser', function () {
  let browser: Browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  it('medrep run writes report.html: Table 1, tasks, rows per table, shards as the manifest says, no errors, no request, under 2 MB', async () => {
    const out = path.join(tempDir('report-run'), 'out');
    const r = medrep(['run', '--omop', OMOP.synthea, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const file = path.join(out, 'report.html');
    assert.ok(r.stderr.includes(`report: ${file}`), r.stderr);
    assert.ok(fs.statSync(file).size < MAX_BYTES, `${fs.statSync(file).size} bytes`);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    const counts = manifest.counts;

    const { page, errors, external } = await openFile(browser, file);
    assert.deepEqual(errors, []);
    assert.deepEqual(external, []);

    const t1 = new Map((await rowsOf(page, 'table1')).map((row) => [row[0], row[1]]));
    assert.equal(t1.get('persons (valid person rows)'), n(counts.persons));
    const eventRows = manifest.shards.filter((s: { kind: string }) => s.kind === 'events').reduce((a: number, s: { rows: number }) => a + s.rows, 0);
    assert.equal(t1.get('records (events)'), n(eventRows));
    assert.equal(t1.get('visits'), n(counts.events_out.visit));
    assert.match(t1.get('female, n (%)') ?? '', /^\d[\d,]* \(\d+\.\d%\)$/);

    const tasks = await rowsOf(page, 'tasks');
    assert.ok(counts.tasks.length > 0);
    for (const t of counts.tasks) {
      const row = tasks.find((x) => x[0] === t.task);
      assert.ok(row, `task ${t.task} in the page`);
      // task, candidates, cohort, sample rows, positives, positive %, negatives, censored, excluded
      assert.deepEqual([row[1], row[2], row[4], row[6], row[7]], [t.candidates, t.cohort, t.positives, t.negatives, t.censored].map(n));
      for (const [rule, k] of Object.entries(t.excluded as Record<string, number>)) assert.ok(row[8].includes(`${rule} ${n(k)}`), row[8]);
    }

    const flow = await rowsOf(page, 'rows');
    for (const [table, rows] of Object.entries(counts.rows_in as Record<string, number>)) {
      const row = flow.find((x) => x[0] === table);
      assert.ok(row, `table ${table}`);
      assert.deepEqual([row[1], row[2]], [n(rows), n(counts.events_out[table.replace(/_(occurrence|exposure)$/, '')])]);
    }
    assert.deepEqual(flow.find((x) => x[0] === 'person'), ['person', n(counts.persons), '–', '0']);
    const normalization = await rowsOf(page, 'normalization');
    for (const [table, m] of Object.entries(counts.mapping as Record<string, { standard: number; mapped: number }>)) {
      const row = normalization.find((x) => x[0] === table)!;
      assert.deepEqual([row[1], row[2]], [n(m.standard), n(m.mapped)]);
    }

    const shards = await rowsOf(page, 'shardlist');
    assert.equal(shards.length, manifest.shards.length);
    for (const s of manifest.shards) assert.ok(shards.some((row) => row[1] === s.path && row[4] === s.sha256), s.path);

    // Decile plots and the two histograms, drawn with their axis titles.
    const decile = await svgsIn(page, '#normalization');
    assert.equal(decile.length, 1);
    assert.ok(decile[0].w > 300 && decile[0].h > 100);
    assert.match(decile[0].text, /quantile/);
    const hists = await svgsIn(page, '#distributions');
    assert.equal(hists.length, 2);
    assert.match(hists[0].text, /tokens per pretraining sequence/);
    assert.match(hists[1].text, /events per person/);
    await screenshot(page, 'run-synthea27nj');
    await page.close();

    // `medrep report OUT` rewrites the same page: nothing in it depends on the machine or the time.
    const before = fs.readFileSync(file);
    const again = medrep(['report', out]);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout.trim(), file);
    assert.ok(fs.readFileSync(file).equals(before));
    assert.ok(!before.toString('utf8').includes(path.dirname(out)), 'no machine path in the page');
  });

  it('medrep experiment writes report.html with both sites\' Table 1, the results tables and the ROC/PR and per-task figures', async () => {
    const out = path.join(tempDir('report-exp'), 'out');
    const r = medrep(['experiment', 'external', '--out', out, '--persons-a', '400', '--persons-b', '150', '--tasks', 'mortality', '--seeds', '1',
      '--epochs', '1', '--text-epochs', '1', '--gcl-epochs', '1', '--val-splits', 'pretrain_val', '--test-splits', 'finetune_val,finetune_test']);
    assert.equal(r.status, 0, r.stderr);
    const file = path.join(out, 'report.html');
    assert.ok(fs.statSync(file).size < MAX_BYTES, `${fs.statSync(file).size} bytes`);
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    const { page, errors, external } = await openFile(browser, file);
    assert.deepEqual(errors, []);
    assert.deepEqual(external, []);

    const t1 = new Map((await rowsOf(page, 'table1')).map((row) => [row[0], row.slice(1)]));
    const persons = ['site-a', 'site-b'].map((s) => n(JSON.parse(fs.readFileSync(path.join(out, s, 'manifest.json'), 'utf8')).counts.persons));
    assert.deepEqual(t1.get('persons (valid person rows)'), persons);
    assert.deepEqual(persons, ['400', '150']);

    const auroc = await rowsOf(page, 'results-auroc');
    assert.equal(auroc.length, results.rows.length);
    for (const row of results.rows) {
      const shown = auroc.find((x) => x[0] === row.embeddings && x[1] === row.setting);
      assert.ok(shown, `${row.embeddings} ${row.setting}`);
      assert.ok(shown[2].startsWith(row.tasks.mortality.auroc.toFixed(3)), `${shown[2]} vs ${row.tasks.mortality.auroc}`);
      assert.equal(shown[3], row.average.auroc.toFixed(3));
    }
    assert.equal((await rowsOf(page, 'results-auprc')).length, results.rows.length);

    const bars = await svgsIn(page, '#bars');
    assert.equal(bars.length, 2);
    for (const arm of ['vanilla', 'text-only', 'medrep']) assert.ok(bars[0].text.includes(arm), `legend names ${arm}`);
    const curves = await svgsIn(page, '#curves');
    assert.equal(curves.length, 2 * Object.keys(results.curves).length);
    assert.match(curves[0].text, /false positive rate/);
    assert.match(curves[1].text, /precision/);
    assert.ok(curves.every((c) => c.w > 200 && c.h > 200));
    await screenshot(page, 'experiment');
    await page.close();
  });

  it('shows every reject reason with its count, and the rejected rows per table, as the manifest counts them', async () => {
    const omop = path.join(tempDir('report-bad'), 'omop');
    assert.equal(medrep(['synth', '--persons', '60', '--seed', '3', '--format', 'csv', '--inject-errors', '--out', omop]).status, 0);
    const out = path.join(tempDir('report-bad'), 'out');
    const r = medrep(['run', '--omop', omop, '--out', out, '--tasks', 'none']);
    assert.equal(r.status, 0, r.stderr);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    const reasons = Object.entries(manifest.counts.rejects as Record<string, number>);
    assert.ok(reasons.length >= 2, 'the injected errors are rejected');
    const { page, errors } = await openFile(browser, path.join(out, 'report.html'));
    assert.deepEqual(errors, []);
    const shown = await rowsOf(page, 'rejects');
    assert.equal(shown.length, reasons.length);
    for (const [key, k] of reasons) assert.ok(shown.some((row) => `${row[0]}.${row[1]}: ${row[2]}` === key && row[3] === n(k)), key);
    const flow = await rowsOf(page, 'rows');
    const rejectedRows = manifest.rejects.reduce((a: number, x: { rows: number }) => a + x.rows, 0);
    assert.equal(flow.find((row) => row[0] === 'total')![3], n(rejectedRows));
    const personRejects = reasons.filter(([key]) => key.startsWith('person.')).reduce((a, [, k]) => a + k, 0);
    assert.ok(personRejects > 0);
    assert.deepEqual(flow.find((row) => row[0] === 'person'), ['person', n(manifest.counts.persons + personRejects), '–', n(personRejects)]);
    assert.match(await page.textContent('#tasks') ?? '', /No task was labelled/);
    await screenshot(page, 'run-with-rejects');
    await page.close();
  });

  it('refuses a folder that is not a medrep output (exit 2, one line naming it) and escapes what it shows', () => {
    const dir = tempDir('report-foreign');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    const r = medrep(['report', dir]);
    assert.equal(r.status, 2);
    assert.equal(errorLine(r), `medrep: ${dir}: not a medrep output folder (no manifest.json, and no results.json with site-a/ and site-b/)`);
    assert.deepEqual(fs.readdirSync(dir), ['notes.txt']);
    const cell = table('t', ['<b>'], [['<img src=x onerror=alert(1)>', 'a&b']]);
    assert.ok(!cell.includes('<img') && !cell.includes('<b>'), cell);
    assert.ok(cell.includes('&lt;img src=x onerror=alert(1)&gt;') && cell.includes('a&amp;b'));
    assert.equal(escapeHtml(`"'`), '&quot;&#39;');
  });
});
