/**
 * The KVM CPU end to end: every workload prints byte for byte what its native run prints and
 * exits the same way; guest faults, unknown syscalls, time limits, quanta and worker failures
 * behave as specified.
 */
import { expect, it } from 'vitest';
import { GLIBC_BASELINE_TUNABLES, runProgram, type RunOptions } from '../../src/run.js';
import { KvmCpuClient, KvmWorkerError } from '../../src/kvm/client.js';
import { allocatePhysicalMemory, releasePhysicalMemory } from '../../src/guest/physmem.js';
import { detectHostFrequency } from '../../src/kvm/hostFreq.js';
import { describeKvm } from './support.js';
import { envList, runNative, workload, workloadPath, WORKLOADS } from '../support/workloads.js';
import { symbolAddress, symbolAt } from '../support/symbols.js';

const ENV = { LANG: 'C', SWITCHSIM_TEST: '1' };

async function kvmRun(name: string, args: string[], extra: Partial<RunOptions> = {}) {
  const warnings: string[] = [];
  const r = await runProgram({
    cpu: 'kvm',
    program: workloadPath(name),
    args,
    env: envList(ENV),
    capture: true,
    memSize: 256 * 1024 * 1024,
    onWarning: (w) => warnings.push(w),
    ...extra,
  });
  const stats = r.stats;
  if (stats.model !== 'kvm') throw new Error('expected KVM stats');
  return { ...r, stats, warnings };
}

const compute = WORKLOADS.filter((w) => w.kind === 'freestanding');

describeKvm('KVM CPU runs every workload exactly like the host', () => {
  for (const w of compute) {
    for (const [label, args] of [
      ['test', w.testArgs],
      ['default', w.args],
    ] as const) {
      it(`${w.name} (${label} args ${args.join(' ') || '-'}) prints its native output and exit code`, async () => {
        const native = runNative(w.name, args, ENV);
        const r = await kvmRun(w.name, args);
        expect(r.stdout.toString()).toBe(native.stdout.toString());
        expect(r.stderr.toString()).toBe(native.stderr.toString());
        expect(r.end).toEqual({ kind: 'exited', status: native.status });
        expect(r.exitCode).toBe(w.expectExit);
        expect(r.warnings).toEqual([]);
      });
    }
  }

  it('a real static glibc program prints its native output (both steered to baseline code paths)', async () => {
    const w = workload('libc_hello');
    const r = await kvmRun('libc_hello', w.testArgs);
    expect(r.glibcBaseline).toBe(true);
    const native = runNative('libc_hello', w.testArgs, { ...ENV, GLIBC_TUNABLES: GLIBC_BASELINE_TUNABLES });
    expect(r.stdout.toString()).toBe(native.stdout.toString());
    expect(r.exitCode).toBe(native.status);
    expect(r.stdout.toString()).toContain('AVX2 active: 0');
  });

  it('a real static musl program prints its native output', async () => {
    const w = workload('libc_hello_musl');
    const r = await kvmRun('libc_hello_musl', w.testArgs);
    expect(r.glibcBaseline).toBe(false);
    const native = runNative('libc_hello_musl', w.testArgs, ENV);
    expect(r.stdout.toString()).toBe(native.stdout.toString());
    expect(r.exitCode).toBe(0);
    expect(r.warnings).toEqual([]);
  });

  it('glibc steering is switchable: without it glibc sees AVX2 exactly when the captured CPUID has it', async () => {
    const r = await kvmRun('libc_hello', workload('libc_hello').testArgs, { glibcBaseline: false });
    expect(r.glibcBaseline).toBe(false);
    const leaf7 = r.cpuid.find((e) => e.leaf === 7 && e.subleaf === 0);
    const avx2 = leaf7 ? (leaf7.ebx >> 5) & 1 : 0;
    expect(r.stdout.toString()).toContain(`AVX2 active: ${avx2}`);
    const native = runNative('libc_hello', workload('libc_hello').testArgs, ENV);
    expect(r.stdout.toString()).toBe(native.stdout.toString());
  });
});

