/**
 * Section 1: native vs KVM per workload. Each round runs the workload natively and under KVM
 * (alternating which goes first, to cancel drift); one unmeasured warm-up pair comes first and
 * checks that KVM prints exactly what the native run prints.
 */
import path from 'node:path';
import type { Workload } from './env.js';
import { runKvm, runNative, type KvmSample, type NativeSample } from './kvmRun.js';
import type { FirstTouch } from './machine.js';
import type { Table } from './table.js';
import { fmt, geomean, int, median, ms, progress, ratio, spreadPct } from './util.js';

export const COMPUTE_TARGET = 0.95;
/** Below this native CPU time a run is all process start-up, not computation. */
const TINY_SECONDS = 0.05;
/** At or above this many syscalls per native CPU second a workload is syscall-bound under KVM. */
const SYSCALL_HEAVY_RATE = 1000;

export type WorkloadClass = 'compute' | 'syscall-heavy' | 'start-up only';

export interface CompareRound {
  order: 'native-first' | 'kvm-first';
  native: NativeSample;
  kvm: KvmSample;
}

export interface CompareResult {
  name: string;
  kind: string;
  args: string[];
  cls: WorkloadClass;
  outputMatches: boolean;
  rounds: CompareRound[];
  median: {
    nativeWall: number;
    nativeCpu: number;
    kvmWall: number;
    kvmInGuest: number;
    kvmHostRun: number;
    kvmHostEmulation: number;
    kvmFixedCost: number;
    syscalls: number;
    tlbFlushes: number;
    nativeMinorFaults: number;
  };
  /** native wall / KVM wall (whole processes). */
  wallRatio: number;
  /** native user+sys / KVM in-guest (hostRunSeconds + hostEmulationSeconds). */
  inGuestRatio: number;
  /** native wall / KVM in-guest: the same with the native process's fork/exec/wait included. */
  inGuestRatioNativeWall: number;
  /** Median over rounds of the same round's native cpu / KVM in-guest (cancels drift between rounds). */
  inGuestRatioPaired: number;
  /** Median over rounds of the same round's native wall / KVM wall. */
  wallRatioPaired: number;
  spreadPct: { nativeWall: number; kvmWall: number; nativeCpu: number; kvmInGuest: number };
  meetsTarget: boolean | null;
  error?: string;
}

function classify(syscalls: number, nativeCpu: number): WorkloadClass {
  if (syscalls >= 1000 && syscalls / Math.max(nativeCpu, 1e-6) >= SYSCALL_HEAVY_RATE) return 'syscall-heavy';
  if (nativeCpu < TINY_SECONDS) return 'start-up only';
  return 'compute';
}

export function compareWorkload(w: Workload, rounds: number, statsRoot: string): CompareResult {
  const statsDir = path.join(statsRoot, w.name);
  const base = { name: w.name, kind: w.kind, args: w.args };
  progress(`[native vs kvm] ${w.name} ${w.args.join(' ')}: warm-up + ${rounds} rounds`);
  const warmNative = runNative(w, w.args);
  const warmKvm = runKvm(w, w.args, statsDir);
  const outputMatches = warmNative.run.stdout.equals(warmKvm.run.stdout);
  if (!outputMatches) {
    progress(`  ${w.name}: OUTPUT DIFFERS between native and KVM (native ${warmNative.run.stdout.length} bytes, KVM ${warmKvm.run.stdout.length} bytes)`);
  }
  const out: CompareRound[] = [];
  for (let r = 0; r < rounds; r++) {
    const kvmFirst = r % 2 === 1;
    let native: NativeSample;
    let kvm: KvmSample;
    if (kvmFirst) {
      kvm = runKvm(w, w.args, statsDir).sample;
      native = runNative(w, w.args).sample;
    } else {
      native = runNative(w, w.args).sample;
      kvm = runKvm(w, w.args, statsDir).sample;
    }
    out.push({ order: kvmFirst ? 'kvm-first' : 'native-first', native, kvm });
    progress(
      `  round ${r + 1}/${rounds}: native ${ms(native.wallSeconds)} ms wall, ${ms(native.cpuSeconds)} ms cpu | ` +
        `kvm ${ms(kvm.wallSeconds)} ms wall, ${ms(kvm.inGuestSeconds)} ms in-guest`,
    );
  }
  const col = (f: (x: CompareRound) => number) => out.map(f);
  const m = {
    nativeWall: median(col((x) => x.native.wallSeconds)),
    nativeCpu: median(col((x) => x.native.cpuSeconds)),
    kvmWall: median(col((x) => x.kvm.wallSeconds)),
    kvmInGuest: median(col((x) => x.kvm.inGuestSeconds)),
    kvmHostRun: median(col((x) => x.kvm.hostRunSeconds)),
    kvmHostEmulation: median(col((x) => x.kvm.hostEmulationSeconds)),
    kvmFixedCost: median(col((x) => x.kvm.wallSeconds - x.kvm.inGuestSeconds)),
    syscalls: median(col((x) => x.kvm.syscalls)),
    tlbFlushes: median(col((x) => x.kvm.tlbFlushes)),
    nativeMinorFaults: median(col((x) => x.native.minorFaults)),
  };
  const cls = classify(m.syscalls, m.nativeCpu);
  const inGuestRatio = m.nativeCpu / m.kvmInGuest;
  return {
    ...base,
    cls,
    outputMatches,
    rounds: out,
    median: m,
    wallRatio: m.nativeWall / m.kvmWall,
    inGuestRatio,
    inGuestRatioNativeWall: m.nativeWall / m.kvmInGuest,
    inGuestRatioPaired: median(col((x) => x.native.cpuSeconds / x.kvm.inGuestSeconds)),
    wallRatioPaired: median(col((x) => x.native.wallSeconds / x.kvm.wallSeconds)),
    spreadPct: {
      nativeWall: spreadPct(col((x) => x.native.wallSeconds)),
      kvmWall: spreadPct(col((x) => x.kvm.wallSeconds)),
      nativeCpu: spreadPct(col((x) => x.native.cpuSeconds)),
      kvmInGuest: spreadPct(col((x) => x.kvm.inGuestSeconds)),
    },
    meetsTarget: cls === 'compute' ? inGuestRatio >= COMPUTE_TARGET : null,
  };
}

