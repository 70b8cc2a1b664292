/**
 * Helpers shared by the integer ISA files (int-*.ts): flag fragments, 64-bit arithmetic on
 * (lo, hi) uint32 halves, multiplication without BigInt, and legacy-prefix scanning.
 */
import { PARITY } from '../flags.js';
import type { DecodeInfo } from '../decodeInfo.js';
import { CcOp, type CpuState, SF, ZF } from '../state.js';

export const TWO32 = 4294967296;
export const MASK = [0, 0xff, 0xffff, 0, 0xffffffff] as const;
export const SIGN = [0, 0x80, 0x8000, 0, 0x80000000] as const;

/** SF, ZF and PF of a result of `size` (1, 2 or 4) bytes. */
export function szp(res: number, size: number): number {
  let f = PARITY[res & 0xff]!;
  if ((res & MASK[size]!) === 0) f |= ZF;
  if (res & SIGN[size]!) f |= SF;
  return f;
}

/** SF, ZF and PF of a 64-bit result. */
export function szp64(lo: number, hi: number): number {
  let f = PARITY[lo & 0xff]!;
  if (lo === 0 && hi === 0) f |= ZF;
  if (hi & 0x80000000) f |= SF;
  return f;
}

/** Bit `k` (0–63) of a (lo, hi) pair. */
export function bit64(lo: number, hi: number, k: number): number {
  return k >= 32 ? (hi >>> (k - 32)) & 1 : (lo >>> k) & 1;
}

/** Results of the multiply helpers: up to four uint32 limbs, least significant first. */
export const R = { r0: 0, r1: 0, r2: 0, r3: 0 };

/**
 * Unsigned 32 × 32 → 64: R.r0 = low, R.r1 = high. The low half is exact from Math.imul; the
 * double product is within 2^11 of the true one, so (product - low) / 2^32 rounds to the high
 * half exactly.
 */
export function mulu32(a: number, b: number): void {
  const lo = Math.imul(a, b) >>> 0;
  R.r0 = lo;
  R.r1 = Math.round((a * b - lo) / TWO32);
}

/** Signed 32 × 32 → 64 (inputs as uint32 bit patterns): R.r0 = low, R.r1 = high, both uint32. */
export function muls32(a: number, b: number): void {
  mulu32(a, b);
  let hi = R.r1;
  if (a & 0x80000000) hi -= b;
  if (b & 0x80000000) hi -= a;
  R.r1 = hi >>> 0;
}

/** Unsigned 64 × 64 → 128 into R.r0…R.r3. */
export function mulu64(aLo: number, aHi: number, bLo: number, bHi: number): void {
  mulu32(aLo, bLo);
  const l00 = R.r0;
  const h00 = R.r1;
  mulu32(aLo, bHi);
  const l01 = R.r0;
  const h01 = R.r1;
  mulu32(aHi, bLo);
  const l10 = R.r0;
  const h10 = R.r1;
  mulu32(aHi, bHi);
  const l11 = R.r0;
  const h11 = R.r1;
  const s1 = h00 + l01 + l10;
  const c1 = Math.floor(s1 / TWO32);
  const s2 = h01 + h10 + l11 + c1;
  const c2 = Math.floor(s2 / TWO32);
  R.r0 = l00;
  R.r1 = s1 - c1 * TWO32;
  R.r2 = s2 - c2 * TWO32;
  R.r3 = (h11 + c2) >>> 0;
}

/** Signed 64 × 64 → 128 (inputs as uint32 halves of two's complement values) into R. */
export function muls64(aLo: number, aHi: number, bLo: number, bHi: number): void {
  mulu64(aLo, aHi, bLo, bHi);
  let r2 = R.r2;
  let r3 = R.r3;
  // Signed high half = unsigned high half - (a < 0 ? b : 0) - (b < 0 ? a : 0), mod 2^64.
  if (aHi & 0x80000000) {
    const lo = r2 - bLo;
    r2 = lo < 0 ? lo + TWO32 : lo;
    r3 = (r3 - bHi - (lo < 0 ? 1 : 0)) >>> 0;
  }
  if (bHi & 0x80000000) {
    const lo = r2 - aLo;
    r2 = lo < 0 ? lo + TWO32 : lo;
    r3 = (r3 - aHi - (lo < 0 ? 1 : 0)) >>> 0;
  }
  R.r2 = r2;
  R.r3 = r3;
}

