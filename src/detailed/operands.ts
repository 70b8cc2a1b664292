/**
 * Operand accessors, built once per decoded instruction. Values are unsigned 32-bit numbers;
 * a 64-bit operand's `get` returns the low half and leaves the high half in `s.hi`, and its
 * `set` takes both halves. Sizes are in bytes.
 */
import { Register } from 'iced-x86';
import { GuestException, VEC_UD } from './errors.js';
import { NotImplemented } from './isa/registry.js';
import type { CpuState } from './state.js';
import type { DecodeInfo, MemInfo } from './decodeInfo.js';

export type Getter = (s: CpuState) => number;
export type Setter = (s: CpuState, lo: number, hi: number) => void;
export type EaFn = (s: CpuState) => number;

export interface Operand {
  readonly kind: 'reg' | 'mem' | 'imm';
  readonly size: number;
  readonly get: Getter;
  readonly set: Setter;
  /** GPR number for 'reg' operands (and whether it is AH/CH/DH/BH). */
  readonly reg?: number;
  readonly highByte?: boolean;
  readonly ea?: EaFn;
}

const TWO32 = 4294967296;

export interface GprRef {
  index: number;
  size: number;
  highByte: boolean;
}

/** The GPR behind an iced register, or undefined for anything that is not a GPR. */
export function gprOf(r: Register): GprRef | undefined {
  if (r >= Register.AL && r <= Register.R15L) {
    const v = r - Register.AL;
    if (v >= 4 && v <= 7) return { index: v - 4, size: 1, highByte: true };
    if (v < 4) return { index: v, size: 1, highByte: false };
    return { index: v - 4, size: 1, highByte: false };
  }
  if (r >= Register.AX && r <= Register.R15W) return { index: r - Register.AX, size: 2, highByte: false };
  if (r >= Register.EAX && r <= Register.R15D) return { index: r - Register.EAX, size: 4, highByte: false };
  if (r >= Register.RAX && r <= Register.R15) return { index: r - Register.RAX, size: 8, highByte: false };
  return undefined;
}

export function xmmOf(r: Register): number | undefined {
  if (r >= Register.XMM0 && r <= Register.XMM15) return r - Register.XMM0;
  return undefined;
}

export function regGetter(ref: GprRef): Getter {
  const lo = ref.index * 2;
  switch (ref.size) {
    case 8:
      return (s) => {
        s.hi = s.g[lo + 1]! >>> 0;
        return s.g[lo]! >>> 0;
      };
    case 4:
      return (s) => s.g[lo]! >>> 0;
    case 2:
      return (s) => s.g[lo]! & 0xffff;
    default:
      return ref.highByte ? (s) => (s.g[lo]! >>> 8) & 0xff : (s) => s.g[lo]! & 0xff;
  }
}

export function regSetter(ref: GprRef): Setter {
  const lo = ref.index * 2;
  switch (ref.size) {
    case 8:
      return (s, v, h) => {
        s.g[lo] = v;
        s.g[lo + 1] = h;
      };
    case 4:
      // 32-bit writes zero-extend to 64 bits.
      return (s, v) => {
        s.g[lo] = v;
        s.g[lo + 1] = 0;
      };
    case 2:
      return (s, v) => {
        s.g[lo] = (s.g[lo]! & ~0xffff) | (v & 0xffff);
      };
    default:
      return ref.highByte
        ? (s, v) => {
            s.g[lo] = (s.g[lo]! & ~0xff00) | ((v & 0xff) << 8);
          }
        : (s, v) => {
            s.g[lo] = (s.g[lo]! & ~0xff) | (v & 0xff);
          };
  }
}

/** Reduces a (hi, lo) address computed in doubles to a linear address in [0, 2^64). */
function wrap(hi: number, lo: number): number {
  const carry = Math.floor(lo / TWO32);
  let h = (hi + carry) % TWO32;
  if (h < 0) h += TWO32;
  return h * TWO32 + (lo - carry * TWO32);
}

