/**
 * Integer moves and exchanges: movzx/movsx/movsxd, the accumulator sign extensions
 * (cbw…cqo), xchg, cmpxchg, xadd, bswap, movbe, cmovcc, setcc, and the 16-bit push/pop forms.
 */
import { Code, Mnemonic } from 'iced-x86';
import { Gpr } from '../../guest/threadContext.js';
import { cond } from '../flags.js';
import { operand, regGetter, regSetter } from '../operands.js';
import type { CpuState } from '../state.js';
import { push64 } from './core.js';
import { defineForms, define, NotImplemented, type Exec } from './registry.js';
import { MASK, recordAdd, recordAdd64, recordSub, recordSub64, TWO32 } from './int-common.js';

define(Mnemonic.Movzx, (d) => {
  const get = operand(d, 1).get;
  const set = operand(d, 0).set;
  return (s) => set(s, get(s), 0);
});

/** Sign extension from the source's width to the destination's (movsx, movsxd). */
function signExtend(d: Parameters<typeof operand>[0]): Exec {
  const dst = operand(d, 0);
  const src = operand(d, 1);
  const get = src.get;
  const set = dst.set;
  if (src.size >= dst.size) {
    // movsxd r32, r/m32 (and r16, r/m16): a plain move.
    return (s) => set(s, get(s), 0);
  }
  const shift = 32 - src.size * 8;
  if (dst.size === 8) {
    return (s) => {
      const v = (get(s) << shift) >> shift;
      set(s, v >>> 0, v < 0 ? 0xffffffff : 0);
    };
  }
  const mask = MASK[dst.size]!;
  return (s) => set(s, (((get(s) << shift) >> shift) & mask) >>> 0, 0);
}
define([Mnemonic.Movsx, Mnemonic.Movsxd], signExtend);

const RAX = Gpr.rax * 2;
const RDX = Gpr.rdx * 2;

define(Mnemonic.Cbw, () => (s) => {
  const g = s.g;
  g[RAX] = (g[RAX]! & ~0xffff) | (((g[RAX]! << 24) >> 24) & 0xffff);
});
define(Mnemonic.Cwde, () => (s) => {
  const g = s.g;
  g[RAX] = (g[RAX]! << 16) >> 16;
  g[RAX + 1] = 0;
});
define(Mnemonic.Cdqe, () => (s) => {
  s.g[RAX + 1] = s.g[RAX]! >> 31;
});
define(Mnemonic.Cwd, () => (s) => {
  const g = s.g;
  g[RDX] = (g[RDX]! & ~0xffff) | (g[RAX]! & 0x8000 ? 0xffff : 0);
});
define(Mnemonic.Cdq, () => (s) => {
  const g = s.g;
  g[RDX] = g[RAX]! >> 31;
  g[RDX + 1] = 0;
});
define(Mnemonic.Cqo, () => (s) => {
  const g = s.g;
  const v = g[RAX + 1]! >> 31;
  g[RDX] = v;
  g[RDX + 1] = v;
});

/** xchg: both operands read, then written (memory first, so a fault changes nothing). */
define(Mnemonic.Xchg, (d) => {
  let a = operand(d, 0, undefined, true);
  let b = operand(d, 1, undefined, true);
  if (b.kind === 'mem') [a, b] = [b, a];
  const aget = a.get;
  const aset = a.set;
  const bget = b.get;
  const bset = b.set;
  if (a.size === 8) {
    return (s) => {
      const alo = aget(s);
      const ahi = s.hi;
      const blo = bget(s);
      const bhi = s.hi;
      aset(s, blo, bhi);
      bset(s, alo, ahi);
    };
  }
  return (s) => {
    const av = aget(s);
    const bv = bget(s);
    aset(s, bv, 0);
    bset(s, av, 0);
  };
});

/**
 * cmpxchg: flags as `cmp acc, dst`. Equal: dst = src. Not equal: acc = dst, and a memory
 * destination is written back with its own value (the locked cycle always writes); a register
 * destination is left alone (its upper half too), as is the accumulator when equal.
 */
