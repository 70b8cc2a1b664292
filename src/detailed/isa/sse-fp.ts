/**
 * SSE/SSE2 floating point: scalar and packed add/sub/mul/div/sqrt/min/max, compares, comis/
 * ucomis, conversions, ldmxcsr/stmxcsr.
 *
 * Fast path: JS doubles (Math.fround for binary32: double rounding is innocuous for + - * / and
 * sqrt of binary32 operands). It is taken only when it gives exactly what the hardware gives,
 * flags included: round-to-nearest, PE already set and masked (so inexactness changes nothing),
 * operands normal or zero, result normal (or an exact zero). Everything else — NaNs, infinities,
 * denormals, DAZ/FTZ, overflow, underflow, directed rounding, the first inexact result — goes
 * through the exact BigInt path in sse-softfloat.ts, so nothing is ever misrounded.
 */
import { Mnemonic } from 'iced-x86';
import type { DecodeInfo } from '../decodeInfo.js';
import { GuestException, VEC_GP } from '../errors.js';
import { setEager } from '../flags.js';
import { makeEa, operand } from '../operands.js';
import { CF, PF, ZF } from '../state.js';
import { define, defineForms, NotImplemented, type Exec } from './registry.js';
import {
  imm8,
  loadSrc,
  MX_DAZ,
  MX_IE,
  MX_PE,
  MX_PM,
  MX_RC,
  MX_RC_SHIFT,
  MXCSR_MASK,
  raiseMx,
  raiseMxPrePost,
  rejectMmx,
  S32,
  SF32,
  SF64,
  SU32,
  xmmReg,
} from './sse-common.js';
import * as sf from './sse-softfloat.js';
import { bits64, F32, F64, SF } from './sse-softfloat.js';

const MIN32 = 1.1754943508222875e-38;
const MAX32 = 3.4028234663852886e38;
const MIN64 = 2.2250738585072014e-308;
const MAX64 = 1.7976931348623157e308;
const FAST = MX_PE | MX_PM;
const FAST_MASK = MX_RC | MX_PE | MX_PM;

/** |x| is a normal binary32 (NaN fails). */
function norm32(x: number): boolean {
  const a = Math.abs(x);
  return a >= MIN32 && a <= MAX32;
}

function norm64(x: number): boolean {
  const a = Math.abs(x);
  return a >= MIN64 && a <= MAX64;
}

type Lanes = 'ss' | 'sd' | 'ps' | 'pd';
type ArithOp = 'add' | 'sub' | 'mul' | 'div';

function laneCount(l: Lanes): number {
  return l === 'ps' ? 4 : l === 'pd' ? 2 : 1;
}

function srcSize(l: Lanes): number {
  return l === 'ss' ? 4 : l === 'sd' ? 8 : 16;
}

/** The JS operation, and whether its result may be taken (given normal-or-zero operands). */
function fastOp(op: ArithOp, single: boolean): (a: number, b: number) => number {
  const fr = Math.fround;
  switch (op) {
    case 'add':
      return single ? (a, b) => fr(a + b) : (a, b) => a + b;
    case 'sub':
      return single ? (a, b) => fr(a - b) : (a, b) => a - b;
    case 'mul':
      return single ? (a, b) => fr(a * b) : (a, b) => a * b;
    case 'div':
      return single ? (a, b) => fr(a / b) : (a, b) => a / b;
  }
}

function slowOp(op: ArithOp): (a: bigint, b: bigint, f: sf.Fmt, mx: number) => bigint {
  switch (op) {
    case 'add':
      return (a, b, f, mx) => sf.add(a, b, f, mx, false);
    case 'sub':
      return (a, b, f, mx) => sf.add(a, b, f, mx, true);
    case 'mul':
      return sf.mul;
    case 'div':
      return sf.div;
  }
}

/**
 * May the fast result r of a op b be used? Operands are normal or zero here. A zero result is
 * exact for add/sub (gradual underflow) and for a zero factor/dividend; otherwise it underflowed.
 */
function resultOk(op: ArithOp, a: number, b: number, r: number, single: boolean): boolean {
  if (single ? norm32(r) : norm64(r)) return true;
  if (r !== 0) return false;
  return op === 'add' || op === 'sub' || a === 0 || (op === 'mul' && b === 0);
}

