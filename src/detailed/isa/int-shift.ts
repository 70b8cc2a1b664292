/**
 * Shifts and rotates: shl/sal/shr/sar/rol/ror/rcl/rcr, shld/shrd, and the BMI2 flagless
 * shifts (sarx/shlx/shrx/rorx).
 *
 * Counts are masked to 5 bits (6 for 64-bit operands); a masked count of 0 changes no flags.
 * Where Intel leaves a flag undefined the value is what Intel hardware produces (measured on
 * KVM): for every count OF takes its count-1 value, computed from the original operands (shl:
 * MSB ^ next bit; shr: MSB; sar: 0; shld: dst MSB ^ next bit; shrd: dst MSB ^ src bit 0; rcr:
 * MSB ^ CF in), except that rol/ror of a register by an immediate other than 1 leave OF
 * unchanged; shifts clear AF; rotates touch only CF and OF.
 */
import { Mnemonic } from 'iced-x86';
import { arithFlags, getCF, setEager } from '../flags.js';
import { operand, type Operand } from '../operands.js';
import { CF, OF, type CpuState } from '../state.js';
import type { DecodeInfo } from '../decodeInfo.js';
import { define, NotImplemented, type Exec } from './registry.js';
import { loOf, hiOf, MASK, szp, szp64, toBig } from './int-common.js';

/** Flags produced by the last kernel (all six arithmetic flags for shifts; CF|OF for rotates). */
let F = 0;
/** High half of the last 64-bit kernel result. */
let H = 0;

type Kernel = (v: number, c: number) => number;
type Kernel64 = (lo: number, hi: number, c: number) => number;

// --- kernels on 8/16/32-bit values (v already masked to the operand size, 1 ≤ c ≤ 31)

function shlK(bits: number): Kernel {
  const mask = MASK[bits / 8]!;
  const size = bits / 8;
  return (v, c) => {
    const res = c < bits ? ((v << c) & mask) >>> 0 : 0;
    const cf = c <= bits ? (v >>> (bits - c)) & 1 : 0;
    const of = ((v >>> (bits - 1)) ^ (v >>> (bits - 2))) & 1;
    F = szp(res, size) | cf | (of ? OF : 0);
    return res;
  };
}

function shrK(bits: number): Kernel {
  const size = bits / 8;
  return (v, c) => {
    const res = c < bits ? v >>> c : 0;
    const cf = c <= bits ? (v >>> (c - 1)) & 1 : 0;
    const of = (v >>> (bits - 1)) & 1;
    F = szp(res, size) | cf | (of ? OF : 0);
    return res;
  };
}

function sarK(bits: number): Kernel {
  const size = bits / 8;
  const mask = MASK[size]!;
  const ext = 32 - bits;
  return (v, c) => {
    const sv = (v << ext) >> ext;
    const res = ((sv >> c) & mask) >>> 0;
    const cf = (sv >> (c - 1)) & 1;
    F = szp(res, size) | cf;
    return res;
  };
}

/** rol by c (masked count, not yet reduced modulo the width). */
function rolK(bits: number): Kernel {
  const mask = MASK[bits / 8]!;
  return (v, cm) => {
    const c = cm & (bits - 1);
    const res = c === 0 ? v : (((v << c) | (v >>> (bits - c))) & mask) >>> 0;
    const cf = res & 1;
    const of = ((v >>> (bits - 1)) ^ (v >>> (bits - 2))) & 1;
    F = cf | (of ? OF : 0);
    return res;
  };
}

function rorK(bits: number): Kernel {
  const mask = MASK[bits / 8]!;
  return (v, cm) => {
    const c = cm & (bits - 1);
    const res = c === 0 ? v : (((v >>> c) | (v << (bits - c))) & mask) >>> 0;
    const cf = (res >>> (bits - 1)) & 1;
    const of = ((v >>> (bits - 1)) ^ v) & 1;
    F = cf | (of ? OF : 0);
    return res;
  };
}

const shl32 = (v: number, k: number) => (k >= 32 ? 0 : v << k);
const shr32 = (v: number, k: number) => (k >= 32 ? 0 : v >>> k);

/** rcl through CF: `cin` is the carry in, 1 ≤ c ≤ bits (already reduced). */
function rclK(bits: number): (v: number, c: number, cin: number) => number {
  const mask = MASK[bits / 8]!;
  return (v, c, cin) => {
    const res = ((shl32(v, c) | (cin << (c - 1)) | shr32(v, bits + 1 - c)) & mask) >>> 0;
    const cf = (v >>> (bits - c)) & 1;
    const of = ((v >>> (bits - 1)) ^ (v >>> (bits - 2))) & 1;
    F = cf | (of ? OF : 0);
    return res;
  };
}

