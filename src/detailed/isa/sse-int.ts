/**
 * SSE2 integer SIMD (and the SSSE3/SSE4.1/SSE4.2 integer instructions of x86-64-v2 code):
 * logic (also the andps/orps/xorps family: bitwise, no FP exceptions), add/sub with wrap and
 * saturation, compares, min/max, averages, multiplies, shifts, shuffles, unpacks, packs,
 * palignr, pextr/pinsr, ptest, pmovzx/sx, blends.
 *
 * Every two-operand instruction runs on the scratch block: the source (register or memory,
 * 16-byte aligned unless the instruction allows otherwise) in slot 0, a copy of the destination
 * in slot 1, the result built in slot 2 and copied back. Lane offsets in each view:
 *   bytes   B=i      A=16+i   R=32+i
 *   words   B=i      A=8+i    R=16+i
 *   dwords  B=i      A=4+i    R=8+i
 */
import { Mnemonic } from 'iced-x86';
import type { DecodeInfo } from '../decodeInfo.js';
import { setEager } from '../flags.js';
import { gprOf, operand, regSetter } from '../operands.js';
import { CF, ZF, type CpuState } from '../state.js';
import { define, NotImplemented, type Exec } from './registry.js';
import { imm8, loadSrc, rejectMmx, S16, S32, S8, SI16, SI8, SU32, xmmReg } from './sse-common.js';

type Op = () => void;

function copyIn(s: CpuState, x: number): void {
  const o = x * 4;
  const v = s.xmm32;
  S32[4] = v[o]!;
  S32[5] = v[o + 1]!;
  S32[6] = v[o + 2]!;
  S32[7] = v[o + 3]!;
}

function copyOut(s: CpuState, x: number): void {
  const o = x * 4;
  const v = s.xmm32;
  v[o] = S32[8]!;
  v[o + 1] = S32[9]!;
  v[o + 2] = S32[10]!;
  v[o + 3] = S32[11]!;
}

/** dst = op(dst, src) over the scratch slots; `srcBytes` is the memory operand's size. */
function binary(op: Op, srcBytes = 16) {
  return (d: DecodeInfo): Exec => binaryExec(d, op, srcBytes);
}

/** The same with an 8-bit immediate (the last operand) specialising the operation. */
function withImm(op: (imm: number) => Op, srcBytes = 16) {
  return (d: DecodeInfo): Exec => binaryExec(d, op(imm8(d, d.ops.length - 1)), srcBytes);
}

function binaryExec(d: DecodeInfo, f: Op, srcBytes: number): Exec {
  rejectMmx(d);
  const dst = xmmReg(d, 0);
  const load = loadSrc(d, 1, srcBytes);
  return (s) => {
    load(s);
    copyIn(s, dst);
    f();
    copyOut(s, dst);
  };
}

// --- logic (also the FP bitwise forms)

const pand: Op = () => {
  for (let i = 0; i < 4; i++) S32[8 + i] = S32[4 + i]! & S32[i]!;
};
const pandn: Op = () => {
  for (let i = 0; i < 4; i++) S32[8 + i] = ~S32[4 + i]! & S32[i]!;
};
const por: Op = () => {
  for (let i = 0; i < 4; i++) S32[8 + i] = S32[4 + i]! | S32[i]!;
};
const pxor: Op = () => {
  for (let i = 0; i < 4; i++) S32[8 + i] = S32[4 + i]! ^ S32[i]!;
};
define([Mnemonic.Pand, Mnemonic.Andps, Mnemonic.Andpd], binary(pand));
define([Mnemonic.Pandn, Mnemonic.Andnps, Mnemonic.Andnpd], binary(pandn));
define([Mnemonic.Por, Mnemonic.Orps, Mnemonic.Orpd], binary(por));