/** add/sub/mul/div in ss/sd/ps/pd forms: dst = dst op src. */
function arith(op: ArithOp, lanes: Lanes) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0);
    const load = loadSrc(d, 1, srcSize(lanes));
    const n = laneCount(lanes);
    const single = lanes === 'ss' || lanes === 'ps';
    const f = fastOp(op, single);
    const slow = slowOp(op);
    if (single) {
      const base = dst * 4;
      return (s) => {
        load(s);
        const X = s.xmmF32;
        const mx = s.mxcsr;
        let ok = (mx & FAST_MASK) === FAST;
        if (ok) {
          for (let i = 0; i < n; i++) {
            const a = X[base + i]!;
            const b = SF32[i]!;
            if (!((a === 0 || norm32(a)) && (b === 0 || norm32(b)))) {
              ok = false;
              break;
            }
            const r = f(a, b);
            if (!resultOk(op, a, b, r, true)) {
              ok = false;
              break;
            }
            SF32[4 + i] = r;
          }
          if (ok) {
            for (let i = 0; i < n; i++) X[base + i] = SF32[4 + i]!;
            return;
          }
        }
        SF.pre = 0;
        SF.post = 0;
        const U = s.xmmU32;
        for (let i = 0; i < n; i++) SU32[4 + i] = Number(slow(BigInt(U[base + i]!), BigInt(SU32[i]!), F32, mx));
        raiseMxPrePost(s, SF.pre, SF.post);
        for (let i = 0; i < n; i++) U[base + i] = SU32[4 + i]!;
      };
    }
    const base = dst * 2;
    return (s) => {
      load(s);
      const X = s.xmmF64;
      const mx = s.mxcsr;
      let ok = (mx & FAST_MASK) === FAST;
      if (ok) {
        for (let i = 0; i < n; i++) {
          const a = X[base + i]!;
          const b = SF64[i]!;
          if (!((a === 0 || norm64(a)) && (b === 0 || norm64(b)))) {
            ok = false;
            break;
          }
          const r = f(a, b);
          if (!resultOk(op, a, b, r, false)) {
            ok = false;
            break;
          }
          SF64[2 + i] = r;
        }
        if (ok) {
          for (let i = 0; i < n; i++) X[base + i] = SF64[2 + i]!;
          return;
        }
      }
      SF.pre = 0;
      SF.post = 0;
      const U = s.xmmU32;
      for (let i = 0; i < n; i++) {
        const o = (base + i) * 2;
        const r = slow(bits64(U[o]!, U[o + 1]!), bits64(SU32[2 * i]!, SU32[2 * i + 1]!), F64, mx);
        SU32[4 + 2 * i] = Number(r & 0xffffffffn);
        SU32[5 + 2 * i] = Number(r >> 32n);
      }
      raiseMxPrePost(s, SF.pre, SF.post);
      for (let i = 0; i < 2 * n; i++) U[base * 2 + i] = SU32[4 + i]!;
    };
  };
}

/**
 * min/max: no rounding. Ordered normal-or-zero operands: the smaller/larger one's bits, the
 * second operand when they compare equal (±0). NaNs (IE even for a QNaN) and denormals: the
 * exact path.
 */
function minMaxB(max: boolean, lanes: Lanes) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0);
    const load = loadSrc(d, 1, srcSize(lanes));
    const n = laneCount(lanes);
    const single = lanes === 'ss' || lanes === 'ps';
    return (s) => {
      load(s);
      const U = s.xmmU32;
      const mx = s.mxcsr;
      SF.pre = 0;
      for (let i = 0; i < n; i++) {
        if (single) {
          const a = s.xmmF32[dst * 4 + i]!;
          const b = SF32[i]!;
          if ((a === 0 || norm32(a)) && (b === 0 || norm32(b))) {
            SU32[4 + i] = (max ? a > b : a < b) ? U[dst * 4 + i]! : SU32[i]!;
          } else {
            SU32[4 + i] = Number(sf.minMax(BigInt(U[dst * 4 + i]!), BigInt(SU32[i]!), F32, mx, max));
          }
        } else {
          const a = s.xmmF64[dst * 2 + i]!;
          const b = SF64[i]!;
          const o = dst * 4 + 2 * i;
          if ((a === 0 || norm64(a)) && (b === 0 || norm64(b))) {
            const pickA = max ? a > b : a < b;
            SU32[4 + 2 * i] = pickA ? U[o]! : SU32[2 * i]!;
            SU32[5 + 2 * i] = pickA ? U[o + 1]! : SU32[2 * i + 1]!;
          } else {
            const r = sf.minMax(bits64(U[o]!, U[o + 1]!), bits64(SU32[2 * i]!, SU32[2 * i + 1]!), F64, mx, max);
            SU32[4 + 2 * i] = Number(r & 0xffffffffn);
            SU32[5 + 2 * i] = Number(r >> 32n);
          }
        }
      }
      if (SF.pre !== 0) raiseMx(s, SF.pre);
      const words = single ? n : 2 * n;
      for (let i = 0; i < words; i++) U[dst * 4 + i] = SU32[4 + i]!;
    };
  };
}

