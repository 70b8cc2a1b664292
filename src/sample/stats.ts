/**
 * The statistics of a sampling study (SMARTS: Wunderlich et al., ISCA 2003): mean, standard
 * deviation, coefficient of variation, the Student-t confidence interval of the mean, and the
 * number of samples a target relative error needs, n ≥ (t·cv/ε)².
 *
 * The t quantile is computed here: the Student-t CDF from the regularized incomplete beta
 * function (continued fraction, modified Lentz), inverted by bracketing and bisection.
 */
import type { Estimate, SampleRecord } from './types.js';

/** ln Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 terms; ~15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) {
    // Reflection: Γ(x) Γ(1-x) = π / sin(πx)
    return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  }
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  const z = x - 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz's method). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const TINY = 1e-300;
  const EPS = 1e-15;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m;
    // Even step.
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + num / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    // Odd step.
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + num / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b), 0 ≤ x ≤ 1, a, b > 0. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new RangeError(`incomplete beta: a and b must be > 0 (got ${a}, ${b})`);
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  const front = Math.exp(lnFront);
  // The continued fraction converges fast for x < (a+1)/(a+b+2); use the symmetry otherwise.
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(a, b, x)) / a;
  return 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** Student-t CDF with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`Student t: degrees of freedom must be > 0 (got ${df})`);
  if (t === 0) return 0.5;
  const x = df / (df + t * t);
  const tail = 0.5 * regularizedIncompleteBeta(x, df / 2, 0.5);
  return t > 0 ? 1 - tail : tail;
}

/** The p-quantile of the Student-t distribution with `df` degrees of freedom (0 < p < 1). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`Student t quantile: p must be in (0, 1) (got ${p})`);
  if (!(df > 0)) throw new RangeError(`Student t quantile: degrees of freedom must be > 0 (got ${df})`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  // Upper-tail probability, computed directly so that p close to 1 keeps its precision.
  const q = 1 - p;
  const upper = (t: number) => 0.5 * regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
  let lo = 0;
  let hi = 1;
  while (upper(hi) > q) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) return Infinity;
  }
  // Bisection: the tail is monotone in t; 200 halvings reach double precision for any bracket.
  for (let i = 0; i < 200; i++) {
    const mid = 0.5 * (lo + hi);
    if (mid === lo || mid === hi) break;
    if (upper(mid) > q) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** The two-sided critical value for `confidence` (e.g. 0.95 → t(0.975, df)). */
