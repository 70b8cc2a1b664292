/**
 * Host-to-guest cycle scaling (issue 6): from per-region measurements (exact instructions,
 * KVM host time, o3 cycles) to hostFactor fits and the error of guest-cycle estimates.
 *
 *   hostCycles = hostSeconds × host frequency      (no PMU here: nominal frequency)
 *   hostFactor = o3 cycles / host cycles           (per region)
 *   estimate   = hostCycles × factor               (what KVM reports as guest cycles)
 *   error      = (estimate − o3 cycles) / o3 cycles
 *
 * Factors: the global one is least squares through the origin on cycles,
 * f = Σ h·o / Σ h² (minimises Σ (f·h − o)²: long regions weigh most); the geometric mean of
 * the per-region ratios (every region weighs the same) is reported beside it. A workload's own
 * factor is least squares through the origin over its rows.
 */
import type { ScalingRow, ScalingTable } from '../../src/sample/types.js';

/** What is measured for one region. */
export interface ScalingMeasurement {
  workload: string;
  region: string;
  insts: number;
  hostSeconds: number;
  o3Cycles: number;
}

export interface LengthBucket {
  label: string;
  /** Instructions: lo ≤ insts < hi. */
  lo: number;
  hi: number;
  rows: number;
  meanAbsErrorGlobal: number;
  meanAbsErrorPerWorkload: number;
  meanAbsErrorGeo: number;
}

export interface ScalingAnalysis extends ScalingTable {
  /** Geometric mean of the per-row hostFactor. */
  geoMeanFactor: number;
  /** Each workload's own factor (least squares through the origin over its rows). */
  perWorkloadFactor: Record<string, number>;
  /** Signed errors of every row with the geometric-mean factor (same order as rows). */
  errorGeo: number[];
  /** Mean and largest |error| over all rows, per way of choosing the factor. */
  summary: {
    meanAbsErrorGlobal: number;
    maxAbsErrorGlobal: number;
    meanAbsErrorGeo: number;
    maxAbsErrorGeo: number;
    meanAbsErrorPerWorkload: number;
    maxAbsErrorPerWorkload: number;
  };
  byLength: LengthBucket[];
}

/** f minimising Σ (f·x − y)²: Σxy / Σx². NaN without data. */
export function fitThroughOrigin(xs: readonly number[], ys: readonly number[]): number {
  if (xs.length !== ys.length) throw new Error('fitThroughOrigin: lengths differ');
  let xy = 0;
  let xx = 0;
  for (let i = 0; i < xs.length; i++) {
    xy += xs[i]! * ys[i]!;
    xx += xs[i]! * xs[i]!;
  }
  return xx > 0 ? xy / xx : NaN;
}

export function geometricMean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  return Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
}

/** Relative error of an estimate: (estimate − actual) / actual. */
export function relError(estimate: number, actual: number): number {
  return (estimate - actual) / actual;
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length : NaN);
const maxAbs = (xs: readonly number[]) => (xs.length ? Math.max(...xs.map(Math.abs)) : NaN);
const meanAbs = (xs: readonly number[]) => mean(xs.map(Math.abs));

/** Default length buckets (instructions): < 1M, 1M–10M, ≥ 10M. */
export const DEFAULT_LENGTH_EDGES = [1e6, 1e7];

function countLabel(n: number): string {
  if (n >= 1e9 && n % 1e9 === 0) return `${n / 1e9}G`;
  if (n >= 1e6 && n % 1e6 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 1e3 === 0) return `${n / 1e3}k`;
  return String(n);
}

/** Rows, factor fits, errors and the error-vs-length table. */
export function analyzeScaling(ms: readonly ScalingMeasurement[], hostFreqHz: number, edges: readonly number[] = DEFAULT_LENGTH_EDGES): ScalingAnalysis {
  const hostCycles = ms.map((m) => m.hostSeconds * hostFreqHz);
  const o3 = ms.map((m) => m.o3Cycles);
  const globalFactor = fitThroughOrigin(hostCycles, o3);
  const geoMeanFactor = geometricMean(ms.map((m, i) => o3[i]! / hostCycles[i]!));
  const perWorkloadFactor: Record<string, number> = {};
  for (const w of new Set(ms.map((m) => m.workload))) {
    const idx = ms.map((m, i) => (m.workload === w ? i : -1)).filter((i) => i >= 0);
    perWorkloadFactor[w] = fitThroughOrigin(idx.map((i) => hostCycles[i]!), idx.map((i) => o3[i]!));
  }
  const rows: ScalingRow[] = ms.map((m, i) => {
    const h = hostCycles[i]!;
    return {
      workload: m.workload,
      region: m.region,
      insts: m.insts,
      hostSeconds: m.hostSeconds,
      hostCycles: h,
      hostCpi: h / m.insts,
      o3Cycles: m.o3Cycles,
      o3Cpi: m.o3Cycles / m.insts,
      hostFactor: m.o3Cycles / h,
      errorGlobal: relError(h * globalFactor, m.o3Cycles),
      errorPerWorkload: relError(h * perWorkloadFactor[m.workload]!, m.o3Cycles),
    };
  });
  const errorGeo = rows.map((r) => relError(r.hostCycles * geoMeanFactor, r.o3Cycles));
  const bounds = [0, ...edges, Infinity];
  const byLength: LengthBucket[] = [];
  for (let b = 0; b + 1 < bounds.length; b++) {
    const lo = bounds[b]!;
    const hi = bounds[b + 1]!;
    const idx = rows.map((r, i) => (r.insts >= lo && r.insts < hi ? i : -1)).filter((i) => i >= 0);
    const label = lo === 0 ? `< ${countLabel(hi)}` : hi === Infinity ? `≥ ${countLabel(lo)}` : `${countLabel(lo)}–${countLabel(hi)}`;
    byLength.push({
      label,
      lo,
      hi,
      rows: idx.length,
      meanAbsErrorGlobal: meanAbs(idx.map((i) => rows[i]!.errorGlobal)),
      meanAbsErrorPerWorkload: meanAbs(idx.map((i) => rows[i]!.errorPerWorkload)),
      meanAbsErrorGeo: meanAbs(idx.map((i) => errorGeo[i]!)),
    });
  }
  return {
    hostFreqHz,
    globalFactor,
    rows,
    geoMeanFactor,
    perWorkloadFactor,
    errorGeo,
    summary: {
      meanAbsErrorGlobal: meanAbs(rows.map((r) => r.errorGlobal)),
      maxAbsErrorGlobal: maxAbs(rows.map((r) => r.errorGlobal)),
      meanAbsErrorGeo: meanAbs(errorGeo),
      maxAbsErrorGeo: maxAbs(errorGeo),
      meanAbsErrorPerWorkload: meanAbs(rows.map((r) => r.errorPerWorkload)),
      maxAbsErrorPerWorkload: maxAbs(rows.map((r) => r.errorPerWorkload)),
    },
    byLength,
  };
}
