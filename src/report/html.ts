/**
 * report.html of a sampling study: one self-contained page (inline CSS and inline SVG, no
 * script, no network, no external fonts) drawn from a SamplingResult.
 *
 * Sections: title (program and args), configuration, summary (IPC/CPI estimates with their
 * confidence interval, CV, samples and samples needed, whole-program cycles with interval,
 * host time), validation against a full o3 run (when present), plot of IPC per sample with the
 * mean and the confidence band (`svg#ipc-plot`), host time per model as a stacked bar
 * (`svg#time-plot`), the per-sample table, and the host-to-guest cycle-scaling table with a
 * hostFactor plot (`svg#scaling-plot`, when the result has a scaling table).
 *
 * Every string that comes from data is escaped; every number goes through a formatter that
 * prints non-finite values as "n/a", and the plots cope with one sample, zero variance and NaN.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Estimate, SampleRecord, SamplingConfig, SamplingResult, ScalingTable } from '../sample/types.js';
import { writeFileAtomic } from '../util/atomicWrite.js';

/** The per-sample table is folded into a closed <details> past this many rows. */
export const SAMPLE_TABLE_OPEN_MAX = 20;

const NA = 'n/a';

// ---------------------------------------------------------------------------------------------
// Escaping and number formatting

/** How the samples' caches were warmed (SamplingConfig.warming; absent in older files: adaptive). */
function warmingNote(w: unknown): string {
  if (w === 'record') return ' after rebuilding the L1D and L2 from the memory timestamp record';
  if (w === 'fixed') return ', fixed';
  return ', adaptive (at most)';
}

/** The fast-forward model and how samples ran (SamplingConfig.fastForwardModel, parallel; older files: KVM, serial). */
function fastForwardNote(c: { fastForwardModel?: unknown; parallel?: unknown }): string {
  const model = c.fastForwardModel === 'atomic' ? 'atomic CPU (exact instruction counts)' : 'KVM';
  return c.parallel === true ? `${model}; samples measured in a worker thread alongside it (parallel sampling)` : model;
}

/** Escapes text for HTML element content and for quoted attribute values. */
export function escapeHtml(s: unknown): string {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const esc = escapeHtml;

function finite(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/** Thousands separators for an integer-valued number (no locale dependence). */
function group(x: number): string {
  const s = Math.round(Math.abs(x)).toString();
  const out = s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return x < 0 && Math.round(Math.abs(x)) !== 0 ? `-${out}` : out;
}

/** General number: grouped integers from 10,000 up, else 4 significant digits (trailing zeros trimmed). */
export function fmtNum(x: unknown, sig = 4): string {
  if (!finite(x)) return NA;
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e15 || a < 1e-4) return x.toExponential(sig - 1);
  if (a >= 1e4) return group(x);
  const s = x.toPrecision(sig);
  return s.includes('.') && !s.includes('e') ? s.replace(/\.?0+$/, '') : s;
}

/** Fixed decimals (IPC, CPI, factors). */
export function fmtFixed(x: unknown, digits = 3): string {
  return finite(x) ? x.toFixed(digits) : NA;
}

/** A fraction as a percentage. */
export function fmtPct(x: unknown, digits = 2): string {
  return finite(x) ? `${(x * 100).toFixed(digits)}%` : NA;
}

/** Host seconds, with a unit that suits the magnitude. */
export function fmtSeconds(x: unknown): string {
  if (!finite(x)) return NA;
  const a = Math.abs(x);
  if (a === 0) return '0 s';
  if (a < 1e-3) return `${fmtNum(x * 1e6, 3)} µs`;
  if (a < 1) return `${fmtNum(x * 1e3, 3)} ms`;
  return `${fmtNum(x, 4)} s`;
}

/** A count (instructions, cycles): grouped integer. */
export function fmtCount(x: unknown): string {
  if (!finite(x)) return NA;
  if (Math.abs(x) >= 1e15) return x.toExponential(3);
  return group(x);
}

/** Decimals that show at least two significant digits of the half-width (3 to 6). */
export function estimateDigits(e: Estimate): number {
  const h = e.halfWidth;
  if (!finite(h) || h <= 0) return 3;
  return Math.max(3, Math.min(6, Math.ceil(-Math.log10(h)) + 1));
}

/** "1.234 ± 0.056" (more decimals for a tighter interval). */
export function fmtEstimate(e: Estimate, digits = estimateDigits(e)): string {
  return `${fmtFixed(e.mean, digits)} ± ${fmtFixed(e.halfWidth, digits)}`;
}

function confidenceLabel(c: unknown): string {
  if (!finite(c)) return NA;
  // 0.997 → "99.7%", 0.95 → "95%"
  return `${Number((c * 100).toPrecision(6)).toString()}%`;
}

// ---------------------------------------------------------------------------------------------
// Plot geometry

interface Scale {
  lo: number;
  hi: number;
  ticks: number[];
  step: number;
}

function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
}

