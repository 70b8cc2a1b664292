import { describe, expect, it } from 'vitest';
import { PhaseProfile, PhaseTable, UNKNOWN_CODE, windowRates, type ProbeWindow } from '../../src/sample/hostRate.js';
import { estimatorFor, exactStrataRecords, ipcEstimate, sampleWeights, strataRecords } from '../../src/sample/sampler.js';
import { ratioIpcEstimate, stratifiedIpcEstimate, tCritical } from '../../src/sample/stats.js';
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
    const r = 15 / 8; // (3 + 2 + 4 + 6) / 8
    const e = cpis.map((c, i) => (w[i]! * (c - r)) / 2); // w̄ = 2
    const iid = ratioIpcEstimate(cpis, w, 0.95, 'iid');
    expect(iid.mean).toBeCloseTo(8 / 15, 12);
    const hIid = tCritical(0.95, 3) * Math.sqrt(e.reduce((a, x) => a + x * x, 0) / 3 / 4);
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

  it('one sample: unbounded interval, no crash', () => {
    const one = ratioIpcEstimate([2], [1], 0.95, 'successive');
    expect(one.mean).toBe(0.5);
    expect(one.high).toBe(Infinity);
  });
});

describe('stratifiedIpcEstimate', () => {
  it('is Σ Iₚ / Σ Iₚ·CPIₚ; the interval adds the strata CPI variances (pooled for one-sample strata) and the instruction-count errors', () => {
    const strata = [
      { insts: 100, cpis: [1, 1.2, 0.8] }, // mean 1, relative variance 0.04
      { insts: 10, cpis: [20], instsRelError: 0.1 }, // one sample: pooled 0.04
    ];
    const e = stratifiedIpcEstimate(strata, 0.95);
    const c = 100 * 1 + 10 * 20;
    expect(e.mean).toBeCloseTo(110 / c, 12);
    const s1 = 100 / c;
    const s2 = 200 / c;
    const varLog = s1 * s1 * (0.04 / 3) + s2 * s2 * (0.04 / 1) + (10 / 110 - s2) ** 2 * 0.01;
    const t = tCritical(0.95, 4 - 2);
    expect(e.relativeError).toBeCloseTo(t * Math.sqrt(varLog), 12);
    expect(e.low).toBeCloseTo(e.mean * Math.exp(-t * Math.sqrt(varLog)), 12);
    expect(e.high).toBeCloseTo(e.mean * Math.exp(t * Math.sqrt(varLog)), 12);
  });

  it('a borrowed stratum (samples standing in from other phases) stays out of the pooled variance', () => {
    const base = [
      { insts: 100, cpis: [1, 1.2, 0.8] }, // relative variance 0.04
      { insts: 10, cpis: [20] }, // one sample: takes the pool
    ];
    const mixed = { insts: 1, cpis: [1, 1.2, 0.8, 20] }; // the spread between phases
    const without = stratifiedIpcEstimate([...base, { ...mixed, borrowed: true }], 0.95);
    const pooledIn = stratifiedIpcEstimate([...base, mixed], 0.95);
    const c = 100 + 200 + 1 * ((1 + 1.2 + 0.8 + 20) / 4);
    const m = (1 + 1.2 + 0.8 + 20) / 4;
    const vMixed = [1, 1.2, 0.8, 20].reduce((a, x) => a + (x - m) ** 2, 0) / 3 / (m * m);
    const varLog = (100 / c) ** 2 * (0.04 / 3) + (200 / c) ** 2 * 0.04 + (m / c) ** 2 * (vMixed / 4);
    expect(without.relativeError).toBeCloseTo(tCritical(0.95, 8 - 3) * Math.sqrt(varLog), 12);
    expect(pooledIn.relativeError).toBeGreaterThan(2 * without.relativeError);
  });

  it('no degrees of freedom, or an interval wider than e^20: unbounded', () => {
    expect(stratifiedIpcEstimate([{ insts: 1, cpis: [1] }, { insts: 1, cpis: [2] }], 0.95).high).toBe(Infinity);
    // One degree of freedom at 99.7% (t ≈ 212) and a spread of ~50%: e^(212·…) is meaningless.
    const wide = stratifiedIpcEstimate([{ insts: 1, cpis: [1, 3] }, { insts: 1, cpis: [2] }], 0.997);
    expect(wide.mean).toBeCloseTo(2 / 4, 12);
    expect([wide.low, wide.high, wide.halfWidth]).toEqual([0, Infinity, Infinity]);
  });
});

