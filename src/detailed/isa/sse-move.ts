/**
 * SSE/SSE2 data movement: movd/movq, the 128-bit moves (aligned forms raise #GP on a misaligned
 * address), movss/movsd, the half moves (movhps/movlps/movhpd/movlpd/movhlps/movlhps), the
 * non-temporal stores (plain stores here), movmsk*, pmovmskb, maskmovdqu, lddqu, movntdqa.
 */
import { Mnemonic } from 'iced-x86';
import { Gpr } from '../../guest/threadContext.js';
import type { DecodeInfo } from '../decodeInfo.js';
import { gprOf, operand, regSetter } from '../operands.js';
import type { CpuState } from '../state.js';
import { define, defineForms, NotImplemented, type Exec } from './registry.js';
import { isXmm, loadSrc, memEa, rejectMmx, S32, S8, xmmReg } from './sse-common.js';

function copyToXmm(s: CpuState, x: number): void {
  const o = x * 4;
  const v = s.xmm32;
  v[o] = S32[0]!;
  v[o + 1] = S32[1]!;
  v[o + 2] = S32[2]!;
  v[o + 3] = S32[3]!;
}

function xmmToScratch(s: CpuState, x: number): void {
  const o = x * 4;
  const v = s.xmm32;
  S32[0] = v[o]!;
  S32[1] = v[o + 1]!;
  S32[2] = v[o + 2]!;
  S32[3] = v[o + 3]!;
}

/** A full 128-bit move: xmm ← xmm/m128 or m128 ← xmm. */
function move128(aligned: boolean, storeOnly = false, loadOnly = false) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    if (d.ops[0]?.kind === 'mem') {
      if (loadOnly) throw new NotImplemented('store form');
      const src = xmmReg(d, 1);
      const ea = memEa(d, aligned);
      return (s) => {
        const a = ea(s);
        xmmToScratch(s, src);
        s.mem.writeBytes(a, S8, 16);
      };
    }
    if (storeOnly) throw new NotImplemented('only the store form exists');
    const dst = xmmReg(d, 0);
    if (d.ops[1]?.kind !== 'mem') {
      const src = xmmReg(d, 1) * 4;
      const o = dst * 4;
      return (s) => {
        const v = s.xmm32;
        v[o] = v[src]!;
        v[o + 1] = v[src + 1]!;
        v[o + 2] = v[src + 2]!;
        v[o + 3] = v[src + 3]!;
      };
    }
    const load = loadSrc(d, 1, 16, !aligned);
    return (s) => {
      load(s);
      copyToXmm(s, dst);
    };
  };
}

define([Mnemonic.Movdqa, Mnemonic.Movaps, Mnemonic.Movapd], move128(true));
define([Mnemonic.Movdqu, Mnemonic.Movups, Mnemonic.Movupd], move128(false));
define([Mnemonic.Movntdq, Mnemonic.Movntps, Mnemonic.Movntpd], move128(true, true));
define(Mnemonic.Lddqu, move128(false, false, true));
define(Mnemonic.Movntdqa, move128(true, false, true));

/**
 * movd/movq: to an XMM register the value is zero-extended to 128 bits; from one, the low 32/64
 * bits go to a GPR or memory. `movq xmm, xmm/m64` and `movq xmm/m64, xmm` move the low quadword.
 */
define([Mnemonic.Movd, Mnemonic.Movq], (d) => {
  rejectMmx(d);
  if (isXmm(d, 0)) {
    const dst = xmmReg(d, 0) * 4;
    if (isXmm(d, 1)) {
      const src = xmmReg(d, 1) * 4;
      return (s) => {
        const v = s.xmm32;
        v[dst] = v[src]!;
        v[dst + 1] = v[src + 1]!;
        v[dst + 2] = 0;
        v[dst + 3] = 0;
      };
    }
    const src = operand(d, 1);
    const get = src.get;
    const wide = src.size === 8;
    return (s) => {
      const lo = get(s);
      const v = s.xmm32;
      v[dst] = lo;
      v[dst + 1] = wide ? s.hi : 0;
      v[dst + 2] = 0;
      v[dst + 3] = 0;
    };
  }
  const src = xmmReg(d, 1) * 4;
  const dst = operand(d, 0, d.mnemonic === Mnemonic.Movq ? 8 : 4);
  const set = dst.set;
  if (dst.size === 8) return (s) => set(s, s.xmmU32[src]!, s.xmmU32[src + 1]!);
  return (s) => set(s, s.xmmU32[src]!, 0);
});

