/**
 * Lazy arithmetic flags (the QEMU cc_op idea): ALU instructions record the operation, size,
 * operands and result; CF/PF/AF/ZF/SF/OF are computed only when an instruction reads them.
 * Instructions whose flag rules are irregular (shifts, rotates, multiplies, bit ops…) compute
 * the flags themselves and store them eagerly with `setEager`.
 */
import { AF, ARITH_FLAGS, CcOp, CF, type CpuState, OF, PF, SF, ZF } from './state.js';

/** PF for each byte value: set when the number of 1 bits is even. */
export const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let bits = 0;
  for (let v = i; v; v >>= 1) bits += v & 1;
  PARITY[i] = bits % 2 === 0 ? PF : 0;
}

export const SIZE_MASK = [0, 0xff, 0xffff, 0, 0xffffffff] as const;
const SIGN_BIT = [0, 0x80, 0x8000, 0, 0x80000000] as const;

/** Unsigned a < b on (hi, lo) pairs of uint32. */
function lt64(aHi: number, aLo: number, bHi: number, bLo: number): boolean {
  return aHi < bHi || (aHi === bHi && aLo < bLo);
}

/** The six arithmetic flags of the recorded operation. */
export function arithFlags(s: CpuState): number {
  const op = s.ccOp;
  if (op === CcOp.Eager) return s.eflags & ARITH_FLAGS;
  const size = s.ccSize;
  const res = s.ccRes;
  const a = s.ccA;
  const b = s.ccB;
  let f = PARITY[res & 0xff]!;
  let signRes: number;
  let zero: boolean;
  if (size === 8) {
    signRes = s.ccResHi >>> 31;
    zero = res === 0 && s.ccResHi === 0;
  } else {
    signRes = (res & SIGN_BIT[size]!) !== 0 ? 1 : 0;
    zero = res === 0;
  }
  if (zero) f |= ZF;
  if (signRes) f |= SF;
  if (op === CcOp.Logic) return f;
  // AF: carry/borrow out of bit 3, the same formula for add and sub.
  if (((a ^ b ^ res) & 0x10) !== 0) f |= AF;
  // Sign bits of the operands at this size.
  let sa: number;
  let sb: number;
  if (size === 8) {
    sa = s.ccAHi >>> 31;
    sb = s.ccBHi >>> 31;
  } else {
    const sign = SIGN_BIT[size]!;
    sa = (a & sign) !== 0 ? 1 : 0;
    sb = (b & sign) !== 0 ? 1 : 0;
  }
  switch (op) {
    case CcOp.Add:
    case CcOp.Adc:
    case CcOp.Inc: {
      if (sa === sb && signRes !== sa) f |= OF;
      if (op === CcOp.Inc) {
        f |= s.ccC;
      } else {
        const cin = op === CcOp.Adc ? s.ccC : 0;
        // Carry iff the result wrapped below the first operand (or to it, with a carry-in).
        const carry =
          size === 8
            ? cin
              ? !lt64(s.ccAHi, a, s.ccResHi, res)
              : lt64(s.ccResHi, res, s.ccAHi, a)
            : cin
              ? res <= a
              : res < a;
        if (carry) f |= CF;
      }
      return f;
    }
    case CcOp.Sub:
    case CcOp.Sbb:
    case CcOp.Dec: {
      if (sa !== sb && signRes !== sa) f |= OF;
      if (op === CcOp.Dec) {
        f |= s.ccC;
      } else {
        const bin = op === CcOp.Sbb ? s.ccC : 0;
        const borrow =
          size === 8
            ? bin
              ? !lt64(s.ccBHi, b, s.ccAHi, a)
              : lt64(s.ccAHi, a, s.ccBHi, b)
            : bin
              ? a <= b
              : a < b;
        if (borrow) f |= CF;
      }
      return f;
    }
    default:
      throw new Error(`unknown lazy flag op ${op as number}`);
  }
}

/** The whole RFLAGS value (bit 1 always set). */
export function readFlags(s: CpuState): number {
  return ((s.eflags & ~ARITH_FLAGS) | arithFlags(s) | 0x2) >>> 0;
}

/** Replaces the flags with explicit values (eager). */
export function setEager(s: CpuState, arith: number): void {
  s.eflags = (s.eflags & ~ARITH_FLAGS) | (arith & ARITH_FLAGS);
  s.ccOp = CcOp.Eager;
}

