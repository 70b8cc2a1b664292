/**
 * Core integer instructions: moves, lea, the flag-setting ALU group, inc/dec/neg/not, stack,
 * control flow and syscall. These show the patterns the other ISA files follow:
 * - sizes ≤ 4 bytes compute on unsigned numbers; 8-byte operands on (lo, hi) uint32 halves;
 * - flag producers record lazily (flags.ts) unless their rules are irregular.
 */
import { Mnemonic } from 'iced-x86';
import { Gpr } from '../../guest/threadContext.js';
import { GuestException, VEC_GP, VEC_UD } from '../errors.js';
import { cond, getCF, readFlags } from '../flags.js';
import { gprOf, operand, regGetter, regSetter, type Operand } from '../operands.js';
import { CcOp, Event, type CpuState } from '../state.js';
import type { DecodeInfo } from '../decodeInfo.js';
import { define, NotImplemented, type Exec } from './registry.js';

const TWO32 = 4294967296;
const MASK = [0, 0xff, 0xffff, 0, 0xffffffff] as const;

/** The integer operands of a two-operand ALU instruction, the source sized like the destination. */
function binary(d: DecodeInfo, rmw = false): [Operand, Operand] {
  const dst = operand(d, 0, undefined, rmw);
  const src = operand(d, 1, d.ops[1]?.kind === 'imm' ? dst.size : undefined);
  return [dst, src];
}

type AluKind = 'add' | 'adc' | 'sub' | 'sbb' | 'and' | 'or' | 'xor' | 'cmp' | 'test';

/**
 * 64-bit ALU with a register destination and a register or immediate source: the commonest
 * form in compiled code, written against the register file directly (no operand closures).
 */
function aluReg64(kind: AluKind, dst: Operand, src: Operand): Exec | undefined {
  if (dst.kind !== 'reg' || dst.size !== 8 || (src.kind !== 'reg' && src.kind !== 'imm')) return undefined;
  if (kind === 'adc' || kind === 'sbb') return undefined;
  const d = dst.reg! * 2;
  const srcReg = src.kind === 'reg';
  const r = srcReg ? src.reg! * 2 : 0;
  let immLo = 0;
  let immHi = 0;
  if (!srcReg) {
    const tmp = { hi: 0 } as unknown as CpuState;
    immLo = src.get(tmp);
    immHi = (tmp as unknown as { hi: number }).hi;
  }
  switch (kind) {
    case 'add':
      return (s) => {
        const g = s.g;
        const a = g[d]! >>> 0;
        const ah = g[d + 1]! >>> 0;
        const b = srcReg ? g[r]! >>> 0 : immLo;
        const bh = srcReg ? g[r + 1]! >>> 0 : immHi;
        const lo = a + b;
        const c = lo >= TWO32 ? 1 : 0;
        const rlo = lo - c * TWO32;
        const rhi = (ah + bh + c) >>> 0;
        g[d] = rlo;
        g[d + 1] = rhi;
        s.ccOp = CcOp.Add;
        s.ccSize = 8;
        s.ccA = a;
        s.ccAHi = ah;
        s.ccB = b;
        s.ccBHi = bh;
        s.ccRes = rlo;
        s.ccResHi = rhi;
      };
    case 'sub':
    case 'cmp': {
      const writes = kind === 'sub';
      return (s) => {
        const g = s.g;
        const a = g[d]! >>> 0;
        const ah = g[d + 1]! >>> 0;
        const b = srcReg ? g[r]! >>> 0 : immLo;
        const bh = srcReg ? g[r + 1]! >>> 0 : immHi;
        const lo = a - b;
        const borrow = lo < 0 ? 1 : 0;
        const rlo = lo + borrow * TWO32;
        const rhi = (ah - bh - borrow) >>> 0;
        if (writes) {
          g[d] = rlo;
          g[d + 1] = rhi;
        }
        s.ccOp = CcOp.Sub;
        s.ccSize = 8;
        s.ccA = a;
        s.ccAHi = ah;
        s.ccB = b;
        s.ccBHi = bh;
        s.ccRes = rlo;
        s.ccResHi = rhi;
      };
    }
    default: {
      const writes = kind !== 'test';
      const and = kind === 'and' || kind === 'test';
      const or = kind === 'or';
      return (s) => {
        const g = s.g;
        const b = srcReg ? g[r]! : immLo;
        const bh = srcReg ? g[r + 1]! : immHi;
        const rlo = (and ? g[d]! & b : or ? g[d]! | b : g[d]! ^ b) >>> 0;
        const rhi = (and ? g[d + 1]! & bh : or ? g[d + 1]! | bh : g[d + 1]! ^ bh) >>> 0;
        if (writes) {
          g[d] = rlo;
          g[d + 1] = rhi;
        }
        s.ccOp = CcOp.Logic;
        s.ccSize = 8;
        s.ccRes = rlo;
        s.ccResHi = rhi;
      };
    }
  }
}