const ARITH: [ArithOp, Mnemonic, Mnemonic, Mnemonic, Mnemonic][] = [
  ['add', Mnemonic.Addss, Mnemonic.Addsd, Mnemonic.Addps, Mnemonic.Addpd],
  ['sub', Mnemonic.Subss, Mnemonic.Subsd, Mnemonic.Subps, Mnemonic.Subpd],
  ['mul', Mnemonic.Mulss, Mnemonic.Mulsd, Mnemonic.Mulps, Mnemonic.Mulpd],
  ['div', Mnemonic.Divss, Mnemonic.Divsd, Mnemonic.Divps, Mnemonic.Divpd],
];
for (const [op, ss, sd, ps, pd] of ARITH) {
  define(ss, arith(op, 'ss'));
  define(sd, arith(op, 'sd'));
  define(ps, arith(op, 'ps'));
  define(pd, arith(op, 'pd'));
}
for (const [max, ss, sd, ps, pd] of [
  [false, Mnemonic.Minss, Mnemonic.Minsd, Mnemonic.Minps, Mnemonic.Minpd],
  [true, Mnemonic.Maxss, Mnemonic.Maxsd, Mnemonic.Maxps, Mnemonic.Maxpd],
] as const) {
  define(ss, minMaxB(max, 'ss'));
  define(sd, minMaxB(max, 'sd'));
  define(ps, minMaxB(max, 'ps'));
  define(pd, minMaxB(max, 'pd'));
}

// --- sqrt

function sqrtB(lanes: Lanes) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0);
    const load = loadSrc(d, 1, srcSize(lanes));
    const n = laneCount(lanes);
    if (lanes === 'ss' || lanes === 'ps') {
      const base = dst * 4;
      return (s) => {
        load(s);
        const mx = s.mxcsr;
        let ok = (mx & FAST_MASK) === FAST;
        if (ok) {
          for (let i = 0; i < n; i++) {
            const a = SF32[i]!;
            if (!(a > 0 && norm32(a))) {
              ok = false;
              break;
            }
            SF32[4 + i] = Math.sqrt(a);
          }
          if (ok) {
            for (let i = 0; i < n; i++) s.xmmF32[base + i] = SF32[4 + i]!;
            return;
          }
        }
        SF.pre = 0;
        SF.post = 0;
        for (let i = 0; i < n; i++) SU32[4 + i] = Number(sf.sqrt(BigInt(SU32[i]!), F32, mx));
        raiseMxPrePost(s, SF.pre, SF.post);
        for (let i = 0; i < n; i++) s.xmmU32[base + i] = SU32[4 + i]!;
      };
    }
    const base = dst * 2;
    return (s) => {
      load(s);
      const mx = s.mxcsr;
      let ok = (mx & FAST_MASK) === FAST;
      if (ok) {
        for (let i = 0; i < n; i++) {
          const a = SF64[i]!;
          if (!(a > 0 && norm64(a))) {
            ok = false;
            break;
          }
          SF64[2 + i] = Math.sqrt(a);
        }
        if (ok) {
          for (let i = 0; i < n; i++) s.xmmF64[base + i] = SF64[2 + i]!;
          return;
        }
      }
      SF.pre = 0;
      SF.post = 0;
      for (let i = 0; i < n; i++) {
        const r = sf.sqrt(bits64(SU32[2 * i]!, SU32[2 * i + 1]!), F64, mx);
        SU32[4 + 2 * i] = Number(r & 0xffffffffn);
        SU32[5 + 2 * i] = Number(r >> 32n);
      }
      raiseMxPrePost(s, SF.pre, SF.post);
      for (let i = 0; i < 2 * n; i++) s.xmmU32[base * 2 + i] = SU32[4 + i]!;
    };
  };
}
define(Mnemonic.Sqrtss, sqrtB('ss'));
define(Mnemonic.Sqrtsd, sqrtB('sd'));
define(Mnemonic.Sqrtps, sqrtB('ps'));
define(Mnemonic.Sqrtpd, sqrtB('pd'));