/** pxor/xorps/xorpd of a register with itself: the zeroing idiom, no source read needed. */
define([Mnemonic.Pxor, Mnemonic.Xorps, Mnemonic.Xorpd], (d) => {
  rejectMmx(d);
  const k0 = d.ops[0];
  const k1 = d.ops[1];
  if (k0?.kind === 'reg' && k1?.kind === 'reg' && k0.reg === k1.reg) {
    const o = xmmReg(d, 0) * 4;
    return (s) => {
      const v = s.xmm32;
      v[o] = 0;
      v[o + 1] = 0;
      v[o + 2] = 0;
      v[o + 3] = 0;
    };
  }
  return binary(pxor)(d);
});

// --- add/sub

function lanes8(f: (a: number, b: number) => number): Op {
  return () => {
    for (let i = 0; i < 16; i++) S8[32 + i] = f(S8[16 + i]!, S8[i]!);
  };
}
function lanes8s(f: (a: number, b: number) => number): Op {
  return () => {
    for (let i = 0; i < 16; i++) SI8[32 + i] = f(SI8[16 + i]!, SI8[i]!);
  };
}
function lanes16(f: (a: number, b: number) => number): Op {
  return () => {
    for (let i = 0; i < 8; i++) S16[16 + i] = f(S16[8 + i]!, S16[i]!);
  };
}
function lanes16s(f: (a: number, b: number) => number): Op {
  return () => {
    for (let i = 0; i < 8; i++) SI16[16 + i] = f(SI16[8 + i]!, SI16[i]!);
  };
}
function lanes32(f: (a: number, b: number) => number): Op {
  return () => {
    for (let i = 0; i < 4; i++) S32[8 + i] = f(S32[4 + i]!, S32[i]!);
  };
}
function lanes32u(f: (a: number, b: number) => number): Op {
  return () => {
    for (let i = 0; i < 4; i++) SU32[8 + i] = f(SU32[4 + i]!, SU32[i]!);
  };
}

const clampS8 = (v: number) => (v > 127 ? 127 : v < -128 ? -128 : v);
const clampU8 = (v: number) => (v > 255 ? 255 : v < 0 ? 0 : v);
const clampS16 = (v: number) => (v > 32767 ? 32767 : v < -32768 ? -32768 : v);
const clampU16 = (v: number) => (v > 65535 ? 65535 : v < 0 ? 0 : v);

/** 64-bit lanes on uint32 halves. */
function addq(sub: boolean): Op {
  return () => {
    for (let q = 0; q < 2; q++) {
      const alo = SU32[4 + 2 * q]!;
      const ahi = SU32[5 + 2 * q]!;
      const blo = SU32[2 * q]!;
      const bhi = SU32[2 * q + 1]!;
      if (sub) {
        const lo = alo - blo;
        SU32[8 + 2 * q] = lo;
        SU32[9 + 2 * q] = ahi - bhi - (lo < 0 ? 1 : 0);
      } else {
        const lo = alo + blo;
        SU32[8 + 2 * q] = lo;
        SU32[9 + 2 * q] = ahi + bhi + (lo > 0xffffffff ? 1 : 0);
      }
    }
  };
}

define(Mnemonic.Paddb, binary(lanes8((a, b) => a + b)));
define(Mnemonic.Paddw, binary(lanes16((a, b) => a + b)));
define(Mnemonic.Paddd, binary(lanes32((a, b) => (a + b) | 0)));
define(Mnemonic.Paddq, binary(addq(false)));
define(Mnemonic.Psubb, binary(lanes8((a, b) => a - b)));
define(Mnemonic.Psubw, binary(lanes16((a, b) => a - b)));
define(Mnemonic.Psubd, binary(lanes32((a, b) => (a - b) | 0)));
define(Mnemonic.Psubq, binary(addq(true)));
define(Mnemonic.Paddsb, binary(lanes8s((a, b) => clampS8(a + b))));
define(Mnemonic.Paddsw, binary(lanes16s((a, b) => clampS16(a + b))));
define(Mnemonic.Paddusb, binary(lanes8((a, b) => clampU8(a + b))));
define(Mnemonic.Paddusw, binary(lanes16((a, b) => clampU16(a + b))));
define(Mnemonic.Psubsb, binary(lanes8s((a, b) => clampS8(a - b))));
define(Mnemonic.Psubsw, binary(lanes16s((a, b) => clampS16(a - b))));
define(Mnemonic.Psubusb, binary(lanes8((a, b) => clampU8(a - b))));
define(Mnemonic.Psubusw, binary(lanes16((a, b) => clampU16(a - b))));