function aluBuilder(kind: AluKind) {
  const writes = kind !== 'cmp' && kind !== 'test';
  return (d: DecodeInfo): Exec => {
    const [dst, src] = binary(d, writes);
    const fast = aluReg64(kind, dst, src);
    if (fast) return fast;
    const size = dst.size;
    const get = dst.get;
    const set = dst.set;
    const sget = src.get;
    if (size === 8) {
      switch (kind) {
        case 'add':
        case 'adc': {
          const withCarry = kind === 'adc';
          return (s) => {
            const a = get(s);
            const ah = s.hi;
            const b = sget(s);
            const bh = s.hi;
            const cin = withCarry ? getCF(s) : 0;
            const lo = a + b + cin;
            const c = lo >= TWO32 ? 1 : 0;
            const rlo = lo - c * TWO32;
            const rhi = (ah + bh + c) >>> 0;
            set(s, rlo, rhi);
            s.ccOp = withCarry ? CcOp.Adc : CcOp.Add;
            s.ccSize = 8;
            s.ccA = a;
            s.ccAHi = ah;
            s.ccB = b;
            s.ccBHi = bh;
            s.ccC = cin;
            s.ccRes = rlo;
            s.ccResHi = rhi;
          };
        }
        case 'sub':
        case 'sbb':
        case 'cmp': {
          const withBorrow = kind === 'sbb';
          return (s) => {
            const a = get(s);
            const ah = s.hi;
            const b = sget(s);
            const bh = s.hi;
            const bin = withBorrow ? getCF(s) : 0;
            const lo = a - b - bin;
            const borrow = lo < 0 ? 1 : 0;
            const rlo = lo + borrow * TWO32;
            const rhi = (ah - bh - borrow) >>> 0;
            if (writes) set(s, rlo, rhi);
            s.ccOp = withBorrow ? CcOp.Sbb : CcOp.Sub;
            s.ccSize = 8;
            s.ccA = a;
            s.ccAHi = ah;
            s.ccB = b;
            s.ccBHi = bh;
            s.ccC = bin;
            s.ccRes = rlo;
            s.ccResHi = rhi;
          };
        }
        default: {
          const f =
            kind === 'and' || kind === 'test'
              ? (x: number, y: number) => (x & y) >>> 0
              : kind === 'or'
                ? (x: number, y: number) => (x | y) >>> 0
                : (x: number, y: number) => (x ^ y) >>> 0;
          return (s) => {
            const a = get(s);
            const ah = s.hi;
            const b = sget(s);
            const bh = s.hi;
            const rlo = f(a, b);
            const rhi = f(ah, bh);
            if (writes) set(s, rlo, rhi);
            s.ccOp = CcOp.Logic;
            s.ccSize = 8;
            s.ccRes = rlo;
            s.ccResHi = rhi;
          };
        }
      }
    }
    const mask = MASK[size]!;
    switch (kind) {
      case 'add':
      case 'adc': {
        const withCarry = kind === 'adc';
        return (s) => {
          const a = get(s);
          const b = sget(s);
          const cin = withCarry ? getCF(s) : 0;
          const r = (a + b + cin) % TWO32 & mask;
          const res = r >>> 0;
          set(s, res, 0);
          s.ccOp = withCarry ? CcOp.Adc : CcOp.Add;
          s.ccSize = size;
          s.ccA = a;
          s.ccB = b;
          s.ccC = cin;
          s.ccRes = res;
        };
      }
      case 'sub':
      case 'sbb':
      case 'cmp': {
        const withBorrow = kind === 'sbb';
        return (s) => {
          const a = get(s);
          const b = sget(s);
          const bin = withBorrow ? getCF(s) : 0;
          const res = ((a - b - bin) & mask) >>> 0;
          if (writes) set(s, res, 0);
          s.ccOp = withBorrow ? CcOp.Sbb : CcOp.Sub;
          s.ccSize = size;
          s.ccA = a;
          s.ccB = b;
          s.ccC = bin;
          s.ccRes = res;
        };
      }
      default: {
        const op = kind;
        return (s) => {
          const a = get(s);
          const b = sget(s);
          const res = (op === 'and' || op === 'test' ? a & b : op === 'or' ? a | b : a ^ b) >>> 0;
          if (writes) set(s, res, 0);
          s.ccOp = CcOp.Logic;
          s.ccSize = size;
          s.ccRes = res;
        };
      }
    }
  };
}