/**
 * A domain covering [min, max] extended to tick multiples. Degenerate input (no finite value,
 * min == max) still gives a non-empty domain with ticks.
 */
export function niceScale(values: readonly number[], opts: { tickCount?: number; includeZero?: boolean; integer?: boolean } = {}): Scale {
  const xs = values.filter(finite);
  if (opts.includeZero) xs.push(0);
  let lo = xs.length ? Math.min(...xs) : 0;
  let hi = xs.length ? Math.max(...xs) : 1;
  if (hi - lo <= Math.abs(hi) * 1e-12) {
    const pad = opts.integer ? 1 : Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
    if (opts.includeZero && values.filter(finite).every((v) => v >= 0)) lo = Math.max(lo, 0);
  }
  let step = niceStep((hi - lo) / (opts.tickCount ?? 5));
  if (opts.integer) step = Math.max(1, Math.round(step));
  const nlo = Math.floor(lo / step + 1e-9) * step;
  const nhi = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; ; i++) {
    const t = nlo + i * step;
    if (t > nhi + step * 1e-9 || i > 100) break;
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return { lo: nlo, hi: nhi > nlo ? nhi : nlo + step, ticks, step };
}

function tickLabel(t: number, step: number): string {
  if (Math.abs(t) >= 1e5 || (Math.abs(step) < 1e-4 && t !== 0)) return fmtNum(t, 3);
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  const d = Number.isInteger(Number((step * 10 ** decimals).toFixed(6))) ? decimals : decimals + 1;
  return t.toFixed(d);
}

function map(v: number, s: Scale, a: number, b: number): number {
  return a + ((v - s.lo) / (s.hi - s.lo)) * (b - a);
}

const r2 = (x: number) => (Math.round(x * 100) / 100).toString();

// ---------------------------------------------------------------------------------------------
// Plot 1: IPC per sample

const PLOT_W = 720;