/** Effective (linear) address of a memory operand, wrapping modulo 2^64 like the hardware. */
export function makeEa(m: MemInfo): EaFn {
  if (m.ipRel) {
    const a = m.ipRelAddress;
    return () => a;
  }
  const disp = m.disp;
  const base = m.base;
  const index = m.index;
  const scale = m.scale;
  let ea: EaFn;
  if (base >= 0 && index < 0) {
    const bl = base * 2;
    ea = (s) => {
      const lo = (s.g[bl]! >>> 0) + disp;
      // No carry out of the low half (the usual case, stack addresses included): exact as is.
      if (lo >= 0 && lo < TWO32) return (s.g[bl + 1]! >>> 0) * TWO32 + lo;
      return wrap(s.g[bl + 1]! >>> 0, lo);
    };
  } else if (base >= 0) {
    const bl = base * 2;
    const il = index * 2;
    ea = (s) => {
      const lo = (s.g[bl]! >>> 0) + (s.g[il]! >>> 0) * scale + disp;
      const hi = (s.g[bl + 1]! >>> 0) + (s.g[il + 1]! >>> 0) * scale;
      if (lo >= 0 && lo < TWO32 && hi < TWO32) return hi * TWO32 + lo;
      return wrap(hi, lo);
    };
  } else if (index >= 0) {
    const il = index * 2;
    ea = (s) => wrap((s.g[il + 1]! >>> 0) * scale, (s.g[il]! >>> 0) * scale + disp);
  } else {
    const a = disp < 0 ? disp + 2 ** 64 : disp;
    ea = () => a;
  }
  if (m.addr32 && !m.ipRel) {
    // 32-bit address size: only the low halves count, and the sum wraps at 2^32. (Reducing the
    // 64-bit sum instead loses the low bits when the registers' high halves are large.)
    ea = addr32Ea(m);
  }
  if (m.seg === 'fs' || m.seg === 'gs') {
    // The offset must stay signed: a TLS access like fs:[-0x60] wraps below 2^64, and a double
    // near 2^64 cannot hold it exactly (its spacing there is 2048).
    const off = signedOffset(m);
    const fs = m.seg === 'fs';
    return (s) => {
      const a = off(s) + (fs ? s.fsBase : s.gsBase);
      return a < 0 ? a + 2 ** 64 : a >= 2 ** 64 ? a - 2 ** 64 : a;
    };
  }
  return ea;
}

function addr32Ea(m: MemInfo): EaFn {
  const disp = m.disp;
  const bl = m.base * 2;
  const il = m.index * 2;
  const scale = m.scale;
  const base = m.base >= 0;
  const index = m.index >= 0;
  return (s) => {
    let v = disp;
    if (base) v += s.g[bl]! >>> 0;
    if (index) v += (s.g[il]! >>> 0) * scale;
    v %= TWO32;
    return v < 0 ? v + TWO32 : v;
  };
}

/**
 * The effective address before segmentation, wrapped to 64 bits and read as a signed number:
 * exact whenever it lies within ±2^53, as every user address and small negative offset does.
 */
function signedOffset(m: MemInfo): EaFn {
  let off: EaFn;
  if (m.ipRel) {
    const a = m.ipRelAddress;
    off = () => a;
  } else {
    const disp = m.disp;
    const bl = m.base * 2;
    const il = m.index * 2;
    const scale = m.scale;
    const base = m.base >= 0;
    const index = m.index >= 0;
    off = (s) => {
      // Sum the halves exactly, wrap the high half to a signed 32-bit value, then combine.
      let lo = disp;
      let hi = 0;
      if (base) {
        lo += s.g[bl]! >>> 0;
        hi += s.g[bl + 1]!;
      }
      if (index) {
        lo += (s.g[il]! >>> 0) * scale;
        hi += s.g[il + 1]! * scale;
      }
      const carry = Math.floor(lo / TWO32);
      return ((hi + carry) | 0) * TWO32 + (lo - carry * TWO32);
    };
  }
  if (m.addr32 && !m.ipRel) return addr32Ea(m);
  return off;
}

/** [base + disp] with no index or segment: the most common form, address and access in one closure. */
function isBaseDisp(m: MemInfo): boolean {
  return m.base >= 0 && m.index < 0 && m.seg === null && !m.addr32 && !m.ipRel;
}

function baseDispGetter(m: MemInfo, size: number): Getter | undefined {
  if (!isBaseDisp(m) || (size !== 4 && size !== 8)) return undefined;
  const bl = m.base * 2;
  const disp = m.disp;
  if (size === 4) {
    return (s) => {
      const hi = s.g[bl + 1]!;
      const lo = (s.g[bl]! >>> 0) + disp;
      return s.mem.read32(lo >= 0 && lo < TWO32 ? (hi >>> 0) * TWO32 + lo : wrap(hi >>> 0, lo));
    };
  }
  return (s) => {
    const hi = s.g[bl + 1]!;
    const lo = (s.g[bl]! >>> 0) + disp;
    const mem = s.mem;
    const v = mem.read64(lo >= 0 && lo < TWO32 ? (hi >>> 0) * TWO32 + lo : wrap(hi >>> 0, lo));
    s.hi = mem.hi;
    return v;
  };
}