define(Mnemonic.Cmpxchg, (d) => {
  const dst = operand(d, 0, undefined, true);
  const src = operand(d, 1);
  const size = dst.size;
  const acc = { index: Gpr.rax, size, highByte: false };
  const aget = regGetter(acc);
  const aset = regSetter(acc);
  const dget = dst.get;
  const dset = dst.set;
  const sget = src.get;
  const isMem = dst.kind === 'mem';
  if (size === 8) {
    return (s) => {
      const old = dget(s);
      const oldHi = s.hi;
      const a = aget(s);
      const ah = s.hi;
      if (a === old && ah === oldHi) {
        const v = sget(s);
        dset(s, v, s.hi);
      } else {
        if (isMem) dset(s, old, oldHi);
        aset(s, old, oldHi);
      }
      recordSub64(s, a, ah, old, oldHi);
    };
  }
  return (s) => {
    const old = dget(s);
    const a = aget(s);
    if (a === old) {
      const v = sget(s);
      dset(s, v, 0);
    } else {
      if (isMem) dset(s, old, 0);
      aset(s, old, 0);
    }
    recordSub(s, size, a, old);
  };
});

/** xadd: dst = dst + src, src = old dst (written after the destination; dst wins if they alias). */
define(Mnemonic.Xadd, (d) => {
  const dst = operand(d, 0, undefined, true);
  const src = operand(d, 1);
  const size = dst.size;
  const dget = dst.get;
  const dset = dst.set;
  const sget = src.get;
  const sset = src.set;
  const memFirst = dst.kind === 'mem';
  const mask = MASK[size]!;
  if (size === 8) {
    return (s) => {
      const a = dget(s);
      const ah = s.hi;
      const b = sget(s);
      const bh = s.hi;
      const lo = a + b;
      const c = lo >= TWO32 ? 1 : 0;
      const rlo = lo - c * TWO32;
      const rhi = (ah + bh + c) >>> 0;
      if (memFirst) {
        dset(s, rlo, rhi);
        sset(s, a, ah);
      } else {
        sset(s, a, ah);
        dset(s, rlo, rhi);
      }
      recordAdd64(s, a, ah, b, bh);
    };
  }
  return (s) => {
    const a = dget(s);
    const b = sget(s);
    const r = ((a + b) % TWO32 & mask) >>> 0;
    if (memFirst) {
      dset(s, r, 0);
      sset(s, a, 0);
    } else {
      sset(s, a, 0);
      dset(s, r, 0);
    }
    recordAdd(s, size, a, b);
  };
});

export function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

define(Mnemonic.Bswap, (d) => {
  const o = operand(d, 0);
  const get = o.get;
  const set = o.set;
  if (o.size === 8) {
    return (s) => {
      const lo = get(s);
      set(s, bswap32(s.hi), bswap32(lo));
    };
  }
  if (o.size === 4) return (s) => set(s, bswap32(get(s)), 0);
  // bswap r16 is undefined; Intel hardware clears the low 16 bits.
  return (s) => set(s, 0, 0);
});

/** movbe: a load or store with the bytes reversed. */
define(Mnemonic.Movbe, (d) => {
  const dst = operand(d, 0);
  const src = operand(d, 1);
  const get = src.get;
  const set = dst.set;
  if (dst.size === 8) {
    return (s) => {
      const lo = get(s);
      set(s, bswap32(s.hi), bswap32(lo));
    };
  }
  if (dst.size === 4) return (s) => set(s, bswap32(get(s)), 0);
  return (s) => {
    const v = get(s);
    set(s, ((v & 0xff) << 8) | ((v >>> 8) & 0xff), 0);
  };
});

const CMOVCC = [
  Mnemonic.Cmovo, Mnemonic.Cmovno, Mnemonic.Cmovb, Mnemonic.Cmovae, Mnemonic.Cmove, Mnemonic.Cmovne,
  Mnemonic.Cmovbe, Mnemonic.Cmova, Mnemonic.Cmovs, Mnemonic.Cmovns, Mnemonic.Cmovp, Mnemonic.Cmovnp,
  Mnemonic.Cmovl, Mnemonic.Cmovge, Mnemonic.Cmovle, Mnemonic.Cmovg,
];