describe('sample weights and phase records', () => {
  it("atomic fast-forward: exact interval instructions plus the sample's own", () => {
    const s = [rec(0, 1, { fastForwardInsts: 1000 }), rec(1, 2, { fastForwardInsts: 3000 })];
    expect(sampleWeights(s)).toEqual([1120, 3120]);
    expect(estimatorFor(true)).toBe('inverseMeanCpi');
    expect(ipcEstimate(s, 0.95, true).mean).toBeCloseTo((1120 + 3120) / (1120 * 1 + 3120 * 2), 12);
  });

  it('KVM: each phase stands for its KVM seconds × its probed rate plus its samples\' JS instructions; samples go by the code line they started at', () => {
    const p = new PhaseProfile();
    p.addCode(0, [[{ start: 0x1000, end: 0x1040 }, 100]]); // line 0x40
    p.addCode(1, [[{ start: 0x2000, end: 0x2040 }, 100]]); // line 0x80
    p.addCode(2, [[{ start: 0x3000, end: 0x3040 }, 100]]); // line 0xc0
    p.addCode(3, [[{ start: 0x2000, end: 0x2040 }, 50]]); // phase 3 ran phase 1's line less: owns none
    // KVM time: 10 ms in phase 0's code, 100 ms in phase 1's, 50 ms in phase 2's (spans scale to 0.32 s of KVM_RUN).
    p.noteChunk(0x1010, 0.01);
    p.noteChunk(0x2010, 0.1);
    p.noteChunk(0x3010, 0.05);
    const win = (line: number, insts: number, seconds: number): ProbeWindow => ({ insts, seconds, lines: new Map([[line, insts]]) });
    p.addWindow(win(0x40, 3e6, 0.001));
    p.addWindow(win(0x40, 5e6, 0.001)); // phase 0: mean of 3e9 and 5e9
    p.addWindow(win(0x80, 1e5, 0.001)); // phase 1: 1e8
    const s = [
      rec(0, 1, { phase: 0, startRip: 0x1004 }),
      rec(1, 1.2, { phase: 3, startRip: 0x1008 }), // its warming's phase (3) owns no code: it counts where it started
      rec(2, 10, { phase: 1, startRip: 0x2000 }),
      rec(3, 12, { phase: 2, startRip: 0x3000 }), // phase 2: no window, the median rate (lower middle: 1e8) at ±50%
    ];
    const ph = strataRecords(s, p, 0.32);
    expect(ph.map((x) => [x.phase, x.samples, x.rate, x.probes, x.sampleIndexes])).toEqual([[0, 2, 4e9, 2, [0, 1]], [1, 1, 1e8, 1, [2]], [2, 1, null, 0, [3]]]);
    expect(ph[0]!.cpi).toBeCloseTo(1.1, 12);
    expect(ph[0]!.kvmSeconds).toBeCloseTo(0.02, 12);
    expect(ph[0]!.insts).toBeCloseTo(0.02 * 4e9 + 240, 3);
    expect(ph[1]!.insts).toBeCloseTo(0.2 * 1e8 + 120, 3);
    expect(ph[2]!.insts).toBeCloseTo(0.1 * 1e8 + 120, 3);
    // Phase 0's two windows: relative standard error sd / mean / √2; phase 1 (one window) pooled / √1.
    const rel0 = Math.SQRT2 * 1e9 / 4e9 / Math.SQRT2;
    expect(ph[0]!.rateRelError).toBeCloseTo(rel0, 12);
    expect(ph[1]!.rateRelError).toBeCloseTo(rel0 * Math.SQRT2, 12);
    expect(ph[2]!.rateRelError).toBe(0.5);
    expect(estimatorFor(false, ph)).toBe('phaseStratified');
    const i = ph.reduce((a, x) => a + x.insts, 0);
    const c = ph.reduce((a, x) => a + x.insts * x.cpi, 0);
    expect(ipcEstimate(s, 0.95, false, 'successive', ph).mean).toBeCloseTo(i / c, 12);
  });

  it("atomic fast-forward: each phase stands for the exact instructions of the blocks in its code plus its samples' own; code no sample ran takes every sample", () => {
    const p = new PhaseProfile();
    p.addCode(0, [[{ start: 0x1000, end: 0x1040 }, 100]]);
    p.addCode(1, [[{ start: 0x2000, end: 0x2040 }, 100]]);
    p.addCode(2, [[{ start: 0x2000, end: 0x2040 }, 40]]); // phase 2 ran phase 1's line less: owns none
    // Fast-forward and warming instructions by block; the samples' W + U (20 each) go to their unit's phase.
    const blocks: [{ start: number }, number][] = [
      [{ start: 0x1000 }, 5000],
      [{ start: 0x1020 }, 1000],
      [{ start: 0x2010 }, 30_000],
      [{ start: 0x9000 }, 400], // code no sample's warming ran
    ];
    const s = [
      rec(0, 1, { phase: 0, startRip: 0x1004, fastForwardInsts: 1 }),
      // Warming started in phase 0's code, the measured unit in phase 1's (and its warming's phase, 2, owns no code): phase 1.
      rec(1, 2, { phase: 2, startRip: 0x1010, unitRip: 0x2004, fastForwardInsts: 1 }),
      rec(2, 3, { phase: 1, startRip: 0x2008, fastForwardInsts: 1 }),
    ];
    const ph = exactStrataRecords(s, p, blocks);
    expect(ph.map((x) => [x.phase, x.samples, x.sampleIndexes, x.insts, x.jsInsts, x.rateRelError])).toEqual([
      [UNKNOWN_CODE, 3, [0, 1, 2], 400, 0, 0],
      [0, 1, [0], 6020, 20, 0],
      [1, 2, [1, 2], 30_040, 40, 0],
    ]);
    expect(ph.map((x) => x.cpi)).toEqual([2, 1, 2.5]);
    expect(ph.map((x) => x.borrowed ?? false)).toEqual([true, false, false]);
    // Exact counts: the interval comes from the strata's CPI spread alone.
    const e = ipcEstimate(s, 0.95, true, 'successive', ph);
    expect(estimatorFor(true, ph)).toBe('phaseStratified');
    expect(e.mean).toBeCloseTo((400 + 6020 + 30_040) / (400 * 2 + 6020 * 1 + 30_040 * 2.5), 12);
    expect(exactStrataRecords([], p, blocks)).toEqual([]);
    // The code its measured unit ran decides a sample's stratum where known: sample 2's unit started
    // in phase 1's line but ran mostly phase 0's code.
    const byUnit = exactStrataRecords(s, p, blocks, new Map([[2, new Map([[0x2008, 3], [0x1000, 17]])]]));
    expect(byUnit.map((x) => [x.phase, x.sampleIndexes, x.insts, x.cpi])).toEqual([
      [UNKNOWN_CODE, [0, 1, 2], 400, 2],
      [0, [0, 2], 6040, 2],
      [1, [1], 30_020, 2],
    ]);
    // Phases whose units run each other's code (a quarter or more) are one stratum: the lower number.
    const merged = exactStrataRecords(s, p, blocks, new Map([[0, new Map([[0x1000, 12], [0x2000, 8]])], [1, new Map([[0x2004, 20]])], [2, new Map([[0x2008, 20]])]]));
    expect(merged.map((x) => [x.phase, x.sampleIndexes, x.insts])).toEqual([
      [UNKNOWN_CODE, [0, 1, 2], 400],
      [0, [0, 1, 2], 6000 + 30_000 + 60],
    ]);
    // A phase owning code but no unit's instructions (only warming ran it) borrows every sample.
    p.addCode(4, [[{ start: 0x5000, end: 0x5010 }, 100]]);
    const unmeasured = exactStrataRecords(s, p, [...blocks, [{ start: 0x5000 }, 700]]);
    expect(unmeasured.find((x) => x.phase === 4)).toMatchObject({ samples: 3, insts: 700, borrowed: true, sampleIndexes: [0, 1, 2] });
  });

  it("KVM: a phase owning time but no sample's start borrows its warming's samples, whose own instructions still count once", () => {
    const p = new PhaseProfile();
    p.addCode(0, [[{ start: 0x1000, end: 0x1040 }, 100]]);
    p.addCode(5, [[{ start: 0x5000, end: 0x5040 }, 100]]);
    p.noteChunk(0x1010, 0.01);
    p.noteChunk(0x5010, 0.01);
    p.addWindow({ insts: 1e6, seconds: 0.001, lines: new Map([[0x40, 1e6]]) });
    // Its warming was phase 5's, its unit started in phase 0's code.
    const s = [rec(0, 2, { phase: 5, startRip: 0x1000 })];
    const ph = strataRecords(s, p, 0.02);
    expect(ph.map((x) => [x.phase, x.sampleIndexes, x.jsInsts])).toEqual([[0, [0], 120], [5, [0], 0]]);
  });

  it('KVM without a probe window falls back to the mean of the IPCs', () => {
    const p = new PhaseProfile();
    p.addCode(0, [[{ start: 0x1000, end: 0x1040 }, 100]]);
    p.noteChunk(0x1010, 0.01);
    const s = [rec(0, 1, { phase: 0, startRip: 0x1000, hostRate: { missed: 'syscall' } }), rec(1, 4, { phase: 0, startRip: 0x1000 })];
    expect(strataRecords(s, p, 0.01)).toEqual([]);
    expect(estimatorFor(false, [])).toBe('meanIpc');
    expect(ipcEstimate(s, 0.95, false).mean).toBeCloseTo((1 + 0.25) / 2, 12);
  });
});

