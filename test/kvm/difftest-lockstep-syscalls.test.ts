/**
 * Lockstep at syscalls: every workload runs at full speed on KVM and on the atomic CPU, and
 * both must agree (registers, memory, output) at every syscall — before it is served — and at
 * the exit or fault. A first mismatch is reported with its syscall index, both values and the
 * instructions that led to it (found by a per-instruction replay).
 */
import { beforeAll, expect, it } from 'vitest';
import { loadAtomicCpu, type AtomicFactory } from '../../src/difftest/atomic.js';
import { lockstepInstructions, lockstepSyscalls } from '../../src/difftest/lockstep.js';
import { Gpr } from '../../src/guest/threadContext.js';
import { workloadPath } from '../support/workloads.js';
import { lockstepWorkloads } from './difftest-support.js';
import { describeKvm } from './support.js';

describeKvm('difftest: lockstep at every syscall, KVM against the atomic CPU', () => {
  let atomic: AtomicFactory;
  beforeAll(async () => {
    const core = await loadAtomicCpu();
    if (!core.factory) throw new Error(`the atomic CPU is needed: ${core.reason}`);
    atomic = core.factory;
  });

  // Workloads with a `noSyscallLockstep` reason (an endless loop; rdtsc timings in the output)
  // are left out here, not skipped: CI treats a skipped KVM test as a failure. The reasons are
  // in difftest-support.ts; both run in the per-instruction lockstep.
  for (const w of lockstepWorkloads().filter((x) => !x.noSyscallLockstep)) {
    it(`${w.workload.name} (${w.argv.slice(1).join(' ') || '-'}): equal at every syscall and at the end`, () => {
      const r = lockstepSyscalls({ program: workloadPath(w.workload.name), argv: w.argv, envp: w.envp, atomic });
      expect(r.mismatch?.report).toBeUndefined();
      expect(r.end).toBe(w.workload.kind === 'fault' && typeof w.workload.expectExit === 'string' ? 'faulted' : 'exited');
      expect(r.syscalls).toBeGreaterThan(0);
    });
  }

  /** The atomic CPU, with r15 reported wrong once it has executed `after` instructions. */
  const brokenAfter = (after: number): AtomicFactory => (opts) => {
    const cpu = atomic(opts);
    const get = cpu.getThreadContext.bind(cpu);
    cpu.getThreadContext = () => {
      const tc = get();
      if (cpu.instructions > after) tc.gpr[Gpr.r15] = tc.gpr[Gpr.r15]! ^ 0x100n;
      return tc;
    };
    return cpu;
  };

  it('a divergence is reported with the syscall it was seen at and the instruction where it began', () => {
    const r = lockstepSyscalls({ program: workloadPath('args'), argv: ['args', 'x'], envp: [], atomic: brokenAfter(3000) });
    expect(r.end).toBe('mismatch');
    const m = r.mismatch!;
    expect(m.syscall).toBe(0);
    expect(m.where).toMatch(/^instruction 3001 from the entry point, before syscall 0 \(nr \d+\)$/);
    expect(m.diffs.map((d) => d.field)).toEqual(['r15']);
    expect(m.history).toHaveLength(16);
    expect(m.report).toContain('LOCKSTEP MISMATCH at instruction 3001');
  });

  it('per instruction, the first differing instruction is reported with the ones before it', () => {
    const r = lockstepInstructions({ program: workloadPath('args'), argv: ['args', 'x'], envp: [], atomic: brokenAfter(1234), maxInstructions: 5000, history: 4 });
    expect(r.end).toBe('mismatch');
    expect(r.mismatch!.instruction).toBe(1235);
    expect(r.mismatch!.history).toHaveLength(4);
    expect(r.mismatch!.history[3]).toMatch(/^#1235 0x[0-9a-f]+ {2}\S/);
  });
});