// --- compares

/** cmp predicate (imm8[2:0]) on a relation: LT=0, EQ=1, GT=2, UN=3. */
const PRED_TRUE: readonly (readonly boolean[])[] = [
  [false, true, false, false], // EQ_OQ
  [true, false, false, false], // LT_OS
  [true, true, false, false], // LE_OS
  [false, false, false, true], // UNORD_Q
  [true, false, true, true], // NEQ_UQ
  [false, true, true, true], // NLT_US
  [false, false, true, true], // NLE_US
  [true, true, true, false], // ORD_Q
];
const PRED_SIGNALING = [false, true, true, false, false, true, true, false];

function cmpB(lanes: Lanes) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0);
    const load = loadSrc(d, 1, srcSize(lanes));
    const pred = imm8(d, 2);
    if (pred > 7) throw new NotImplemented('compare predicate above 7 (AVX only)');
    const truth = PRED_TRUE[pred]!;
    const signaling = PRED_SIGNALING[pred]!;
    const n = laneCount(lanes);
    const single = lanes === 'ss' || lanes === 'ps';
    return (s) => {
      load(s);
      const mx = s.mxcsr;
      const U = s.xmmU32;
      SF.pre = 0;
      for (let i = 0; i < n; i++) {
        let rel: number;
        if (single) {
          const a = s.xmmF32[dst * 4 + i]!;
          const b = SF32[i]!;
          if ((a === 0 || norm32(a)) && (b === 0 || norm32(b))) rel = a < b ? 0 : a === b ? 1 : 2;
          else rel = sf.compare(BigInt(U[dst * 4 + i]!), BigInt(SU32[i]!), F32, mx, signaling);
          SU32[4 + i] = truth[rel] ? 0xffffffff : 0;
        } else {
          const a = s.xmmF64[dst * 2 + i]!;
          const b = SF64[i]!;
          if ((a === 0 || norm64(a)) && (b === 0 || norm64(b))) rel = a < b ? 0 : a === b ? 1 : 2;
          else {
            const o = dst * 4 + 2 * i;
            rel = sf.compare(bits64(U[o]!, U[o + 1]!), bits64(SU32[2 * i]!, SU32[2 * i + 1]!), F64, mx, signaling);
          }
          SU32[4 + 2 * i] = SU32[5 + 2 * i] = truth[rel] ? 0xffffffff : 0;
        }
      }
      if (SF.pre !== 0) raiseMx(s, SF.pre);
      const words = single ? n : 2 * n;
      for (let i = 0; i < words; i++) U[dst * 4 + i] = SU32[4 + i]!;
    };
  };
}
define(Mnemonic.Cmpss, cmpB('ss'));
define(Mnemonic.Cmpps, cmpB('ps'));
define(Mnemonic.Cmppd, cmpB('pd'));
// `cmpsd` is also the string compare: register only the SSE2 form.
defineForms(Mnemonic.Cmpsd, (d) => {
  if (!(d.ops.length === 3 && d.ops[2]?.kind === 'imm')) throw new NotImplemented('string cmpsd is not an SSE instruction');
  return cmpB('sd')(d);
});

/** comiss/comisd/ucomiss/ucomisd: ZF PF CF from the relation; OF SF AF cleared. */
function comisB(single: boolean, signaling: boolean) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const a0 = xmmReg(d, 0);
    const load = loadSrc(d, 1, single ? 4 : 8);
    const FL = [CF, ZF, 0, ZF | PF | CF];
    return (s) => {
      load(s);
      let rel: number;
      if (single) {
        const a = s.xmmF32[a0 * 4]!;
        const b = SF32[0]!;
        if ((a === 0 || norm32(a)) && (b === 0 || norm32(b))) rel = a < b ? 0 : a === b ? 1 : 2;
        else {
          SF.pre = 0;
          rel = sf.compare(BigInt(s.xmmU32[a0 * 4]!), BigInt(SU32[0]!), F32, s.mxcsr, signaling);
          if (SF.pre !== 0) raiseMx(s, SF.pre);
        }
      } else {
        const a = s.xmmF64[a0 * 2]!;
        const b = SF64[0]!;
        if ((a === 0 || norm64(a)) && (b === 0 || norm64(b))) rel = a < b ? 0 : a === b ? 1 : 2;
        else {
          SF.pre = 0;
          const U = s.xmmU32;
          rel = sf.compare(bits64(U[a0 * 4]!, U[a0 * 4 + 1]!), bits64(SU32[0]!, SU32[1]!), F64, s.mxcsr, signaling);
          if (SF.pre !== 0) raiseMx(s, SF.pre);
        }
      }
      setEager(s, FL[rel]!);
    };
  };
}
define(Mnemonic.Comiss, comisB(true, true));
define(Mnemonic.Comisd, comisB(false, true));
define(Mnemonic.Ucomiss, comisB(true, false));
define(Mnemonic.Ucomisd, comisB(false, false));