// --- compares

define(Mnemonic.Pcmpeqb, binary(lanes8((a, b) => (a === b ? 0xff : 0))));
define(Mnemonic.Pcmpeqw, binary(lanes16((a, b) => (a === b ? 0xffff : 0))));
define(Mnemonic.Pcmpeqd, binary(lanes32((a, b) => (a === b ? -1 : 0))));
define(Mnemonic.Pcmpgtb, binary(lanes8s((a, b) => (a > b ? -1 : 0))));
define(Mnemonic.Pcmpgtw, binary(lanes16s((a, b) => (a > b ? -1 : 0))));
define(Mnemonic.Pcmpgtd, binary(lanes32((a, b) => (a > b ? -1 : 0))));
define(
  Mnemonic.Pcmpeqq,
  binary(() => {
    for (let q = 0; q < 2; q++) {
      const eq = S32[4 + 2 * q] === S32[2 * q] && S32[5 + 2 * q] === S32[2 * q + 1];
      S32[8 + 2 * q] = S32[9 + 2 * q] = eq ? -1 : 0;
    }
  }),
);
define(
  Mnemonic.Pcmpgtq,
  binary(() => {
    for (let q = 0; q < 2; q++) {
      const ah = S32[5 + 2 * q]!;
      const bh = S32[2 * q + 1]!;
      const gt = ah > bh || (ah === bh && SU32[4 + 2 * q]! > SU32[2 * q]!);
      S32[8 + 2 * q] = S32[9 + 2 * q] = gt ? -1 : 0;
    }
  }),
);

// --- min/max, averages, abs, sign

const min = (a: number, b: number) => (a < b ? a : b);
const max = (a: number, b: number) => (a > b ? a : b);
define(Mnemonic.Pminub, binary(lanes8(min)));
define(Mnemonic.Pmaxub, binary(lanes8(max)));
define(Mnemonic.Pminsw, binary(lanes16s(min)));
define(Mnemonic.Pmaxsw, binary(lanes16s(max)));
define(Mnemonic.Pminsb, binary(lanes8s(min)));
define(Mnemonic.Pmaxsb, binary(lanes8s(max)));
define(Mnemonic.Pminuw, binary(lanes16(min)));
define(Mnemonic.Pmaxuw, binary(lanes16(max)));
define(Mnemonic.Pminsd, binary(lanes32(min)));
define(Mnemonic.Pmaxsd, binary(lanes32(max)));
define(Mnemonic.Pminud, binary(lanes32u(min)));
define(Mnemonic.Pmaxud, binary(lanes32u(max)));
define(Mnemonic.Pavgb, binary(lanes8((a, b) => (a + b + 1) >> 1)));
define(Mnemonic.Pavgw, binary(lanes16((a, b) => (a + b + 1) >> 1)));
define(Mnemonic.Pabsb, binary(lanes8s((_a, b) => Math.abs(b))));
define(Mnemonic.Pabsw, binary(lanes16s((_a, b) => Math.abs(b))));
define(Mnemonic.Pabsd, binary(lanes32((_a, b) => Math.abs(b) | 0)));
const sign = (a: number, b: number) => (b < 0 ? -a : b === 0 ? 0 : a);
define(Mnemonic.Psignb, binary(lanes8s(sign)));
define(Mnemonic.Psignw, binary(lanes16s(sign)));
define(Mnemonic.Psignd, binary(lanes32((a, b) => sign(a, b) | 0)));

define(
  Mnemonic.Psadbw,
  binary(() => {
    for (let q = 0; q < 2; q++) {
      let sum = 0;
      for (let i = 0; i < 8; i++) sum += Math.abs(S8[16 + 8 * q + i]! - S8[8 * q + i]!);
      SU32[8 + 2 * q] = sum;
      SU32[9 + 2 * q] = 0;
    }
  }),
);