export function compareTable(results: readonly CompareResult[], rounds: number): Table {
  const rows = results.map((r) => {
    if (r.error) return [r.name, 'ERROR', r.error.slice(0, 80)];
    const m = r.median;
    return [
      r.name,
      r.cls,
      int(m.syscalls),
      ms(m.nativeWall),
      ms(m.kvmWall),
      ratio(r.wallRatio),
      ms(m.kvmFixedCost),
      ms(m.nativeCpu),
      ms(m.kvmInGuest),
      ratio(r.inGuestRatio),
      ratio(r.inGuestRatioPaired),
      ratio(r.inGuestRatioNativeWall),
      `${fmt(Math.max(r.spreadPct.nativeCpu, r.spreadPct.kvmInGuest), 0)}%`,
      r.meetsTarget === null ? 'n/a' : r.meetsTarget ? 'ok' : 'MISS',
    ];
  });
  const compute = results.filter((r) => !r.error && r.cls === 'compute');
  if (compute.length) {
    const g = (f: (r: CompareResult) => number) => ratio(geomean(compute.map(f)));
    rows.push([
      'geomean (compute)', '', '', '', '', g((r) => r.wallRatio), '', '', '',
      g((r) => r.inGuestRatio), g((r) => r.inGuestRatioPaired), g((r) => r.inGuestRatioNativeWall), '', '',
    ]);
  }
  const mismatched = results.filter((r) => !r.error && !r.outputMatches).map((r) => r.name);
  return {
    title: `Native vs KVM per workload (median of ${rounds} alternating rounds; times in ms)`,
    headers: [
      'workload',
      'class',
      'syscalls',
      'native wall',
      'KVM wall',
      'wall ratio',
      'KVM fixed',
      'native cpu',
      'KVM in-guest',
      'in-guest ratio',
      'paired',
      'vs native wall',
      'spread',
      `>=${COMPUTE_TARGET}`,
    ],
    align: ['l', 'l'],
    rows,
    notes: [
      'native wall: spawn of the binary to its exit, as seen by this Node process. KVM wall: the same for `node dist/src/cli.js run -q --cpu kvm --stats DIR <prog>` (Node start-up, CLI modules, worker, VM, ELF load, run, stats write, exit).',
      'wall ratio = native wall / KVM wall: whole-process cost; for these 0.1-0.3 s programs it is dominated by KVM fixed = KVM wall - KVM in-guest (start-up + teardown; see the start-up tables).',
      'native cpu: user+sys of the native child (getrusage RUSAGE_CHILDREN): exec, ELF load, run, page faults, exit; no fork/exec/wait latency, no time spent preempted.',
      'KVM in-guest: hostRunSeconds + hostEmulationSeconds from stats.json: wall time from the first KVM_RUN to the guest exit (inside KVM_RUN plus syscall emulation); no Node/worker/VM start-up, ELF load or teardown.',
      `in-guest ratio = native cpu / KVM in-guest (medians): the execution-speed comparison, and the one the >=${COMPUTE_TARGET} column uses (compute workloads only). It is the stricter choice: KVM in-guest is wall time, so any preemption of the vCPU thread counts against KVM.`,
      'paired = median of the per-round in-guest ratios (a round\'s native and KVM runs are adjacent, so drift cancels). vs native wall = native wall / KVM in-guest: wall against wall (symmetric under CPU contention, but native wall carries ~1 ms of fork/exec/wait, which flatters KVM by ~1% at 100 ms).',
      `class: syscall-heavy = >= 1000 syscalls at >= ${SYSCALL_HEAVY_RATE}/s of native cpu (each is a ~30 us VM exit round trip under KVM: not compute-bound); start-up only = < ${TINY_SECONDS * 1000} ms native cpu; compute = the rest. syscalls: counted by switchsim (stats.json).`,
      'spread = the larger (max - min) / median of native cpu and KVM in-guest over the rounds: the run-to-run noise.',
      `stdout identical native vs KVM (warm-up run): ${mismatched.length ? `NO for ${mismatched.join(', ')}` : 'yes for every workload'}.`,
    ],
  };
}

