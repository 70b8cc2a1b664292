/** bench/lib/scaling.ts: hostFactor fits and estimate errors on synthetic rows with exact answers. */
import { describe, expect, it } from 'vitest';
import { analyzeScaling, fitThroughOrigin, geometricMean, relError, type ScalingMeasurement } from '../../bench/lib/scaling.js';

/** Host clock 1 Hz: host cycles = host seconds, so the numbers below are the cycles. */
const HZ = 1;

const rows: ScalingMeasurement[] = [
  { workload: 'A', region: 'small', insts: 500, hostSeconds: 100, o3Cycles: 200 },
  { workload: 'A', region: 'large', insts: 20_000_000, hostSeconds: 200, o3Cycles: 400 },
  { workload: 'B', region: 'small', insts: 500, hostSeconds: 100, o3Cycles: 100 },
  { workload: 'B', region: 'medium', insts: 5_000_000, hostSeconds: 300, o3Cycles: 300 },
];

describe('scaling fits', () => {
  it('least squares through the origin is Σxy / Σx²', () => {
    expect(fitThroughOrigin([1, 2, 3], [2, 4, 7])).toBeCloseTo(31 / 14, 12);
    expect(fitThroughOrigin([], [])).toBeNaN();
    expect(() => fitThroughOrigin([1], [])).toThrow();
  });

  it('geometric mean and relative error', () => {
    expect(geometricMean([2, 8])).toBeCloseTo(4, 12);
    expect(geometricMean([])).toBeNaN();
    expect(relError(110, 100)).toBeCloseTo(0.1, 12);
    expect(relError(75, 100)).toBeCloseTo(-0.25, 12);
  });

  it('rows: host and o3 CPI, per-row hostFactor', () => {
    const a = analyzeScaling(rows, HZ);
    expect(a.hostFreqHz).toBe(1);
    const r = a.rows[0]!;
    expect(r.hostCycles).toBe(100);
    expect(r.hostCpi).toBeCloseTo(0.2, 12);
    expect(r.o3Cpi).toBeCloseTo(0.4, 12);
    expect(r.hostFactor).toBeCloseTo(2, 12);
    expect(a.rows.map((x) => x.hostFactor)).toEqual([2, 2, 1, 1]);
  });

  it('host cycles are host seconds × frequency', () => {
    const a = analyzeScaling([{ workload: 'A', region: 'r', insts: 1000, hostSeconds: 0.5e-6, o3Cycles: 2100 }], 2.1e9);
    expect(a.rows[0]!.hostCycles).toBeCloseTo(1050, 9);
    expect(a.rows[0]!.hostCpi).toBeCloseTo(1.05, 12);
    expect(a.globalFactor).toBeCloseTo(2, 12);
  });

  it('global factor (LSQ on cycles: 200000 / 150000 = 4/3), geometric mean (√2), per-workload factors', () => {
    const a = analyzeScaling(rows, HZ);
    expect(a.globalFactor).toBeCloseTo(4 / 3, 12);
    expect(a.geoMeanFactor).toBeCloseTo(Math.SQRT2, 12);
    expect(a.perWorkloadFactor.A).toBeCloseTo(2, 12);
    expect(a.perWorkloadFactor.B).toBeCloseTo(1, 12);
  });

  it('errors: global ±1/3, own workload 0, geometric mean √2/2 − 1 and √2 − 1', () => {
    const a = analyzeScaling(rows, HZ);
    const g = a.rows.map((x) => x.errorGlobal);
    [-1 / 3, -1 / 3, 1 / 3, 1 / 3].forEach((v, i) => expect(g[i]).toBeCloseTo(v, 12));
    for (const x of a.rows) expect(x.errorPerWorkload).toBeCloseTo(0, 12);
    [Math.SQRT1_2 - 1, Math.SQRT1_2 - 1, Math.SQRT2 - 1, Math.SQRT2 - 1].forEach((v, i) => expect(a.errorGeo[i]).toBeCloseTo(v, 12));
    expect(a.summary.meanAbsErrorGlobal).toBeCloseTo(1 / 3, 12);
    expect(a.summary.maxAbsErrorGlobal).toBeCloseTo(1 / 3, 12);
    expect(a.summary.meanAbsErrorPerWorkload).toBeCloseTo(0, 12);
    expect(a.summary.meanAbsErrorGeo).toBeCloseTo(Math.SQRT2 / 4, 12);
    expect(a.summary.maxAbsErrorGeo).toBeCloseTo(Math.SQRT2 - 1, 12);
  });

  it("a workload's own factor that does not fit every row exactly", () => {
    // C: (1, 1) and (1, 3): factor (1 + 3) / (1 + 1) = 2; errors +1 and −1/3.
    const a = analyzeScaling(
      [
        { workload: 'C', region: 'x', insts: 10, hostSeconds: 1, o3Cycles: 1 },
        { workload: 'C', region: 'y', insts: 10, hostSeconds: 1, o3Cycles: 3 },
      ],
      HZ,
    );
    expect(a.perWorkloadFactor.C).toBeCloseTo(2, 12);
    expect(a.rows[0]!.errorPerWorkload).toBeCloseTo(1, 12);
    expect(a.rows[1]!.errorPerWorkload).toBeCloseTo(-1 / 3, 12);
    expect(a.summary.meanAbsErrorPerWorkload).toBeCloseTo(2 / 3, 12);
    expect(a.summary.maxAbsErrorPerWorkload).toBeCloseTo(1, 12);
  });

  it('error by region length: buckets < 1M, 1M–10M, ≥ 10M', () => {
    const a = analyzeScaling(rows, HZ);
    expect(a.byLength.map((b) => [b.label, b.rows])).toEqual([
      ['< 1M', 2],
      ['1M–10M', 1],
      ['≥ 10M', 1],
    ]);
    const [small, medium, large] = a.byLength;
    expect(small!.meanAbsErrorGlobal).toBeCloseTo(1 / 3, 12);
    expect(small!.meanAbsErrorGeo).toBeCloseTo(Math.SQRT2 / 4, 12);
    expect(medium!.meanAbsErrorGeo).toBeCloseTo(Math.SQRT2 - 1, 12);
    expect(large!.meanAbsErrorGeo).toBeCloseTo(1 - Math.SQRT1_2, 12);
    expect(large!.meanAbsErrorPerWorkload).toBeCloseTo(0, 12);
  });

  it('custom edges; an empty bucket has no error', () => {
    const a = analyzeScaling(rows, HZ, [1000, 100_000_000]);
    expect(a.byLength.map((b) => [b.label, b.rows])).toEqual([
      ['< 1k', 2],
      ['1k–100M', 2],
      ['≥ 100M', 0],
    ]);
    expect(a.byLength[2]!.meanAbsErrorGlobal).toBeNaN();
  });
});
