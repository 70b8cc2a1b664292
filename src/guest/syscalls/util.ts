/** Helpers shared by the syscall handlers: argument conversion, struct writers, the handler type. */
import type { Process } from '../process.js';
import type { SyscallThread } from '../syscalls.js';
import { USER_TOP } from '../layout.js';

/**
 * A syscall handler: returns the result (>= 0) or a negated errno, or EXIT after recording the
 * exit status on the process. Results always fit in a double (addresses < 2^47, sizes, ids).
 */
export type SyscallHandler = (p: Process, t: SyscallThread, a: readonly bigint[]) => number;

/** Returned by a handler when the guest process ended (status recorded on the Process). */
export const EXIT = -0x7fff0000;

const USER_TOP_BIG = BigInt(USER_TOP);
const TWO_53 = 2n ** 53n;

/** An `int` argument (low 32 bits, signed). */
export function int(a: bigint | undefined): number {
  return Number(BigInt.asIntN(32, a ?? 0n));
}

/** An `unsigned int` argument. */
export function uint(a: bigint | undefined): number {
  return Number(BigInt.asUintN(32, a ?? 0n));
}

/** A `long`/`off_t` argument (signed 64-bit, as a double). */
export function long(a: bigint | undefined): number {
  return Number(BigInt.asIntN(64, a ?? 0n));
}

/** A user pointer: addresses at or above USER_TOP become USER_TOP (unmapped: accesses fault). */
export function ptr(a: bigint | undefined): number {
  const v = a ?? 0n;
  return v < USER_TOP_BIG ? Number(v) : USER_TOP;
}

/** A `size_t` argument; huge values saturate at 2^53. */
export function size(a: bigint | undefined): number {
  const v = a ?? 0n;
  return v < TWO_53 ? Number(v) : Number(TWO_53);
}

const scratch = new Uint8Array(16);
const scratchView = new DataView(scratch.buffer);

/** Writes two signed 64-bit words (struct timespec / timeval / rlimit-like pairs). */
export function writePair(p: Process, addr: number, a: bigint, b: bigint): void {
  scratchView.setBigUint64(0, BigInt.asUintN(64, a), true);
  scratchView.setBigUint64(8, BigInt.asUintN(64, b), true);
  p.aspace.write(addr, scratch);
}

/** Reads two 64-bit words as signed values. */
export function readPair(p: Process, addr: number): [bigint, bigint] {
  const b = p.aspace.read(addr, 16);
  const v = new DataView(b.buffer);
  return [v.getBigInt64(0, true), v.getBigInt64(8, true)];
}

export const NS_PER_SEC = 1_000_000_000n;

export function writeTimespec(p: Process, addr: number, ns: bigint): void {
  writePair(p, addr, ns / NS_PER_SEC, ns % NS_PER_SEC);
}

/** Reads a struct timespec; null when tv_nsec or tv_sec is out of range (EINVAL). */
export function readTimespec(p: Process, addr: number): bigint | null {
  const [sec, nsec] = readPair(p, addr);
  if (sec < 0n || nsec < 0n || nsec >= NS_PER_SEC) return null;
  return sec * NS_PER_SEC + nsec;
}

/** Encodes a NUL-padded fixed-size C string field. */
export function putCString(out: Uint8Array, offset: number, fieldSize: number, s: string): void {
  const b = Buffer.from(s, 'utf8').subarray(0, fieldSize - 1);
  out.set(b, offset);
  out.fill(0, offset + b.length, offset + fieldSize);
}
