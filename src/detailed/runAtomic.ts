/** `switchsim run --cpu atomic`: the whole program on the functional core, on this thread. */
import { MemoryTimestamps } from './memoryTimestamps.js';
import { allocatePhysicalMemory } from '../guest/physmem.js';
import { hostGuestIO, Process, type GuestIO } from '../guest/process.js';
import type { ThreadContext } from '../guest/threadContext.js';
import type { RunEnd, PreparedRun, RunOptions } from '../run.js';
import { captureHostCpuid } from '../kvm/cpuidProbe.js';
import type { CpuidEntry } from '../kvm/cpuid.js';
import { hwcapFromCpuid } from '../kvm/cpuid.js';
import type { Stat } from '../stats.js';
import { M5Op, type M5OpCall } from '../guest/m5ops.js';
import { AtomicCPU } from './atomicCpu.js';
import { BASELINE_CPUID } from './cpuidTable.js';

export interface AtomicStats {
  model: 'atomic';
  instructions: number;
  hostSeconds: number;
  freqHz: number;
  syscalls: number;
  syscallsByName: Record<string, number>;
}

/** Instructions between checks of the wall clock (--max-seconds). */
const SLICE = 4_000_000;

export function atomicStatsList(st: AtomicStats, prefix = 'system.cpu'): Stat[] {
  const stats: Stat[] = [
    { name: 'simInsts', value: st.instructions, desc: 'Instructions simulated', unit: 'Count' },
    { name: 'simSeconds', value: st.instructions / st.freqHz, desc: 'Guest seconds: one cycle per instruction at the guest clock', unit: 's' },
    { name: 'hostSeconds', value: st.hostSeconds, desc: 'Host seconds spent simulating', unit: 's' },
    { name: 'hostInstRate', value: st.hostSeconds > 0 ? Math.round(st.instructions / st.hostSeconds) : 0, desc: 'Simulator instruction rate', unit: 'Count/s' },
    { name: `${prefix}.numCycles`, value: st.instructions, desc: 'Cycles (the atomic CPU takes one cycle per instruction)', unit: 'Cycle' },
    { name: `${prefix}.committedInsts`, value: st.instructions, desc: 'Instructions committed', unit: 'Count' },
    { name: `${prefix}.freqHz`, value: st.freqHz, desc: 'Guest clock frequency', unit: 'Hz' },
    { name: `${prefix}.syscalls`, value: st.syscalls, desc: 'Syscalls emulated' },
  ];
  for (const [name, n] of Object.entries(st.syscallsByName).sort()) {
    stats.push({ name: `${prefix}.syscalls::${name}`, value: n, desc: `Calls of syscall ${name}` });
  }
  return stats;
}

/** An m5op the run stopped at: `instructions` counts from the start of the run, the op included. */
export interface M5Event {
  name: string;
  func: number;
  form: 'inst' | 'addr';
  instructions: number;
}

/**
 * The drivers' m5op bookkeeping, shared by the atomic and o3 runs: every op is recorded as an
 * event; reset_stats / dump_stats / dump_reset_stats call the model's reset and dump.
 */
export class M5OpLog {
  readonly events: M5Event[] = [];
  /** Stats dumped by dump_stats / dump_reset_stats, in order. */
  readonly dumps: Stat[][] = [];

  constructor(private readonly model: { resetStats(): void; statList(): Stat[] }) {}

  handle(call: M5OpCall, instructions: number): void {
    this.events.push({ name: call.name, func: call.func, form: call.form, instructions });
    if (call.func === M5Op.dumpStats || call.func === M5Op.dumpResetStats) this.dumps.push(this.model.statList());
    if (call.func === M5Op.resetStats || call.func === M5Op.dumpResetStats) this.model.resetStats();
  }
}

export interface AtomicRun {
  end: RunEnd;
  /** The whole run (from the start, whatever reset_stats did). */
  stats: AtomicStats;
  /** gem5-style stats: since the last reset_stats (the whole run if there was none). */
  statList: Stat[];
  /** m5ops the program issued (other than exit/fail), in order. */
  m5events: M5Event[];
  /** Stats dumped by dump_stats / dump_reset_stats, in order. */
  dumps: Stat[][];
  stdout: Buffer;
  stderr: Buffer;
  cpuid: readonly CpuidEntry[];
  wallSeconds: number;
}

/** A program loaded for a JS CPU model: the guest process, its CPU table and its output. */
export interface LoadedGuest {
  guest: Process;
  context: ThreadContext;
  cpuid: readonly CpuidEntry[];
  xcr0: bigint | null | undefined;
  stdout: Buffer[];
  stderr: Buffer[];
  warn: (message: string) => void;
}

