/**
 * Functional warming: the functional core runs ahead and its instruction stream trains the
 * caches, TLBs and branch predictor without timing (gem5's functional warming before a detailed
 * region), so a detailed region starts with realistic cache and predictor contents.
 */
import type { BranchPredictorUnit } from './bpred/branchUnit.js';
import type { MemSystem } from './mem/hierarchy.js';
import type { InstStream } from './types.js';

/**
 * Warms `mem` and `bpred` with up to `maxInsts` instructions of `stream`; returns how many it used.
 * The predictor counts its warming lookups in its stats: reset stats before the measured region.
 */
export function warmFunctionally(stream: InstStream, mem: MemSystem, bpred: BranchPredictorUnit, maxInsts: number): number {
  mem.warmBegin();
  let n = 0;
  let lastLine = -1;
  for (; n < maxInsts; n++) {
    const d = stream.next();
    if (!d) break;
    const line = Math.floor(d.pc / 64);
    if (line !== lastLine) {
      mem.warm(d.pc, 'fetch');
      lastLine = line;
    }
    for (const u of d.uops) {
      if (u.mem) mem.warm(u.mem.addr, u.cls === 'MemWrite' ? 'store' : 'load', u.mem.size);
    }
    if (d.branch) bpred.warm(d.pc, d.pc + d.len, d.branch);
  }
  return n;
}