function baseDispSetter(m: MemInfo, size: number): Setter | undefined {
  if (!isBaseDisp(m) || (size !== 4 && size !== 8)) return undefined;
  const bl = m.base * 2;
  const disp = m.disp;
  if (size === 4) {
    return (s, v) => {
      const hi = s.g[bl + 1]!;
      const lo = (s.g[bl]! >>> 0) + disp;
      s.mem.write32(lo >= 0 && lo < TWO32 ? (hi >>> 0) * TWO32 + lo : wrap(hi >>> 0, lo), v >>> 0);
    };
  }
  return (s, v, h) => {
    const hi = s.g[bl + 1]!;
    const lo = (s.g[bl]! >>> 0) + disp;
    s.mem.write64(lo >= 0 && lo < TWO32 ? (hi >>> 0) * TWO32 + lo : wrap(hi >>> 0, lo), v >>> 0, h >>> 0);
  };
}

export function memGetter(ea: EaFn, size: number): Getter {
  switch (size) {
    case 1:
      return (s) => s.mem.read8(ea(s));
    case 2:
      return (s) => s.mem.read16(ea(s));
    case 4:
      return (s) => s.mem.read32(ea(s));
    case 8:
      return (s) => {
        const m = s.mem;
        const lo = m.read64(ea(s));
        s.hi = m.hi;
        return lo;
      };
    default:
      throw new Error(`memory operand of ${size} bytes has no integer getter`);
  }
}

/** The getter of a read-modify-write memory operand: faults as a write (see GuestMemory.rmw8). */
export function rmwGetter(ea: EaFn, size: number): Getter {
  switch (size) {
    case 1:
      return (s) => s.mem.rmw8(ea(s));
    case 2:
      return (s) => s.mem.rmw16(ea(s));
    case 4:
      return (s) => s.mem.rmw32(ea(s));
    case 8:
      return (s) => {
        const m = s.mem;
        const lo = m.rmw64(ea(s));
        s.hi = m.hi;
        return lo;
      };
    default:
      throw new Error(`memory operand of ${size} bytes has no integer getter`);
  }
}

export function memSetter(ea: EaFn, size: number): Setter {
  switch (size) {
    case 1:
      return (s, v) => s.mem.write8(ea(s), v & 0xff);
    case 2:
      return (s, v) => s.mem.write16(ea(s), v & 0xffff);
    case 4:
      return (s, v) => s.mem.write32(ea(s), v >>> 0);
    case 8:
      return (s, v, h) => s.mem.write64(ea(s), v >>> 0, h >>> 0);
    default:
      throw new Error(`memory operand of ${size} bytes has no integer setter`);
  }
}

const noSet: Setter = () => {
  throw new GuestException(VEC_UD, 0, 0);
};

/**
 * Integer operand `i` of the instruction. `size` overrides the operand size for immediates
 * (they take the size of the instruction's other operand, sign-extended). `rmw`: the operand
 * is read then written (a memory operand's read then faults as a write, as on hardware).
 */
export function operand(d: DecodeInfo, i: number, size?: number, rmw = false): Operand {
  const k = d.ops[i];
  // NotImplemented, not Error: a form a builder did not expect (`push fs`, `mov eax, cr0`…)
  // must become an unsupported-instruction error when executed, not crash the decoder.
  if (!k) throw new NotImplemented(`operand ${i} missing`);
  if (k.kind === 'reg') {
    const ref = gprOf(k.reg);
    if (!ref) throw new NotImplemented(`operand ${i} is not a general-purpose register`);
    return { kind: 'reg', size: ref.size, get: regGetter(ref), set: regSetter(ref), reg: ref.index, highByte: ref.highByte };
  }
  if (k.kind === 'mem') {
    const m = d.mem!;
    const sz = size ?? m.size;
    const ea = makeEa(m);
    const fast = rmw ? undefined : baseDispGetter(m, sz);
    return { kind: 'mem', size: sz, get: fast ?? (rmw ? rmwGetter(ea, sz) : memGetter(ea, sz)), set: baseDispSetter(m, sz) ?? memSetter(ea, sz), ea };
  }
  if (k.kind === 'imm') {
    const sz = size ?? k.size;
    // Sign-extended to the operand size (iced already extended it to 64 bits).
    const v = k.value;
    const lo = Number(v & 0xffffffffn);
    const hi = Number((v >> 32n) & 0xffffffffn);
    const mask = sz >= 4 ? 0xffffffff : sz === 2 ? 0xffff : 0xff;
    const loMasked = (lo & mask) >>> 0;
    const get: Getter =
      sz === 8
        ? (s) => {
            s.hi = hi;
            return loMasked;
          }
        : () => loMasked;
    return { kind: 'imm', size: sz, get, set: noSet };
  }
  throw new NotImplemented(`operand ${i} has kind ${k.kind}`);
}