function ipcPlot(samples: readonly SampleRecord[], ipc: Estimate): string {
  const W = PLOT_W;
  const H = 300;
  const m = { l: 60, r: 20, t: 16, b: 46 };
  const pts = samples.map((s, i) => ({ x: finite(s.index) ? s.index : i, y: s.ipc }));
  const good = pts.filter((p) => finite(p.y));
  const bandOk = finite(ipc.low) && finite(ipc.high) && ipc.high >= ipc.low;
  const meanOk = finite(ipc.mean);
  const ys = good.map((p) => p.y);
  if (meanOk) ys.push(ipc.mean);
  if (bandOk) ys.push(ipc.low, ipc.high);
  const xs = niceScale(
    pts.map((p) => p.x),
    { integer: true, tickCount: 8 },
  );
  const yScale = niceScale(ys, { tickCount: 5 });
  const X = (v: number) => map(v, xs, m.l, W - m.r);
  const Y = (v: number) => map(v, yScale, H - m.b, m.t);
  const out: string[] = [];
  out.push(
    `<svg id="ipc-plot" class="plot" role="img" aria-labelledby="ipc-plot-title" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">`,
    `<title id="ipc-plot-title">IPC per sample, mean and ${esc(confidenceLabel(ipc.confidence))} confidence band</title>`,
    `<rect class="frame" x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}"/>`,
  );
  // Grid and axes
  for (const t of yScale.ticks) {
    const y = r2(Y(t));
    out.push(`<line class="grid" x1="${m.l}" x2="${W - m.r}" y1="${y}" y2="${y}"/>`);
    out.push(`<text class="tick" x="${m.l - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(tickLabel(t, yScale.step))}</text>`);
  }
  for (const t of xs.ticks) {
    const x = r2(X(t));
    out.push(`<line class="axis-tick" x1="${x}" x2="${x}" y1="${H - m.b}" y2="${H - m.b + 5}"/>`);
    out.push(`<text class="tick" x="${x}" y="${H - m.b + 18}" text-anchor="middle">${esc(tickLabel(t, xs.step))}</text>`);
  }
  out.push(`<line class="axis" x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}"/>`);
  out.push(`<line class="axis" x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}"/>`);
  out.push(`<text class="axis-label" x="${r2((m.l + W - m.r) / 2)}" y="${H - 8}" text-anchor="middle">sample</text>`);
  out.push(`<text class="axis-label" transform="translate(16 ${r2((m.t + H - m.b) / 2)}) rotate(-90)" text-anchor="middle">IPC</text>`);
  // Confidence band and mean
  if (bandOk) {
    const yHi = Y(ipc.high);
    const yLo = Y(ipc.low);
    out.push(
      `<rect class="ci-band" x="${m.l}" y="${r2(yHi)}" width="${W - m.l - m.r}" height="${r2(Math.max(yLo - yHi, 1))}">` +
        `<title>${esc(confidenceLabel(ipc.confidence))} interval: ${esc(fmtFixed(ipc.low, 4))} – ${esc(fmtFixed(ipc.high, 4))}</title></rect>`,
    );
  }
  if (meanOk) {
    const y = r2(Y(ipc.mean));
    out.push(`<line class="mean-line" x1="${m.l}" x2="${W - m.r}" y1="${y}" y2="${y}"><title>mean IPC ${esc(fmtFixed(ipc.mean, 4))}</title></line>`);
  }
  // Points
  for (const p of good) {
    out.push(
      `<circle class="sample-point" cx="${r2(X(p.x))}" cy="${r2(Y(p.y))}" r="3.5"><title>sample ${esc(String(p.x))}: IPC ${esc(fmtFixed(p.y, 4))}</title></circle>`,
    );
  }
  const bad = pts.length - good.length;
  if (pts.length === 0) {
    out.push(`<text class="note" x="${r2((m.l + W - m.r) / 2)}" y="${r2((m.t + H - m.b) / 2)}" text-anchor="middle">no samples</text>`);
  } else if (bad > 0) {
    out.push(`<text class="note" x="${W - m.r - 4}" y="${m.t + 14}" text-anchor="end">${bad} sample(s) with no finite IPC not drawn</text>`);
  }
  out.push('</svg>');
  const legend =
    `<div class="legend"><span><i class="sw sw-point"></i>sample IPC</span>` +
    (meanOk ? `<span><i class="sw sw-mean"></i>mean ${esc(fmtFixed(ipc.mean, estimateDigits(ipc)))}</span>` : '') +
    (bandOk
      ? `<span><i class="sw sw-band"></i>${esc(confidenceLabel(ipc.confidence))} confidence interval [${esc(fmtFixed(ipc.low, estimateDigits(ipc)))}, ${esc(fmtFixed(ipc.high, estimateDigits(ipc)))}]</span>`
      : `<span>no confidence interval (${pts.length < 2 ? 'fewer than two samples' : 'no finite interval'})</span>`) +
    `</div>`;
  return `<figure>${out.join('\n')}${legend}<figcaption>IPC of each measured unit on o3; line: mean; shaded: confidence interval of the mean.</figcaption></figure>`;
}

// ---------------------------------------------------------------------------------------------
// Plot 2: host time per model

const TIME_PARTS = [
  { key: 'kvm', label: 'KVM fast-forward', cls: 'm-kvm' },
  { key: 'warming', label: 'functional warming', cls: 'm-warming' },
  { key: 'detailed', label: 'detailed (o3)', cls: 'm-detailed' },
  { key: 'other', label: 'other', cls: 'm-other' },
] as const;

