/**
 * ProcessState: everything about the guest process except registers and memory contents,
 * as versioned plain data (numbers, bigints, strings, arrays, Uint8Array) for msgpack.
 * `validateProcessState` checks a decoded value and names the field at fault.
 */
import type { AddressSpaceState } from './addressSpace.js';
import { ProcessStateFormatError } from './errors.js';
import type { FdTableState } from './fdTable.js';
import type { RandomState } from './random.js';

export const PROCESS_STATE_VERSION = 1;

export interface SignalState {
  /** (signal number, struct kernel_sigaction bytes) for each signal with a non-default action. */
  actions: [number, Uint8Array][];
  mask: bigint;
  altStack: { sp: bigint; flags: number; size: bigint };
}

export interface ProcessState {
  version: typeof PROCESS_STATE_VERSION;
  /** Guest-visible identity, fixed at load. */
  identity: {
    pid: number;
    ppid: number;
    uid: number;
    gid: number;
    exePath: string;
    cwd: string;
    hostname: string;
    /** CLOCK_REALTIME at guest time 0 (ns since the epoch). */
    epochNs: bigint;
  };
  addressSpace: AddressSpaceState;
  fds: FdTableState;
  random: RandomState;
  signals: SignalState;
  tidAddress: bigint;
  robustList: { head: bigint; length: bigint };
  /** (soft, hard) for each RLIMIT_*, RLIM_NLIMITS entries. */
  rlimits: [bigint, bigint][];
  umask: number;
  /** Syscall numbers already warned about (so a restored run does not warn again). */
  warnedSyscalls: number[];
  /** Exit status once the guest exited (exit/exit_group or a fatal signal), else null. */
  exitStatus: number | null;
  /** Signal that terminated the guest, if any. */
  exitSignal: number | null;
  /**
   * Guest time (ns since start) at the last handoff: the clock continues from here on the next
   * model, so guest clocks never go backwards across switches. Absent in old snapshots (0).
   */
  guestTimeNs: bigint;
}

// ---- field checkers shared by every *State validator ----

export function fail(field: string, message: string): never {
  throw new ProcessStateFormatError(field, message);
}

export function asObject(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) fail(field, 'not an object');
  return v as Record<string, unknown>;
}

export function asArray(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) fail(field, 'not an array');
  return v as unknown[];
}

export function asInt(v: unknown, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    fail(field, `not an integer in [${min}, ${max}] (got ${describe(v)})`);
  }
  return v as number;
}

export function asBigint(v: unknown, field: string, min = 0n, max = (1n << 64n) - 1n): bigint {
  if (typeof v === 'number' && Number.isSafeInteger(v)) v = BigInt(v);
  if (typeof v !== 'bigint' || v < min || v > max) fail(field, `not an integer in [${min}, ${max}] (got ${describe(v)})`);
  return v as bigint;
}

export function asString(v: unknown, field: string): string {
  if (typeof v !== 'string') fail(field, `not a string (got ${describe(v)})`);
  return v as string;
}

export function asBytes(v: unknown, field: string, length?: number): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(field, 'not bytes');
  const b = v as Uint8Array;
  if (length !== undefined && b.length !== length) fail(field, `expected ${length} bytes, got ${b.length}`);
  // A plain copy: decoders hand out Buffers that share one big allocation.
  return new Uint8Array(b);
}

export function asOneOf<T extends string>(v: unknown, field: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    fail(field, `expected one of ${values.join(', ')} (got ${describe(v)})`);
  }
  return v as T;
}

export function asBool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') fail(field, `not a boolean (got ${describe(v)})`);
  return v as boolean;
}

export function asNullableInt(v: unknown, field: string, min: number, max: number): number | null {
  return v === null || v === undefined ? null : asInt(v, field, min, max);
}

function describe(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (Array.isArray(v)) return `array of ${v.length}`;
  return v === null ? 'null' : typeof v === 'object' ? 'object' : String(v);
}
