/**
 * Synthetic SamplingResults for the report tests (report.test.ts, report-browser.test.ts).
 * Built by hand with known values; nothing here runs the sampler.
 */
import type { Estimate, SampleRecord, SamplingResult, ScalingTable } from '../../src/sample/types.js';

/** Two-sided Student t for 99.7% with 29 degrees of freedom (≈ 3.27; any fixed value will do here). */
export const T_997_29 = 3.27;

/** The 30 known IPCs: 1.234 + {-0.04, -0.02, 0, 0.02, 0.04}, six times over; mean exactly 1.234. */
export function knownIpcs(n = 30): number[] {
  return Array.from({ length: n }, (_, i) => 1.234 + 0.02 * ((i % 5) - 2));
}

export function estimate(xs: readonly number[], confidence: number, t: number): Estimate {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const stdDev = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : NaN;
  const halfWidth = n > 1 ? (t * stdDev) / Math.sqrt(n) : NaN;
  return {
    mean,
    stdDev,
    cv: stdDev / mean,
    confidence,
    halfWidth,
    low: mean - halfWidth,
    high: mean + halfWidth,
    relativeError: halfWidth / mean,
  };
}

function sample(index: number, ipc: number): SampleRecord {
  const measuredInsts = 10_000;
  return {
    index,
    fastForwardSeconds: 0.05,
    fastForwardHostCycles: 0.05 * 2.1e9,
    functionalWarmInsts: 200_000,
    detailedWarmInsts: 20_000,
    measuredInsts,
    measuredCycles: Math.round(measuredInsts / ipc),
    ipc,
    cpi: 1 / ipc,
    keyStats: { 'l1d.missRate': 0.01 + index * 0.001, 'bpred.mispredictsPerKinst': 3 + (index % 3) },
    hostSeconds: { kvm: 0.05, warming: 0.2, detailed: 0.4 },
  };
}

export const SCALING: ScalingTable = {
  hostFreqHz: 2.1e9,
  globalFactor: 1.35,
  rows: [
    { workload: 'checksum', region: 'all', insts: 45_001_584, hostSeconds: 0.0171, hostCycles: 35_910_000, hostCpi: 0.798, o3Cycles: 40_000_000, o3Cpi: 0.889, hostFactor: 1.114, errorGlobal: 0.212, errorPerWorkload: 0.004 },
    { workload: 'ptrchase', region: 'chase', insts: 12_000_000, hostSeconds: 0.1, hostCycles: 210_000_000, hostCpi: 17.5, o3Cycles: 300_000_000, o3Cpi: 25, hostFactor: 1.429, errorGlobal: -0.055, errorPerWorkload: 0.01 },
    { workload: 'matmul_int', region: 'kernel', insts: 30_000_000, hostSeconds: 0.012, hostCycles: 25_200_000, hostCpi: 0.84, o3Cycles: 40_000_000, o3Cpi: 1.333, hostFactor: 1.587, errorGlobal: -0.149, errorPerWorkload: 0.02 },
  ],
};

export interface FixtureOptions {
  n?: number;
  ipcs?: number[];
  program?: string;
  args?: string[];
  scaling?: boolean;
  validation?: boolean;
}

/** A study of `n` samples (default the 30 known IPCs), optionally with scaling and validation. */
export function makeResult(o: FixtureOptions = {}): SamplingResult {
  const ipcs = o.ipcs ?? knownIpcs(o.n ?? 30);
  const samples = ipcs.map((x, i) => sample(i, x));
  const finiteIpcs = ipcs.filter(Number.isFinite);
  const ipc = estimate(finiteIpcs, 0.997, T_997_29);
  const cpi = estimate(
    finiteIpcs.map((x) => 1 / x),
    0.997,
    T_997_29,
  );
  const jsInsts = samples.length * 230_000;
  const kvmHostCycles = samples.length * 0.05 * 2.1e9;
  const hostFactor = 1.35;
  const cycles = kvmHostCycles * hostFactor + jsInsts * cpi.mean;
  const wall = { kvm: 0.05 * samples.length, warming: 0.2 * samples.length, detailed: 0.4 * samples.length, other: 0.35 };
  const result: SamplingResult = {
    config: {
      program: o.program ?? 'workloads/build/phases',
      args: o.args ?? ['3', '1000000'],
      interval: { seconds: 0.05 },
      functionalWarmInsts: 200_000,
      detailedWarmInsts: 20_000,
      measureInsts: 10_000,
      samples: samples.length,
      targetError: 0.03,
      confidence: 0.997,
      seed: '0',
      o3Config: 'configs/o3-host.json',
      hostFreqHz: 2.1e9,
      hostFactor,
    },
    samples,
    summary: {
      samples: samples.length,
      ipc,
      cpi,
      targetError: 0.03,
      samplesNeeded: Number.isFinite(ipc.cv) ? Math.ceil(((T_997_29 * ipc.cv) / 0.03) ** 2) : NaN,
      wholeProgram: {
        cycles,
        low: kvmHostCycles * hostFactor + jsInsts * cpi.low,
        high: kvmHostCycles * hostFactor + jsInsts * cpi.high,
        kvmHostCycles,
        hostFactor,
        jsInsts,
      },
      hostSeconds: { ...wall, total: wall.kvm + wall.warming + wall.detailed + wall.other },
    },
  };
  if (o.scaling) result.scaling = SCALING;
  if (o.validation) result.validation = { fullIpc: 1.25, fullWallSeconds: 400, sampledWallSeconds: 20, error: -0.0128, speedup: 20 };
  return result;
}
