/**
 * The detailed CPU end to end: every workload prints its native output under `--cpu o3`, and
 * its key stats match the golden files (test/golden/o3; `npm run golden:update` rewrites them on
 * purpose). The baseline CPUID keeps the results the same on every host.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BASELINE_CPUID } from '../../src/detailed/cpuidTable.js';
import { hwcapFromCpuid } from '../../src/kvm/cpuid.js';
import { GLIBC_BASELINE_TUNABLES, runProgram } from '../../src/run.js';
import { GOLDEN_DIR, goldenOf } from '../support/golden.js';
import { envList, runNative, workloadPath, WORKLOADS } from '../support/workloads.js';

const ENV = { LANG: 'C' };

export const O3_WORKLOADS = WORKLOADS.filter((w) => w.kind === 'freestanding' && w.name !== 'args').map((w) => w.name);

/** `fixedArgv0`: argv[0] and AT_EXECFN independent of where the checkout is, so golden stats are too. */
export async function o3Run(name: string, args: string[], env: Record<string, string> = ENV, fixedArgv0 = true) {
  return runProgram({
    cpu: 'o3', program: workloadPath(name), ...(fixedArgv0 ? { argv0: `/workloads/${name}` } : {}), args, env: envList(env), capture: true, memSize: 256 << 20, cpuid: BASELINE_CPUID,
    onWarning: () => {},
  });
}

describe('o3: workloads print their native output and match their golden stats', () => {
  for (const name of O3_WORKLOADS) {
    const w = WORKLOADS.find((x) => x.name === name)!;
    it(`${name} (${w.testArgs.join(' ')})`, async () => {
      const native = runNative(name, w.testArgs, ENV);
      const r = await o3Run(name, w.testArgs);
      expect(r.stdout.toString()).toBe(native.stdout.toString());
      expect(r.exitCode).toBe(native.status);
      const file = path.join(GOLDEN_DIR, `${name}.json`);
      expect(existsSync(file), `${file} missing: run npm run golden:update`).toBe(true);
      expect(goldenOf(r.statList)).toEqual(JSON.parse(readFileSync(file, 'utf8')));
    });
  }

  it('libc_hello (glibc) prints its native output', async () => {
    const w = WORKLOADS.find((x) => x.name === 'libc_hello')!;
    const native = runNative('libc_hello', w.testArgs, { ...ENV, GLIBC_TUNABLES: GLIBC_BASELINE_TUNABLES });
    const r = await o3Run('libc_hello', w.testArgs);
    expect(r.stdout.toString()).toBe(native.stdout.toString());
  });

  it('libc_hello_musl (musl, x87 in printf) prints its native output', async () => {
    const w = WORKLOADS.find((x) => x.name === 'libc_hello_musl')!;
    const native = runNative('libc_hello_musl', w.testArgs, ENV);
    const r = await o3Run('libc_hello_musl', w.testArgs);
    expect(r.stdout.toString()).toBe(native.stdout.toString());
  });

  it('args prints its native output (AT_HWCAP from the baseline CPUID the model answers with)', async () => {
    const native = runNative('args', ['x', 'y'], ENV).stdout.toString();
    const r = await o3Run('args', ['x', 'y'], ENV, false);
    const hwcap = `AT_HWCAP 0x${hwcapFromCpuid(BASELINE_CPUID).toString(16).padStart(8, '0')}`;
    expect(r.stdout.toString()).toBe(native.replace(/^AT_HWCAP 0x[0-9a-f]+$/m, hwcap));
  });

  it.each([
    ['fault_null', 'SIGSEGV'],
    ['fault_ud2', 'SIGILL'],
    ['fault_div0', 'SIGFPE'],
    ['unknown_syscall', null],
  ] as const)('%s ends like its native run (%s)', async (name, signal) => {
    const native = runNative(name, [], ENV);
    const r = await o3Run(name, []);
    expect(r.stdout.toString()).toBe(native.stdout.toString());
    if (signal) {
      if (r.end.kind !== 'faulted') throw new Error(`expected a fault, got ${JSON.stringify(r.end)}`);
      expect(r.end.report.signal).toBe(signal);
    } else {
      expect(r.end).toEqual({ kind: 'exited', status: 0 });
    }
  });
});
