/**
 * report.html in a real headless browser (playwright-core driving Debian's chromium): it loads
 * from file:// with no console error, no page error and no request but its own, and every plot
 * is laid out (visible, non-zero box) with the expected number of marks inside its box.
 *
 * Where no browser is installed (or playwright-core is missing) the suite skips and says why;
 * CI installs Debian's chromium (.ci/run), so there it runs.
 */
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReport } from '../../src/report/html.js';
import type { SamplingResult } from '../../src/sample/types.js';
import { makeResult, SCALING } from './report-fixture.js';

type Playwright = typeof import('playwright-core');
type Browser = Awaited<ReturnType<Playwright['chromium']['launch']>>;

const CHROMIUM = process.env.SWITCHSIM_CHROMIUM ?? '/usr/bin/chromium';

async function probe(): Promise<{ pw: Playwright; reason: null } | { pw: null; reason: string }> {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    return { pw: null, reason: `no browser at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)` };
  }
  try {
    return { pw: await import('playwright-core'), reason: null };
  } catch (e) {
    return { pw: null, reason: `playwright-core cannot be loaded (npm ci): ${e instanceof Error ? e.message : String(e)}` };
  }
}

const { pw, reason } = await probe();

function describeBrowser(name: string, fn: () => void): void {
  if (pw) {
    describe(name, fn);
  } else {
    console.warn(`skipping browser tests '${name}': ${reason}`);
    describe.skip(`${name} [skipped: ${reason}]`, fn);
  }
}

interface PageReport {
  consoleErrors: string[];
  pageErrors: string[];
  failedRequests: string[];
  otherRequests: string[];
}

describeBrowser('report.html in headless chromium', () => {
  let browser: Browser;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchsim-report-browser-'));

  beforeAll(async () => {
    browser = await pw!.chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes the report, opens it, and gathers what went wrong while loading. */
  async function open(name: string, result: SamplingResult) {
    const file = writeReport(path.join(dir, name), result);
    const url = pathToFileURL(file).href;
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const rep: PageReport = { consoleErrors: [], pageErrors: [], failedRequests: [], otherRequests: [] };
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') rep.consoleErrors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => rep.pageErrors.push(e.message));
    page.on('requestfailed', (r) => rep.failedRequests.push(`${r.url()}: ${r.failure()?.errorText ?? '?'}`));
    page.on('request', (r) => {
      if (r.url() !== url) rep.otherRequests.push(r.url());
    });
    const response = await page.goto(url, { waitUntil: 'load' });
    expect(response === null || response.ok()).toBe(true);
    return { page, rep };
  }

  function expectCleanLoad(rep: PageReport): void {
    expect(rep.consoleErrors).toEqual([]);
    expect(rep.pageErrors).toEqual([]);
    expect(rep.failedRequests).toEqual([]);
    expect(rep.otherRequests).toEqual([]);
  }

  /** The plot is visible, has a box, and `count` marks matching `selector` lie inside it. */
  async function expectPlot(page: import('playwright-core').Page, id: string, selector: string, count: number): Promise<void> {
    const plot = page.locator(`svg#${id}`);
    await expect.poll(() => plot.isVisible()).toBe(true);
    const box = await plot.boundingBox();
    expect(box, `svg#${id} has no box`).not.toBeNull();
    expect(box!.width).toBeGreaterThan(100);
    expect(box!.height).toBeGreaterThan(30);
    const marks = plot.locator(selector);
    expect(await marks.count()).toBe(count);
    for (let i = 0; i < count; i++) {
      const b = await marks.nth(i).boundingBox();
      expect(b, `${id} ${selector} #${i} has no box`).not.toBeNull();
      expect(b!.width).toBeGreaterThan(0);
      expect(b!.height).toBeGreaterThan(0);
      expect(b!.x).toBeGreaterThanOrEqual(box!.x - 0.5);
      expect(b!.y).toBeGreaterThanOrEqual(box!.y - 0.5);
      expect(b!.x + b!.width).toBeLessThanOrEqual(box!.x + box!.width + 0.5);
      expect(b!.y + b!.height).toBeLessThanOrEqual(box!.y + box!.height + 0.5);
    }
  }

  it('30 samples with scaling and validation: clean load, three plots with their marks', async () => {
    const { page, rep } = await open('full', makeResult({ scaling: true, validation: true }));
    try {
      expectCleanLoad(rep);
      expect(await page.title()).toBe('switchsim sampling report: workloads/build/phases 3 1000000');
      await expectPlot(page, 'ipc-plot', 'circle.sample-point', 30);
      await expectPlot(page, 'ipc-plot', 'rect.ci-band', 1);
      await expectPlot(page, 'ipc-plot', 'line.mean-line', 1);
      await expectPlot(page, 'time-plot', 'rect.time-seg', 4);
      await expectPlot(page, 'scaling-plot', 'rect.scaling-bar', SCALING.rows.length);
      expect(await page.locator('#ipc-estimate').textContent()).toBe('1.234 ± 0.017');
      expect(await page.locator('#validation').isVisible()).toBe(true);
      // nothing pushes the page wider than the window (wide tables scroll in their own box)
      expect(Number(await page.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(1100);
      // the long sample table is folded, and opens
      const details = page.locator('#samples-details');
      expect(await details.locator('tbody tr').first().isVisible()).toBe(false);
      await details.locator('summary').click();
      expect(await details.locator('tbody tr').first().isVisible()).toBe(true);
      expect(await details.locator('tbody tr').count()).toBe(30);
    } finally {
      await page.close();
    }
  });

  it('degenerate studies load cleanly: one sample, zero variance, NaN samples', async () => {
    const cases: [string, SamplingResult, number][] = [
      ['one', makeResult({ ipcs: [0.8] }), 1],
      ['flat', makeResult({ ipcs: Array(30).fill(1.5) }), 30],
      ['nan', makeResult({ ipcs: [1, NaN, 1.2, Infinity, 0.9] }), 3],
    ];
    for (const [name, result, points] of cases) {
      const { page, rep } = await open(name, result);
      try {
        expectCleanLoad(rep);
        await expectPlot(page, 'ipc-plot', 'circle.sample-point', points);
        await expectPlot(page, 'time-plot', 'rect.time-seg', 4);
        expect(await page.locator('svg#scaling-plot').count()).toBe(0);
      } finally {
        await page.close();
      }
    }
  });

  it('a hostile program name stays text', async () => {
    const evil = 'x<script>window.__pwned=1</script><img src=y onerror="window.__pwned=2">';
    const { page, rep } = await open('evil', makeResult({ program: evil, args: ['<b>a</b>'] }));
    try {
      expectCleanLoad(rep);
      expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(await page.locator('#program').textContent()).toBe(evil);
      expect(await page.locator('img, script').count()).toBe(0);
    } finally {
      await page.close();
    }
  });
});