// --- multiplies

define(Mnemonic.Pmullw, binary(lanes16((a, b) => Math.imul(a, b))));
define(Mnemonic.Pmulhw, binary(lanes16s((a, b) => (a * b) >> 16)));
define(Mnemonic.Pmulhuw, binary(lanes16((a, b) => (a * b) >>> 16)));
define(Mnemonic.Pmulld, binary(lanes32((a, b) => Math.imul(a, b))));
define(Mnemonic.Pmulhrsw, binary(lanes16s((a, b) => (((a * b) >> 14) + 1) >> 1)));

/** 32×32→64 of dword lanes 0 and 2 (unsigned or signed). */
function mul64(signed: boolean): Op {
  return () => {
    for (let q = 0; q < 2; q++) {
      const a = signed ? S32[4 + 2 * q]! : SU32[4 + 2 * q]!;
      const b = signed ? S32[2 * q]! : SU32[2 * q]!;
      const p = BigInt.asUintN(64, BigInt(a) * BigInt(b));
      SU32[8 + 2 * q] = Number(p & 0xffffffffn);
      SU32[9 + 2 * q] = Number(p >> 32n);
    }
  };
}
define(Mnemonic.Pmuludq, binary(mul64(false)));
define(Mnemonic.Pmuldq, binary(mul64(true)));

define(
  Mnemonic.Pmaddwd,
  binary(() => {
    for (let i = 0; i < 4; i++) {
      S32[8 + i] = (SI16[8 + 2 * i]! * SI16[2 * i]! + SI16[9 + 2 * i]! * SI16[2 * i + 1]!) | 0;
    }
  }),
);
define(
  Mnemonic.Pmaddubsw,
  binary(() => {
    for (let i = 0; i < 8; i++) {
      SI16[16 + i] = clampS16(S8[16 + 2 * i]! * SI8[2 * i]! + S8[17 + 2 * i]! * SI8[2 * i + 1]!);
    }
  }),
);

// --- horizontal add/sub (SSSE3): dst pairs then src pairs

function horizontal16(f: (a: number, b: number) => number): Op {
  return () => {
    for (let i = 0; i < 4; i++) SI16[16 + i] = f(SI16[8 + 2 * i]!, SI16[9 + 2 * i]!);
    for (let i = 0; i < 4; i++) SI16[20 + i] = f(SI16[2 * i]!, SI16[2 * i + 1]!);
  };
}
define(Mnemonic.Phaddw, binary(horizontal16((a, b) => a + b)));
define(Mnemonic.Phsubw, binary(horizontal16((a, b) => a - b)));
define(Mnemonic.Phaddsw, binary(horizontal16((a, b) => clampS16(a + b))));
define(Mnemonic.Phsubsw, binary(horizontal16((a, b) => clampS16(a - b))));
function horizontal32(sub: boolean): Op {
  return () => {
    S32[8] = sub ? S32[4]! - S32[5]! : S32[4]! + S32[5]!;
    S32[9] = sub ? S32[6]! - S32[7]! : S32[6]! + S32[7]!;
    S32[10] = sub ? S32[0]! - S32[1]! : S32[0]! + S32[1]!;
    S32[11] = sub ? S32[2]! - S32[3]! : S32[2]! + S32[3]!;
  };
}
define(Mnemonic.Phaddd, binary(horizontal32(false)));
define(Mnemonic.Phsubd, binary(horizontal32(true)));

// --- shifts