define(Mnemonic.Add, aluBuilder('add'));
define(Mnemonic.Adc, aluBuilder('adc'));
define(Mnemonic.Sub, aluBuilder('sub'));
define(Mnemonic.Sbb, aluBuilder('sbb'));
define(Mnemonic.And, aluBuilder('and'));
define(Mnemonic.Or, aluBuilder('or'));
define(Mnemonic.Xor, aluBuilder('xor'));
define(Mnemonic.Cmp, aluBuilder('cmp'));
define(Mnemonic.Test, aluBuilder('test'));

/** inc/dec: like add/sub 1 but CF is preserved (kept in ccC). */
function incDec(dec: boolean) {
  return (d: DecodeInfo): Exec => {
    const o = operand(d, 0, undefined, true);
    const { get, set, size } = o;
    if (size === 8) {
      return (s) => {
        const cf = getCF(s);
        const a = get(s);
        const ah = s.hi;
        let lo: number;
        let hi: number;
        if (dec) {
          lo = a - 1;
          hi = lo < 0 ? (ah - 1) >>> 0 : ah;
          lo = lo < 0 ? lo + TWO32 : lo;
        } else {
          lo = a + 1;
          hi = lo >= TWO32 ? (ah + 1) >>> 0 : ah;
          lo = lo >= TWO32 ? 0 : lo;
        }
        set(s, lo, hi);
        s.ccOp = dec ? CcOp.Dec : CcOp.Inc;
        s.ccSize = 8;
        s.ccA = a;
        s.ccAHi = ah;
        s.ccB = 1;
        s.ccBHi = 0;
        s.ccC = cf;
        s.ccRes = lo;
        s.ccResHi = hi;
      };
    }
    const mask = MASK[size]!;
    return (s) => {
      const cf = getCF(s);
      const a = get(s);
      const res = ((dec ? a - 1 : a + 1) & mask) >>> 0;
      set(s, res, 0);
      s.ccOp = dec ? CcOp.Dec : CcOp.Inc;
      s.ccSize = size;
      s.ccA = a;
      s.ccB = 1;
      s.ccC = cf;
      s.ccRes = res;
    };
  };
}
define(Mnemonic.Inc, incDec(false));
define(Mnemonic.Dec, incDec(true));

/** neg = 0 - x (CF = x != 0, as sub gives); not changes no flags. */
define(Mnemonic.Neg, (d) => {
  const { get, set, size } = operand(d, 0, undefined, true);
  if (size === 8) {
    return (s) => {
      const b = get(s);
      const bh = s.hi;
      const lo = -b;
      const borrow = lo < 0 ? 1 : 0;
      const rlo = lo + borrow * TWO32;
      const rhi = (0 - bh - borrow) >>> 0;
      set(s, rlo, rhi);
      s.ccOp = CcOp.Sub;
      s.ccSize = 8;
      s.ccA = 0;
      s.ccAHi = 0;
      s.ccB = b;
      s.ccBHi = bh;
      s.ccRes = rlo;
      s.ccResHi = rhi;
    };
  }
  const mask = MASK[size]!;
  return (s) => {
    const b = get(s);
    const res = ((0 - b) & mask) >>> 0;
    set(s, res, 0);
    s.ccOp = CcOp.Sub;
    s.ccSize = size;
    s.ccA = 0;
    s.ccB = b;
    s.ccRes = res;
  };
});

define(Mnemonic.Not, (d) => {
  const { get, set, size } = operand(d, 0, undefined, true);
  if (size === 8) return (s) => {
    const lo = get(s);
    set(s, ~lo >>> 0, ~s.hi >>> 0);
  };
  const mask = MASK[size]!;
  return (s) => set(s, (~get(s) & mask) >>> 0, 0);
});

