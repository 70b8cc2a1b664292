/**
 * The statistics of `switchsim sample`: Student-t quantiles (against table values and the closed
 * forms for 1 and 2 degrees of freedom), intervals, samples needed, CSV shape, CLI parsing.
 */
import { describe, expect, it } from 'vitest';
import { parseCount, parseFraction, parseSampleArgs } from '../../src/cliArgs.js';
import { estimate, logGamma, regularizedIncompleteBeta, samplesCsv, samplesNeeded, seededRandom, studentTCdf, studentTQuantile, tCritical, toJson } from '../../src/sample/stats.js';
import type { SampleRecord } from '../../src/sample/types.js';

describe('Student t quantile', () => {
  it('matches table values', () => {
    const table: [number, number, number][] = [
      [0.975, 1, 12.706],
      [0.975, 2, 4.303],
      [0.975, 5, 2.571],
      [0.975, 10, 2.228],
      [0.975, 30, 2.042],
      [0.975, 100, 1.984],
      [0.95, 20, 1.725],
      [0.995, 5, 4.032],
      [0.995, 9, 3.25],
      [0.999, 2, 22.327],
      // 99.7% two-sided, 30 df: 3.2296 (the value 3.189 sometimes quoted for it is not this quantile;
      // the Cornish-Fisher expansion around z = 2.9677 gives 3.2296 too).
      [0.9985, 30, 3.2296],
      [0.9995, 7, 5.408],
    ];
    for (const [p, df, t] of table) expect(studentTQuantile(p, df), `t(${p}, ${df})`).toBeCloseTo(t, 2);
  });

  it('equals the closed forms for df = 1 (Cauchy) and df = 2', () => {
    for (const p of [0.6, 0.9, 0.975, 0.9985, 0.99999]) {
      expect(studentTQuantile(p, 1)).toBeCloseTo(Math.tan(Math.PI * (p - 0.5)), 6);
      expect(studentTQuantile(p, 2)).toBeCloseTo((2 * p - 1) / Math.sqrt(2 * p * (1 - p)), 8);
    }
  });

  it('tends to the normal quantile, is odd, and inverts the CDF', () => {
    expect(studentTQuantile(0.975, 1e6)).toBeCloseTo(1.95996, 4);
    expect(studentTQuantile(0.9985, 1e6)).toBeCloseTo(2.9677, 3);
    expect(studentTQuantile(0.025, 10)).toBeCloseTo(-2.228, 3);
    expect(studentTQuantile(0.5, 3)).toBe(0);
    for (const df of [1, 3, 7.5, 40]) for (const p of [0.55, 0.8, 0.99, 0.9999]) expect(studentTCdf(studentTQuantile(p, df), df)).toBeCloseTo(p, 10);
    expect(tCritical(0.95, 10)).toBeCloseTo(2.228, 3);
    expect(tCritical(0.997, 30)).toBeCloseTo(3.2296, 3);
  });

  it('rests on a correct log-gamma and incomplete beta', () => {
    expect(logGamma(5)).toBeCloseTo(Math.log(24), 12);
    expect(logGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 12);
    expect(regularizedIncompleteBeta(0.3, 1, 1)).toBeCloseTo(0.3, 12);
    expect(regularizedIncompleteBeta(0.4, 2, 3)).toBeCloseTo(0.5248, 10); // 1 - (1-x)^3 (1+3x) at 0.4
    expect(() => studentTQuantile(1, 3)).toThrow(RangeError);
    expect(() => studentTQuantile(0.9, 0)).toThrow(RangeError);
  });
});