/** Shift by the low quadword of an XMM/m128 source, or by an immediate. */
function shift(width: 16 | 32 | 64, kind: 'l' | 'r' | 'a') {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0);
    let count: (s: CpuState) => number;
    if (d.ops[1]?.kind === 'imm') {
      const c = imm8(d, 1);
      count = () => c;
    } else {
      const load = loadSrc(d, 1, 16);
      count = (s) => {
        load(s);
        return SU32[1] !== 0 || SU32[0]! > 255 ? 255 : SU32[0]!;
      };
    }
    return (s) => {
      const c = count(s);
      copyIn(s, dst);
      if (width === 16) {
        for (let i = 0; i < 8; i++) {
          const a = S16[8 + i]!;
          if (kind === 'a') SI16[16 + i] = SI16[8 + i]! >> (c > 15 ? 15 : c);
          else S16[16 + i] = c > 15 ? 0 : kind === 'l' ? a << c : a >>> c;
        }
      } else if (width === 32) {
        for (let i = 0; i < 4; i++) {
          const a = S32[4 + i]!;
          if (kind === 'a') S32[8 + i] = a >> (c > 31 ? 31 : c);
          else S32[8 + i] = c > 31 ? 0 : kind === 'l' ? a << c : a >>> c;
        }
      } else {
        for (let q = 0; q < 2; q++) {
          const lo = SU32[4 + 2 * q]!;
          const hi = SU32[5 + 2 * q]!;
          let rlo: number;
          let rhi: number;
          if (c > 63) {
            rlo = rhi = 0;
          } else if (c === 0) {
            rlo = lo;
            rhi = hi;
          } else if (kind === 'l') {
            if (c >= 32) {
              rhi = lo << (c - 32);
              rlo = 0;
            } else {
              rhi = (hi << c) | (lo >>> (32 - c));
              rlo = lo << c;
            }
          } else if (c >= 32) {
            rlo = hi >>> (c - 32);
            rhi = 0;
          } else {
            rlo = (lo >>> c) | (hi << (32 - c));
            rhi = hi >>> c;
          }
          SU32[8 + 2 * q] = rlo;
          SU32[9 + 2 * q] = rhi;
        }
      }
      copyOut(s, dst);
    };
  };
}
define(Mnemonic.Psllw, shift(16, 'l'));
define(Mnemonic.Pslld, shift(32, 'l'));
define(Mnemonic.Psllq, shift(64, 'l'));
define(Mnemonic.Psrlw, shift(16, 'r'));
define(Mnemonic.Psrld, shift(32, 'r'));
define(Mnemonic.Psrlq, shift(64, 'r'));
define(Mnemonic.Psraw, shift(16, 'a'));
define(Mnemonic.Psrad, shift(32, 'a'));

/** pslldq/psrldq: whole-register byte shifts by an immediate (> 15: zero). */
function byteShift(left: boolean) {
  return (d: DecodeInfo): Exec => {
    const dst = xmmReg(d, 0);
    const c = imm8(d, 1);
    return (s) => {
      copyIn(s, dst);
      for (let i = 0; i < 16; i++) {
        const j = left ? i - c : i + c;
        S8[32 + i] = j >= 0 && j < 16 ? S8[16 + j]! : 0;
      }
      copyOut(s, dst);
    };
  };
}
define(Mnemonic.Pslldq, byteShift(true));
define(Mnemonic.Psrldq, byteShift(false));

/** palignr: (dst:src) >> imm bytes, low 16 bytes. */
define(
  Mnemonic.Palignr,
  withImm((c) => () => {
    for (let i = 0; i < 16; i++) {
      const j = i + c;
      S8[32 + i] = j < 32 ? S8[j]! : 0; // slot 1 (dst) follows slot 0 (src)
    }
  }),
);

// --- shuffles

define(
  Mnemonic.Pshufd,
  withImm((imm) => () => {
    for (let i = 0; i < 4; i++) S32[8 + i] = S32[(imm >> (2 * i)) & 3]!;
  }),
);
define(
  Mnemonic.Pshuflw,
  withImm((imm) => () => {
    for (let i = 0; i < 4; i++) S16[16 + i] = S16[(imm >> (2 * i)) & 3]!;
    S32[10] = S32[2]!;
    S32[11] = S32[3]!;
  }),
);
define(
  Mnemonic.Pshufhw,
  withImm((imm) => () => {
    S32[8] = S32[0]!;
    S32[9] = S32[1]!;
    for (let i = 0; i < 4; i++) S16[20 + i] = S16[4 + ((imm >> (2 * i)) & 3)]!;
  }),
);
define(
  Mnemonic.Pshufb,
  binary(() => {
    for (let i = 0; i < 16; i++) {
      const m = S8[i]!;
      S8[32 + i] = m & 0x80 ? 0 : S8[16 + (m & 15)]!;
    }
  }),
);