function rcrK(bits: number): (v: number, c: number, cin: number) => number {
  const mask = MASK[bits / 8]!;
  return (v, c, cin) => {
    const res = ((shr32(v, c) | (cin << (bits - c)) | shl32(v, bits + 1 - c)) & mask) >>> 0;
    const cf = (v >>> (c - 1)) & 1;
    const of = ((v >>> (bits - 1)) & 1) ^ cin;
    F = cf | (of ? OF : 0);
    return res;
  };
}

// --- 64-bit kernels on (lo, hi), 1 ≤ c ≤ 63; the result's high half goes to H

const shl64: Kernel64 = (lo, hi, c) => {
  let rlo: number;
  let rhi: number;
  let cf: number;
  if (c < 32) {
    rhi = ((hi << c) | (lo >>> (32 - c))) >>> 0;
    rlo = (lo << c) >>> 0;
    cf = (hi >>> (32 - c)) & 1;
  } else if (c === 32) {
    rhi = lo;
    rlo = 0;
    cf = hi & 1;
  } else {
    rhi = (lo << (c - 32)) >>> 0;
    rlo = 0;
    cf = (lo >>> (64 - c)) & 1;
  }
  const of = ((hi >>> 31) ^ (hi >>> 30)) & 1;
  F = szp64(rlo, rhi) | cf | (of ? OF : 0);
  H = rhi;
  return rlo;
};

const shr64: Kernel64 = (lo, hi, c) => {
  let rlo: number;
  let rhi: number;
  let cf: number;
  if (c < 32) {
    rlo = ((lo >>> c) | (hi << (32 - c))) >>> 0;
    rhi = hi >>> c;
    cf = (lo >>> (c - 1)) & 1;
  } else if (c === 32) {
    rlo = hi;
    rhi = 0;
    cf = lo >>> 31;
  } else {
    rlo = hi >>> (c - 32);
    rhi = 0;
    cf = (hi >>> (c - 33)) & 1;
  }
  const of = hi >>> 31;
  F = szp64(rlo, rhi) | cf | (of ? OF : 0);
  H = rhi;
  return rlo;
};

const sar64: Kernel64 = (lo, hi, c) => {
  const h = hi | 0;
  let rlo: number;
  let rhi: number;
  let cf: number;
  if (c < 32) {
    rlo = ((lo >>> c) | (h << (32 - c))) >>> 0;
    rhi = (h >> c) >>> 0;
    cf = (lo >>> (c - 1)) & 1;
  } else if (c === 32) {
    rlo = h >>> 0;
    rhi = (h >> 31) >>> 0;
    cf = lo >>> 31;
  } else {
    rlo = (h >> (c - 32)) >>> 0;
    rhi = (h >> 31) >>> 0;
    cf = (h >> (c - 33)) & 1;
  }
  F = szp64(rlo, rhi) | cf;
  H = rhi;
  return rlo;
};

/** Rotate left by c (0–63) without flags: the result's low half, high half in H. */
function rot64(lo: number, hi: number, c: number): number {
  if (c >= 32) {
    const t = lo;
    lo = hi;
    hi = t;
    c -= 32;
  }
  if (c === 0) {
    H = hi >>> 0;
    return lo >>> 0;
  }
  H = ((hi << c) | (lo >>> (32 - c))) >>> 0;
  return ((lo << c) | (hi >>> (32 - c))) >>> 0;
}

const rol64: Kernel64 = (lo, hi, c) => {
  const rlo = rot64(lo, hi, c);
  const cf = rlo & 1;
  F = cf | (((hi >>> 31) ^ (hi >>> 30)) & 1 ? OF : 0);
  return rlo;
};

const ror64: Kernel64 = (lo, hi, c) => {
  const rlo = rot64(lo, hi, (64 - c) & 63);
  const cf = H >>> 31;
  F = cf | (((hi >>> 31) ^ lo) & 1 ? OF : 0);
  return rlo;
};

const M65 = (1n << 65n) - 1n;
const M64 = (1n << 64n) - 1n;