function timePlot(hs: SamplingResult['summary']['hostSeconds']): string {
  const W = PLOT_W;
  const H = 110;
  const m = { l: 20, r: 20, t: 14, b: 40 };
  const barH = 34;
  const vals = TIME_PARTS.map((p) => ({ ...p, v: finite(hs[p.key]) && hs[p.key] > 0 ? hs[p.key] : 0 }));
  const sum = vals.reduce((a, p) => a + p.v, 0);
  const scale = niceScale([0, sum], { includeZero: true, tickCount: 6 });
  const X = (v: number) => map(v, scale, m.l, W - m.r);
  const out: string[] = [
    `<svg id="time-plot" class="plot" role="img" aria-labelledby="time-plot-title" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">`,
    `<title id="time-plot-title">Host time per model</title>`,
  ];
  let acc = 0;
  for (const p of vals) {
    if (p.v <= 0) continue;
    const x0 = X(acc);
    const x1 = X(acc + p.v);
    acc += p.v;
    out.push(
      `<rect class="time-seg ${p.cls}" data-model="${p.key}" x="${r2(x0)}" y="${m.t}" width="${r2(Math.max(x1 - x0, 0.5))}" height="${barH}">` +
        `<title>${esc(p.label)}: ${esc(fmtSeconds(p.v))} (${esc(fmtPct(p.v / sum, 1))})</title></rect>`,
    );
  }
  if (sum <= 0) {
    out.push(`<rect class="frame" x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${barH}"/>`);
    out.push(`<text class="note" x="${W / 2}" y="${m.t + barH / 2}" text-anchor="middle" dominant-baseline="middle">no host time recorded</text>`);
  }
  const axisY = m.t + barH + 6;
  out.push(`<line class="axis" x1="${m.l}" x2="${W - m.r}" y1="${axisY}" y2="${axisY}"/>`);
  for (const t of scale.ticks) {
    const x = r2(X(t));
    out.push(`<line class="axis-tick" x1="${x}" x2="${x}" y1="${axisY}" y2="${axisY + 5}"/>`);
    out.push(`<text class="tick" x="${x}" y="${axisY + 18}" text-anchor="middle">${esc(tickLabel(t, scale.step))}</text>`);
  }
  out.push(`<text class="axis-label" x="${W / 2}" y="${H - 4}" text-anchor="middle">host seconds</text>`);
  out.push('</svg>');
  const legend = `<div class="legend">${vals
    .map((p) => `<span><i class="sw ${p.cls}"></i>${esc(p.label)}: ${esc(fmtSeconds(hs[p.key]))} (${esc(sum > 0 ? fmtPct(p.v / sum, 1) : NA)})</span>`)
    .join('')}</div>`;
  return `<figure>${out.join('\n')}${legend}<figcaption>Host wall time of the study by model; total ${esc(fmtSeconds(hs.total))}.</figcaption></figure>`;
}

// ---------------------------------------------------------------------------------------------
// Plot 3: hostFactor per workload/region