// --- unpacks: interleave the low (or high) halves of dst and src

function unpack(bytes: 1 | 2 | 4 | 8, high: boolean): Op {
  const half = high ? 8 : 0;
  return () => {
    for (let i = 0; i < 8 / bytes; i++) {
      for (let k = 0; k < bytes; k++) {
        S8[32 + 2 * i * bytes + k] = S8[16 + half + i * bytes + k]!;
        S8[32 + (2 * i + 1) * bytes + k] = S8[half + i * bytes + k]!;
      }
    }
  };
}
define(Mnemonic.Punpcklbw, binary(unpack(1, false)));
define(Mnemonic.Punpcklwd, binary(unpack(2, false)));
define(Mnemonic.Punpckldq, binary(unpack(4, false)));
define(Mnemonic.Punpcklqdq, binary(unpack(8, false)));
define(Mnemonic.Punpckhbw, binary(unpack(1, true)));
define(Mnemonic.Punpckhwd, binary(unpack(2, true)));
define(Mnemonic.Punpckhdq, binary(unpack(4, true)));
define(Mnemonic.Punpckhqdq, binary(unpack(8, true)));
define(Mnemonic.Unpcklps, binary(unpack(4, false)));
define(Mnemonic.Unpckhps, binary(unpack(4, true)));
define(Mnemonic.Unpcklpd, binary(unpack(8, false)));
define(Mnemonic.Unpckhpd, binary(unpack(8, true)));

define(
  Mnemonic.Shufps,
  withImm((imm) => () => {
    S32[8] = S32[4 + (imm & 3)]!;
    S32[9] = S32[4 + ((imm >> 2) & 3)]!;
    S32[10] = S32[(imm >> 4) & 3]!;
    S32[11] = S32[(imm >> 6) & 3]!;
  }),
);
define(
  Mnemonic.Shufpd,
  withImm((imm) => () => {
    const a = 4 + 2 * (imm & 1);
    const b = 2 * ((imm >> 1) & 1);
    S32[8] = S32[a]!;
    S32[9] = S32[a + 1]!;
    S32[10] = S32[b]!;
    S32[11] = S32[b + 1]!;
  }),
);

// --- packs: dst lanes then src lanes, narrowed with saturation

define(
  Mnemonic.Packsswb,
  binary(() => {
    for (let i = 0; i < 8; i++) SI8[32 + i] = clampS8(SI16[8 + i]!);
    for (let i = 0; i < 8; i++) SI8[40 + i] = clampS8(SI16[i]!);
  }),
);
define(
  Mnemonic.Packuswb,
  binary(() => {
    for (let i = 0; i < 8; i++) S8[32 + i] = clampU8(SI16[8 + i]!);
    for (let i = 0; i < 8; i++) S8[40 + i] = clampU8(SI16[i]!);
  }),
);
define(
  Mnemonic.Packssdw,
  binary(() => {
    for (let i = 0; i < 4; i++) SI16[16 + i] = clampS16(S32[4 + i]!);
    for (let i = 0; i < 4; i++) SI16[20 + i] = clampS16(S32[i]!);
  }),
);
define(
  Mnemonic.Packusdw,
  binary(() => {
    for (let i = 0; i < 4; i++) S16[16 + i] = clampU16(S32[4 + i]!);
    for (let i = 0; i < 4; i++) S16[20 + i] = clampU16(S32[i]!);
  }),
);

// --- blends (SSE4.1)

