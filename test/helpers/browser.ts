// A real headless browser for page tests: Debian's chromium (or the one MEDREP_CHROMIUM names)
// driven by playwright-core, which downloads no browser. No browser found is a failure that says
// how to get one, never a skipped test.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

export function chromiumPath(): string {
  const named = process.env.MEDREP_CHROMIUM;
  if (named) {
    if (!fs.existsSync(named)) throw new Error(`MEDREP_CHROMIUM=${named}: no such file`);
    return named;
  }
  const found = CANDIDATES.find((p) => fs.existsSync(p));
  if (!found) throw new Error(`no Chromium found (looked at ${CANDIDATES.join(', ')}); install one (Debian: apt-get install -y chromium; .ci/run does) or set MEDREP_CHROMIUM`);
  return found;
}

export async function launchBrowser(): Promise<Browser> {
  // --no-sandbox: CI containers run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
}

export interface LoadedPage {
  page: Page;
  /** Console errors and uncaught page errors, as text. */
  errors: string[];
  /** Requests to anything but the page's own file and data: URIs. */
  external: string[];
}

/** Opens a local HTML file, recording errors and every request that leaves the file. */
export async function openFile(browser: Browser, file: string, viewport = { width: 1240, height: 1000 }): Promise<LoadedPage> {
  const page = await browser.newPage({ viewport });
  const errors: string[] = [];
  const external: string[] = [];
  const self = `file://${path.resolve(file)}`;
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (r.url() !== self && !r.url().startsWith('data:')) external.push(r.url());
  });
  await page.goto(self, { waitUntil: 'load' });
  return { page, errors, external };
}

/** Where tests leave files for a person to look at (screenshots): test-output/<name>/ in the repository. */
export function testOutputDir(name: string): string {
  const dir = path.resolve(__dirname, '../../../test-output', name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