function scalingPlot(sc: ScalingTable): string {
  const W = PLOT_W;
  const rowH = 22;
  const m = { l: 200, r: 30, t: 12, b: 44 };
  const rows = Array.isArray(sc.rows) ? sc.rows : [];
  const H = m.t + m.b + Math.max(rows.length, 1) * rowH;
  const scale = niceScale([...rows.map((r) => r.hostFactor), sc.globalFactor], { includeZero: true, tickCount: 6 });
  const X = (v: number) => map(v, scale, m.l, W - m.r);
  const out: string[] = [
    `<svg id="scaling-plot" class="plot" role="img" aria-labelledby="scaling-plot-title" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">`,
    `<title id="scaling-plot-title">hostFactor (o3 cycles / host cycles) per workload and region</title>`,
  ];
  const bottom = H - m.b;
  for (const t of scale.ticks) {
    const x = r2(X(t));
    out.push(`<line class="grid" x1="${x}" x2="${x}" y1="${m.t}" y2="${bottom}"/>`);
    out.push(`<text class="tick" x="${x}" y="${bottom + 18}" text-anchor="middle">${esc(tickLabel(t, scale.step))}</text>`);
  }
  rows.forEach((r, i) => {
    const y = m.t + i * rowH;
    const label = `${r.workload} / ${r.region}`;
    out.push(`<text class="tick" x="${m.l - 8}" y="${y + rowH / 2}" text-anchor="end" dominant-baseline="middle">${esc(label.length > 32 ? label.slice(0, 31) + '…' : label)}</text>`);
    if (finite(r.hostFactor)) {
      const x0 = X(Math.min(0, r.hostFactor));
      const x1 = X(Math.max(0, r.hostFactor));
      out.push(
        `<rect class="scaling-bar" x="${r2(x0)}" y="${y + 4}" width="${r2(Math.max(x1 - x0, 1))}" height="${rowH - 8}">` +
          `<title>${esc(label)}: hostFactor ${esc(fmtFixed(r.hostFactor, 3))}, error with the global factor ${esc(fmtPct(r.errorGlobal, 1))}</title></rect>`,
      );
    } else {
      out.push(`<text class="note" x="${m.l + 4}" y="${y + rowH / 2}" dominant-baseline="middle">n/a</text>`);
    }
  });
  if (rows.length === 0) {
    out.push(`<text class="note" x="${m.l + 4}" y="${m.t + rowH / 2}" dominant-baseline="middle">no rows</text>`);
  }
  out.push(`<line class="axis" x1="${m.l}" x2="${W - m.r}" y1="${bottom}" y2="${bottom}"/>`);
  out.push(`<line class="axis" x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${bottom}"/>`);
  if (finite(sc.globalFactor)) {
    const x = r2(X(sc.globalFactor));
    out.push(`<line class="global-line" x1="${x}" x2="${x}" y1="${m.t - 4}" y2="${bottom}"><title>global factor ${esc(fmtFixed(sc.globalFactor, 3))}</title></line>`);
  }
  out.push(`<text class="axis-label" x="${r2((m.l + W - m.r) / 2)}" y="${H - 6}" text-anchor="middle">hostFactor = o3 cycles / host cycles</text>`);
  out.push('</svg>');
  const legend =
    `<div class="legend"><span><i class="sw sw-bar"></i>per-region hostFactor</span>` +
    `<span><i class="sw sw-global"></i>global factor ${esc(fmtFixed(sc.globalFactor, 3))}</span></div>`;
  return `<figure>${out.join('\n')}${legend}<figcaption>Guest (o3) cycles per host cycle of each region; dashed: the one factor fitted over all rows.</figcaption></figure>`;
}

// ---------------------------------------------------------------------------------------------
// Tables and sections