describeKvm('KVM CPU reports guest faults like Linux signals', () => {
  it('a null dereference is SIGSEGV at address 0 with the rip of the load in main', async () => {
    const exe = workloadPath('fault_null');
    const r = await kvmRun('fault_null', []);
    expect(r.stdout.toString()).toBe(runNative('fault_null', [], ENV).stdout.toString());
    expect(r.end.kind).toBe('faulted');
    if (r.end.kind !== 'faulted') return;
    expect(r.end.report.signal).toBe('SIGSEGV');
    expect(r.end.report.faultAddress).toBe('0x0');
    expect(r.end.report.access).toBe('read, not present');
    expect(symbolAt(exe, BigInt(r.end.report.rip))).toBe('main');
    expect(r.end.report.disassembly).toMatch(/^mov /);
    expect(r.exitCode).toBe(128 + 11);
  });

  it('a write into .rodata is SIGSEGV at the address written (a protection fault)', async () => {
    const exe = workloadPath('fault_rodata_write');
    const r = await kvmRun('fault_rodata_write', []);
    if (r.end.kind !== 'faulted') throw new Error(`expected a fault, got ${JSON.stringify(r.end)}`);
    expect(r.end.report.signal).toBe('SIGSEGV');
    expect(BigInt(r.end.report.faultAddress)).toBe(symbolAddress(exe, 'ro_table') + 4n);
    expect(r.end.report.access).toBe('write, protection');
    expect(r.stdout.toString()).not.toContain('still running');
  });

  it('ud2 is SIGILL with its rip, bytes and disassembly', async () => {
    const exe = workloadPath('fault_ud2');
    const r = await kvmRun('fault_ud2', []);
    if (r.end.kind !== 'faulted') throw new Error('expected a fault');
    expect(r.end.report.signal).toBe('SIGILL');
    expect(r.end.report.bytes).toBe('0f 0b');
    expect(r.end.report.disassembly).toBe('ud2');
    expect(r.end.report.faultAddress).toBe(r.end.report.rip);
    expect(symbolAt(exe, BigInt(r.end.report.rip))).toBe('main');
    expect(r.exitCode).toBe(128 + 4);
  });

  it('integer divide by zero is SIGFPE at the idiv', async () => {
    const r = await kvmRun('fault_div0', []);
    if (r.end.kind !== 'faulted') throw new Error('expected a fault');
    expect(r.end.report.signal).toBe('SIGFPE');
    expect(r.end.report.disassembly).toMatch(/^idiv /);
    expect(r.exitCode).toBe(128 + 8);
  });

  it('touching a page after munmap is SIGSEGV (the TLB was flushed)', async () => {
    const r = await kvmRun('munmap_touch', []);
    expect(r.stdout.toString()).toContain('unmapped\n');
    expect(r.stdout.toString()).not.toContain('still running');
    if (r.end.kind !== 'faulted') throw new Error(`expected a fault, got ${JSON.stringify(r.end)}`);
    expect(r.end.report.signal).toBe('SIGSEGV');
    expect(r.end.report.access).toBe('read, not present');
  });

  it('unknown syscalls return ENOSYS with one warning naming each, and the program continues', async () => {
    const r = await kvmRun('unknown_syscall', []);
    expect(r.stdout.toString()).toBe(runNative('unknown_syscall', [], ENV).stdout.toString());
    expect(r.stdout.toString()).toContain('continued');
    expect(r.exitCode).toBe(0);
    expect(r.warnings).toHaveLength(2);
    expect(r.warnings[0]).toMatch(/500/);
    expect(r.warnings[1]).toMatch(/1000/);
    expect(r.warnings.every((w) => /ENOSYS/.test(w))).toBe(true);
  });
});

