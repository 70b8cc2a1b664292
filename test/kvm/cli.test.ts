/** The `switchsim run --cpu kvm` command as a user runs it: passthrough output, exit codes, stats. */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { switchsim } from '../support/cli.js';
import { runNative, workloadPath } from '../support/workloads.js';
import { describeKvm } from './support.js';

const ENV = { LANG: 'C' };

describeKvm('switchsim run --cpu kvm (the CLI)', () => {
  it('passes the guest stdout through, forwards guest args after the program, exits with its code', () => {
    const r = switchsim(['run', '-q', '--cpu', 'kvm', '--clear-env', '--env', 'LANG=C', workloadPath('args'), '--cpu', 'x'], ENV);
    const native = runNative('args', ['--cpu', 'x'], ENV);
    expect(r.stdout).toBe(native.stdout.toString());
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('reports a guest fault on stderr and exits 128+signal', () => {
    const r = switchsim(['run', workloadPath('fault_null')], ENV);
    expect(r.status).toBe(139);
    expect(r.stdout).toBe('fault_null: loading from address 0\n');
    expect(r.stderr).toMatch(/guest killed by SIGSEGV \(#PF page fault, read, not present\)/);
    expect(r.stderr).toMatch(/fault address: 0x0\n/);
    expect(r.stderr).toMatch(/rip: +0x4[0-9a-f]+\n/);
    expect(r.stderr).toMatch(/instruction: +mov /);
  });

  it('stops an endless guest at --max-seconds with a clear message and exit 124', () => {
    const r = switchsim(['run', '--max-seconds', '0.5', workloadPath('spin')], ENV);
    expect(r.status).toBe(124);
    expect(r.stdout).toBe('spinning\n');
    expect(r.stderr).toMatch(/stopped: --max-seconds 0.5 reached after \d+\.\d\d s; the guest had not exited/);
  });

  it('writes gem5-style stats.txt and stats.json with --stats', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'switchsim-stats-'));
    const r = switchsim(['run', '-q', '--stats', dir, '--host-factor', '2', '--host-freq', '2GHz', workloadPath('syscalls'), '50', '100'], ENV);
    expect(r.status).toBe(0);
    const txt = readFileSync(path.join(dir, 'stats.txt'), 'utf8');
    expect(txt).toMatch(/^---------- Begin Simulation Statistics ----------$/m);
    expect(txt).toMatch(/^system\.cpu\.numCycles\s+\d+\s+# Estimated guest cycles/m);
    const json = JSON.parse(readFileSync(path.join(dir, 'stats.json'), 'utf8')) as Record<string, { value: number }>;
    const host = json['system.cpu.hostCycles']!.value;
    expect(json['system.cpu.hostFreqHz']!.value).toBe(2e9);
    expect(json['system.cpu.numCycles']!.value).toBeCloseTo(2 * host, -1);
    expect(json['system.cpu.hostCycles']!.value).toBeCloseTo(json['system.cpu.hostRunSeconds']!.value * 2e9, -1);
    expect(json['system.cpu.syscalls::write']!.value).toBeGreaterThan(50);
    expect(json['system.cpu.syscalls::exit_group']!.value).toBe(1);
    expect(json['system.cpu.exits::mmio']!.value).toBe(json['system.cpu.syscalls']!.value);
  });
});
