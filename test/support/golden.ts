/**
 * Golden stats of the detailed CPU: for each workload (test arguments, default config), the key
 * stats the model produces, stored in test/golden/o3/<name>.json. The simulation is
 * deterministic, so they must match exactly; a change to the model that moves them is updated
 * on purpose with `npm run golden:update`, and the diff is reviewed.
 */
import path from 'node:path';
import { ROOT } from './workloads.js';
import type { Stat } from '../../src/stats.js';

export const GOLDEN_DIR = path.join(ROOT, 'test/golden/o3');

/** The stats recorded in golden files (a stable, meaningful subset). */
export const GOLDEN_STATS = [
  'simInsts',
  'simOps',
  'system.cpu.numCycles',
  'system.cpu.ipc',
  'system.cpu.branchPred.condPredicted',
  'system.cpu.branchPred.condIncorrect',
  'system.cpu.branchPred.RASIncorrect',
  'system.cpu.icache.overallMisses',
  'system.cpu.dcache.overallAccesses',
  'system.cpu.dcache.overallMisses',
  'system.l2.overallMisses',
  'system.cpu.dtb.misses',
] as const;

export function goldenOf(stats: readonly Stat[]): Record<string, number | string> {
  const byName = new Map(stats.map((s) => [s.name, s.value]));
  const out: Record<string, number | string> = {};
  for (const n of GOLDEN_STATS) {
    const v = byName.get(n);
    if (v === undefined) throw new Error(`golden stat ${n} is not produced by the model`);
    out[n] = typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(9)) : v;
  }
  return out;
}