export function tCritical(confidence: number, df: number): number {
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1) (got ${confidence})`);
  return studentTQuantile(1 - (1 - confidence) / 2, df);
}

/**
 * Mean, sample standard deviation (n − 1), CV and the Student-t interval of the mean. With fewer
 * than two values there is no spread to estimate: stdDev and cv are 0 and the interval is
 * unbounded (halfWidth Infinity; written as null in JSON).
 */
export function estimate(values: readonly number[], confidence: number): Estimate {
  const n = values.length;
  const mean = n === 0 ? 0 : values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) {
    return { mean, stdDev: 0, cv: 0, confidence, halfWidth: Infinity, low: -Infinity, high: Infinity, relativeError: Infinity };
  }
  let ss = 0;
  for (const v of values) ss += (v - mean) * (v - mean);
  const stdDev = Math.sqrt(ss / (n - 1));
  const cv = mean !== 0 ? stdDev / Math.abs(mean) : 0;
  const halfWidth = (tCritical(confidence, n - 1) * stdDev) / Math.sqrt(n);
  return {
    mean,
    stdDev,
    cv,
    confidence,
    halfWidth,
    low: mean - halfWidth,
    high: mean + halfWidth,
    relativeError: mean !== 0 ? halfWidth / Math.abs(mean) : halfWidth === 0 ? 0 : Infinity,
  };
}

/**
 * How the spread of a mean over samples is estimated. 'iid': as if the samples were drawn
 * independently (s² / n). 'successive': from differences of neighbouring samples (Wolter's
 * estimator for systematic samples, Σ(dᵢ − dᵢ₋₁)² / 2n(n − 1)): the samples here are taken at
 * one per stratum, in order through the program, so slow phase changes are a trend the design
 * already stratifies, not noise; the iid formula counts them as noise and overstates the error.
 */
export type VarianceMethod = 'iid' | 'successive';

/**
 * Whole-program IPC from per-sample CPIs and weights (the instructions each sample stands for, in
 * any unit): the ratio estimator IPC = Σwᵢ / Σwᵢ·CPIᵢ, i.e. 1 / R with R the weighted mean CPI.
 * The interval is R's (delta method on the residuals eᵢ = wᵢ(CPIᵢ − R) / w̄, spread by `method`,
 * Student t at n − 1 degrees of freedom), inverted. `cv` is the per-sample relative spread of R
 * that interval implies (so samplesNeeded agrees with it); stdDev is the spread of the IPCs.
 */
export function ratioIpcEstimate(cpis: readonly number[], weights: readonly number[], confidence: number, method: VarianceMethod): Estimate {
  const n = cpis.length;
  if (weights.length !== n) throw new RangeError(`ratioIpcEstimate: ${n} CPIs but ${weights.length} weights`);
  let sw = 0;
  let swc = 0;
  for (let i = 0; i < n; i++) {
    sw += weights[i]!;
    swc += weights[i]! * cpis[i]!;
  }
  const r = sw > 0 ? swc / sw : NaN;
  const ipcSpread = estimate(cpis.map((c) => 1 / c), confidence).stdDev;
  if (n < 2 || !(r > 0)) {
    return { mean: r > 0 ? 1 / r : NaN, stdDev: ipcSpread, cv: 0, confidence, halfWidth: Infinity, low: 0, high: Infinity, relativeError: Infinity };
  }
  const wBar = sw / n;
  const e = cpis.map((c, i) => (weights[i]! * (c - r)) / wBar);
  let ss = 0;
  if (method === 'iid') {
    for (const x of e) ss += x * x;
    ss /= n - 1;
  } else {
    for (let i = 1; i < n; i++) ss += (e[i]! - e[i - 1]!) ** 2;
    ss /= 2 * (n - 1);
  }
  // ss estimates the per-sample variance of the residuals; the mean's variance is ss / n.
  const sdR = Math.sqrt(ss / n);
  const h = tCritical(confidence, n - 1) * sdR;
  const low = r + h > 0 ? 1 / (r + h) : 0;
  const high = r - h > 0 ? 1 / (r - h) : Infinity;
  return {
    mean: 1 / r,
    stdDev: ipcSpread,
    cv: Math.sqrt(ss) / r,
    confidence,
    halfWidth: (high - low) / 2,
    low,
    high,
    relativeError: h / r,
  };
}

/** A stratum of a stratified estimate: its instruction count and its samples' CPIs. */
export interface Stratum {
  insts: number;
  cpis: readonly number[];
  /** Relative standard error of `insts` (from its rate probes), 0 when not known. */
  instsRelError?: number;
  /**
   * Its samples stand in from other strata (code no sample ran): their spread is between phases,
   * so it stays out of the pooled variance that single-sample strata take.
   */
  borrowed?: boolean;
}

/**
 * Whole-program IPC from strata (phases): IPC = Σ Iₚ / Σ Iₚ·CPIₚ with CPIₚ the mean CPI of the
 * stratum's samples. The interval, in log space, adds the CPI means' variances (within-stratum
 * s²/n; a stratum with one sample takes the pooled relative variance of the others, borrowed
 * strata left out) and the
 * instruction counts' (instsRelError), by the delta method; Student t at n − k degrees of freedom.
 * `cv` is the per-sample relative spread (√n · relative standard error), for samplesNeeded.
 */
export function stratifiedIpcEstimate(strata: readonly Stratum[], confidence: number): Estimate {
  const used = strata.filter((x) => x.cpis.length > 0 && x.insts > 0);
  const n = used.reduce((a, x) => a + x.cpis.length, 0);
  const means = used.map((x) => x.cpis.reduce((a, b) => a + b, 0) / x.cpis.length);
  const total = used.reduce((a, x) => a + x.insts, 0);
  const cycles = used.reduce((a, x, i) => a + x.insts * means[i]!, 0);
  const allIpcs = used.flatMap((x) => x.cpis.map((c) => 1 / c));
  const ipcSpread = estimate(allIpcs, confidence).stdDev;
  if (!(cycles > 0) || n - used.length < 1) {
    return { mean: cycles > 0 ? total / cycles : NaN, stdDev: ipcSpread, cv: 0, confidence, halfWidth: Infinity, low: 0, high: Infinity, relativeError: Infinity };
  }
  // Pooled relative within-stratum variance, for strata with a single sample.
  let pooledNum = 0;
  let pooledDen = 0;
  const relVar = used.map((x, i) => {
    const k = x.cpis.length;
    if (k < 2) return NaN;
    const m = means[i]!;
    const v = x.cpis.reduce((a, c) => a + (c - m) ** 2, 0) / (k - 1);
    if (!x.borrowed) {
      pooledNum += (k - 1) * (v / (m * m));
      pooledDen += k - 1;
    }
    return v / (m * m);
  });
  const pooled = pooledDen > 0 ? pooledNum / pooledDen : 0;
  let varLog = 0;
  used.forEach((x, i) => {
    const k = x.cpis.length;
    const m = means[i]!;
    const rv = Number.isFinite(relVar[i]!) ? relVar[i]! : pooled;
    // ∂ ln IPC / ∂ ln CPIₚ = −Iₚ·CPIₚ / C; ∂ ln IPC / ∂ ln Iₚ = Iₚ / I − Iₚ·CPIₚ / C.
    const share = (x.insts * m) / cycles;
    varLog += share * share * (rv / k);
    const e = x.instsRelError ?? 0;
    varLog += (x.insts / total - share) ** 2 * e * e;
  });
  const sdLog = Math.sqrt(varLog);
  const t = tCritical(confidence, n - used.length);
  const ipc = total / cycles;
  // Past e^20 (a factor of 5·10⁸) the interval says nothing: call it unbounded.
  const wide = t * sdLog > 20;
  const low = wide ? 0 : ipc * Math.exp(-t * sdLog);
  const high = wide ? Infinity : ipc * Math.exp(t * sdLog);
  return { mean: ipc, stdDev: ipcSpread, cv: sdLog * Math.sqrt(n), confidence, halfWidth: (high - low) / 2, low, high, relativeError: t * sdLog };
}

/**
 * The smallest sample count n ≥ 2 whose interval reaches the relative error `target` at this
 * coefficient of variation: t(n−1)·cv/√n ≤ target, i.e. n ≥ (t·cv/ε)² with t taken at n − 1
 * degrees of freedom (so the answer is exact, not the normal approximation).
 */
export function samplesNeeded(cv: number, target: number, confidence: number): number {
  if (!(target > 0)) throw new RangeError(`target error must be > 0 (got ${target})`);
  if (!(cv > 0)) return 2;
  const ok = (n: number) => (tCritical(confidence, n - 1) * cv) / Math.sqrt(n) <= target;
  if (ok(2)) return 2;
  let hi = 4;
  while (!ok(hi)) {
    hi *= 2;
    if (hi > 2 ** 40) return Infinity;
  }
  let lo = hi / 2; // !ok(lo)
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (ok(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The key-stat names of a set of samples, in a stable order (first seen, then sorted). */
export function keyStatNames(samples: readonly SampleRecord[]): string[] {
  const names = new Set<string>();
  for (const s of samples) for (const k of Object.keys(s.keyStats)) names.add(k);
  return [...names].sort();
}

function csvField(v: number | string): string {
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v;
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function hex(n: number | undefined): string {
  return n !== undefined ? `0x${n.toString(16)}` : '';
}

/** samples.csv: a header, then one row per sample (key stats as columns; an absent value is an empty cell). */
export function samplesCsv(samples: readonly SampleRecord[]): string {
  const keys = keyStatNames(samples);
  const header = [
    'index', 'fastForwardSeconds', 'fastForwardHostCycles', 'functionalWarmInsts', 'detailedWarmInsts',
    'measuredInsts', 'measuredCycles', 'ipc', 'cpi', 'startRip', 'unitRip', 'phase', ...keys, 'hostSecondsKvm', 'hostSecondsWarming', 'hostSecondsDetailed',
  ];
  const rows = samples.map((s) =>
    [
      s.index, s.fastForwardSeconds, s.fastForwardHostCycles, s.functionalWarmInsts, s.detailedWarmInsts,
      s.measuredInsts, s.measuredCycles, s.ipc, s.cpi, hex(s.startRip), hex(s.unitRip), s.phase ?? '', ...keys.map((k) => s.keyStats[k] ?? ''),
      s.hostSeconds.kvm, s.hostSeconds.warming, s.hostSeconds.detailed,
    ].map(csvField).join(','),
  );
  return [header.join(','), ...rows].join('\n') + '\n';
}

/** JSON with non-finite numbers (unbounded intervals) written as null. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n';
}

/** A small seeded PRNG (the seed text hashed with FNV-1a, then mulberry32), uniform in [0, 1). */
export function seededRandom(seed: string): () => number {
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  let a = h >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
