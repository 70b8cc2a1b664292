/**
 * Messages between the main thread and the KVM CPU worker: tagged unions, one per direction.
 * Every request carries an `id`; its answer carries the same `id`. A request that the vCPU
 * state does not allow is answered `notAllowed` with that state (never a crash).
 */
import type { PhysicalMemoryHandle } from '../guest/physmem.js';
import type { CpuidEntry } from './cpuid.js';
import type { KvmStats } from './stats.js';
import type { GuestFaultReport } from '../guest/faults.js';
import type { AddressSpaceState } from '../guest/addressSpace.js';
import type { M5OpCall } from '../guest/m5ops.js';

/** What the worker needs to build the VM and load the program. */
export interface KvmWorkerConfig {
  memory: PhysicalMemoryHandle;
  /**
   * Program to load (host path), its argv and envp as the guest sees them. Without it the worker
   * boots bare (SE kernel, long mode, CPUID probe) and waits for `takeOver` (a System).
   */
  program?: {
    path: string;
    argv: string[];
    envp: string[];
    allowRead: string[];
    cwd: string;
    seed: string; // bigint as decimal text: workerData must be structured-cloneable
  };
  hostFreqHz: number;
  hostFactor: number;
  /** Guest stdout/stderr: 'passthrough' writes to the host's fds 1/2; 'capture' posts them back. */
  output: 'passthrough' | 'capture';
  /** SharedArrayBuffer of the control block (see control.ts). */
  control: SharedArrayBuffer;
  /** Host directories a taken-over process may open read-only (bare boot). */
  allowRead?: string[];
  /** The System's execution token (src/switch/token.ts); checked before every KVM_RUN. */
  token?: SharedArrayBuffer;
  /** Test hook: make the worker fail in a given place, to prove errors surface. */
  faultInjection?: 'throwOnRun' | 'crashOnRun';
}

export type VcpuStateName = 'created' | 'ready' | 'running' | 'paused' | 'switchedOut' | 'exited' | 'faulted' | 'failed' | 'closed';

/** How a `run` may end early, besides exit, fault and kicks. */
export interface KvmRunOptions {
  /** Return `syscallDone` after serving each syscall (a switch point with nothing pending). */
  stopAfterSyscall?: boolean;
  /**
   * Pause this many seconds after the run starts: a POSIX timer on the vCPU thread interrupts
   * KVM_RUN, however busy the main thread is (host-time probes, sample/hostRate.ts).
   */
  stopAfterSeconds?: number;
}

export type ToWorker =
  | { type: 'run'; id: number; options?: KvmRunOptions }
  | { type: 'pause'; id: number }
  | { type: 'getState'; id: number }
  | { type: 'setState'; id: number; threadContext: Uint8Array }
  | { type: 'getStats'; id: number }
  /** Becomes the running model: ThreadContext and ProcessState as msgpack records. */
  | { type: 'takeOver'; id: number; threadContext: Uint8Array; processState: Uint8Array }
  /** The process state now (msgpack), the vCPU state unchanged (also after exit or a fault). */
  | { type: 'getProcessState'; id: number }
  /** Hands the guest over: answers both records; the vCPU may not run again before a takeOver. */
  | { type: 'switchOut'; id: number }
  | { type: 'finish'; id: number };

/** Why a `run` came back. */
export type RunOutcome =
  | { kind: 'exited'; status: number }
  | { kind: 'faulted'; report: GuestFaultReport }
  | { kind: 'paused' }
  | { kind: 'stopped'; reason: 'timeLimit' }
  /** Single-step mode (KvmCPU.singleStep): one instruction done. */
  | { kind: 'stepped' }
  /** KvmCPU.stopAtSyscalls: a syscall instruction executed, not served yet (the next run serves it). */
  | { kind: 'syscall'; nr: number }
  /** run option stopAfterSyscall: a syscall was served; nothing is pending. */
  | { kind: 'syscallDone'; nr: number }
  /** An m5op other than exit/fail completed (rip is past it). */
  | { kind: 'm5op'; call: M5OpCall };

/** Host time (monotonic ns) the worker spent in its run loop for one `run`. */
export interface RunSpan {
  startNs: number;
  endNs: number;
}

export type FromWorker =
  | { type: 'ready'; tid: number; kvmRunAddress: bigint; cpuid: CpuidEntry[]; xcr0: bigint | null; addressSpace: AddressSpaceState | null }
  | { type: 'bootFailed'; error: SerializedError }
  /** rip: where a paused run stopped (a user instruction), else null; saves a state round trip. */
  | { type: 'ran'; id: number; outcome: RunOutcome; state: VcpuStateName; span: RunSpan | null; rip: number | null }
  | { type: 'tookOver'; id: number; state: VcpuStateName }
  | { type: 'processState'; id: number; state: VcpuStateName; processState: Uint8Array }
  | { type: 'switchedOut'; id: number; state: VcpuStateName; threadContext: Uint8Array; processState: Uint8Array }
  | { type: 'paused'; id: number; state: VcpuStateName }
  | { type: 'state'; id: number; state: VcpuStateName; threadContext: Uint8Array }
  | { type: 'stateSet'; id: number; state: VcpuStateName }
  | { type: 'stats'; id: number; stats: KvmStats }
  | { type: 'finished'; id: number; stats: KvmStats }
  | { type: 'notAllowed'; id: number; request: ToWorker['type']; state: VcpuStateName }
  | { type: 'failed'; id: number; error: SerializedError }
  | { type: 'output'; fd: 1 | 2; data: Uint8Array }
  | { type: 'warning'; message: string };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  userFault: boolean;
}
