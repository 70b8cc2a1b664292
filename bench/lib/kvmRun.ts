/** One workload run natively and one under `switchsim run --cpu kvm`, both as child processes. */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { GLIBC_BASELINE_TUNABLES } from '../../src/run.js';
import { CLI, workloadPath, type Workload } from './env.js';
import { describeEnd, timedSpawn, type ProcRun } from './proc.js';

export interface NativeSample {
  wallSeconds: number;
  cpuSeconds: number;
  userSeconds: number;
  sysSeconds: number;
  minorFaults: number;
}

export interface KvmSample {
  /** Whole `node dist/src/cli.js run` process. */
  wallSeconds: number;
  /** user+sys of the whole Node process (all threads). */
  processCpuSeconds: number;
  hostRunSeconds: number;
  hostEmulationSeconds: number;
  /** hostRunSeconds + hostEmulationSeconds: from the first KVM_RUN to the guest's exit. */
  inGuestSeconds: number;
  syscalls: number;
  kvmRuns: number;
  /** Memory-slot reloads (after munmap/mprotect): each drops every guest translation KVM built. */
  tlbFlushes: number;
  exits: Record<string, number>;
}

/** The environment both runs get: the bench's own, without GLIBC_TUNABLES (set per workload below). */
function baseEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.GLIBC_TUNABLES;
  return env;
}

/**
 * Native env. For glibc programs the guest gets GLIBC_TUNABLES appended by switchsim (run.ts);
 * natively we append the same value at the same (last) position. The KVM runner process itself
 * gets no GLIBC_TUNABLES: Node is a glibc program too and must not be steered.
 */
export function nativeEnv(w: Workload): NodeJS.ProcessEnv {
  const env = baseEnv();
  if (w.kind === 'glibc') env.GLIBC_TUNABLES = GLIBC_BASELINE_TUNABLES;
  return env;
}

export function kvmEnv(): NodeJS.ProcessEnv {
  return baseEnv();
}

export class RunCheckError extends Error {}

export function runNative(w: Workload, args: readonly string[]): { sample: NativeSample; run: ProcRun } {
  const exe = workloadPath(w.name);
  const run = timedSpawn(exe, args, nativeEnv(w), exe);
  if (run.status !== 0) {
    throw new RunCheckError(`${w.name} natively: ${describeEnd(run)} (expected exit 0); stderr: ${run.stderr.toString().trim().slice(0, 300)}`);
  }
  return {
    run,
    sample: {
      wallSeconds: run.wallSeconds,
      cpuSeconds: run.cpuSeconds,
      userSeconds: run.userSeconds,
      sysSeconds: run.sysSeconds,
      minorFaults: run.minorFaults,
    },
  };
}

type StatsJson = Record<string, { value: number | string }>;

export function runKvm(w: Workload, args: readonly string[], statsDir: string): { sample: KvmSample; run: ProcRun } {
  const exe = workloadPath(w.name);
  rmSync(statsDir, { recursive: true, force: true });
  mkdirSync(path.dirname(statsDir), { recursive: true });
  const run = timedSpawn(process.execPath, [CLI, 'run', '-q', '--cpu', 'kvm', '--stats', statsDir, exe, ...args], kvmEnv());
  if (run.status !== 0) {
    throw new RunCheckError(`${w.name} under KVM: ${describeEnd(run)} (expected exit 0); stderr: ${run.stderr.toString().trim().slice(0, 300)}`);
  }
  let stats: StatsJson;
  try {
    stats = JSON.parse(readFileSync(path.join(statsDir, 'stats.json'), 'utf8')) as StatsJson;
  } catch (e) {
    throw new RunCheckError(`${w.name} under KVM: no readable stats.json in ${statsDir}: ${(e as Error).message}`);
  }
  const num = (name: string): number => {
    const v = stats[name]?.value;
    if (typeof v !== 'number') throw new RunCheckError(`${w.name} under KVM: stats.json has no numeric '${name}'`);
    return v;
  };
  const exits: Record<string, number> = {};
  for (const [k, v] of Object.entries(stats)) {
    if (k.startsWith('system.cpu.exits::') && typeof v.value === 'number') exits[k.slice('system.cpu.exits::'.length)] = v.value;
  }
  const hostRunSeconds = num('system.cpu.hostRunSeconds');
  const hostEmulationSeconds = num('system.cpu.hostEmulationSeconds');
  return {
    run,
    sample: {
      wallSeconds: run.wallSeconds,
      processCpuSeconds: run.cpuSeconds,
      hostRunSeconds,
      hostEmulationSeconds,
      inGuestSeconds: hostRunSeconds + hostEmulationSeconds,
      syscalls: num('system.cpu.syscalls'),
      kvmRuns: num('system.cpu.kvmRuns'),
      tlbFlushes: num('system.cpu.tlbFlushes'),
      exits,
    },
  };
}