function rcx64(lo: number, hi: number, c: number, cin: number, left: boolean): number {
  const x = (BigInt(cin) << 64n) | toBig(lo, hi);
  const k = BigInt(left ? c : 65 - c);
  const r = ((x << k) | (x >> (65n - k))) & M65;
  const v = r & M64;
  const cf = Number(r >> 64n);
  const rlo = loOf(v);
  const rhi = hiOf(v);
  const of = left ? ((hi >>> 31) ^ (hi >>> 30)) & 1 : (hi >>> 31) ^ cin;
  F = cf | (of ? OF : 0);
  H = rhi;
  return rlo;
}

// --- builders

type Kind = 'shl' | 'shr' | 'sar' | 'rol' | 'ror' | 'rcl' | 'rcr';

/** What a shift by 0 does to its destination. */
function zeroCount(o: Operand): Exec {
  const get = o.get;
  if (o.kind === 'mem') return (s) => void get(s);
  if (o.size === 4) {
    const hi = o.reg! * 2 + 1;
    return (s) => {
      s.g[hi] = 0;
    };
  }
  return () => {};
}

/** The count operand: an immediate (constant) or CL. */
function countOf(d: DecodeInfo, i: number): { imm: number } | { cl: true } {
  const k = d.ops[i];
  if (k?.kind === 'imm') return { imm: Number(k.value & 0xffn) };
  if (k?.kind === 'reg') return { cl: true };
  throw new NotImplemented('unusual shift count operand');
}

type Plain = 'shl' | 'shr' | 'sar' | 'rol' | 'ror';

function kernel64(kind: Plain): Kernel64 {
  return kind === 'shl' ? shl64 : kind === 'shr' ? shr64 : kind === 'sar' ? sar64 : kind === 'rol' ? rol64 : ror64;
}

function kernel(kind: Plain, bits: number): Kernel {
  switch (kind) {
    case 'shl':
      return shlK(bits);
    case 'shr':
      return shrK(bits);
    case 'sar':
      return sarK(bits);
    case 'rol':
      return rolK(bits);
    default:
      return rorK(bits);
  }
}

function shiftBuilder(kind: Kind) {
  return (d: DecodeInfo): Exec => {
    const o = operand(d, 0, undefined, true);
    const get = o.get;
    const set = o.set;
    const size = o.size;
    const bits = size * 8;
    const cmask = size === 8 ? 63 : 31;
    const cnt = countOf(d, 1);
    const constCount = 'imm' in cnt ? cnt.imm & cmask : -1;
    const count: (s: CpuState) => number = constCount >= 0 ? () => constCount : (s) => s.g[2]! & cmask;
    const rotate = kind === 'rol' || kind === 'ror' || kind === 'rcl' || kind === 'rcr';
    // rol/ror of a register by an immediate other than 1 leave OF unchanged on Intel (by CL,
    // or of a memory operand, they compute it).
    const fMask = (kind === 'rol' || kind === 'ror') && constCount > 1 && o.kind === 'reg' ? CF : CF | OF;
    const keepMask = ~fMask;
    // A count of 0 changes no flags; a memory operand is still read, and a 32-bit register is
    // still written (zero-extended), as Intel hardware does.
    const zero = zeroCount(o);
    if (constCount === 0) return zero;

    if (constCount > 0 && kind !== 'rcl' && kind !== 'rcr') {
      // The common immediate-count forms, without the count checks.
      const c = constCount;
      if (size === 8) {
        const k = kernel64(kind);
        if (rotate) {
          return (s) => {
            const lo = get(s);
            const rlo = k(lo, s.hi, c);
            const f = arithFlags(s);
            set(s, rlo, H);
            setEager(s, (f & keepMask) | (F & fMask));
          };
        }
        return (s) => {
          const lo = get(s);
          const rlo = k(lo, s.hi, c);
          set(s, rlo, H);
          setEager(s, F);
        };
      }
      const k = kernel(kind, bits);
      if (rotate) {
        return (s) => {
          const res = k(get(s), c);
          const f = arithFlags(s);
          set(s, res, 0);
          setEager(s, (f & keepMask) | (F & fMask));
        };
      }
      return (s) => {
        const res = k(get(s), c);
        set(s, res, 0);
        setEager(s, F);
      };
    }

    if (size === 8) {
      if (kind === 'rcl' || kind === 'rcr') {
        const left = kind === 'rcl';
        return (s) => {
          const c = count(s);
          if (c === 0) return zero(s);
          const lo = get(s);
          const hi = s.hi;
          const rlo = rcx64(lo, hi, c, getCF(s), left);
          const f = arithFlags(s);
          set(s, rlo, H);
          setEager(s, (f & ~(CF | OF)) | F);
        };
      }
      const k = kernel64(kind);
      if (rotate) {
        return (s) => {
          const c = count(s);
          if (c === 0) return zero(s);
          const lo = get(s);
          const rlo = k(lo, s.hi, c);
          const f = arithFlags(s);
          set(s, rlo, H);
          setEager(s, (f & keepMask) | (F & fMask));
        };
      }
      return (s) => {
        const c = count(s);
        if (c === 0) return zero(s);
        const lo = get(s);
        const rlo = k(lo, s.hi, c);
        set(s, rlo, H);
        setEager(s, F);
      };
    }

    if (kind === 'rcl' || kind === 'rcr') {
      const k = kind === 'rcl' ? rclK(bits) : rcrK(bits);
      const modulus = bits + 1;
      return (s) => {
        const cm = count(s);
        if (cm === 0) return zero(s);
        const c = cm % modulus;
        const v = get(s);
        if (c === 0) {
          // The rotate is a no-op (count 9 on a byte, 17 on a word): flags stay.
          set(s, v, 0);
          return;
        }
        const res = k(v, c, getCF(s));
        const f = arithFlags(s);
        set(s, res, 0);
        setEager(s, (f & ~(CF | OF)) | F);
      };
    }
    const k = kernel(kind, bits);
    if (rotate) {
      return (s) => {
        const c = count(s);
        if (c === 0) return zero(s);
        const res = k(get(s), c);
        const f = arithFlags(s);
        set(s, res, 0);
        setEager(s, (f & keepMask) | (F & fMask));
      };
    }
    return (s) => {
      const c = count(s);
      if (c === 0) return zero(s);
      const res = k(get(s), c);
      set(s, res, 0);
      setEager(s, F);
    };
  };
}