export function toBig(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

export function loOf(v: bigint): number {
  return Number(v & 0xffffffffn);
}

export function hiOf(v: bigint): number {
  return Number((v >> 32n) & 0xffffffffn);
}

/** Adds a signed number (|delta| < 2^53) to a 64-bit address held as a double, modulo 2^64. */
export function addAddr(a: number, delta: number): number {
  const r = a + delta;
  if (r >= 0 && r < 2 ** 64) return r;
  return r < 0 ? r + 2 ** 64 : r - 2 ** 64;
}

export interface Prefixes {
  /** Segment override: 'fs', 'gs' or null (the others mean nothing in 64-bit mode). */
  seg: 'fs' | 'gs' | null;
  /** 0x67: 32-bit addressing. */
  addr32: boolean;
  /** 0x66: 16-bit operand size. */
  opsize16: boolean;
}

/** The legacy prefixes before the opcode (and REX), for forms whose operands iced folds away. */
export function prefixes(d: DecodeInfo): Prefixes {
  let seg: 'fs' | 'gs' | null = null;
  let addr32 = false;
  let opsize16 = false;
  for (const b of d.bytes) {
    if (b === 0x64) seg = 'fs';
    else if (b === 0x65) seg = 'gs';
    else if (b === 0x2e || b === 0x36 || b === 0x3e || b === 0x26) seg = null;
    else if (b === 0x67) addr32 = true;
    else if (b === 0x66) opsize16 = true;
    else if (b === 0xf0 || b === 0xf2 || b === 0xf3) continue;
    else break;
  }
  return { seg, addr32, opsize16 };
}

/** Records `a - b` (sizes 1, 2, 4) for the lazy flags, as cmp does. Returns the result. */
export function recordSub(s: CpuState, size: number, a: number, b: number): number {
  const res = ((a - b) & MASK[size]!) >>> 0;
  s.ccOp = CcOp.Sub;
  s.ccSize = size;
  s.ccA = a;
  s.ccB = b;
  s.ccC = 0;
  s.ccRes = res;
  return res;
}

/** Records the 64-bit `a - b` for the lazy flags. */
export function recordSub64(s: CpuState, a: number, ah: number, b: number, bh: number): void {
  const lo = a - b;
  const borrow = lo < 0 ? 1 : 0;
  s.ccOp = CcOp.Sub;
  s.ccSize = 8;
  s.ccA = a;
  s.ccAHi = ah;
  s.ccB = b;
  s.ccBHi = bh;
  s.ccC = 0;
  s.ccRes = lo + borrow * TWO32;
  s.ccResHi = (ah - bh - borrow) >>> 0;
}

/** Records `a + b` (sizes 1, 2, 4) for the lazy flags. Returns the result. */
export function recordAdd(s: CpuState, size: number, a: number, b: number): number {
  const res = ((a + b) % TWO32 & MASK[size]!) >>> 0;
  s.ccOp = CcOp.Add;
  s.ccSize = size;
  s.ccA = a;
  s.ccB = b;
  s.ccC = 0;
  s.ccRes = res;
  return res;
}

/** Records the 64-bit `a + b` for the lazy flags; the result is in s.ccRes / s.ccResHi. */
export function recordAdd64(s: CpuState, a: number, ah: number, b: number, bh: number): void {
  const lo = a + b;
  const c = lo >= TWO32 ? 1 : 0;
  s.ccOp = CcOp.Add;
  s.ccSize = 8;
  s.ccA = a;
  s.ccAHi = ah;
  s.ccB = b;
  s.ccBHi = bh;
  s.ccC = 0;
  s.ccRes = lo - c * TWO32;
  s.ccResHi = (ah + bh + c) >>> 0;
}