// --- conversions

const TWO32 = 4294967296;

/** Round an integral-or-not double by RC (0 nearest-even, 1 down, 2 up, 3 truncate). */
function roundRc(v: number, rc: number): number {
  switch (rc) {
    case 0: {
      const r = Math.round(v); // rounds .5 up: fix the ties to even
      return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
    }
    case 1:
      return Math.floor(v);
    case 2:
      return Math.ceil(v);
    default:
      return Math.trunc(v);
  }
}

/**
 * A binary32/binary64 value (already a JS number; NaN/inf checked by the caller) to a signed
 * integer: returns the integer as a double, or NaN for "indefinite". Raises IE/PE via flags.
 */
let cvtFlags = 0;
function floatToInt(v: number, rc: number, limit: number, daz: boolean, min: number): number {
  if (!(Math.abs(v) <= Number.MAX_VALUE)) {
    cvtFlags |= MX_IE;
    return NaN;
  }
  if (daz && v !== 0 && Math.abs(v) < min) return 0;
  const r = roundRc(v, rc);
  if (!(r >= -limit && r < limit)) {
    cvtFlags |= MX_IE;
    return NaN;
  }
  if (r !== v) cvtFlags |= MX_PE;
  return r;
}

/** cvtsd2si / cvttsd2si / cvtss2si / cvttss2si: r32/r64 ← xmm/m. */
function cvtToSi(single: boolean, truncate: boolean) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = operand(d, 0);
    const load = loadSrc(d, 1, single ? 4 : 8);
    const set = dst.set;
    const wide = dst.size === 8;
    const limit = wide ? 2 ** 63 : 2 ** 31;
    const min = single ? MIN32 : MIN64;
    return (s) => {
      load(s);
      const v = single ? SF32[0]! : SF64[0]!;
      const mx = s.mxcsr;
      cvtFlags = 0;
      const r = floatToInt(v, truncate ? 3 : (mx & MX_RC) >>> MX_RC_SHIFT, limit, (mx & MX_DAZ) !== 0, min);
      // IE is a pre-computation condition, PE a post-computation one; only one can occur here.
      if (cvtFlags !== 0) raiseMx(s, cvtFlags);
      if (r !== r) {
        if (wide) set(s, 0, 0x80000000);
        else set(s, 0x80000000, 0);
        return;
      }
      if (!wide) {
        set(s, r < 0 ? (r + TWO32) >>> 0 : r, 0);
      } else {
        // |r| <= 2^63: the division by 2^32 and floor are exact, so are both halves.
        const h = Math.floor(r / TWO32);
        set(s, r - h * TWO32, h >>> 0);
      }
    };
  };
}
define(Mnemonic.Cvtsd2si, cvtToSi(false, false));
define(Mnemonic.Cvttsd2si, cvtToSi(false, true));
define(Mnemonic.Cvtss2si, cvtToSi(true, false));
define(Mnemonic.Cvttss2si, cvtToSi(true, true));