define(
  Mnemonic.Pblendw,
  withImm((imm) => () => {
    for (let i = 0; i < 8; i++) S16[16 + i] = (imm >> i) & 1 ? S16[i]! : S16[8 + i]!;
  }),
);
define(
  Mnemonic.Blendps,
  withImm((imm) => () => {
    for (let i = 0; i < 4; i++) S32[8 + i] = (imm >> i) & 1 ? S32[i]! : S32[4 + i]!;
  }),
);
define(
  Mnemonic.Blendpd,
  withImm((imm) => () => {
    for (let q = 0; q < 2; q++) {
      const from = (imm >> q) & 1 ? 2 * q : 4 + 2 * q;
      S32[8 + 2 * q] = S32[from]!;
      S32[9 + 2 * q] = S32[from + 1]!;
    }
  }),
);

/** pblendvb/blendvps/blendvpd: the mask is the top bit of each element of xmm0 (implicit). */
function blendv(elem: 1 | 4 | 8) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0);
    const load = loadSrc(d, 1, 16);
    return (s) => {
      load(s);
      copyIn(s, dst);
      const m = s.xmm8;
      for (let e = 0; e < 16 / elem; e++) {
        const pick = (m[e * elem + elem - 1]! & 0x80) !== 0;
        for (let k = 0; k < elem; k++) S8[32 + e * elem + k] = pick ? S8[e * elem + k]! : S8[16 + e * elem + k]!;
      }
      copyOut(s, dst);
    };
  };
}
define(Mnemonic.Pblendvb, blendv(1));
define(Mnemonic.Blendvps, blendv(4));
define(Mnemonic.Blendvpd, blendv(8));

// --- pmovzx/pmovsx (SSE4.1): widen the low elements of the source

function pmovx(from: 1 | 2 | 4, to: 2 | 4 | 8, signed: boolean) {
  const n = 16 / to;
  return binary(
    () => {
      for (let i = 0; i < n; i++) {
        let v: number;
        if (from === 1) v = signed ? SI8[i]! : S8[i]!;
        else if (from === 2) v = signed ? SI16[i]! : S16[i]!;
        else v = signed ? S32[i]! : SU32[i]!;
        if (to === 2) S16[16 + i] = v;
        else if (to === 4) S32[8 + i] = v;
        else {
          SU32[8 + 2 * i] = v;
          SU32[9 + 2 * i] = v < 0 ? 0xffffffff : 0;
        }
      }
    },
    n * from,
  );
}
define(Mnemonic.Pmovzxbw, pmovx(1, 2, false));
define(Mnemonic.Pmovzxbd, pmovx(1, 4, false));
define(Mnemonic.Pmovzxbq, pmovx(1, 8, false));
define(Mnemonic.Pmovzxwd, pmovx(2, 4, false));
define(Mnemonic.Pmovzxwq, pmovx(2, 8, false));
define(Mnemonic.Pmovzxdq, pmovx(4, 8, false));
define(Mnemonic.Pmovsxbw, pmovx(1, 2, true));
define(Mnemonic.Pmovsxbd, pmovx(1, 4, true));
define(Mnemonic.Pmovsxbq, pmovx(1, 8, true));
define(Mnemonic.Pmovsxwd, pmovx(2, 4, true));
define(Mnemonic.Pmovsxwq, pmovx(2, 8, true));
define(Mnemonic.Pmovsxdq, pmovx(4, 8, true));

// --- ptest (SSE4.1): ZF = (src AND dst) == 0, CF = (src AND NOT dst) == 0; others cleared

define(Mnemonic.Ptest, (d) => {
  const a = xmmReg(d, 0) * 4;
  const load = loadSrc(d, 1, 16);
  return (s) => {
    load(s);
    const v = s.xmm32;
    let and = 0;
    let andn = 0;
    for (let i = 0; i < 4; i++) {
      and |= v[a + i]! & S32[i]!;
      andn |= ~v[a + i]! & S32[i]!;
    }
    setEager(s, (and === 0 ? ZF : 0) | (andn === 0 ? CF : 0));
  };
});

// --- pextr/pinsr