/**
 * cmovcc always reads its source (a memory source faults even when the condition is false),
 * and a 32-bit destination is zero-extended whether or not the move happens.
 */
define(CMOVCC, (d) => {
  const dst = operand(d, 0);
  const src = operand(d, 1);
  const get = src.get;
  const set = dst.set;
  const cc = d.cc;
  if (dst.size === 8) {
    return (s) => {
      const lo = get(s);
      const hi = s.hi;
      if (cond(s, cc)) set(s, lo, hi);
    };
  }
  if (dst.size === 4) {
    const hiIndex = dst.reg! * 2 + 1;
    return (s) => {
      const v = get(s);
      if (cond(s, cc)) set(s, v, 0);
      else s.g[hiIndex] = 0;
    };
  }
  return (s) => {
    const v = get(s);
    if (cond(s, cc)) set(s, v, 0);
  };
});

const SETCC = [
  Mnemonic.Seto, Mnemonic.Setno, Mnemonic.Setb, Mnemonic.Setae, Mnemonic.Sete, Mnemonic.Setne,
  Mnemonic.Setbe, Mnemonic.Seta, Mnemonic.Sets, Mnemonic.Setns, Mnemonic.Setp, Mnemonic.Setnp,
  Mnemonic.Setl, Mnemonic.Setge, Mnemonic.Setle, Mnemonic.Setg,
];
define(SETCC, (d) => {
  const set = operand(d, 0).set;
  const cc = d.cc;
  return (s) => set(s, cond(s, cc) ? 1 : 0, 0);
});

// --- 16-bit push/pop (66-prefixed); the 64-bit forms are in core.ts.

const RSP = Gpr.rsp * 2;

function rspAdd(s: CpuState, delta: number): number {
  let lo = (s.g[RSP]! >>> 0) + delta;
  let hi = s.g[RSP + 1]! >>> 0;
  if (lo < 0) {
    lo += TWO32;
    hi = (hi - 1) >>> 0;
  } else if (lo >= TWO32) {
    lo -= TWO32;
    hi = (hi + 1) >>> 0;
  }
  s.g[RSP] = lo;
  s.g[RSP + 1] = hi;
  return hi * TWO32 + lo;
}

function rspValue(s: CpuState): number {
  return (s.g[RSP + 1]! >>> 0) * TWO32 + (s.g[RSP]! >>> 0);
}

export function push16(s: CpuState, v: number): void {
  let sp = rspValue(s) - 2;
  if (sp < 0) sp += 2 ** 64;
  s.mem.write16(sp, v);
  rspAdd(s, -2);
}

export function pop16(s: CpuState): number {
  const v = s.mem.read16(rspValue(s));
  rspAdd(s, 2);
  return v;
}

defineForms(Mnemonic.Push, (d) => {
  // push fs/gs: the null selector user code runs with (8 bytes, or 2 with 66).
  if (d.code === Code.Pushq_FS || d.code === Code.Pushq_GS) return (s) => push64(s, 0, 0);
  if (d.code === Code.Pushw_FS || d.code === Code.Pushw_GS) return (s) => push16(s, 0);
  const k = d.ops[0];
  const o = operand(d, 0, k?.kind === 'imm' ? k.size : undefined);
  if (o.size !== 2) throw new NotImplemented('not a 16-bit push');
  const get = o.get;
  return (s) => push16(s, get(s));
});

defineForms(Mnemonic.Pop, (d) => {
  const o = operand(d, 0);
  if (o.size !== 2) throw new NotImplemented('not a 16-bit pop');
  const set = o.set;
  if (o.kind !== 'mem') return (s) => set(s, pop16(s), 0);
  // The destination address is computed after rsp moves (pop [rsp] uses the new rsp); a
  // faulting store leaves rsp as it was.
  return (s) => {
    const v = pop16(s);
    try {
      set(s, v, 0);
    } catch (e) {
      rspAdd(s, -2);
      throw e;
    }
  };
});
