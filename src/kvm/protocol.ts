/**
 * Messages between the main thread and the KVM CPU worker: tagged unions, one per direction.
 * Every request carries an `id`; its answer carries the same `id`. A request that the vCPU
 * state does not allow is answered `notAllowed` with that state (never a crash).
 */
import type { PhysicalMemoryHandle } from '../guest/physmem.js';
import type { CpuidEntry } from './cpuid.js';
import type { KvmStats } from './stats.js';
import type { GuestFaultReport } from '../guest/faults.js';

/** What the worker needs to build the VM and load the program. */
export interface KvmWorkerConfig {
  memory: PhysicalMemoryHandle;
  /** Program to load (host path), its argv and envp as the guest sees them. */
  program: {
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
  /** Test hook: make the worker fail in a given place, to prove errors surface. */
  faultInjection?: 'throwOnRun' | 'crashOnRun';
}

export type VcpuStateName = 'created' | 'ready' | 'running' | 'paused' | 'exited' | 'faulted' | 'failed' | 'closed';

export type ToWorker =
  | { type: 'run'; id: number }
  | { type: 'pause'; id: number }
  | { type: 'getState'; id: number }
  | { type: 'setState'; id: number; threadContext: Uint8Array }
  | { type: 'getStats'; id: number }
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
  | { kind: 'syscall'; nr: number };

export type FromWorker =
  | { type: 'ready'; tid: number; kvmRunAddress: bigint; cpuid: CpuidEntry[]; xcr0: bigint | null }
  | { type: 'bootFailed'; error: SerializedError }
  | { type: 'ran'; id: number; outcome: RunOutcome; state: VcpuStateName }
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
