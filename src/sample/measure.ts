/**
 * One sample's work on o3, after the guest has been handed to it: (the caches rebuilt from the
 * memory timestamp record) → functional warming → detailed warm-up W (stats discarded) → the
 * measured unit U, with the pipeline as W left it. Shared by the serial sampler (sampler.ts) and
 * the parallel sampling worker (sampleWorker.ts), so both measure a sample the same way.
 */
import type { Block } from '../detailed/decode.js';
import type { MemoryTimestamps } from '../detailed/memoryTimestamps.js';
import type { FastWarmer } from '../detailed/o3/fastWarming.js';
import type { ModelOutcome, O3Model } from '../switch/models.js';
import type { System } from '../switch/system.js';
import type { Stat } from '../stats.js';

export interface SampleParams {
  /** Functional warming: its length (fixed, record), or its maximum (adaptive). */
  warmInsts: number;
  /** Of which the last this many train the branch predictor. */
  branchInsts: number;
  /** Adaptive warming's floors (null: fixed length). */
  adaptive: { minInsts: number; minQuietInsts: number } | null;
  detailedWarm: number;
  measureInsts: number;
}

export interface MeasureHooks {
  /** The warming's instructions by block (a basic-block vector: the sample's phase). */
  bbv?: Map<Block, number>;
  /** Blocks whose `counted` the warming's instructions go to (the atomic fast-forward's). */
  countedBlocks?: Block[] | null;
  /** The code the measured unit ran: block start → instructions. */
  unitCode?: Map<number, number>;
}

export type MeasureOutcome =
  | {
      kind: 'measured';
      startRip: number;
      unitRip: number;
      warmInsts: number;
      /** Instructions run on o3 (W + U). */
      o3Insts: number;
      stats: Awaited<ReturnType<O3Model['stats']>>;
      warmingSeconds: number;
      detailedSeconds: number;
    }
  /** The guest exited or faulted inside the sample (the partial sample is dropped). */
  | { kind: 'ended'; outcome: Extract<ModelOutcome, { kind: 'exited' } | { kind: 'faulted' }>; insts: number; warmingSeconds: number; detailedSeconds: number };

type EndOutcome = Extract<ModelOutcome, { kind: 'exited' } | { kind: 'faulted' }>;

/**
 * Runs exactly `n` instructions on o3 (m5ops passed over); the guest's end when it ended. With
 * `beyond`, the next `beyond` instructions are fetched too and stay in flight (RunLimit.fetchBeyond).
 */
export async function runO3(system: System, o3: O3Model, n: number, beyond = 0): Promise<EndOutcome | null> {
  const start = o3.instructions();
  while (o3.instructions() - start < n) {
    const out = await system.run({ insts: n - (o3.instructions() - start), ...(beyond > 0 ? { fetchBeyond: beyond } : {}) });
    if (out.kind === 'exited' || out.kind === 'faulted') return out;
  }
  return null;
}

/**
 * Measures one sample on `o3`, which must hold the guest (System.switchTo or takeOver). `t0`:
 * when the sample's warming began (performance.now(); the switch to o3 counts as warming).
 */
export async function measureSample(
  system: System,
  o3: O3Model,
  warmer: FastWarmer,
  record: MemoryTimestamps | null,
  p: SampleParams,
  hooks: MeasureHooks,
  t0: number,
): Promise<MeasureOutcome> {
  const startRip = o3.cpu.s.rip;
  warmer.profile = hooks.bbv ?? null;
  o3.cpu.countedBlocks = hooks.countedBlocks ?? null;
  let w: ReturnType<FastWarmer['warm']>;
  try {
    if (record) o3.memSystem.rebuildFrom(record);
    w = warmer.warm(p.warmInsts, p.branchInsts, p.adaptive ?? undefined);
  } finally {
    warmer.profile = null;
    o3.cpu.countedBlocks = null;
  }
  o3.warmedInsts += w.insts;
  const warmingSeconds = (performance.now() - t0) / 1000;
  if (w.end) return { kind: 'ended', outcome: w.end, insts: w.insts, warmingSeconds, detailedSeconds: 0 };
  const td0 = performance.now();
  const o3Before = o3.instructions();
  // The unit starts with the pipeline as the warm-up left it (full), not drained and refilling.
  let end = await runO3(system, o3, p.detailedWarm, p.measureInsts);
  await o3.resetStats();
  const unitRip = o3.nextCommitRip();
  const code = hooks.unitCode;
  if (code) o3.cpu.blockHook = (b, n) => void code.set(b.start, (code.get(b.start) ?? 0) + n);
  try {
    if (!end) end = await runO3(system, o3, p.measureInsts);
  } finally {
    o3.cpu.blockHook = null;
  }
  const o3Insts = o3.instructions() - o3Before;
  const stats = await o3.stats();
  const detailedSeconds = (performance.now() - td0) / 1000;
  if (end) return { kind: 'ended', outcome: end, insts: w.insts + o3Insts, warmingSeconds, detailedSeconds };
  return { kind: 'measured', startRip, unitRip, warmInsts: w.insts, o3Insts, stats, warmingSeconds, detailedSeconds };
}

const STAT_PREFIX = 'system.o3_cpu.';

function statValue(stats: readonly Stat[], name: string): number {
  const s = stats.find((x) => x.name === STAT_PREFIX + name);
  return typeof s?.value === 'number' ? s.value : NaN;
}

/** Key stats of a measured unit (o3 stats since the reset before it). */
export function keyStatsOf(stats: readonly Stat[]): { cycles: number; insts: number; keyStats: Record<string, number> } {
  const cycles = statValue(stats, 'numCycles');
  const insts = statValue(stats, 'committedInsts');
  const perKilo = (n: number) => (insts > 0 ? (n / insts) * 1000 : 0);
  const keyStats: Record<string, number> = {
    l1dMissRate: statValue(stats, 'dcache.overallMissRate'),
    l1dMpki: perKilo(statValue(stats, 'dcache.overallMisses')),
    l1iMpki: perKilo(statValue(stats, 'icache.overallMisses')),
    branchMispredictsPki: perKilo(statValue(stats, 'commit.branchMispredicts')),
  };
  for (const k of Object.keys(keyStats)) if (!Number.isFinite(keyStats[k]!)) delete keyStats[k];
  return { cycles, insts, keyStats };
}