/** cvtsi2sd / cvtsi2ss xmm, r/m32|r/m64: the low lane; the rest of the register is kept. */
function cvtFromSi(single: boolean) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0);
    const src = operand(d, 1);
    const get = src.get;
    const wide = src.size === 8;
    const exactLimit = single ? 2 ** 24 : 2 ** 53;
    return (s) => {
      const lo = get(s);
      const hi = wide ? s.hi : 0;
      let v: number;
      if (wide) {
        v = (hi | 0) * TWO32 + lo;
      } else {
        v = lo | 0;
      }
      // Strictly below the limit: v may be a rounded 64-bit value, exact only below 2^53.
      if (Math.abs(v) < exactLimit) {
        if (single) s.xmmF32[dst * 4] = v;
        else s.xmmF64[dst * 2] = v;
        return;
      }
      const mx = s.mxcsr;
      const big = wide ? BigInt.asIntN(64, bits64(lo, hi)) : BigInt(lo | 0);
      SF.post = 0;
      const r = sf.fromInt(big, single ? F32 : F64, mx);
      if (SF.post !== 0) raiseMx(s, SF.post);
      if (single) s.xmmU32[dst * 4] = Number(r);
      else {
        s.xmmU32[dst * 4] = Number(r & 0xffffffffn);
        s.xmmU32[dst * 4 + 1] = Number(r >> 32n);
      }
    };
  };
}
define(Mnemonic.Cvtsi2sd, cvtFromSi(false));
define(Mnemonic.Cvtsi2ss, cvtFromSi(true));

/** Float → float of the other width for `n` lanes; `zeroUpper` clears the unused high half. */
function cvtFloatB(toSingle: boolean, n: number, scalar: boolean) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0);
    // Source size: scalar ss→sd reads 4, sd→ss reads 8; cvtps2pd reads 8; cvtpd2ps reads 16.
    const load = loadSrc(d, 1, scalar ? (toSingle ? 8 : 4) : toSingle ? 16 : 8);
    return (s) => {
      load(s);
      const mx = s.mxcsr;
      let ok = true;
      let pe = 0;
      for (let i = 0; i < n; i++) {
        if (toSingle) {
          const v = SF64[i]!;
          const r = Math.fround(v);
          // Normal in, normal out: exact, or (round-to-nearest) inexact with PE only.
          if (!(v === 0 || (norm64(v) && norm32(r) && (r === v || (mx & MX_RC) === 0)))) {
            ok = false;
            break;
          }
          if (r !== v) pe = MX_PE;
          SF32[4 + i] = r;
        } else {
          const v = SF32[i]!;
          if (!(v === 0 || norm32(v))) {
            ok = false;
            break;
          }
          SF64[2 + i] = v;
        }
      }
      if (ok && pe !== 0) raiseMx(s, pe);
      if (!ok) {
        SF.pre = 0;
        SF.post = 0;
        for (let i = 0; i < n; i++) {
          if (toSingle) {
            SU32[4 + i] = Number(sf.convert(bits64(SU32[2 * i]!, SU32[2 * i + 1]!), F64, F32, mx));
          } else {
            const r = sf.convert(BigInt(SU32[i]!), F32, F64, mx);
            SU32[4 + 2 * i] = Number(r & 0xffffffffn);
            SU32[5 + 2 * i] = Number(r >> 32n);
          }
        }
        raiseMxPrePost(s, SF.pre, SF.post);
      }
      const U = s.xmmU32;
      const o = dst * 4;
      if (toSingle) {
        for (let i = 0; i < n; i++) U[o + i] = SU32[4 + i]!;
        if (!scalar) U[o + 2] = U[o + 3] = 0; // cvtpd2ps zeroes the upper half
      } else {
        for (let i = 0; i < 2 * n; i++) U[o + i] = SU32[4 + i]!;
      }
    };
  };
}
define(Mnemonic.Cvtss2sd, cvtFloatB(false, 1, true));
define(Mnemonic.Cvtsd2ss, cvtFloatB(true, 1, true));
define(Mnemonic.Cvtps2pd, cvtFloatB(false, 2, false));
define(Mnemonic.Cvtpd2ps, cvtFloatB(true, 2, false));