define([Mnemonic.Shl, Mnemonic.Sal], shiftBuilder('shl'));
define(Mnemonic.Shr, shiftBuilder('shr'));
define(Mnemonic.Sar, shiftBuilder('sar'));
define(Mnemonic.Rol, shiftBuilder('rol'));
define(Mnemonic.Ror, shiftBuilder('ror'));
define(Mnemonic.Rcl, shiftBuilder('rcl'));
define(Mnemonic.Rcr, shiftBuilder('rcr'));

// --- shld / shrd

function shld32(d: number, src: number, c: number): number {
  const res = ((d << c) | (src >>> (32 - c))) >>> 0;
  const cf = (d >>> (32 - c)) & 1;
  F = szp(res, 4) | cf | (((d >>> 31) ^ (d >>> 30)) & 1 ? OF : 0);
  return res;
}

function shrd32(d: number, src: number, c: number): number {
  const res = ((d >>> c) | (src << (32 - c))) >>> 0;
  const cf = (d >>> (c - 1)) & 1;
  F = szp(res, 4) | cf | (((d >>> 31) ^ src) & 1 ? OF : 0);
  return res;
}

/**
 * 16-bit forms with counts 17–31 (undefined results): Intel P6 and later shift dst:src:dst,
 * i.e. the 48-bit concatenation, as Bochs documents.
 */
function shld16(d: number, src: number, c: number): number {
  const temp = ((d << 16) | src) >>> 0;
  let r = temp << c;
  if (c > 16) r |= d << (c - 16);
  const res = (r >>> 16) & 0xffff;
  const cf = (temp >>> (32 - c)) & 1;
  F = szp(res, 2) | cf | (((d >>> 15) ^ (d >>> 14)) & 1 ? OF : 0);
  return res;
}

function shrd16(d: number, src: number, c: number): number {
  const temp = ((src << 16) | d) >>> 0;
  let r = temp >>> c;
  if (c > 16) r |= d << (32 - c);
  const res = r & 0xffff;
  const cf = (temp >>> (c - 1)) & 1;
  F = szp(res, 2) | cf | (((d >>> 15) ^ src) & 1 ? OF : 0);
  return res;
}

function shld64(dl: number, dh: number, sl: number, sh: number, c: number): number {
  let rlo: number;
  let rhi: number;
  if (c < 32) {
    rhi = ((dh << c) | (dl >>> (32 - c))) >>> 0;
    rlo = ((dl << c) | (sh >>> (32 - c))) >>> 0;
  } else if (c === 32) {
    rhi = dl;
    rlo = sh;
  } else {
    const k = c - 32;
    rhi = ((dl << k) | (sh >>> (32 - k))) >>> 0;
    rlo = ((sh << k) | (sl >>> (32 - k))) >>> 0;
  }
  const cf = c <= 32 ? (dh >>> (32 - c)) & 1 : (dl >>> (64 - c)) & 1;
  F = szp64(rlo, rhi) | cf | (((dh >>> 31) ^ (dh >>> 30)) & 1 ? OF : 0);
  H = rhi;
  return rlo;
}

