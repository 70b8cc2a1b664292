/**
 * The one syscall table every CPU model uses. A CPU model traps `syscall`, calls
 * `process.syscall(thread, rax, [rdi, rsi, rdx, r10, r8, r9])` and puts the outcome's value
 * in rax (or ends the run on 'exit'). Bad guest pointers become -EFAULT; unknown syscalls
 * -ENOSYS with one warning per number.
 */
import { GuestAddressSpaceError, GuestMemoryFault, OutOfGuestMemoryError } from './errors.js';
import type { Process } from './process.js';
import { EFAULT, ENOMEM, ENOSYS, errnoFromNode } from './syscalls/errno.js';
import { fileSyscalls } from './syscalls/fs.js';
import { memorySyscalls } from './syscalls/memory.js';
import { miscSyscalls } from './syscalls/misc.js';
import { SYSCALL_NAMES, syscallName, syscallNumber } from './syscalls/names.js';
import { EXIT, type SyscallHandler } from './syscalls/util.js';

export { syscallName, syscallNumber } from './syscalls/names.js';

/** What the syscall layer needs from the CPU model running the guest thread. */
export interface SyscallThread {
  getFsBase(): bigint;
  setFsBase(v: bigint): void;
  getGsBase(): bigint;
  setGsBase(v: bigint): void;
  /** Guest time since the program started, from the CPU model's cycle count. */
  guestTimeNs(): bigint;
  /** CPU time the guest has used (same clock for a single thread that never sleeps). */
  cpuTimeNs(): bigint;
}

export type SyscallOutcome =
  | { kind: 'return'; value: bigint /* the 64-bit unsigned rax; -errno encoded */ }
  | { kind: 'exit'; status: number };

const TABLE: (SyscallHandler | undefined)[] = buildTable();

function buildTable(): (SyscallHandler | undefined)[] {
  const table: (SyscallHandler | undefined)[] = [];
  for (const group of [fileSyscalls, memorySyscalls, miscSyscalls]) {
    for (const [name, handler] of Object.entries(group)) table[syscallNumber(name)] = handler;
  }
  return table;
}

/** Syscall numbers that have a handler (for tests and documentation). */
export function implementedSyscalls(): number[] {
  const out: number[] = [];
  TABLE.forEach((h, nr) => {
    if (h) out.push(nr);
  });
  return out;
}

const SMALL_ERRNO: bigint[] = Array.from({ length: 134 }, (_, e) => BigInt.asUintN(64, BigInt(-e)));

function encode(r: number): bigint {
  if (r >= 0) return BigInt(r);
  return r > -SMALL_ERRNO.length ? SMALL_ERRNO[-r]! : BigInt.asUintN(64, BigInt(r));
}

export function dispatchSyscall(p: Process, t: SyscallThread, nr: number, args: readonly bigint[]): SyscallOutcome {
  const handler = nr >= 0 && nr < TABLE.length ? TABLE[nr] : undefined;
  if (handler === undefined) {
    if (p.noteUnknownSyscall(nr)) {
      const name = SYSCALL_NAMES.get(nr);
      p.warn(
        name === undefined
          ? `unknown syscall ${nr} (no name); returning -ENOSYS`
          : `unsupported syscall ${nr} (${name}); returning -ENOSYS`,
      );
    }
    return { kind: 'return', value: SMALL_ERRNO[ENOSYS]! };
  }
  let r: number;
  try {
    r = handler(p, t, args);
  } catch (e) {
    if (e instanceof GuestMemoryFault) {
      r = -EFAULT;
    } else if (e instanceof OutOfGuestMemoryError) {
      p.warnOnce('oom', `${e.message}; the guest's ${syscallName(nr) ?? nr} gets ENOMEM`);
      r = -ENOMEM;
    } else if (e instanceof GuestAddressSpaceError) {
      r = -ENOMEM;
    } else if (isNodeSystemError(e)) {
      r = -errnoFromNode(e);
    } else {
      throw e;
    }
  }
  if (r === EXIT) return { kind: 'exit', status: p.exitStatus ?? 0 };
  return { kind: 'return', value: encode(r) };
}

/** A host I/O error (e.g. EPIPE writing stdout) becomes the guest's errno. */
function isNodeSystemError(e: unknown): boolean {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && typeof (e as { syscall?: unknown }).syscall === 'string';
}