/**
 * movss/movsd: register form merges the low element; the load zeroes the rest of the register;
 * the store writes the low element.
 */
function moveScalar(words: 1 | 2) {
  return (d: DecodeInfo): Exec => {
    if (!isXmm(d, 0) && !isXmm(d, 1)) throw new NotImplemented('not the SSE form');
    rejectMmx(d);
    if (d.ops[0]?.kind === 'mem') {
      const src = xmmReg(d, 1) * 4;
      const ea = memEa(d, false);
      if (words === 1) return (s) => s.mem.write32(ea(s), s.xmmU32[src]!);
      return (s) => s.mem.write64(ea(s), s.xmmU32[src]!, s.xmmU32[src + 1]!);
    }
    const dst = xmmReg(d, 0) * 4;
    if (d.ops[1]?.kind === 'mem') {
      const ea = memEa(d, false);
      if (words === 1) {
        return (s) => {
          const lo = s.mem.read32(ea(s));
          const v = s.xmm32;
          v[dst] = lo;
          v[dst + 1] = 0;
          v[dst + 2] = 0;
          v[dst + 3] = 0;
        };
      }
      return (s) => {
        const m = s.mem;
        const lo = m.read64(ea(s));
        const v = s.xmm32;
        v[dst] = lo;
        v[dst + 1] = m.hi;
        v[dst + 2] = 0;
        v[dst + 3] = 0;
      };
    }
    const src = xmmReg(d, 1) * 4;
    if (words === 1) return (s) => {
      s.xmm32[dst] = s.xmm32[src]!;
    };
    return (s) => {
      const v = s.xmm32;
      v[dst] = v[src]!;
      v[dst + 1] = v[src + 1]!;
    };
  };
}
define(Mnemonic.Movss, moveScalar(1));
// `movsd` is also the string move: register only the SSE2 form.
defineForms(Mnemonic.Movsd, moveScalar(2));

/** movhps/movhpd/movlps/movlpd: one quadword between memory and the high/low half of a register. */
function moveHalf(high: boolean) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const half = high ? 2 : 0;
    if (d.ops[0]?.kind === 'mem') {
      const src = xmmReg(d, 1) * 4 + half;
      const ea = memEa(d, false);
      return (s) => s.mem.write64(ea(s), s.xmmU32[src]!, s.xmmU32[src + 1]!);
    }
    if (d.ops[1]?.kind !== 'mem') {
      throw new NotImplemented('register form'); // iced names those movhlps/movlhps
    }
    const dst = xmmReg(d, 0) * 4 + half;
    const ea = memEa(d, false);
    return (s) => {
      const m = s.mem;
      const lo = m.read64(ea(s));
      s.xmmU32[dst] = lo;
      s.xmmU32[dst + 1] = m.hi;
    };
  };
}
define([Mnemonic.Movhps, Mnemonic.Movhpd], moveHalf(true));
define([Mnemonic.Movlps, Mnemonic.Movlpd], moveHalf(false));

/** movhlps: dst.low = src.high; movlhps: dst.high = src.low. */
define(Mnemonic.Movhlps, (d) => {
  const dst = xmmReg(d, 0) * 4;
  const src = xmmReg(d, 1) * 4;
  return (s) => {
    const v = s.xmm32;
    const a = v[src + 2]!;
    const b = v[src + 3]!;
    v[dst] = a;
    v[dst + 1] = b;
  };
});
define(Mnemonic.Movlhps, (d) => {
  const dst = xmmReg(d, 0) * 4;
  const src = xmmReg(d, 1) * 4;
  return (s) => {
    const v = s.xmm32;
    const a = v[src]!;
    const b = v[src + 1]!;
    v[dst + 2] = a;
    v[dst + 3] = b;
  };
});