define(Mnemonic.Mov, (d) => {
  const dstK = d.ops[0];
  const srcK = d.ops[1];
  if (dstK?.kind === 'reg' && !gprOf(dstK.reg)) throw new NotImplemented('mov to a segment/control register');
  if (srcK?.kind === 'reg' && !gprOf(srcK.reg)) throw new NotImplemented('mov from a segment register');
  const [dst, src] = binary(d);
  const get = src.get;
  const set = dst.set;
  if (dst.kind === 'reg' && src.kind === 'reg' && (dst.size === 8 || dst.size === 4)) {
    // Register to register, straight through the register file.
    const to = dst.reg! * 2;
    const from = src.reg! * 2;
    if (dst.size === 8) {
      return (s) => {
        const g = s.g;
        g[to] = g[from]!;
        g[to + 1] = g[from + 1]!;
      };
    }
    return (s) => {
      const g = s.g;
      g[to] = g[from]!;
      g[to + 1] = 0;
    };
  }
  if (dst.kind === 'reg' && dst.size === 8) {
    const to = dst.reg! * 2;
    return (s) => {
      const lo = get(s);
      s.g[to] = lo;
      s.g[to + 1] = s.hi;
    };
  }
  if (dst.size === 8) return (s) => {
    const lo = get(s);
    set(s, lo, s.hi);
  };
  return (s) => set(s, get(s), 0);
});

/** lea computes the address exactly in 64 bits (it is arithmetic, not a memory access). */
define(Mnemonic.Lea, (d) => {
  const dst = gprOf((d.ops[0] as { reg: number }).reg as never)!;
  const m = d.mem!;
  const set = regSetter(dst);
  if (m.ipRel) {
    const a = m.ipRelAddress;
    const lo = a % TWO32;
    const hi = Math.floor(a / TWO32);
    return (s) => set(s, lo, hi);
  }
  const bl = m.base >= 0 ? m.base * 2 : -1;
  const il = m.index >= 0 ? m.index * 2 : -1;
  const scale = m.scale;
  const disp = m.disp;
  const dispHi = disp < 0 ? -1 : 0;
  const addr32 = m.addr32;
  return (s) => {
    let lo = disp < 0 ? disp + TWO32 : disp;
    let hi = dispHi;
    if (bl >= 0) {
      lo += s.g[bl]! >>> 0;
      hi += s.g[bl + 1]! >>> 0;
    }
    if (il >= 0) {
      lo += (s.g[il]! >>> 0) * scale;
      hi += (s.g[il + 1]! >>> 0) * scale;
    }
    const carry = Math.floor(lo / TWO32);
    lo -= carry * TWO32;
    hi = addr32 ? 0 : (hi + carry) >>> 0;
    set(s, lo, hi);
  };
});

// --- stack

const RSP = Gpr.rsp * 2;

export function push64(s: CpuState, lo: number, hi: number): void {
  let sp = (s.g[RSP]! >>> 0) - 8;
  let sph = s.g[RSP + 1]! >>> 0;
  if (sp < 0) {
    sp += TWO32;
    sph = (sph - 1) >>> 0;
  }
  s.mem.write64(sph * TWO32 + sp, lo, hi);
  s.g[RSP] = sp;
  s.g[RSP + 1] = sph;
}

/** Pops 8 bytes: returns the low half, leaves the high half in s.hi. */
export function pop64(s: CpuState): number {
  const sp = s.g[RSP]! >>> 0;
  const sph = s.g[RSP + 1]! >>> 0;
  const lo = s.mem.read64(sph * TWO32 + sp);
  s.hi = s.mem.hi;
  const nsp = sp + 8;
  if (nsp >= TWO32) {
    s.g[RSP] = nsp - TWO32;
    s.g[RSP + 1] = sph + 1;
  } else {
    s.g[RSP] = nsp;
  }
  return lo;
}

define(Mnemonic.Push, (d) => {
  const src = operand(d, 0, d.ops[0]?.kind === 'imm' ? 8 : undefined);
  if (src.size !== 8) throw new NotImplemented(`push of ${src.size} bytes`);
  const get = src.get;
  return (s) => {
    const lo = get(s);
    push64(s, lo, s.hi);
  };
});