describeKvm('KVM CPU control: time limits, quanta, state and worker failures', () => {
  it('an infinite loop is stopped by maxSeconds with a time-limit end', async () => {
    const r = await kvmRun('spin', [], { maxSeconds: 0.5 });
    expect(r.stdout.toString()).toContain('spinning');
    expect(r.end).toEqual({ kind: 'timeLimit', seconds: 0.5 });
    expect(r.exitCode).toBe(124);
    expect(r.wallSeconds).toBeGreaterThanOrEqual(0.5);
    expect(r.stats.hostRunSeconds).toBeGreaterThan(0.3);
  });

  it('many forced quanta leave the output unchanged and the guest resumes exactly', async () => {
    const w = workload('checksum');
    const native = runNative('checksum', w.args, ENV);
    const r = await kvmRun('checksum', w.args, { quantumMs: 2 });
    expect(r.stdout.toString()).toBe(native.stdout.toString());
    expect(r.exitCode).toBe(0);
    expect(r.stats.kicks).toBeGreaterThanOrEqual(10);
    // Every kick is an intr exit; a signal that finds no stop request (one landing after its
    // request was served) is one more, passed over (kvmCpu.ts "a stray signal: go on").
    expect(r.stats.exits['intr']).toBeGreaterThanOrEqual(r.stats.kicks);
  });

  it('quanta during a syscall-heavy run leave its output unchanged', async () => {
    const w = workload('syscalls');
    const native = runNative('syscalls', w.args, ENV);
    const r = await kvmRun('syscalls', w.args, { quantumMs: 1 });
    expect(r.stdout.toString()).toBe(native.stdout.toString());
    expect(r.stats.kicks).toBeGreaterThan(0);
  });

  async function startClient(faultInjection?: 'throwOnRun' | 'crashOnRun') {
    const mem = allocatePhysicalMemory(64 * 1024 * 1024, 'mmap');
    const client = await KvmCpuClient.start({
      memory: mem.handle,
      program: {
        path: workloadPath('checksum'),
        argv: ['checksum', '1000'],
        envp: [],
        allowRead: [],
        cwd: process.cwd(),
        seed: '1',
      },
      hostFreqHz: detectHostFrequency().hz,
      hostFactor: 1,
      output: 'capture',
      onOutput: () => {},
      ...(faultInjection ? { faultInjection } : {}),
    });
    return { client, mem };
  }

  it('an exception thrown inside the worker rejects the request in the main thread', async () => {
    const { client, mem } = await startClient('throwOnRun');
    await expect(client.run()).rejects.toThrow(/injected fault: throwOnRun/);
    await client.terminate();
    releasePhysicalMemory(mem);
  });

  it('a worker that dies with an uncaught exception rejects the pending request and everything after', async () => {
    const { client, mem } = await startClient('crashOnRun');
    await expect(client.run()).rejects.toThrow(/injected fault: crashOnRun/);
    await expect(client.getState()).rejects.toBeInstanceOf(KvmWorkerError);
    await expect(client.run()).rejects.toBeInstanceOf(KvmWorkerError);
    releasePhysicalMemory(mem);
  });

  it('getState/setState round-trip registers; run after exit is refused with the state', async () => {
    const { client, mem } = await startClient();
    const before = await client.getState();
    expect(before.rip).toBe(symbolAddress(workloadPath('checksum'), '_start'));
    const changed = { ...before, gpr: [...before.gpr] };
    changed.gpr[12] = 0x1234_5678_9abc_def0n;
    changed.xmm = before.xmm.slice();
    changed.xmm[0] = 0x5a;
    await client.setState(changed);
    const after = await client.getState();
    expect(after.gpr[12]).toBe(0x1234_5678_9abc_def0n);
    expect(after.xmm[0]).toBe(0x5a);
    expect(after.rip).toBe(before.rip);
    expect(await client.run()).toEqual({ kind: 'exited', status: 0 });
    await expect(client.run()).rejects.toThrow(/'run' is not allowed in state 'exited'/);
    await expect(client.setState(before)).rejects.toThrow(/not allowed in state 'exited'/);
    const stats = await client.finish();
    expect(stats.syscalls).toBeGreaterThan(0);
    releasePhysicalMemory(mem);
  });
});
