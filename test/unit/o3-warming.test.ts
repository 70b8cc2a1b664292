/**
 * Functional warming: caches and the branch predictor trained by the functional core's stream
 * (no timing) make a following detailed region start warm — fewer L1D misses and branch
 * mispredictions than the same region started cold.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AtomicCPU } from '../../src/detailed/atomicCpu.js';
import { BranchPredictorUnit } from '../../src/detailed/o3/bpred/branchUnit.js';
import { MemSystem } from '../../src/detailed/o3/mem/hierarchy.js';
import { O3Cpu } from '../../src/detailed/o3/o3Cpu.js';
import { o3Defaults } from '../../src/detailed/o3/params.js';
import { FunctionalStream } from '../../src/detailed/o3/trace.js';
import { tracingMemory, type TracingMemory } from '../../src/detailed/o3/tracingMemory.js';
import { warmFunctionally } from '../../src/detailed/o3/warming.js';
import { allocatePhysicalMemory } from '../../src/guest/physmem.js';
import { Process } from '../../src/guest/process.js';
import { workloadPath } from '../support/workloads.js';

const SKIP = 600_000;
const REGION = 100_000;

function region(warm: boolean) {
  const exe = workloadPath('ptrchase');
  const args = ['16K', '300000'];
  const phys = allocatePhysicalMemory(64 << 20, 'shared');
  const { process: p, context } = Process.load(phys, readFileSync(exe), {
    exePath: exe, argv: [exe, ...args], envp: [], allowRead: [], seed: 0n, hwcap: 0, hwcap2: 0, io: { write: () => {}, read: () => new Uint8Array(0) },
  });
  let tm: TracingMemory | undefined;
  const cpu = new AtomicCPU({ aspace: p.aspace, process: p, memory: (a) => (tm = tracingMemory(a)) });
  cpu.setThreadContext(context);
  const stream = new FunctionalStream(cpu, tm!);
  const mem = new MemSystem();
  const bpred = new BranchPredictorUnit();
  if (warm) {
    expect(warmFunctionally(stream, mem, bpred, SKIP)).toBe(SKIP);
  } else {
    for (let i = 0; i < SKIP; i++) stream.next();
  }
  const o3 = new O3Cpu(o3Defaults(), stream, mem, bpred);
  o3.resetStats(); // warming trains the predictor through predict+resolve, which counts: start clean
  o3.run(REGION);
  const stat = (n: string) => Number(o3.stats().find((s) => s.name === n)?.value ?? NaN);
  return {
    l1dMisses: stat('system.cpu.dcache.overallMisses'),
    mispredicts: stat('system.cpu.branchPred.condIncorrect'),
    cycles: stat('system.cpu.numCycles'),
  };
}

describe('functional warming', () => {
  it('a warmed 16 KiB pointer chase region misses far less in L1D and runs faster than a cold one', () => {
    const cold = region(false);
    const warm = region(true);
    // Cold: every one of the 256 lines of the working set misses once (plus stack/code lines).
    expect(cold.l1dMisses).toBeGreaterThanOrEqual(256);
    expect(warm.l1dMisses).toBeLessThan(cold.l1dMisses / 4);
    expect(warm.mispredicts).toBeLessThanOrEqual(cold.mispredicts);
    expect(warm.cycles).toBeLessThan(cold.cycles);
  });
});