/**
 * Loads the program for the atomic or o3 CPU: CPUID (and XCR0) as a guest sees them under KVM
 * where it exists, else the baseline table; output captured or passed through.
 */
export function loadForJsCpu(prep: PreparedRun, opts: RunOptions): LoadedGuest {
  const host = opts.cpuid ? null : captureHostCpuid();
  const cpuid = opts.cpuid ?? host?.cpuid ?? BASELINE_CPUID;
  const xcr0 = opts.cpuid ? opts.xcr0 : host?.xcr0;
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const io: GuestIO = opts.capture
    ? { write: (fd, b) => (fd === 1 ? stdout : stderr).push(Buffer.from(b)), read: () => new Uint8Array(0) }
    : hostGuestIO();
  const phys = allocatePhysicalMemory(prep.memSize, 'shared');
  const warn = opts.onWarning ?? ((m: string) => process.stderr.write(`switchsim: warning: ${m}\n`));
  const { process: guest, context } = Process.load(phys, prep.exeBytes, {
    exePath: prep.exePath,
    argv: prep.argv,
    ...(prep.execFn !== undefined ? { execFn: prep.execFn } : {}),
    envp: prep.env,
    allowRead: prep.allowRead,
    seed: opts.seed ?? 0n,
    hwcap: hwcapFromCpuid(cpuid),
    hwcap2: 0,
    io,
    warn,
  });
  return { guest, context, cpuid, xcr0, stdout, stderr, warn };
}

export async function runAtomicProgram(prep: PreparedRun, opts: RunOptions): Promise<AtomicRun> {
  const { guest, context, cpuid, xcr0, stdout, stderr, warn } = loadForJsCpu(prep, opts);
  const cpu = new AtomicCPU({
    aspace: guest.aspace, process: guest, cpuid, freqHz: prep.freqHz, warn,
    ...(xcr0 != null ? { xcr0 } : {}),
    ...(opts.fuseAfter !== undefined ? { fuseAfter: opts.fuseAfter } : {}),
  });
  cpu.setThreadContext(context);
  if (opts.recordTimestamps) cpu.mem.recordTimestamps(new MemoryTimestamps());
  const start = performance.now();
  const deadline = opts.maxSeconds && opts.maxSeconds > 0 ? start + opts.maxSeconds * 1000 : Infinity;
  // reset_stats: counts from here on (the CPU's own counters run on).
  let wasReset = false;
  let base = { instructions: 0, syscalls: 0, syscallsByName: {} as Record<string, number>, time: start };
  const statsSinceReset = (): AtomicStats => {
    const byName: Record<string, number> = {};
    for (const [name, n] of Object.entries(cpu.syscallsByName)) {
      const d = n - (base.syscallsByName[name] ?? 0);
      if (d > 0) byName[name] = d;
    }
    return {
      model: 'atomic',
      instructions: cpu.instructions - base.instructions,
      hostSeconds: (performance.now() - base.time) / 1000,
      freqHz: prep.freqHz,
      syscalls: cpu.syscalls - base.syscalls,
      syscallsByName: byName,
    };
  };
  const m5 = new M5OpLog({
    resetStats: () => {
      wasReset = true;
      base = { instructions: cpu.instructions, syscalls: cpu.syscalls, syscallsByName: { ...cpu.syscallsByName }, time: performance.now() };
    },
    statList: () => atomicStatsList(statsSinceReset()),
  });
  let end: RunEnd | undefined;
  try {
    while (!end) {
      const out = cpu.run(SLICE);
      if (out.kind === 'exited') end = { kind: 'exited', status: out.status };
      else if (out.kind === 'faulted') end = { kind: 'faulted', report: out.report };
      else {
        if (out.kind === 'm5op') m5.handle(out.call, cpu.instructions);
        if (performance.now() >= deadline) end = { kind: 'timeLimit', seconds: opts.maxSeconds ?? 0 };
      }
    }
  } finally {
    guest.close();
  }
  const wallSeconds = (performance.now() - start) / 1000;
  const stats: AtomicStats = {
    model: 'atomic',
    instructions: cpu.instructions,
    hostSeconds: wallSeconds,
    freqHz: prep.freqHz,
    syscalls: cpu.syscalls,
    syscallsByName: cpu.syscallsByName,
  };
  return {
    end,
    stats,
    statList: wasReset ? atomicStatsList(statsSinceReset()) : atomicStatsList(stats),
    m5events: m5.events,
    dumps: m5.dumps,
    stdout: Buffer.concat(stdout),
    stderr: Buffer.concat(stderr),
    cpuid,
    wallSeconds,
  };
}