function table(headers: readonly string[], rows: readonly (readonly string[])[], cls = ''): string {
  const head = `<tr>${headers.map((h) => `<th>${h}</th>`).join('')}</tr>`;
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<div class="scroll"><table${cls ? ` class="${cls}"` : ''}><thead>${head}</thead><tbody>\n${body}\n</tbody></table></div>`;
}

function kv(rows: readonly (readonly [string, string])[], id: string): string {
  return `<table id="${id}" class="kv"><tbody>\n${rows.map(([k, v]) => `<tr><th scope="row">${k}</th><td>${v}</td></tr>`).join('\n')}\n</tbody></table>`;
}

function configSection(c: SamplingConfig): string {
  const interval =
    c.interval && 'seconds' in c.interval
      ? `every ${esc(fmtSeconds(c.interval.seconds))} of KVM fast-forward`
      : c.interval && 'insts' in c.interval
        ? `every ${esc(fmtCount(c.interval.insts))} instructions`
        : NA;
  const args = Array.isArray(c.args) ? c.args : [];
  const rows: [string, string][] = [
    ['program', `<code>${esc(c.program)}</code>`],
    ['arguments', args.length ? args.map((a) => `<code>${esc(a)}</code>`).join(' ') : '<span class="muted">none</span>'],
    ['fast-forward', esc(fastForwardNote(c))],
    ['sampling interval', interval],
    ['functional warming', `${esc(fmtCount(c.functionalWarmInsts))} instructions${warmingNote(c.warming)}`],
    ['detailed warm-up (W)', `${esc(fmtCount(c.detailedWarmInsts))} instructions`],
    ['measured unit (U)', `${esc(fmtCount(c.measureInsts))} instructions`],
    ['samples', c.samples === null || c.samples === undefined ? 'until the target error is reached' : esc(fmtCount(c.samples))],
    ['target relative error', esc(fmtPct(c.targetError, 1))],
    ['confidence', esc(confidenceLabel(c.confidence))],
    ['seed', esc(c.seed)],
    ['o3 configuration', c.o3Config ? `<code>${esc(c.o3Config)}</code>` : 'default'],
    ['host frequency', finite(c.hostFreqHz) ? `${esc(fmtNum(c.hostFreqHz / 1e9, 4))} GHz` : NA],
    ['hostFactor', esc(fmtFixed(c.hostFactor, 3))],
  ];
  return `<section id="config"><h2>Configuration</h2>${kv(rows, 'config-table')}</section>`;
}

function estimateDetail(e: Estimate): string {
  const d = estimateDigits(e);
  return (
    `<span class="muted">(${esc(confidenceLabel(e.confidence))} confidence; ` +
    `interval [${esc(fmtFixed(e.low, d))}, ${esc(fmtFixed(e.high, d))}]; ±${esc(fmtPct(e.relativeError, 2))} relative; ` +
    `σ ${esc(fmtNum(e.stdDev, 3))})</span>`
  );
}

function summarySection(r: SamplingResult): string {
  const s = r.summary;
  const wp = s.wholeProgram;
  const reached = finite(s.ipc.relativeError) && finite(s.targetError) && s.ipc.relativeError <= s.targetError;
  const rows: [string, string][] = [
    ['IPC', `<span id="ipc-estimate" class="big">${esc(fmtEstimate(s.ipc))}</span> ${estimateDetail(s.ipc)}`],
    ['CPI', `<span id="cpi-estimate">${esc(fmtEstimate(s.cpi))}</span> ${estimateDetail(s.cpi)}`],
    ['coefficient of variation (IPC)', `<span id="ipc-cv">${esc(fmtNum(s.ipc.cv, 3))}</span>`],
    ['samples', `<span id="sample-count">${esc(fmtCount(s.samples))}</span>`],
    [
      `samples needed for ±${esc(fmtPct(s.targetError, 1))} at ${esc(confidenceLabel(s.ipc.confidence))}`,
      `<span id="samples-needed">${esc(fmtCount(s.samplesNeeded))}</span> <span class="${reached ? 'ok' : 'miss'}">${reached ? 'target reached' : 'target not reached'}</span>`,
    ],
    [
      'whole-program cycles',
      `<span id="whole-cycles">${esc(fmtCount(wp.cycles))}</span> <span class="muted">interval [${esc(fmtCount(wp.low))}, ${esc(fmtCount(wp.high))}]</span>`,
    ],
    [
      'of which',
      `KVM ${esc(fmtCount(wp.kvmHostCycles))} host cycles × hostFactor ${esc(fmtFixed(wp.hostFactor, 3))} + ` +
        `${esc(fmtCount(wp.jsInsts))} sampled-region instructions × mean CPI`,
    ],
    [
      'host wall time',
      `<span id="wall-time">${esc(fmtSeconds(s.hostSeconds.total))}</span> <span class="muted">(KVM ${esc(fmtSeconds(s.hostSeconds.kvm))}, ` +
        `warming ${esc(fmtSeconds(s.hostSeconds.warming))}, detailed ${esc(fmtSeconds(s.hostSeconds.detailed))}, other ${esc(fmtSeconds(s.hostSeconds.other))})</span>`,
    ],
  ];
  const keyNames = keyStatNames(r.samples);
  if (keyNames.length) {
    const means = keyNames.map((k) => {
      const xs = r.samples.map((x) => x.keyStats?.[k]).filter(finite);
      return `${esc(k)} ${esc(fmtNum(xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN, 4))}`;
    });
    rows.push(['key stats (mean over samples)', means.join('; ')]);
  }
  return `<section id="summary"><h2>Summary</h2>${kv(rows, 'summary-table')}</section>`;
}

function validationSection(v: NonNullable<SamplingResult['validation']>, sampledIpc: number): string {
  const rows: [string, string][] = [
    ['full o3 run IPC', esc(fmtFixed(v.fullIpc, 4))],
    ['sampled IPC', esc(fmtFixed(sampledIpc, 4))],
    ['error of the sampled estimate', `<span id="validation-error">${esc(fmtPct(v.error, 2))}</span>`],
    ['full run wall time', esc(fmtSeconds(v.fullWallSeconds))],
    ['sampled wall time', esc(fmtSeconds(v.sampledWallSeconds))],
    ['speedup', `<span id="validation-speedup">${esc(fmtNum(v.speedup, 3))}×</span>`],
  ];
  return `<section id="validation"><h2>Validation against a full o3 run</h2>${kv(rows, 'validation-table')}</section>`;
}

function keyStatNames(samples: readonly SampleRecord[]): string[] {
  const names = new Set<string>();
  for (const s of samples) for (const k of Object.keys(s.keyStats ?? {})) names.add(k);
  return [...names].sort();
}

function samplesSection(samples: readonly SampleRecord[]): string {
  const keys = keyStatNames(samples);
  const headers = [
    '#',
    'fast-forward',
    'ff host cycles',
    'func. warm insts',
    'detailed warm insts',
    'measured insts',
    'cycles',
    'IPC',
    'CPI',
    ...keys.map(esc),
    'host KVM',
    'host warming',
    'host detailed',
  ];
  const rows = samples.map((s) => [
    esc(finite(s.index) ? String(s.index) : NA),
    esc(fmtSeconds(s.fastForwardSeconds)),
    esc(fmtCount(s.fastForwardHostCycles)),
    esc(fmtCount(s.functionalWarmInsts)),
    esc(fmtCount(s.detailedWarmInsts)),
    esc(fmtCount(s.measuredInsts)),
    esc(fmtCount(s.measuredCycles)),
    esc(fmtFixed(s.ipc, 4)),
    esc(fmtFixed(s.cpi, 4)),
    ...keys.map((k) => esc(fmtNum(s.keyStats?.[k], 4))),
    esc(fmtSeconds(s.hostSeconds?.kvm)),
    esc(fmtSeconds(s.hostSeconds?.warming)),
    esc(fmtSeconds(s.hostSeconds?.detailed)),
  ]);
  const t = table(headers, rows, 'num');
  const body =
    samples.length > SAMPLE_TABLE_OPEN_MAX
      ? `<details id="samples-details"><summary>${samples.length} samples (show the table)</summary>${t}</details>`
      : samples.length
        ? t
        : '<p class="muted">no samples</p>';
  return `<section id="samples"><h2>Samples</h2>${body}</section>`;
}

function scalingSection(sc: ScalingTable): string {
  const headers = ['workload', 'region', 'insts', 'host CPI', 'o3 CPI', 'hostFactor', 'error, global factor', 'error, per-workload factor'];
  const rows = (Array.isArray(sc.rows) ? sc.rows : []).map((r) => [
    esc(r.workload),
    esc(r.region),
    esc(fmtCount(r.insts)),
    esc(fmtFixed(r.hostCpi, 3)),
    esc(fmtFixed(r.o3Cpi, 3)),
    esc(fmtFixed(r.hostFactor, 3)),
    esc(fmtPct(r.errorGlobal, 1)),
    esc(fmtPct(r.errorPerWorkload, 1)),
  ]);
  return (
    `<section id="scaling"><h2>Host-to-guest cycle scaling</h2>` +
    `<p>Global factor <b id="global-factor">${esc(fmtFixed(sc.globalFactor, 3))}</b> (least squares through the origin over every row); ` +
    `host frequency ${finite(sc.hostFreqHz) ? esc(fmtNum(sc.hostFreqHz / 1e9, 4)) + ' GHz' : NA}.</p>` +
    table(headers, rows, 'num scaling') +
    scalingPlot(sc) +
    `</section>`
  );
}

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto; max-width: 1000px; padding: 0 16px; color: #1d2330; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d8dde6; padding-bottom: 4px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f2f4f8; padding: 0 3px; border-radius: 3px; word-break: break-all; }
.muted { color: #667085; }
.big { font-size: 16px; font-weight: 600; }
.ok { color: #18794e; font-weight: 600; }
.miss { color: #b42318; font-weight: 600; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eceff4; text-align: left; vertical-align: top; }
table.kv th { font-weight: 600; white-space: nowrap; color: #344054; }
table.num td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.num td:first-child, table.scaling td:nth-child(2) { text-align: left; }
table.num th { white-space: nowrap; background: #f7f8fb; }
.scroll { overflow-x: auto; max-width: 100%; }
details summary { cursor: pointer; color: #2557a7; margin: 4px 0; }
figure { margin: 10px 0 18px; }
figcaption { color: #667085; font-size: 12px; }
svg.plot { display: block; max-width: 100%; height: auto; font: 11px system-ui, sans-serif; }
svg .frame { fill: #fcfcfd; stroke: #d0d5dd; }
svg .grid { stroke: #eaecf0; }
svg .axis { stroke: #475467; }
svg .axis-tick { stroke: #475467; }
svg .tick { fill: #475467; }
svg .axis-label { fill: #1d2330; font-size: 12px; }
svg .note { fill: #b42318; font-size: 12px; }
svg .ci-band { fill: #2e90fa; fill-opacity: 0.18; }
svg .mean-line { stroke: #1849a9; stroke-width: 2; }
svg .sample-point { fill: #f79009; stroke: #93370d; stroke-width: 0.8; }
svg .scaling-bar { fill: #6172f3; }
svg .global-line { stroke: #b42318; stroke-width: 2; stroke-dasharray: 6 4; }
.m-kvm { fill: #12b76a; background: #12b76a; }
.m-warming { fill: #fdb022; background: #fdb022; }
.m-detailed { fill: #7a5af8; background: #7a5af8; }
.m-other { fill: #98a2b3; background: #98a2b3; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 12px; margin: 4px 0; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.sw { display: inline-block; width: 14px; height: 10px; border-radius: 2px; }
.sw-point { background: #f79009; border-radius: 50%; width: 9px; height: 9px; }
.sw-mean { background: #1849a9; height: 3px; }
.sw-band { background: rgba(46, 144, 250, 0.25); }
.sw-bar { background: #6172f3; }
.sw-global { background: repeating-linear-gradient(90deg, #b42318 0 5px, transparent 5px 8px); height: 3px; }
footer { margin-top: 32px; color: #98a2b3; font-size: 12px; }
`;

/** The whole page. */
export function renderReport(input: SamplingResult): string {
  // samples.json carries non-finite numbers as null: every number below goes through finite().
  const result: SamplingResult = { ...input, samples: Array.isArray(input.samples) ? input.samples : [] };
  const c = result.config;
  const args = Array.isArray(c.args) ? c.args : [];
  const cmd = [c.program, ...args].join(' ');
  const parts = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>switchsim sampling report: ${esc(cmd)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    `<header><h1>Sampling report: <code id="program">${esc(c.program)}</code>${args.length ? ' ' + args.map((a) => `<code class="arg">${esc(a)}</code>`).join(' ') : ''}</h1>`,
    `<p class="muted">switchsim sample: ${c.fastForwardModel === 'atomic' ? 'atomic' : 'KVM'} fast-forward → functional warming (atomic) → detailed warm-up and measured unit (o3), ` +
      `${esc(fmtCount(result.summary.samples))} samples.</p></header>`,
    summarySection(result),
    result.validation ? validationSection(result.validation, result.summary.ipc.mean) : '',
    `<section id="ipc"><h2>IPC per sample</h2>${ipcPlot(result.samples, result.summary.ipc)}</section>`,
    `<section id="time"><h2>Host time per model</h2>${timePlot(result.summary.hostSeconds)}</section>`,
    configSection(c),
    samplesSection(result.samples),
    result.scaling ? scalingSection(result.scaling) : '',
    '<footer>Generated by switchsim. Self-contained: no scripts, no external resources.</footer>',
    '</body>',
    '</html>',
    '',
  ];
  return parts.filter((p) => p !== '').join('\n');
}

/** Writes `dir/report.html` atomically (creating `dir`) and returns its path. */
export function writeReport(dir: string, result: SamplingResult): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'report.html');
  writeFileAtomic(file, renderReport(result));
  return file;
}
