/**
 * The JS side of the differential tests, behind a small interface: the atomic CPU
 * (src/detailed/atomicCpu.ts) and the JS core's supported-instruction filter
 * (src/detailed/decode.ts) are loaded dynamically, so the KVM side builds, runs and is tested
 * on its own while the core is being written, and the harness names what it could not load.
 */
import type { AddressSpace } from '../guest/addressSpace.js';
import type { GuestFaultReport } from '../guest/faults.js';
import type { Process } from '../guest/process.js';
import type { SyscallThread } from '../guest/syscalls.js';
import type { ThreadContext } from '../guest/threadContext.js';
import type { CpuidEntry } from '../kvm/cpuid.js';
import type { Form, SupportFilter } from './forms.js';

export type AtomicOutcomeLike =
  | { kind: 'exited'; status: number }
  | { kind: 'faulted'; report: GuestFaultReport }
  | { kind: 'limit' }
  | { kind: 'syscall' }
  | { kind: 'm5op'; call: unknown };

/** What the harness needs of a functional CPU. */
export interface AtomicCpuLike {
  setThreadContext(tc: ThreadContext): void;
  getThreadContext(): ThreadContext;
  run(maxInstructions: number): AtomicOutcomeLike;
  readonly instructions: number;
  /** Return 'syscall' before serving each syscall. */
  stopAtSyscalls: boolean;
  /** Drop decoded code (the harness rewrote code pages behind the CPU's back). */
  invalidateCode?(): void;
}

export interface AtomicCpuOptions {
  aspace: AddressSpace;
  process?: Process;
  cpuid: readonly CpuidEntry[];
  /** XCR0 as the guest reads it under KVM (for xgetbv). */
  xcr0?: bigint;
}

export type AtomicFactory = (opts: AtomicCpuOptions) => AtomicCpuLike;

export interface LoadedCore {
  factory: AtomicFactory;
  source: string;
}

/** Loads the atomic CPU; null (with the reason) when it is not there (yet). */
export async function loadAtomicCpu(): Promise<LoadedCore | { factory: null; reason: string }> {
  const path = '../detailed/atomicCpu.js';
  try {
    const mod = (await import(path)) as { AtomicCPU?: new (opts: AtomicCpuOptions) => AtomicCpuLike };
    const Ctor = mod.AtomicCPU;
    if (typeof Ctor !== 'function') return { factory: null, reason: `${path} exports no AtomicCPU class` };
    return { factory: (opts) => new Ctor(opts), source: 'src/detailed/atomicCpu.ts' };
  } catch (e) {
    return { factory: null, reason: `cannot load ${path}: ${(e as Error).message.split('\n')[0]}` };
  }
}

/**
 * The JS core's supported set as a form filter: `isSupported(code)` from src/detailed/decode.ts
 * if it exists, else `isSupportedMnemonic(mnemonic)`, else (no core yet) every form.
 */
export async function loadSupportFilter(): Promise<{ filter: SupportFilter; source: string }> {
  const path = '../detailed/decode.js';
  try {
    const mod = (await import(path)) as {
      isSupported?: (code: number) => boolean;
      isSupportedMnemonic?: (m: number) => boolean;
    };
    const byCode = mod.isSupported;
    if (typeof byCode === 'function') return { filter: (f: Form) => byCode(f.code), source: 'decode.isSupported(code)' };
    const byMnemonic = mod.isSupportedMnemonic;
    if (typeof byMnemonic === 'function') return { filter: (f: Form) => byMnemonic(f.mnemonic), source: 'decode.isSupportedMnemonic(mnemonic)' };
  } catch {
    // no core yet
  }
  return { filter: () => true, source: 'stub (every form; no JS core found)' };
}

/** True when `e` is the core's "instruction not implemented" error (a gap, not a mismatch). */
export function isUnsupportedInstruction(e: unknown): e is Error & { mnemonic?: string; disassembly?: string } {
  return e instanceof Error && e.name === 'UnsupportedInstructionError';
}

/** A deterministic guest clock: both CPUs of a lockstep run read the same sequence of times. */
export function deterministicClock(stepNs = 1_000_000n): Pick<SyscallThread, 'guestTimeNs' | 'cpuTimeNs'> {
  let t = 1_000_000_000n;
  let c = 0n;
  return {
    guestTimeNs: () => (t += stepNs),
    cpuTimeNs: () => (c += stepNs),
  };
}

/**
 * The same process with its syscalls served against `clock` instead of the calling CPU's
 * clock, so that time syscalls answer identically on KVM and on the JS core.
 */
export function withClock(process: Process, clock: Pick<SyscallThread, 'guestTimeNs' | 'cpuTimeNs'>): Process {
  const syscall: Process['syscall'] = (thread, nr, args) =>
    process.syscall({ ...pick(thread), guestTimeNs: clock.guestTimeNs, cpuTimeNs: clock.cpuTimeNs }, nr, args);
  return new Proxy(process, {
    get(target, key) {
      if (key === 'syscall') return syscall;
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function pick(t: SyscallThread): SyscallThread {
  return {
    getFsBase: () => t.getFsBase(),
    setFsBase: (v) => t.setFsBase(v),
    getGsBase: () => t.getGsBase(),
    setGsBase: (v) => t.setGsBase(v),
    guestTimeNs: () => t.guestTimeNs(),
    cpuTimeNs: () => t.cpuTimeNs(),
  };
}