/** Packed float → int32: cvtps2dq, cvttps2dq (4 lanes), cvtpd2dq, cvttpd2dq (2 lanes, upper zeroed). */
function cvtPackedToDq(single: boolean, truncate: boolean) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0);
    const load = loadSrc(d, 1, 16);
    const n = single ? 4 : 2;
    const min = single ? MIN32 : MIN64;
    return (s) => {
      load(s);
      const mx = s.mxcsr;
      const rc = truncate ? 3 : (mx & MX_RC) >>> MX_RC_SHIFT;
      const daz = (mx & MX_DAZ) !== 0;
      cvtFlags = 0;
      for (let i = 0; i < n; i++) {
        const r = floatToInt(single ? SF32[i]! : SF64[i]!, rc, 2 ** 31, daz, min);
        SU32[4 + i] = r !== r ? 0x80000000 : r < 0 ? (r + TWO32) >>> 0 : r;
      }
      if (cvtFlags !== 0) raiseMxPrePost(s, cvtFlags & MX_IE, cvtFlags & MX_PE);
      const U = s.xmmU32;
      for (let i = 0; i < n; i++) U[dst * 4 + i] = SU32[4 + i]!;
      if (!single) U[dst * 4 + 2] = U[dst * 4 + 3] = 0;
    };
  };
}
define(Mnemonic.Cvtps2dq, cvtPackedToDq(true, false));
define(Mnemonic.Cvttps2dq, cvtPackedToDq(true, true));
define(Mnemonic.Cvtpd2dq, cvtPackedToDq(false, false));
define(Mnemonic.Cvttpd2dq, cvtPackedToDq(false, true));

/** cvtdq2pd: two int32 (low quadword; m64) → two doubles, exact. */
define(Mnemonic.Cvtdq2pd, (d) => {
  rejectMmx(d);
  const dst = xmmReg(d, 0);
  const load = loadSrc(d, 1, 8);
  return (s) => {
    load(s);
    const a = S32[0]!;
    const b = S32[1]!;
    s.xmmF64[dst * 2] = a;
    s.xmmF64[dst * 2 + 1] = b;
  };
});

/** cvtdq2ps: four int32 → binary32, rounded by RC (PE when inexact). */
define(Mnemonic.Cvtdq2ps, (d) => {
  rejectMmx(d);
  const dst = xmmReg(d, 0);
  const load = loadSrc(d, 1, 16);
  return (s) => {
    load(s);
    const mx = s.mxcsr;
    let flags = 0;
    SF.post = 0;
    for (let i = 0; i < 4; i++) {
      const v = S32[i]!;
      const r = Math.fround(v);
      if (r === v) SF32[4 + i] = r;
      else if ((mx & MX_RC) === 0) {
        SF32[4 + i] = r;
        flags |= MX_PE;
      } else SU32[4 + i] = Number(sf.fromInt(BigInt(v), F32, mx));
    }
    flags |= SF.post;
    if (flags !== 0) raiseMx(s, flags);
    for (let i = 0; i < 4; i++) s.xmmU32[dst * 4 + i] = SU32[4 + i]!;
  };
});

// --- MXCSR

define(Mnemonic.Ldmxcsr, (d) => {
  const ea = makeEa(d.mem!);
  return (s) => {
    const v = s.mem.read32(ea(s));
    if ((v & ~MXCSR_MASK) !== 0) throw new GuestException(VEC_GP, 0, 0);
    s.mxcsr = v;
  };
});

define(Mnemonic.Stmxcsr, (d) => {
  const ea = makeEa(d.mem!);
  return (s) => s.mem.write32(ea(s), s.mxcsr >>> 0);
});


// --- SSE3 horizontal/alternating add and subtract

/** One result lane: x op y, each operand a lane of the destination (A) or the source (B). */
interface PairLane {
  xa: boolean;
  xi: number;
  ya: boolean;
  yi: number;
  sub: boolean;
}