describe('estimates', () => {
  it('mean, sample stdDev, CV and the t interval', () => {
    const xs = [2, 4, 4, 4, 5, 5, 7, 9];
    const e = estimate(xs, 0.95);
    expect(e.mean).toBe(5);
    expect(e.stdDev).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(e.cv).toBeCloseTo(e.stdDev / 5, 12);
    const hw = (studentTQuantile(0.975, 7) * e.stdDev) / Math.sqrt(8);
    expect(e.halfWidth).toBeCloseTo(hw, 12);
    expect(e.low).toBeCloseTo(5 - hw, 12);
    expect(e.high).toBeCloseTo(5 + hw, 12);
    expect(e.relativeError).toBeCloseTo(hw / 5, 12);
    expect(e.confidence).toBe(0.95);
  });

  it('one sample has no interval; equal samples have a zero-width one', () => {
    const one = estimate([1.5], 0.997);
    expect(one.mean).toBe(1.5);
    expect(one.halfWidth).toBe(Infinity);
    expect(JSON.parse(toJson(one)).halfWidth).toBeNull();
    const flat = estimate([2, 2, 2], 0.997);
    expect(flat.halfWidth).toBe(0);
    expect(flat.relativeError).toBe(0);
  });

  it('samples needed: the smallest n with t(n-1)·cv/√n ≤ ε, i.e. n ≥ (t·cv/ε)²', () => {
    for (const [cv, eps, conf] of [[0.2, 0.03, 0.997], [0.05, 0.03, 0.997], [0.5, 0.05, 0.95], [1, 0.01, 0.997]] as const) {
      const n = samplesNeeded(cv, eps, conf);
      const t = tCritical(conf, n - 1);
      expect(n).toBeGreaterThanOrEqual((t * cv / eps) ** 2);
      if (n > 2) expect(n - 1).toBeLessThan((tCritical(conf, n - 2) * cv / eps) ** 2);
    }
    // Large n: close to the normal approximation (z = 2.9677 at 99.7%).
    expect(samplesNeeded(1, 0.01, 0.997)).toBeGreaterThan(Math.floor((2.9677 / 0.01) ** 2));
    expect(samplesNeeded(1, 0.01, 0.997)).toBeLessThan(Math.ceil((2.9677 / 0.01) ** 2) + 20);
    expect(samplesNeeded(0, 0.03, 0.997)).toBe(2);
  });
});

function rec(i: number, ipc: number): SampleRecord {
  return {
    index: i,
    fastForwardSeconds: 0.01,
    fastForwardHostCycles: 2.1e7,
    functionalWarmInsts: 200000,
    detailedWarmInsts: 20000,
    measuredInsts: 20000,
    measuredCycles: 20000 / ipc,
    ipc,
    cpi: 1 / ipc,
    keyStats: i === 0 ? { l1dMissRate: 0.1, branchMispredictsPki: 2 } : { l1dMissRate: 0.2, branchMispredictsPki: 3, l1dMpki: 4 },
    hostSeconds: { kvm: 0.01, warming: 0.05, detailed: 0.2 },
    ...(i === 1 ? { startRip: 0x401a2b, unitRip: 0x401b00, phase: 3 } : {}),
  };
}

describe('samples.csv', () => {
  it('has a header and one row per sample, every row as wide as the header', () => {
    const csv = samplesCsv([rec(0, 1.5), rec(1, 2), rec(2, 2.5)]);
    const lines = csv.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    const header = lines[0]!.split(',');
    expect(header.slice(0, 9)).toEqual(['index', 'fastForwardSeconds', 'fastForwardHostCycles', 'functionalWarmInsts', 'detailedWarmInsts', 'measuredInsts', 'measuredCycles', 'ipc', 'cpi']);
    expect(header).toContain('l1dMissRate');
    expect(header).toContain('branchMispredictsPki');
    expect(header.slice(-3)).toEqual(['hostSecondsKvm', 'hostSecondsWarming', 'hostSecondsDetailed']);
    for (const l of lines.slice(1)) expect(l.split(',')).toHaveLength(header.length);
    expect(lines[2]!.split(',')[header.indexOf('ipc')]).toBe('2');
    // A key stat a sample lacks is an empty cell.
    expect(lines[1]!.split(',')[header.indexOf('l1dMpki')]).toBe('');
    // Where a sample started (hex) and its phase; empty where not known.
    expect(lines[2]!.split(',')[header.indexOf('startRip')]).toBe('0x401a2b');
    expect(lines[2]!.split(',')[header.indexOf('unitRip')]).toBe('0x401b00');
    expect(lines[2]!.split(',')[header.indexOf('phase')]).toBe('3');
    expect(lines[1]!.split(',')[header.indexOf('phase')]).toBe('');
    expect(samplesCsv([]).trimEnd().split('\n')).toHaveLength(1);
  });
});

