import { describe, expect, it } from 'vitest';
import { PhaseTable } from '../../src/sample/hostRate.js';
import { estimatorFor, ipcEstimate, sampleRates, sampleWeights } from '../../src/sample/sampler.js';
import { ratioIpcEstimate, tCritical } from '../../src/sample/stats.js';
import type { SampleRecord } from '../../src/sample/types.js';

function rec(i: number, cpi: number, extra: Partial<SampleRecord> = {}): SampleRecord {
  return {
    index: i, fastForwardSeconds: 0.001, fastForwardHostCycles: 0, functionalWarmInsts: 100, detailedWarmInsts: 10, measuredInsts: 10,
    measuredCycles: 10 * cpi, ipc: 1 / cpi, cpi, keyStats: {}, hostSeconds: { kvm: 0, warming: 0, detailed: 0 }, ...extra,
  };
}

describe('ratioIpcEstimate', () => {
  it('is Σw / Σw·CPI, with the iid and successive-difference spreads worked by hand', () => {
    const cpis = [1, 2, 4, 2];
    const w = [3, 1, 1, 3];
    // R = (3 + 2 + 4 + 6) / 8 = 15 / 8
    const r = 15 / 8;
    const e = cpis.map((c, i) => (w[i]! * (c - r)) / 2); // w̄ = 2
    const iid = ratioIpcEstimate(cpis, w, 0.95, 'iid');
    expect(iid.mean).toBeCloseTo(8 / 15, 12);
    const ssIid = e.reduce((a, x) => a + x * x, 0) / 3;
    const hIid = tCritical(0.95, 3) * Math.sqrt(ssIid / 4);
    expect(iid.relativeError).toBeCloseTo(hIid / r, 12);
    expect(iid.low).toBeCloseTo(1 / (r + hIid), 12);
    expect(iid.high).toBeCloseTo(1 / (r - hIid), 12);
    const suc = ratioIpcEstimate(cpis, w, 0.95, 'successive');
    const ssSuc = ((e[1]! - e[0]!) ** 2 + (e[2]! - e[1]!) ** 2 + (e[3]! - e[2]!) ** 2) / (2 * 3);
    expect(suc.mean).toBeCloseTo(8 / 15, 12);
    expect(suc.relativeError).toBeCloseTo((tCritical(0.95, 3) * Math.sqrt(ssSuc / 4)) / r, 12);
  });

  it('a slow trend costs the successive-difference interval little and the iid one a lot', () => {
    const cpis = Array.from({ length: 40 }, (_, i) => 1 + i / 40);
    const ones = cpis.map(() => 1);
    const suc = ratioIpcEstimate(cpis, ones, 0.997, 'successive');
    const iid = ratioIpcEstimate(cpis, ones, 0.997, 'iid');
    expect(suc.mean).toBeCloseTo(iid.mean, 12);
    expect(suc.relativeError).toBeLessThan(iid.relativeError / 10);
  });

  it('equal weights and one sample: unbounded interval, no crash', () => {
    const one = ratioIpcEstimate([2], [1], 0.95, 'successive');
    expect(one.mean).toBe(0.5);
    expect(one.high).toBe(Infinity);
  });
});

describe('sample weights', () => {
  it('atomic fast-forward: exact interval instructions plus the sample\'s own', () => {
    const s = [rec(0, 1, { fastForwardInsts: 1000 }), rec(1, 2, { fastForwardInsts: 3000 })];
    expect(sampleWeights(s, true)).toEqual([1120, 3120]);
    expect(estimatorFor(s, true)).toBe('inverseMeanCpi');
    expect(ipcEstimate(s, 0.95, true).mean).toBeCloseTo((1120 + 3120) / (1120 * 1 + 3120 * 2), 12);
  });

  it('KVM: phase rates (mean of its probes; the median for unprobed phases), interval at the mean of the two phases\' rates', () => {
    const s = [
      rec(0, 1, { phase: 0, hostRate: { insts: 2e6, seconds: 0.001 } }), // 2e9/s
      rec(1, 1, { phase: 0, hostRate: { insts: 4e6, seconds: 0.001 } }), // phase 0 mean 3e9/s
      rec(2, 10, { phase: 1, hostRate: { insts: 1e5, seconds: 0.001 } }), // 1e8/s
      rec(3, 10, { phase: 2, hostRate: { missed: 'beyond trace' } }), // median of {3e9, 1e8} = 1e8 (lower middle)
    ];
    expect(sampleRates(s)).toEqual([3e9, 3e9, 1e8, 1e8]);
    const w = sampleWeights(s, false)!;
    expect(w[0]).toBeCloseTo(3e9 * 0.001 + 120, 3);
    expect(w[2]).toBeCloseTo(0.5 * (3e9 + 1e8) * 0.001 + 120, 3);
    expect(w[3]).toBeCloseTo(1e8 * 0.001 + 120, 3);
    expect(estimatorFor(s, false)).toBe('rateWeighted');
    const sw = w.reduce((a, b) => a + b, 0);
    const swc = w.reduce((a, x, i) => a + x * s[i]!.cpi, 0);
    expect(ipcEstimate(s, 0.95, false).mean).toBeCloseTo(sw / swc, 12);
  });

  it('KVM without a measured probe falls back to the mean of the IPCs', () => {
    const s = [rec(0, 1, { phase: 0, hostRate: { missed: 'syscall' } }), rec(1, 4, { phase: 0 })];
    expect(sampleRates(s)).toBeNull();
    expect(estimatorFor(s, false)).toBe('meanIpc');
    expect(ipcEstimate(s, 0.95, false).mean).toBeCloseTo((1 + 0.25) / 2, 12);
  });
});

describe('PhaseTable', () => {
  it('groups block vectors by L1 distance of their proportions', () => {
    const t = new PhaseTable(0.6);
    expect(t.classify(new Map([[0x1000, 900], [0x2000, 100]]))).toBe(0);
    // Same code, other proportions (distance 0.4): same phase; scale does not matter.
    expect(t.classify(new Map([[0x1000, 14000], [0x2000, 6000]]))).toBe(0);
    // Disjoint code: distance 2.
    expect(t.classify(new Map([[0x3000, 50]]))).toBe(1);
    expect(t.classify(new Map([[0x3000, 10], [0x1000, 1]]))).toBe(1);
    expect(t.count).toBe(2);
  });
});
