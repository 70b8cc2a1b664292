/**
 * The atomic CPU runs every workload to the same output and exit as the host (no KVM needed):
 * native runs are the reference, with the same arguments and environment.
 */
import { describe, expect, it } from 'vitest';
import { GLIBC_BASELINE_TUNABLES, runProgram } from '../../src/run.js';
import { BASELINE_CPUID } from '../../src/detailed/cpuidTable.js';
import { hwcapFromCpuid, type CpuidEntry } from '../../src/kvm/cpuid.js';
import { envList, runNative, workload, workloadPath, WORKLOADS } from '../support/workloads.js';

const ENV = { LANG: 'C' };

/**
 * Where KVM is missing the atomic CPU answers CPUID with the baseline table, so AT_HWCAP
 * (CPUID.1:EDX) is the baseline's, not the host's: the only line allowed to differ.
 */
function expectedWithCpu(native: string, cpuid: readonly CpuidEntry[]): string {
  if (cpuid !== BASELINE_CPUID) return native;
  return native.replace(/^AT_HWCAP 0x[0-9a-f]+$/m, `AT_HWCAP 0x${hwcapFromCpuid(cpuid).toString(16).padStart(8, '0')}`);
}

async function atomicRun(name: string, args: string[], env: Record<string, string> = ENV) {
  const warnings: string[] = [];
  const r = await runProgram({
    cpu: 'atomic',
    program: workloadPath(name),
    args,
    env: envList(env),
    capture: true,
    memSize: 256 * 1024 * 1024,
    onWarning: (w) => warnings.push(w),
  });
  const stats = r.stats;
  if (stats.model !== 'atomic') throw new Error('expected atomic stats');
  return { ...r, stats, warnings };
}

describe('atomic CPU runs every workload exactly like the host', () => {
  for (const w of WORKLOADS.filter((x) => x.kind === 'freestanding')) {
    it(`${w.name} (${w.testArgs.join(' ') || '-'}) prints its native output and exit code`, async () => {
      const native = runNative(w.name, w.testArgs, ENV);
      const r = await atomicRun(w.name, w.testArgs);
      expect(r.stdout.toString()).toBe(expectedWithCpu(native.stdout.toString(), r.cpuid));
      expect(r.stderr.toString()).toBe(native.stderr.toString());
      expect(r.end).toEqual({ kind: 'exited', status: native.status });
      expect(r.stats.instructions).toBeGreaterThan(1000);
      expect(r.warnings).toEqual([]);
    });
  }

  for (const name of ['libc_hello', 'libc_hello_musl']) {
    it(`${name}: a real static libc program prints its native output`, async () => {
      const w = workload(name);
      const env = name === 'libc_hello' ? { ...ENV, GLIBC_TUNABLES: GLIBC_BASELINE_TUNABLES } : ENV;
      const native = runNative(name, w.testArgs, env);
      const r = await atomicRun(name, w.testArgs, ENV);
      expect(r.stdout.toString()).toBe(native.stdout.toString());
      expect(r.exitCode).toBe(native.status);
    });
  }
});

describe('atomic CPU reports faults like the KVM CPU and Linux', () => {
  it.each([
    ['fault_null', 'SIGSEGV', 139],
    ['fault_ud2', 'SIGILL', 132],
    ['fault_div0', 'SIGFPE', 136],
    ['fault_rodata_write', 'SIGSEGV', 139],
    ['munmap_touch', 'SIGSEGV', 139],
  ] as const)('%s ends with %s', async (name, signal, code) => {
    const native = runNative(name, [], ENV);
    const r = await atomicRun(name, []);
    expect(r.stdout.toString()).toBe(native.stdout.toString());
    if (r.end.kind !== 'faulted') throw new Error(`expected a fault, got ${JSON.stringify(r.end)}`);
    expect(r.end.report.signal).toBe(signal);
    expect(r.exitCode).toBe(code);
  });

  it('a null dereference reports address 0 and a read of a not-present page', async () => {
    const r = await atomicRun('fault_null', []);
    if (r.end.kind !== 'faulted') throw new Error('expected a fault');
    expect(r.end.report.faultAddress).toBe('0x0');
    expect(r.end.report.access).toBe('read, not present');
  });

  it('unknown syscalls return ENOSYS with one warning each and the program continues', async () => {
    const r = await atomicRun('unknown_syscall', []);
    expect(r.stdout.toString()).toBe(runNative('unknown_syscall', [], ENV).stdout.toString());
    expect(r.warnings).toHaveLength(2);
  });

  it('an endless loop stops at maxSeconds', async () => {
    const r = await runProgram({
      cpu: 'atomic', program: workloadPath('spin'), args: [], env: [], capture: true, maxSeconds: 0.3, cpuid: BASELINE_CPUID,
    });
    expect(r.end).toEqual({ kind: 'timeLimit', seconds: 0.3 });
    expect(r.stdout.toString()).toBe('spinning\n');
  });
});
