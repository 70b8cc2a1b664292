/**
 * Section 2: syscall round trip. `syscall_latency` times getppid() with rdtsc around each call
 * and prints p50/p99/min in TSC ticks, natively and under KVM. Ticks become µs at the host
 * frequency (detectHostFrequency); the TSC rate is also measured natively and inside a guest
 * as a cross-check. A host-side figure comes from the KVM run's stats.
 */
import path from 'node:path';
import type { Workload } from './env.js';
import { runKvm, runNative, type KvmSample } from './kvmRun.js';
import { calibrateTsc, createMachine, guestTscReader, hostTscReader } from './machine.js';
import type { Table } from './table.js';
import { fmt, int, median, min, progress } from './util.js';

export const SYSCALL_TARGET_US = 30;

export interface LatencySample {
  calls: number;
  p50Ticks: number;
  p99Ticks: number;
  minTicks: number;
}

export interface SyscallResult {
  args: string[];
  rounds: number;
  hostFreqHz: number;
  hostFreqSource: string;
  tsc: { nativeHz: number[]; guestHz: number[]; error?: string };
  native: LatencySample[];
  kvm: LatencySample[];
  kvmStats: KvmSample[];
  summary: {
    native: { p50Us: number; p99Us: number; minUs: number; p50Ticks: number; p99Ticks: number };
    kvm: { p50Us: number; p99Us: number; minUs: number; p50Ticks: number; p99Ticks: number };
    hostSide: { runUsPerSyscall: number; emulationUsPerSyscall: number; totalUsPerSyscall: number; syscalls: number };
    /** p50 in µs at the measured guest TSC rate, when measured. */
    kvmP50UsCalibrated: number;
  };
  meetsTarget: boolean;
}

function parseLatency(out: string, where: string): LatencySample {
  const kv = new Map<string, number>();
  for (const line of out.split('\n')) {
    const m = /^(\w+)\s+(\d+)$/.exec(line.trim());
    if (m) kv.set(m[1]!, Number(m[2]));
  }
  const get = (k: string) => {
    const v = kv.get(k);
    if (v === undefined) throw new Error(`syscall_latency ${where}: no '${k}' line in its output: ${JSON.stringify(out.slice(0, 200))}`);
    return v;
  };
  return { calls: get('calls'), p50Ticks: get('p50_ticks'), p99Ticks: get('p99_ticks'), minTicks: get('min_ticks') };
}

function measureTsc(): SyscallResult['tsc'] {
  try {
    const host = hostTscReader();
    let nativeHz: number[];
    try {
      nativeHz = calibrateTsc(host.read);
    } finally {
      host.dispose();
    }
    const m = createMachine();
    try {
      const g = guestTscReader(m);
      try {
        return { nativeHz, guestHz: calibrateTsc(g.read) };
      } finally {
        g.dispose();
      }
    } finally {
      m.close();
    }
  } catch (e) {
    return { nativeHz: [], guestHz: [], error: (e as Error).message };
  }
}

export function syscallBench(w: Workload, rounds: number, statsRoot: string, hostFreqHz: number, hostFreqSource: string): SyscallResult {
  progress(`[syscall] TSC calibration (native and in a guest)`);
  const tsc = measureTsc();
  progress(`[syscall] ${w.name} ${w.args.join(' ')}: ${rounds} alternating rounds`);
  const statsDir = path.join(statsRoot, w.name);
  const native: LatencySample[] = [];
  const kvm: LatencySample[] = [];
  const kvmStats: KvmSample[] = [];
  const once = (which: 'native' | 'kvm') => {
    if (which === 'native') {
      native.push(parseLatency(runNative(w, w.args).run.stdout.toString(), 'natively'));
    } else {
      const r = runKvm(w, w.args, statsDir);
      kvm.push(parseLatency(r.run.stdout.toString(), 'under KVM'));
      kvmStats.push(r.sample);
    }
  };
  for (let r = 0; r < rounds; r++) {
    const order: ('native' | 'kvm')[] = r % 2 ? ['kvm', 'native'] : ['native', 'kvm'];
    for (const o of order) once(o);
    const n = native.at(-1)!;
    const k = kvm.at(-1)!;
    progress(`  round ${r + 1}/${rounds}: native p50 ${n.p50Ticks} ticks, KVM p50 ${k.p50Ticks} ticks`);
  }
  const us = (ticks: number) => (ticks / hostFreqHz) * 1e6;
  const sum = (xs: LatencySample[]) => {
    const p50Ticks = median(xs.map((x) => x.p50Ticks));
    const p99Ticks = median(xs.map((x) => x.p99Ticks));
    return { p50Ticks, p99Ticks, p50Us: us(p50Ticks), p99Us: us(p99Ticks), minUs: us(min(xs.map((x) => x.minTicks))) };
  };
  const hostSide = {
    runUsPerSyscall: median(kvmStats.map((s) => (s.hostRunSeconds / s.syscalls) * 1e6)),
    emulationUsPerSyscall: median(kvmStats.map((s) => (s.hostEmulationSeconds / s.syscalls) * 1e6)),
    totalUsPerSyscall: median(kvmStats.map((s) => (s.inGuestSeconds / s.syscalls) * 1e6)),
    syscalls: median(kvmStats.map((s) => s.syscalls)),
  };
  const kvmSum = sum(kvm);
  const guestHz = median(tsc.guestHz);
  return {
    args: w.args,
    rounds,
    hostFreqHz,
    hostFreqSource,
    tsc,
    native,
    kvm,
    kvmStats,
    summary: {
      native: sum(native),
      kvm: kvmSum,
      hostSide,
      kvmP50UsCalibrated: Number.isFinite(guestHz) ? (kvmSum.p50Ticks / guestHz) * 1e6 : NaN,
    },
    meetsTarget: kvmSum.p50Us <= SYSCALL_TARGET_US,
  };
}