describe('windowRates', () => {
  it('gives each window\'s rate to the phase that ran most of its instructions; unknown code is a group of its own', () => {
    const groupOf = (line: number) => (line < 0x100 ? 0 : line < 0x200 ? 1 : UNKNOWN_CODE);
    const w = (mix: [number, number][], seconds: number): ProbeWindow => ({ insts: mix.reduce((a, [, n]) => a + n, 0), seconds, lines: new Map(mix) });
    const r = windowRates([
      w([[0x10, 700], [0x150, 300]], 1e-6), // mostly phase 0: 1e9
      w([[0x10, 2000], [0x11, 1000]], 1e-6), // two lines of phase 0: 3e9
      w([[0x150, 100], [0x10, 50], [0x20, 40]], 1e-6), // phase 1 holds the plurality (100 of 190)
      w([[0x250, 10]], 1e-6),
      w([[0x10, 10]], 0), // no time: ignored
    ], groupOf);
    expect([...r.keys()].sort()).toEqual([UNKNOWN_CODE, 0, 1].sort());
    expect(r.get(0)).toMatchObject({ rate: 2e9, windows: 2 });
    expect(r.get(0)!.relError).toBeCloseTo(Math.sqrt(2e18 / 4e18) / Math.SQRT2, 12);
    expect(r.get(1)).toMatchObject({ rate: 1.9e8, windows: 1 });
    expect(r.get(1)!.relError).toBeCloseTo(r.get(0)!.relError * Math.SQRT2, 12); // pooled (the only spread: phase 0's)
    // No phase with two windows: a prior ±30%.
    expect(windowRates([w([[0x10, 5]], 1e-6)], groupOf).get(0)!.relError).toBeCloseTo(0.3, 12);
  });
});