function shrd64(dl: number, dh: number, sl: number, sh: number, c: number): number {
  let rlo: number;
  let rhi: number;
  if (c < 32) {
    rlo = ((dl >>> c) | (dh << (32 - c))) >>> 0;
    rhi = ((dh >>> c) | (sl << (32 - c))) >>> 0;
  } else if (c === 32) {
    rlo = dh;
    rhi = sl;
  } else {
    const k = c - 32;
    rlo = ((dh >>> k) | (sl << (32 - k))) >>> 0;
    rhi = ((sl >>> k) | (sh << (32 - k))) >>> 0;
  }
  const cf = c <= 32 ? (dl >>> (c - 1)) & 1 : (dh >>> (c - 33)) & 1;
  F = szp64(rlo, rhi) | cf | (((dh >>> 31) ^ sl) & 1 ? OF : 0);
  H = rhi;
  return rlo;
}

function doubleShift(left: boolean) {
  return (d: DecodeInfo): Exec => {
    const dst = operand(d, 0, undefined, true);
    const src = operand(d, 1);
    const get = dst.get;
    const set = dst.set;
    const sget = src.get;
    const size = dst.size;
    const cmask = size === 8 ? 63 : 31;
    const cnt = countOf(d, 2);
    const constCount = 'imm' in cnt ? cnt.imm & cmask : -1;
    const count: (s: CpuState) => number = constCount >= 0 ? () => constCount : (s) => s.g[2]! & cmask;
    const zero = zeroCount(dst);
    if (constCount === 0) return zero;
    if (size === 8) {
      const k = left ? shld64 : shrd64;
      return (s) => {
        const c = count(s);
        if (c === 0) return zero(s);
        const dl = get(s);
        const dh = s.hi;
        const sl = sget(s);
        const rlo = k(dl, dh, sl, s.hi, c);
        set(s, rlo, H);
        setEager(s, F);
      };
    }
    const k = size === 4 ? (left ? shld32 : shrd32) : left ? shld16 : shrd16;
    return (s) => {
      const c = count(s);
      if (c === 0) return zero(s);
      const res = k(get(s), sget(s), c);
      set(s, res, 0);
      setEager(s, F);
    };
  };
}

define(Mnemonic.Shld, doubleShift(true));
define(Mnemonic.Shrd, doubleShift(false));

// --- BMI2: shifts and rotate without flags; the count is a register (masked) or rorx's immediate

function bmiShift(kind: 'shl' | 'shr' | 'sar' | 'ror') {
  return (d: DecodeInfo): Exec => {
    const dst = operand(d, 0);
    const src = operand(d, 1);
    const size = dst.size;
    const cmask = size === 8 ? 63 : 31;
    const get = src.get;
    const set = dst.set;
    const k64 = kernel64(kind);
    let count: (s: CpuState) => number;
    if (kind === 'ror') {
      const k = d.ops[2];
      if (k?.kind !== 'imm') throw new NotImplemented('rorx without an immediate');
      const c = Number(k.value & 0xffn) & cmask;
      count = () => c;
    } else {
      const cget = operand(d, 2).get;
      count = (s) => cget(s) & cmask;
    }
    if (size === 8) {
      return (s) => {
        const c = count(s);
        const lo = get(s);
        const hi = s.hi;
        if (c === 0) return set(s, lo, hi);
        const rlo = k64(lo, hi, c);
        set(s, rlo, H);
      };
    }
    return (s) => {
      const c = count(s);
      const v = get(s);
      let r: number;
      if (c === 0) r = v;
      else if (kind === 'shl') r = (v << c) >>> 0;
      else if (kind === 'shr') r = v >>> c;
      else if (kind === 'sar') r = (v >> c) >>> 0;
      else r = ((v >>> c) | (v << (32 - c))) >>> 0;
      set(s, r, 0);
    };
  };
}

define(Mnemonic.Shlx, bmiShift('shl'));
define(Mnemonic.Shrx, bmiShift('shr'));
define(Mnemonic.Sarx, bmiShift('sar'));
define(Mnemonic.Rorx, bmiShift('ror'));