/** Writes all of RFLAGS (popf and friends pass the bits they may change in `mask`). */
export function writeFlags(s: CpuState, value: number, mask: number): void {
  const current = readFlags(s);
  s.eflags = ((current & ~mask) | (value & mask) | 0x2) >>> 0;
  s.ccOp = CcOp.Eager;
}

export function getCF(s: CpuState): number {
  const op = s.ccOp;
  if (op === CcOp.Logic) return 0;
  if (op === CcOp.Eager) return s.eflags & CF;
  return arithFlags(s) & CF;
}

/** Condition codes in x86 encoding order (the low nibble of Jcc/SETcc/CMOVcc). */
export function cond(s: CpuState, cc: number): boolean {
  const op = s.ccOp;
  // Fast paths for the overwhelmingly common cmp/sub and test/and/or/xor producers.
  if (op === CcOp.Sub && s.ccSize === 4) {
    const a = s.ccA;
    const b = s.ccB;
    switch (cc) {
      case 2: return a < b; // B
      case 3: return a >= b; // AE
      case 4: return a === b; // E
      case 5: return a !== b; // NE
      case 6: return a <= b; // BE
      case 7: return a > b; // A
      case 12: return (a | 0) < (b | 0); // L
      case 13: return (a | 0) >= (b | 0); // GE
      case 14: return (a | 0) <= (b | 0); // LE
      case 15: return (a | 0) > (b | 0); // G
    }
  } else if (op === CcOp.Sub && s.ccSize === 8) {
    // 64-bit compares: (hi, lo) halves, the high halves signed for the signed conditions.
    const ah = s.ccAHi;
    const bh = s.ccBHi;
    const a = s.ccA;
    const b = s.ccB;
    switch (cc) {
      case 2: return ah < bh || (ah === bh && a < b); // B
      case 3: return !(ah < bh || (ah === bh && a < b)); // AE
      case 4: return a === b && ah === bh; // E
      case 5: return a !== b || ah !== bh; // NE
      case 6: return ah < bh || (ah === bh && a <= b); // BE
      case 7: return !(ah < bh || (ah === bh && a <= b)); // A
      case 12: return (ah | 0) < (bh | 0) || (ah === bh && a < b); // L
      case 13: return !((ah | 0) < (bh | 0) || (ah === bh && a < b)); // GE
      case 14: return (ah | 0) < (bh | 0) || (ah === bh && a <= b); // LE
      case 15: return !((ah | 0) < (bh | 0) || (ah === bh && a <= b)); // G
    }
  } else if (op === CcOp.Logic) {
    // Logic ops clear CF and OF: the conditions reduce to ZF and SF.
    const size = s.ccSize;
    const zero = size === 8 ? s.ccRes === 0 && s.ccResHi === 0 : s.ccRes === 0;
    const sign = size === 8 ? s.ccResHi < 0 || s.ccResHi >= 0x80000000 : (s.ccRes & SIGN_BIT[size]!) !== 0;
    switch (cc) {
      case 2: return false; // B
      case 3: return true; // AE
      case 4: case 6: return zero; // E, BE
      case 5: case 7: return !zero; // NE, A
      case 8: case 12: return sign; // S, L
      case 9: case 13: return !sign; // NS, GE
      case 14: return zero || sign; // LE
      case 15: return !zero && !sign; // G
    }
  } else if ((op === CcOp.Dec || op === CcOp.Inc || op === CcOp.Add) && (cc === 4 || cc === 5)) {
    // Loop counters: dec/inc/add then jz/jnz.
    const zero = s.ccSize === 8 ? s.ccRes === 0 && s.ccResHi === 0 : s.ccRes === 0;
    return cc === 4 ? zero : !zero;
  }
  const f = arithFlags(s);
  let r: boolean;
  switch (cc >> 1) {
    case 0: r = (f & OF) !== 0; break;
    case 1: r = (f & CF) !== 0; break;
    case 2: r = (f & ZF) !== 0; break;
    case 3: r = (f & (CF | ZF)) !== 0; break;
    case 4: r = (f & SF) !== 0; break;
    case 5: r = (f & PF) !== 0; break;
    case 6: r = ((f & SF) !== 0) !== ((f & OF) !== 0); break;
    default: r = (f & ZF) !== 0 || ((f & SF) !== 0) !== ((f & OF) !== 0); break;
  }
  return (cc & 1) === 0 ? r : !r;
}