define(Mnemonic.Pop, (d) => {
  const dst = operand(d, 0);
  if (dst.size !== 8) throw new NotImplemented(`pop of ${dst.size} bytes`);
  const set = dst.set;
  if (dst.kind !== 'mem') {
    return (s) => {
      const lo = pop64(s);
      set(s, lo, s.hi);
    };
  }
  // pop [m]: the address uses the incremented rsp, and a faulting store leaves rsp unchanged.
  return (s) => {
    const sp = s.g[RSP]!;
    const sph = s.g[RSP + 1]!;
    const lo = pop64(s);
    try {
      set(s, lo, s.hi);
    } catch (e) {
      s.g[RSP] = sp;
      s.g[RSP + 1] = sph;
      throw e;
    }
  };
});

// --- control flow

function branchTarget(d: DecodeInfo): number {
  const k = d.ops[0];
  if (k?.kind !== 'branch') throw new NotImplemented('far or unusual branch');
  return k.target;
}

/** An indirect target operand: 64-bit register or memory. */
function indirectTarget(d: DecodeInfo): (s: CpuState) => number {
  const o = operand(d, 0);
  if (o.size !== 8) throw new NotImplemented('indirect branch through a non-64-bit operand');
  const get = o.get;
  return (s) => {
    const lo = get(s);
    return s.hi * TWO32 + lo;
  };
}

define(Mnemonic.Jmp, (d) => {
  if (d.ops[0]?.kind === 'branch') {
    const t = branchTarget(d);
    return (s) => {
      s.rip = t;
    };
  }
  const target = indirectTarget(d);
  return (s) => {
    s.rip = target(s);
  };
});

const JCC = [
  Mnemonic.Jo, Mnemonic.Jno, Mnemonic.Jb, Mnemonic.Jae, Mnemonic.Je, Mnemonic.Jne, Mnemonic.Jbe, Mnemonic.Ja,
  Mnemonic.Js, Mnemonic.Jns, Mnemonic.Jp, Mnemonic.Jnp, Mnemonic.Jl, Mnemonic.Jge, Mnemonic.Jle, Mnemonic.Jg,
];
define(JCC, (d) => {
  const t = branchTarget(d);
  const next = d.next;
  const cc = d.cc;
  return (s) => {
    s.rip = cond(s, cc) ? t : next;
  };
});

define(Mnemonic.Call, (d) => {
  const nlo = d.next % TWO32;
  const nhi = Math.floor(d.next / TWO32);
  if (d.ops[0]?.kind === 'branch') {
    const t = branchTarget(d);
    return (s) => {
      push64(s, nlo, nhi);
      s.rip = t;
    };
  }
  const target = indirectTarget(d);
  return (s) => {
    const t = target(s); // read the target before the push moves rsp
    push64(s, nlo, nhi);
    s.rip = t;
  };
});

define(Mnemonic.Ret, (d) => {
  const k = d.ops[0];
  const extra = k?.kind === 'imm' ? Number(k.value) : 0;
  return (s) => {
    const lo = pop64(s);
    const t = s.hi * TWO32 + lo;
    if (extra) {
      const sp = (s.g[RSP]! >>> 0) + extra;
      s.g[RSP] = sp % TWO32;
      if (sp >= TWO32) s.g[RSP + 1] = s.g[RSP + 1]! + 1;
    }
    s.rip = t;
  };
});

// --- system

const RCX = regSetter({ index: Gpr.rcx, size: 8, highByte: false });
const R11 = regSetter({ index: Gpr.r11, size: 8, highByte: false });

/** syscall: rcx = return rip, r11 = rflags; the CPU loop serves the call and returns with sysret. */
define(Mnemonic.Syscall, (d) => {
  const next = d.next;
  const nlo = next % TWO32;
  const nhi = Math.floor(next / TWO32);
  return (s) => {
    RCX(s, nlo, nhi);
    R11(s, readFlags(s), 0);
    s.rip = next;
    s.event = Event.Syscall;
  };
});

define([Mnemonic.Nop, Mnemonic.Endbr64, Mnemonic.Endbr32, Mnemonic.Pause], () => () => {});

define(Mnemonic.Ud2, () => () => {
  throw new GuestException(VEC_UD, 0, 0);
});

/** Privileged instructions at CPL3 raise #GP, which Linux turns into SIGSEGV. */
define([Mnemonic.Hlt, Mnemonic.Cli, Mnemonic.Sti, Mnemonic.In, Mnemonic.Out, Mnemonic.Insb, Mnemonic.Outsb], () => () => {
  throw new GuestException(VEC_GP, 0, 0);
});

export { regGetter };