define(Mnemonic.Movnti, (d) => {
  const dst = operand(d, 0);
  const src = operand(d, 1);
  const get = src.get;
  const set = dst.set;
  if (dst.size === 8) return (s) => {
    const lo = get(s);
    set(s, lo, s.hi);
  };
  return (s) => set(s, get(s), 0);
});

/** A GPR destination written as a 32-bit value (zero-extended: the 64-bit forms are the same). */
function gprDest(d: DecodeInfo) {
  const k = d.ops[0];
  const ref = k?.kind === 'reg' ? gprOf(k.reg) : undefined;
  if (!ref) throw new NotImplemented('destination is not a general-purpose register');
  return regSetter({ index: ref.index, size: 4, highByte: false });
}

define(Mnemonic.Pmovmskb, (d) => {
  rejectMmx(d);
  const set = gprDest(d);
  const src = xmmReg(d, 1) * 16;
  return (s) => {
    const b = s.xmm8;
    let m = 0;
    for (let i = 15; i >= 0; i--) m = (m << 1) | (b[src + i]! >>> 7);
    set(s, m, 0);
  };
});

define(Mnemonic.Movmskps, (d) => {
  const set = gprDest(d);
  const src = xmmReg(d, 1) * 4;
  return (s) => {
    const v = s.xmmU32;
    set(s, (v[src]! >>> 31) | ((v[src + 1]! >>> 31) << 1) | ((v[src + 2]! >>> 31) << 2) | ((v[src + 3]! >>> 31) << 3), 0);
  };
});

define(Mnemonic.Movmskpd, (d) => {
  const set = gprDest(d);
  const src = xmmReg(d, 1) * 4;
  return (s) => {
    const v = s.xmmU32;
    set(s, (v[src + 1]! >>> 31) | ((v[src + 3]! >>> 31) << 1), 0);
  };
});

/**
 * maskmovdqu xmm1, xmm2: stores the bytes of xmm1 whose mask byte (xmm2) has its top bit set to
 * [rdi] (edi with a 67 prefix). Bytes are stored in order; a fault part-way leaves the earlier
 * ones written (the SDM leaves this implementation-specific).
 */
define(Mnemonic.Maskmovdqu, (d) => {
  // iced lists the implicit [rdi] operand first.
  const regs = d.ops.map((_, i) => i).filter((i) => isXmm(d, i));
  if (regs.length !== 2) throw new NotImplemented('maskmovdqu without two XMM operands');
  const data = xmmReg(d, regs[0]!) * 16;
  const mask = xmmReg(d, regs[1]!) * 16;
  const addr32 = d.bytes.includes(0x67) && d.bytes.indexOf(0x67) < d.bytes.indexOf(0x0f);
  const rdi = Gpr.rdi * 2;
  return (s) => {
    const lo = s.g[rdi]! >>> 0;
    const base = addr32 ? lo : (s.g[rdi + 1]! >>> 0) * 4294967296 + lo;
    const b = s.xmm8;
    let any = false;
    for (let i = 0; i < 16; i++) if (b[mask + i]! & 0x80) any = true;
    if (!any) return;
    for (let i = 0; i < 16; i++) {
      if (b[mask + i]! & 0x80) s.mem.write8(base + i, b[data + i]!);
    }
  };
});


/** SSE3 duplicating moves: movddup (low quadword twice; m64), movshdup/movsldup (odd/even dwords). */
function dupMove(pick: readonly [number, number, number, number], srcBytes: number) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0) * 4;
    const load = loadSrc(d, 1, srcBytes);
    return (s) => {
      load(s);
      const v = s.xmm32;
      v[dst] = S32[pick[0]]!;
      v[dst + 1] = S32[pick[1]]!;
      v[dst + 2] = S32[pick[2]]!;
      v[dst + 3] = S32[pick[3]]!;
    };
  };
}
define(Mnemonic.Movddup, dupMove([0, 1, 0, 1], 8));
define(Mnemonic.Movshdup, dupMove([1, 1, 3, 3], 16));
define(Mnemonic.Movsldup, dupMove([0, 0, 2, 2], 16));