describe('PhaseTable and PhaseProfile', () => {
  it('groups block vectors by L1 distance of their proportions', () => {
    const t = new PhaseTable(0.6);
    expect(t.classify(new Map([[0x1000, 900], [0x2000, 100]]))).toBe(0);
    // Same code, other proportions (distance 0.4): same phase; scale does not matter.
    expect(t.classify(new Map([[0x1000, 14000], [0x2000, 6000]]))).toBe(0);
    expect(t.classify(new Map([[0x3000, 50]]))).toBe(1); // disjoint code: distance 2
    expect(t.classify(new Map([[0x3000, 10], [0x1000, 1]]))).toBe(1);
    expect(t.count).toBe(2);
  });

  it('attributes chunks by the phase whose samples ran their code line most; unknown code goes with the chunk before', () => {
    const p = new PhaseProfile();
    p.addCode(0, [[{ start: 0x1000, end: 0x1080 }, 500]]); // lines 0x40, 0x41
    p.addCode(1, [[{ start: 0x1040, end: 0x1050 }, 900]]); // line 0x41: phase 1 ran it more
    expect(p.phaseOf(0x1010)).toBe(0);
    expect(p.phaseOf(0x1044)).toBe(1);
    expect(p.phaseOf(0x9000)).toBeUndefined();
    p.noteChunk(0x9000, 0.5); // unknown before any known: goes with the first known (phase 0)
    p.noteChunk(0x1010, 1);
    p.noteChunk(0x1044, 2);
    p.noteChunk(0x9000, 4); // unknown: with phase 1 (the chunk before)
    const { seconds, guessed } = p.secondsByPhase();
    expect(Object.fromEntries(seconds)).toEqual({ 0: 1.5, 1: 6 });
    expect(guessed).toBe(4.5);
  });
});
