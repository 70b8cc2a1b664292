/**
 * Validation of a sampling study against the whole program on o3 (a System with o3 only, run to
 * the end, o3 stats over the whole run): the reference IPC, and the wall time the sampling saved.
 */
import type { Stat } from '../stats.js';
import { System } from '../switch/system.js';
import { definedFields } from '../defined.js';
import type { SamplingResult } from './types.js';

export interface FullO3Run {
  ipc: number;
  cycles: number;
  insts: number;
  wallSeconds: number;
  exit: { kind: string; status?: number };
}

export interface FullO3Options {
  program: string;
  args: string[];
  env?: string[];
  guestSeed?: bigint;
  glibcBaseline?: boolean;
  memSize?: number;
  allowRead?: string[];
  hostFreqHz?: number;
  o3Config?: string;
  /** Capture the guest's output (default true: it already appeared in the sampled run). */
  capture?: boolean;
}

function num(stats: readonly Stat[], name: string): number {
  const s = stats.find((x) => x.name === name);
  return typeof s?.value === 'number' ? s.value : NaN;
}

export async function runFullO3(opts: FullO3Options): Promise<FullO3Run> {
  const t0 = performance.now();
  const system = await System.create({
    models: ['o3'],
    program: opts.program,
    args: opts.args,
    ...definedFields({ env: opts.env, seed: opts.guestSeed, glibcBaseline: opts.glibcBaseline, memSize: opts.memSize, hostFreqHz: opts.hostFreqHz, o3Config: opts.o3Config }),
    allowRead: opts.allowRead ?? [],
    capture: opts.capture ?? true,
    onWarning: () => {},
  });
  try {
    await system.start('o3');
    let exit: FullO3Run['exit'];
    for (;;) {
      const out = await system.run({});
      if (out.kind === 'exited') {
        exit = { kind: 'exited', status: out.status };
        break;
      }
      if (out.kind === 'faulted') {
        exit = { kind: 'faulted' };
        break;
      }
    }
    const stats = await system.model('o3').stats();
    const cycles = num(stats, 'system.o3_cpu.numCycles');
    const insts = num(stats, 'system.o3_cpu.committedInsts');
    return { ipc: insts / cycles, cycles, insts, wallSeconds: (performance.now() - t0) / 1000, exit };
  } finally {
    await system.close();
  }
}

/** Fills `result.validation` from a full o3 run; the sampled IPC is the mean over the samples. */
export function validationOf(result: SamplingResult, full: FullO3Run, sampledWallSeconds: number): NonNullable<SamplingResult['validation']> {
  const sampled = result.summary.ipc.mean;
  return {
    fullIpc: full.ipc,
    fullWallSeconds: full.wallSeconds,
    sampledWallSeconds,
    error: Math.abs(sampled - full.ipc) / full.ipc,
    speedup: full.wallSeconds / sampledWallSeconds,
  };
}