/** The GPR or memory destination of pextr*; register destinations are zero-extended. */
function extractDest(d: DecodeInfo, bytes: number) {
  const k = d.ops[0];
  if (k?.kind === 'reg') {
    const ref = gprOf(k.reg);
    if (!ref) throw new NotImplemented('pextr to a non-GPR');
    return regSetter({ index: ref.index, size: ref.size === 8 ? 8 : 4, highByte: false });
  }
  return operand(d, 0, bytes).set;
}

function pextr(bytes: 1 | 2 | 4 | 8) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const src = xmmReg(d, 1);
    const sel = imm8(d, 2) & (16 / bytes - 1);
    const set = extractDest(d, bytes);
    return (s) => {
      const o = src * 16 + sel * bytes;
      const b = s.xmm8;
      if (bytes === 1) set(s, b[o]!, 0);
      else if (bytes === 2) set(s, b[o]! | (b[o + 1]! << 8), 0);
      else if (bytes === 4) set(s, s.xmmU32[o >> 2]!, 0);
      else set(s, s.xmmU32[o >> 2]!, s.xmmU32[(o >> 2) + 1]!);
    };
  };
}
define(Mnemonic.Pextrb, pextr(1));
define(Mnemonic.Pextrw, pextr(2));
define(Mnemonic.Pextrd, pextr(4));
define(Mnemonic.Pextrq, pextr(8));
define(Mnemonic.Extractps, pextr(4));

function pinsr(bytes: 1 | 2 | 4 | 8) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0);
    const sel = imm8(d, 2) & (16 / bytes - 1);
    const src = operand(d, 1, d.ops[1]?.kind === 'mem' ? bytes : undefined);
    const get = src.get;
    return (s) => {
      const lo = get(s);
      const hi = s.hi;
      const o = dst * 16 + sel * bytes;
      const b = s.xmm8;
      if (bytes === 1) b[o] = lo;
      else if (bytes === 2) {
        b[o] = lo;
        b[o + 1] = lo >>> 8;
      } else if (bytes === 4) s.xmmU32[o >> 2] = lo;
      else {
        s.xmmU32[o >> 2] = lo;
        s.xmmU32[(o >> 2) + 1] = hi;
      }
    };
  };
}
define(Mnemonic.Pinsrb, pinsr(1));
define(Mnemonic.Pinsrw, pinsr(2));
define(Mnemonic.Pinsrd, pinsr(4));
define(Mnemonic.Pinsrq, pinsr(8));

/** insertps: a dword from src (register: element imm[7:6]; memory: m32) into element imm[5:4], then zero mask imm[3:0]. */
define(Mnemonic.Insertps, (d) => {
  const dst = xmmReg(d, 0);
  const imm = imm8(d, 2);
  const mem = d.ops[1]?.kind === 'mem';
  const load = loadSrc(d, 1, 4);
  return (s) => {
    load(s);
    copyIn(s, dst);
    const v = mem ? S32[0]! : S32[(imm >> 6) & 3]!;
    for (let i = 0; i < 4; i++) S32[8 + i] = S32[4 + i]!;
    S32[8 + ((imm >> 4) & 3)] = v;
    for (let i = 0; i < 4; i++) if ((imm >> i) & 1) S32[8 + i] = 0;
    copyOut(s, dst);
  };
});

// --- mpsadbw, phminposuw (SSE4.1)

define(
  Mnemonic.Mpsadbw,
  withImm((imm) => () => {
    const aOff = 16 + ((imm >> 2) & 1) * 4;
    const bOff = (imm & 3) * 4;
    for (let i = 0; i < 8; i++) {
      let sum = 0;
      for (let k = 0; k < 4; k++) sum += Math.abs(S8[aOff + i + k]! - S8[bOff + k]!);
      S16[16 + i] = sum;
    }
  }),
);

define(
  Mnemonic.Phminposuw,
  binary(() => {
    let m = S16[0]!;
    let idx = 0;
    for (let i = 1; i < 8; i++) {
      if (S16[i]! < m) {
        m = S16[i]!;
        idx = i;
      }
    }
    S32[8] = m | (idx << 16);
    S32[9] = S32[10] = S32[11] = 0;
  }),
);
