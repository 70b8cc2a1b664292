/** report.html: self-contained, the plots and numbers it should have, escaping, degenerate data. */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { escapeHtml, fmtCount, fmtNum, niceScale, renderReport, writeReport } from '../../src/report/html.js';
import { makeResult, SCALING } from './report-fixture.js';

function count(html: string, re: RegExp): number {
  return (html.match(new RegExp(re.source, 'g')) ?? []).length;
}

/** The page must load nothing: no URL, no linked stylesheet, no external script or image. */
function expectSelfContained(html: string): void {
  expect(html).not.toMatch(/https?:\/\//i);
  expect(html).not.toMatch(/<link\b/i);
  expect(html).not.toMatch(/<[^>]*\s(src|href|xlink:href|srcset|action|formaction|poster|data)\s*=/i);
  expect(html).not.toMatch(/@import|url\(/i);
  expect(html).not.toMatch(/<script\b/i);
  expect(html).not.toMatch(/<iframe\b|<object\b|<embed\b|<img\b/i);
  expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
  expect(html).toMatch(/<\/html>\s*$/);
}

/** Plot markup must never carry NaN/Infinity (an SVG attribute of NaN is an error in the browser). */
function expectNoNonFinite(html: string): void {
  expect(html).not.toMatch(/NaN|Infinity/);
}

/** The <svg id=...> ... </svg> of one plot. */
function svg(html: string, id: string): string {
  const m = html.match(new RegExp(`<svg id="${id}"[\\s\\S]*?</svg>`));
  expect(m, `no svg#${id}`).not.toBeNull();
  return m![0];
}

describe('renderReport: 30 known samples, with scaling and validation', () => {
  const r = makeResult({ scaling: true, validation: true });
  const html = renderReport(r);

  it('is self-contained', () => {
    expectSelfContained(html);
    expectNoNonFinite(html);
  });

  it('has a title with the program and its args', () => {
    expect(html).toContain('<title>switchsim sampling report: workloads/build/phases 3 1000000</title>');
    expect(html).toMatch(/<h1>[^]*workloads\/build\/phases[^]*<code class="arg">3<\/code> <code class="arg">1000000<\/code><\/h1>/);
  });

  it('shows the IPC mean ± CI at the confidence, CV, samples needed, whole-program cycles and wall time', () => {
    // mean exactly 1.234; s = sqrt(0.024/29); half-width = 3.27 s / sqrt(30) = 0.01718
    expect(r.summary.ipc.mean).toBeCloseTo(1.234, 12);
    expect(r.summary.ipc.halfWidth).toBeCloseTo(0.01718, 4);
    expect(html).toContain('<span id="ipc-estimate" class="big">1.234 ± 0.017</span>');
    expect(html).toContain('99.7% confidence');
    expect(html).toContain('interval [1.217, 1.251]');
    expect(html).toContain(`<span id="ipc-cv">${fmtNum(r.summary.ipc.cv, 3)}</span>`);
    expect(html).toContain('<span id="sample-count">30</span>');
    expect(html).toContain(`<span id="samples-needed">${fmtCount(r.summary.samplesNeeded)}</span>`);
    expect(html).toContain('target reached');
    expect(html).toContain(`<span id="whole-cycles">${fmtCount(r.summary.wholeProgram.cycles)}</span>`);
    expect(html).toContain(`interval [${fmtCount(r.summary.wholeProgram.low)}, ${fmtCount(r.summary.wholeProgram.high)}]`);
    expect(html).toContain('<span id="wall-time">19.85 s</span>');
  });

  it('has the config table', () => {
    expect(html).toContain('id="config-table"');
    expect(html).toContain('every 50 ms of KVM fast-forward');
    expect(html).toContain('<td>200,000 instructions, adaptive (at most)</td>');
    const rec = makeResult();
    rec.config.warming = 'record';
    expect(renderReport(rec)).toContain('<td>200,000 instructions after rebuilding the L1D and L2 from the memory timestamp record</td>');
    // How the study ran: the fast-forward model, and whether samples ran in a worker alongside it.
    expect(html).toContain('<th scope="row">fast-forward</th><td>KVM</td>');
    rec.config.fastForwardModel = 'atomic';
    rec.config.parallel = true;
    const par = renderReport(rec);
    expect(par).toContain('atomic CPU (exact instruction counts); samples measured in a worker thread alongside it (parallel sampling)');
    expect(par).toContain('switchsim sample: atomic fast-forward');
    expect(html).toContain('<code>configs/o3-host.json</code>');
    expect(html).toContain('<td>2.1 GHz</td>');
  });

  it('draws IPC per sample with the mean line and the confidence band', () => {
    const s = svg(html, 'ipc-plot');
    expect(count(s, /<circle class="sample-point"/)).toBe(30);
    expect(count(s, /class="mean-line"/)).toBe(1);
    expect(count(s, /class="ci-band"/)).toBe(1);
    expect(s).toContain('>sample</text>');
    expect(s).toContain('>IPC</text>');
    expect(count(s, /class="tick"/)).toBeGreaterThanOrEqual(6);
    // the band is above the mean's y minus something and below it plus something: mean inside band
    const band = s.match(/class="ci-band" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"/)!;
    const mean = s.match(/class="mean-line" x1="[\d.]+" x2="[\d.]+" y1="([\d.]+)"/)!;
    const [by, bh, my] = [Number(band[1]), Number(band[2]), Number(mean[1])];
    expect(my).toBeGreaterThan(by);
    expect(my).toBeLessThan(by + bh);
  });

  it('draws host time per model as a stacked bar with a legend', () => {
    const s = svg(html, 'time-plot');
    expect(count(s, /class="time-seg /)).toBe(4);
    for (const m of ['kvm', 'warming', 'detailed', 'other']) expect(s).toContain(`data-model="${m}"`);
    expect(html).toContain('KVM fast-forward: 1.5 s (7.6%)');
    expect(html).toContain('detailed (o3): 12 s (60.5%)');
    // segments are laid end to end
    const segs = [...s.matchAll(/class="time-seg [^"]*" data-model="\w+" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
    for (let i = 1; i < segs.length; i++) expect(segs[i]![0]).toBeCloseTo(segs[i - 1]![0] + segs[i - 1]![1], 1);
  });

  it('has the per-sample table, folded in <details> when long', () => {
    expect(html).toContain('<details id="samples-details"><summary>30 samples');
    const table = html.slice(html.indexOf('id="samples-details"'));
    expect(count(table.slice(0, table.indexOf('</details>')), /<tr><td>/)).toBe(30);
    expect(html).toContain('<th>l1d.missRate</th>');
  });

  it('has the cycle-scaling table and the hostFactor plot', () => {
    expect(html).toContain('<section id="scaling">');
    expect(html).toContain('<b id="global-factor">1.350</b>');
    for (const h of ['workload', 'region', 'insts', 'host CPI', 'o3 CPI', 'hostFactor', 'error, global factor', 'error, per-workload factor']) {
      expect(html).toContain(`<th>${h}</th>`);
    }
    expect(html).toContain('<td>ptrchase</td><td>chase</td><td>12,000,000</td><td>17.500</td><td>25.000</td><td>1.429</td><td>-5.5%</td><td>1.0%</td>');
    const s = svg(html, 'scaling-plot');
    expect(count(s, /<rect class="scaling-bar"/)).toBe(SCALING.rows.length);
    expect(count(s, /class="global-line"/)).toBe(1);
  });

  it('has the validation block', () => {
    expect(html).toContain('<section id="validation">');
    expect(html).toContain('<td>1.2500</td>');
    expect(html).toContain('<span id="validation-error">-1.28%</span>');
    expect(html).toContain('<span id="validation-speedup">20×</span>');
  });
});

describe('renderReport: optional parts and degenerate data', () => {
  it('leaves out scaling and validation when absent', () => {
    const html = renderReport(makeResult());
    expectSelfContained(html);
    expect(html).not.toContain('scaling-plot');
    expect(html).not.toContain('id="scaling"');
    expect(html).not.toContain('id="validation"');
    expect(html).toContain('id="ipc-plot"');
    expect(html).toContain('id="time-plot"');
  });

  it('short sample tables are not folded', () => {
    const html = renderReport(makeResult({ n: 5 }));
    expect(html).not.toContain('<details');
    expect(count(html, /<tr><td>\d+<\/td>/)).toBe(5);
  });

  it('one sample: one point, no band, no NaN anywhere', () => {
    const r = makeResult({ ipcs: [0.8] });
    expect(Number.isNaN(r.summary.ipc.halfWidth)).toBe(true);
    const html = renderReport(r);
    expectSelfContained(html);
    expectNoNonFinite(html);
    const s = svg(html, 'ipc-plot');
    expect(count(s, /<circle class="sample-point"/)).toBe(1);
    expect(s).not.toContain('ci-band');
    expect(count(s, /class="mean-line"/)).toBe(1);
    expect(html).toContain('fewer than two samples');
    expect(html).toContain('0.800 ± n/a');
  });

  it('zero variance: points on the mean line, a finite y axis', () => {
    const html = renderReport(makeResult({ ipcs: Array(30).fill(1.5) }));
    expectSelfContained(html);
    expectNoNonFinite(html);
    const s = svg(html, 'ipc-plot');
    expect(count(s, /<circle class="sample-point"/)).toBe(30);
    const ys = new Set([...s.matchAll(/<circle class="sample-point" cx="[\d.]+" cy="([\d.]+)"/g)].map((m) => m[1]));
    expect(ys.size).toBe(1);
    const mean = s.match(/class="mean-line" x1="[\d.]+" x2="[\d.]+" y1="([\d.]+)"/)!;
    expect([...ys][0]).toBe(mean[1]);
    expect(html).toContain('1.500 ± 0.000');
  });

  it('reads results that went through JSON (non-finite numbers as null), as samples.json does', () => {
    const nullify = (r: unknown) => JSON.parse(JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))) as ReturnType<typeof makeResult>;
    for (const r of [makeResult({ ipcs: [0.8] }), makeResult({ ipcs: [1, NaN, 1.2], scaling: true }), makeResult({ ipcs: [] })]) {
      if (r.scaling) r.scaling = { ...SCALING, rows: [{ ...SCALING.rows[0]!, hostFactor: NaN }] };
      const html = renderReport(nullify(r));
      expectSelfContained(html);
      expectNoNonFinite(html);
      expect(html).not.toMatch(/\bnull\b|undefined/);
    }
  });

  it('a tight interval gets enough decimals to show it', () => {
    const r = makeResult();
    r.summary.ipc = { ...r.summary.ipc, mean: 1.87362, halfWidth: 0.000213, low: 1.873407, high: 1.873833 };
    const html = renderReport(r);
    expect(html).toContain('<span id="ipc-estimate" class="big">1.87362 ± 0.00021</span>');
    expect(html).toContain('interval [1.87341, 1.87383]');
  });

  it('NaN samples are not drawn, and say so', () => {
    const ipcs = [1, 1.1, NaN, 0.9, Infinity];
    const html = renderReport(makeResult({ ipcs }));
    expectSelfContained(html);
    expectNoNonFinite(html);
    expect(count(svg(html, 'ipc-plot'), /<circle class="sample-point"/)).toBe(3);
    expect(html).toContain('2 sample(s) with no finite IPC not drawn');
  });

  it('no samples and no host time still give a valid page', () => {
    const r = makeResult({ ipcs: [] });
    r.summary.hostSeconds = { kvm: 0, warming: 0, detailed: 0, other: 0, total: 0 };
    const html = renderReport(r);
    expectSelfContained(html);
    expectNoNonFinite(html);
    expect(svg(html, 'ipc-plot')).toContain('no samples');
    expect(svg(html, 'time-plot')).toContain('no host time recorded');
  });

  it('scaling rows with NaN factors and an empty scaling table', () => {
    const r = makeResult({ scaling: true });
    r.scaling = { ...SCALING, rows: [...SCALING.rows, { ...SCALING.rows[0]!, workload: 'broken', hostFactor: NaN, errorGlobal: NaN }] };
    let html = renderReport(r);
    expectNoNonFinite(html);
    expect(count(svg(html, 'scaling-plot'), /<rect class="scaling-bar"/)).toBe(3);
    r.scaling = { hostFreqHz: NaN, globalFactor: NaN, rows: [] };
    html = renderReport(r);
    expectNoNonFinite(html);
    expect(svg(html, 'scaling-plot')).toContain('no rows');
  });

  it('escapes every string from data', () => {
    const evil = 'evil<script>alert(1)</script>&"\'';
    const r = makeResult({ program: evil, args: ['<b>x</b>', 'a&b'], scaling: true });
    r.scaling = { ...SCALING, rows: [{ ...SCALING.rows[0]!, workload: '<img src=x onerror=alert(1)>', region: '"><svg onload=alert(1)>' }] };
    r.samples[0]!.keyStats = { '<i>stat</i>': 1 };
    r.config.seed = '<seed>';
    r.config.o3Config = '</code><script>x</script>';
    const html = renderReport(r);
    expectSelfContained(html);
    expect(html).toContain('evil&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;');
    expect(html).toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(html).toContain('a&amp;b');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<svg onload');
    expect(html).not.toContain('<i>stat</i>');
    expect(html).not.toContain('<seed>');
    expect(escapeHtml('<&>"\'')).toBe('&lt;&amp;&gt;&quot;&#39;');
  });
});

describe('niceScale', () => {
  it('covers the data with round ticks, and degenerate input too', () => {
    const s = niceScale([0.93, 1.27]);
    expect(s.lo).toBeLessThanOrEqual(0.93);
    expect(s.hi).toBeGreaterThanOrEqual(1.27);
    expect(s.ticks.length).toBeGreaterThanOrEqual(3);
    for (const input of [[], [NaN], [5, 5], [0, 0], [-2, -2], [Infinity]]) {
      const d = niceScale(input);
      expect(Number.isFinite(d.lo) && Number.isFinite(d.hi) && d.hi > d.lo).toBe(true);
      expect(d.ticks.length).toBeGreaterThanOrEqual(2);
    }
    expect(niceScale([0], { integer: true }).ticks.every(Number.isInteger)).toBe(true);
  });
});

describe('writeReport', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchsim-report-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes dir/report.html (creating dir), leaving no temp file', () => {
    const r = makeResult({ scaling: true });
    const out = path.join(dir, 'nested', 'study');
    const file = writeReport(out, r);
    expect(file).toBe(path.join(out, 'report.html'));
    expect(readFileSync(file, 'utf8')).toBe(renderReport(r));
    expect(readdirSync(out)).toEqual(['report.html']);
    writeReport(out, makeResult({ n: 3 }));
    expect(readFileSync(file, 'utf8')).toContain('<span id="sample-count">3</span>');
    expect(readdirSync(out)).toEqual(['report.html']);
  });
});