function pairsB(single: boolean, lanes: readonly PairLane[]) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0);
    const load = loadSrc(d, 1, 16);
    const n = lanes.length;
    return (s) => {
      load(s);
      const mx = s.mxcsr;
      const U = s.xmmU32;
      let ok = (mx & FAST_MASK) === FAST;
      if (ok) {
        for (let i = 0; i < n; i++) {
          const l = lanes[i]!;
          const a = single ? (l.xa ? s.xmmF32[dst * 4 + l.xi]! : SF32[l.xi]!) : l.xa ? s.xmmF64[dst * 2 + l.xi]! : SF64[l.xi]!;
          const b = single ? (l.ya ? s.xmmF32[dst * 4 + l.yi]! : SF32[l.yi]!) : l.ya ? s.xmmF64[dst * 2 + l.yi]! : SF64[l.yi]!;
          const norm = single ? norm32 : norm64;
          if (!((a === 0 || norm(a)) && (b === 0 || norm(b)))) {
            ok = false;
            break;
          }
          let r = l.sub ? a - b : a + b;
          if (single) r = Math.fround(r);
          if (!resultOk(l.sub ? 'sub' : 'add', a, b, r, single)) {
            ok = false;
            break;
          }
          if (single) SF32[4 + i] = r;
          else SF64[2 + i] = r;
        }
      }
      if (!ok) {
        SF.pre = 0;
        SF.post = 0;
        for (let i = 0; i < n; i++) {
          const l = lanes[i]!;
          if (single) {
            const x = BigInt(l.xa ? U[dst * 4 + l.xi]! : SU32[l.xi]!);
            const y = BigInt(l.ya ? U[dst * 4 + l.yi]! : SU32[l.yi]!);
            SU32[4 + i] = Number(sf.add(x, y, F32, mx, l.sub));
          } else {
            const xo = l.xa ? dst * 4 + 2 * l.xi : 2 * l.xi;
            const yo = l.ya ? dst * 4 + 2 * l.yi : 2 * l.yi;
            const x = l.xa ? bits64(U[xo]!, U[xo + 1]!) : bits64(SU32[xo]!, SU32[xo + 1]!);
            const y = l.ya ? bits64(U[yo]!, U[yo + 1]!) : bits64(SU32[yo]!, SU32[yo + 1]!);
            const r = sf.add(x, y, F64, mx, l.sub);
            SU32[4 + 2 * i] = Number(r & 0xffffffffn);
            SU32[5 + 2 * i] = Number(r >> 32n);
          }
        }
        raiseMxPrePost(s, SF.pre, SF.post);
      }
      for (let i = 0; i < 4; i++) U[dst * 4 + i] = SU32[4 + i]!;
    };
  };
}

const lane = (xa: boolean, xi: number, ya: boolean, yi: number, sub: boolean): PairLane => ({ xa, xi, ya, yi, sub });
function horizontal(single: boolean, sub: boolean): PairLane[] {
  return single
    ? [lane(true, 0, true, 1, sub), lane(true, 2, true, 3, sub), lane(false, 0, false, 1, sub), lane(false, 2, false, 3, sub)]
    : [lane(true, 0, true, 1, sub), lane(false, 0, false, 1, sub)];
}
define(Mnemonic.Haddps, pairsB(true, horizontal(true, false)));
define(Mnemonic.Hsubps, pairsB(true, horizontal(true, true)));
define(Mnemonic.Haddpd, pairsB(false, horizontal(false, false)));
define(Mnemonic.Hsubpd, pairsB(false, horizontal(false, true)));
define(Mnemonic.Addsubps, pairsB(true, [0, 1, 2, 3].map((i) => lane(true, i, false, i, i % 2 === 0))));
define(Mnemonic.Addsubpd, pairsB(false, [0, 1].map((i) => lane(true, i, false, i, i % 2 === 0))));

// --- SSE4.1 round to integral

/** imm8[1:0]: rounding mode, imm8[2]: use MXCSR.RC instead, imm8[3]: suppress PE. */
function roundB(lanes: Lanes) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0);
    const load = loadSrc(d, 1, srcSize(lanes));
    const imm = imm8(d, 2);
    const n = laneCount(lanes);
    const single = lanes === 'ss' || lanes === 'ps';
    return (s) => {
      load(s);
      const mx = s.mxcsr;
      const rc = imm & 4 ? (mx & MX_RC) >>> MX_RC_SHIFT : imm & 3;
      SF.pre = 0;
      SF.post = 0;
      for (let i = 0; i < n; i++) {
        if (single) {
          SU32[4 + i] = Number(sf.roundToIntegral(BigInt(SU32[i]!), F32, mx, rc, (imm & 8) !== 0));
        } else {
          const r = sf.roundToIntegral(bits64(SU32[2 * i]!, SU32[2 * i + 1]!), F64, mx, rc, (imm & 8) !== 0);
          SU32[4 + 2 * i] = Number(r & 0xffffffffn);
          SU32[5 + 2 * i] = Number(r >> 32n);
        }
      }
      raiseMxPrePost(s, SF.pre, SF.post);
      const words = single ? n : 2 * n;
      for (let i = 0; i < words; i++) s.xmmU32[dst * 4 + i] = SU32[4 + i]!;
    };
  };
}
define(Mnemonic.Roundss, roundB('ss'));
define(Mnemonic.Roundsd, roundB('sd'));
define(Mnemonic.Roundps, roundB('ps'));
define(Mnemonic.Roundpd, roundB('pd'));