export function syscallTables(r: SyscallResult): Table[] {
  const s = r.summary;
  const ghz = (hz: number) => fmt(hz / 1e9, 4);
  const tscNote = r.tsc.error
    ? `TSC cross-check failed: ${r.tsc.error}`
    : `TSC rate measured against CLOCK_MONOTONIC: native ${ghz(median(r.tsc.nativeHz))} GHz, inside a KVM guest ${ghz(median(r.tsc.guestHz))} GHz ` +
      `(host freq used for the conversion: ${ghz(r.hostFreqHz)} GHz from ${r.hostFreqSource}); KVM p50 at the measured guest rate: ${fmt(s.kvmP50UsCalibrated, 2)} us.`;
  const latency: Table = {
    title: `Syscall round trip: getppid() timed with rdtsc in the program (syscall_latency ${r.args.join(' ')}, ${r.rounds} runs each)`,
    headers: ['where', 'p50 us', 'p99 us', 'min us', 'p50 ticks', 'p99 ticks', `p50 <= ${SYSCALL_TARGET_US} us`],
    rows: [
      ['native', fmt(s.native.p50Us, 3), fmt(s.native.p99Us, 3), fmt(s.native.minUs, 3), int(s.native.p50Ticks), int(s.native.p99Ticks), 'n/a'],
      ['KVM', fmt(s.kvm.p50Us, 2), fmt(s.kvm.p99Us, 2), fmt(s.kvm.minUs, 2), int(s.kvm.p50Ticks), int(s.kvm.p99Ticks), r.meetsTarget ? 'ok' : 'MISS'],
    ],
    notes: [
      'p50/p99: median over the runs of each run\'s p50/p99; min: smallest over all runs. us = ticks / host frequency.',
      'Native: the host kernel\'s getppid round trip. KVM: guest syscall -> SE stub doorbell (MMIO exit) -> KVM_RUN returns -> JS emulation -> sync-regs sysret -> KVM_RUN re-entry.',
      tscNote,
    ],
  };
  const host: Table = {
    title: 'Syscall round trip, host side (KVM run of syscall_latency, from stats.json)',
    headers: ['syscalls per run', 'KVM_RUN us/syscall', 'emulation us/syscall', 'total us/syscall'],
    align: ['r'],
    rows: [[int(s.hostSide.syscalls), fmt(s.hostSide.runUsPerSyscall, 2), fmt(s.hostSide.emulationUsPerSyscall, 2), fmt(s.hostSide.totalUsPerSyscall, 2)]],
    notes: [
      'KVM_RUN us/syscall = hostRunSeconds / syscalls: time inside the KVM_RUN ioctl per syscall (guest entry + exit through the kernel; the guest\'s own work between calls is a few ns).',
      'emulation us/syscall = hostEmulationSeconds / syscalls: JS exit handling and syscall emulation in the worker. total = their sum; medians over the KVM runs.',
      'The program\'s mmap/write/exit and its heap sort of the samples are included (about 0.1 us per call at 20000 calls).',
    ],
  };
  return [latency, host];
}