describe('seeded sample points', () => {
  it('is reproducible per seed, differs between seeds, and is uniform-ish in [0, 1)', () => {
    const a = seededRandom('1');
    const b = seededRandom('1');
    const c = seededRandom('2');
    const xa = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xa);
    expect(Array.from({ length: 1000 }, () => c())).not.toEqual(xa);
    expect(Math.min(...xa)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xa)).toBeLessThan(1);
    const mean = xa.reduce((s, x) => s + x, 0) / xa.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
  });
});

describe('switchsim sample arguments', () => {
  it('parses counts, percentages and the sampling options; the rest goes to the guest', () => {
    expect(parseCount('--x', '10M')).toBe(10_000_000);
    expect(parseCount('--x', '200k')).toBe(200_000);
    expect(parseFraction('--x', '3%')).toBeCloseTo(0.03, 12);
    expect(parseFraction('--x', '99.7%')).toBeCloseTo(0.997, 12);
    expect(parseFraction('--x', '0.05')).toBeCloseTo(0.05, 12);
    const p = parseSampleArgs(['--interval-insts', '5M', '--target-error', '2%', '--confidence=95%', '--seed', '7', '--out', 'o', '--mem-size', '256M', '-q', '--clear-env', 'prog', '--samples', '3']);
    expect(p.interval).toEqual({ insts: 5_000_000 });
    expect(p.targetError).toBeCloseTo(0.02, 12);
    expect(p.confidence).toBeCloseTo(0.95, 12);
    expect(p.samples).toBeNull();
    expect(p.seed).toBe('7');
    expect(p.out).toBe('o');
    expect(p.quiet).toBe(true);
    expect(p.options.memSize).toBe(256 * 1024 * 1024);
    expect(p.options.env).toEqual([]);
    expect(p.options.seed).toBeUndefined();
    expect(p.options.program).toBe('prog');
    expect(p.options.args).toEqual(['--samples', '3']);
    const d = parseSampleArgs(['prog']);
    expect(d).toMatchObject({
      validate: false, interval: { insts: 10_000_000 }, functionalWarmInsts: null, branchWarmInsts: 200_000, warming: null, hostRate: true,
      detailedWarmInsts: null, measureInsts: 20_000, samples: null, targetError: 0.03, confidence: 0.997, seed: '0', out: './switchsim-sample',
    });
    expect(parseSampleArgs(['--no-host-rate', '--fixed-warming', '--branch-warm-insts', '50k', '--functional-warm-insts', '1M', 'prog'])).toMatchObject({
      hostRate: false, warming: 'fixed', branchWarmInsts: 50_000, functionalWarmInsts: 1_000_000,
    });
    expect(parseSampleArgs(['--warming', 'record', 'prog']).warming).toBe('record');
    expect(() => parseSampleArgs(['--warming', 'sometimes', 'prog'])).toThrow(/record, adaptive or fixed/);
    expect(parseSampleArgs(['--interval-seconds', '0.01', '--samples', '4', 'prog']).interval).toEqual({ seconds: 0.01 });
  });

  it('refuses bad combinations and run-only options', () => {
    expect(() => parseSampleArgs(['--samples', '3', '--target-error', '3%', 'p'])).toThrow(/not both/);
    expect(() => parseSampleArgs(['--interval-insts', '1M', '--interval-seconds', '1', 'p'])).toThrow(/once/);
    expect(() => parseSampleArgs(['--cpu', 'o3', 'p'])).toThrow(/unknown option/);
    expect(() => parseSampleArgs(['--target-error', '150%', 'p'])).toThrow(/between/);
    expect(() => parseSampleArgs([])).toThrow(/missing/);
  });
});