/**
 * Splits each workload's in-guest excess over native (KVM in-guest - native cpu) into costs
 * measured separately: first touch of guest pages (native minor faults x the extra per-page
 * cost of the page-touch probe) and syscall round trips (syscalls x the per-syscall host
 * time). Re-touching pages after memory-slot reloads is shown as an upper bound (reloads x
 * pages x the per-page cost after a reload; not every page is live at each reload), not
 * subtracted.
 */
export function gapTable(results: readonly CompareResult[], ft: FirstTouch, perSyscallUs: number, perSyscallSource: string): Table {
  const guest = median(ft.guestFirstUs);
  const native = median(ft.nativeFirstUs);
  const extraPerPage = guest - native;
  const afterReload = median(ft.guestAfterReloadUs);
  const rows = results
    .filter((r) => !r.error)
    .map((r) => {
      const m = r.median;
      const gap = m.kvmInGuest - m.nativeCpu;
      const touch = (m.nativeMinorFaults * extraPerPage) / 1e6;
      const reload = (m.tlbFlushes * m.nativeMinorFaults * afterReload) / 1e6;
      const sys = (m.syscalls * perSyscallUs) / 1e6;
      const without = r.cls !== 'compute' ? 'n/a' : ratio(m.nativeCpu / (m.kvmInGuest - touch - sys));
      return [
        r.name,
        ms(gap),
        int(m.nativeMinorFaults),
        ms(touch),
        ms(sys),
        ms(gap - touch - sys),
        int(m.tlbFlushes),
        m.tlbFlushes ? ms(reload) : '',
        ratio(r.inGuestRatio),
        without,
      ];
    });
  return {
    title: 'Where the in-guest excess goes (estimates, ms)',
    headers: [
      'workload',
      'KVM in-guest - native cpu',
      'native minflt',
      'first-touch est',
      'syscall est',
      'rest',
      'slot reloads',
      'reload bound',
      'in-guest ratio',
      'w/o first-touch+syscalls',
    ],
    align: ['l'],
    rows,
    notes: [
      `Page-touch probe (${ft.pages} pages of fresh memory, ${ft.guestFirstUs.length} repetitions, half before and half after the workloads): first store to a guest page ${fmt(guest, 2)} us ` +
        `(range ${fmt(Math.min(...ft.guestFirstUs), 2)}-${fmt(Math.max(...ft.guestFirstUs), 2)}), again ${fmt(median(ft.guestAgainUs), 3)} us, after a memory-slot reload ${fmt(afterReload, 2)} us ` +
        `(the reload itself ${fmt(median(ft.reloadUs) / 1000, 2)} ms); natively, first store to a fresh private anonymous page ${fmt(native, 2)} us, again ${fmt(median(ft.nativeAgainUs), 3)} us. ` +
        `Extra per first-touched page under KVM: ${fmt(extraPerPage, 2)} us.`,
      'first-touch est = native minor faults (getrusage: the pages the native run touched) x that extra cost: paid inside KVM_RUN on the guest\'s first access to each page (host page fault + nested/shadow paging fill on this kvm_pvm host).',
      `syscall est = syscalls x ${fmt(perSyscallUs, 2)} us (${perSyscallSource}). rest = excess - first-touch est - syscall est. w/o first-touch+syscalls = native cpu / (KVM in-guest - both estimates); n/a outside the compute class.`,
      'reload bound = slot reloads (stats tlbFlushes: after munmap/mprotect switchsim deletes and re-adds the memory slot, dropping every translation) x native minor faults x the per-page cost after a reload: an upper bound for re-touching pages after reloads, part of rest when there are reloads (not subtracted). The reload ioctls themselves run between KVM_RUNs outside both timers: in KVM wall, not in KVM in-guest.',
      'rest beyond the reload bound is run-to-run noise (see the spread column of the first table), TLB or cache effects; negative where an estimate overshoots.',
    ],
  };
}
