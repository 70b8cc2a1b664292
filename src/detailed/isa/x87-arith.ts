/**
 * x87 arithmetic: loads and stores (fld/fild/fst/fstp/fist/fistp/fisttp, the constants), the four
 * operations in all their forms (st/st(i), popping, m32/m64, m16/m32 integer, reversed), fsqrt,
 * frndint, fscale, fprem/fprem1, fxtract, fchs, fabs, fxch, fcmovcc, comparisons (fcom/fucom/
 * ficom/ftst into C3/C2/C0, fcomi/fucomi into ZF/PF/CF), fxam, ffree/ffreep, fincstp/fdecstp and
 * the environment instructions fnstenv/fldenv/fnsave/frstor (32-bit formats). Values are
 * computed exactly by softfloat80.ts. The control instructions (fldcw, fnstsw, fninit, fwait,
 * fxsave…) live in x87.ts. Not implemented (they raise the unsupported-instruction error when
 * executed): the transcendentals (fsin, fcos, fsincos, fptan, fpatan, f2xm1, fyl2x, fyl2xp1),
 * fbld/fbstp and the 16-bit environment formats.
 *
 * Register convention (the one FXSAVE, KVM's XSAVE area and ThreadContext use): `s.st` slot i
 * holds ST(i), relative to TOP; `s.ftw` is the abridged tag word by PHYSICAL register (bit j
 * set = Rj valid), so ST(i) is valid when bit (TOP + i) & 7 is set. A push or pop rotates the
 * slots so that the contents of the physical registers are preserved (an empty register still
 * shows its old value through FXSAVE, as on hardware).
 *
 * Status, as measured on the host CPU (test/unit/x87.test.ts compares every instruction here
 * with it under KVM): the exception flags (IE DE ZE OE UE PE, SF for stack faults) accumulate in
 * FSW; C1 is the rounding direction (or 1/0 for stack overflow/underflow); C0/C2/C3 are left
 * alone by the arithmetic. Masked exceptions (the default) give the masked responses (real or
 * integer indefinite, ∞, denormals…). Unmasked IE/DE/ZE leave the destination and the stack
 * unchanged (comparisons still set their condition codes, but do not pop) and set ES/B; the next
 * waiting x87 instruction then raises #MF (vector 16, SIGFPE). An unmasked PE stores the result;
 * an unmasked OE/UE stores the bias-adjusted result (exponent ∓ 24576) in a register and nothing
 * in memory. FIP is updated by every instruction here; FDP and FOP only with an unmasked
 * exception (the FDP_EXCPTN_ONLY / FOP-deprecation behaviour of the CPUs we measured).
 */
import { Mnemonic, Register } from 'iced-x86';
import type { DecodeInfo } from '../decodeInfo.js';
import { GuestException, VEC_MF } from '../errors.js';
import { arithFlags as readArith, setEager } from '../flags.js';
import { makeEa, type EaFn } from '../operands.js';
import * as F from '../softfloat80.js';
import { CF, PF, ZF, type CpuState } from '../state.js';
import { define, NotImplemented, type Exec } from './registry.js';

type F80 = F.F80;

// FSW bits
const IE = 0x1;
const DE = 0x2;
const ZE = 0x4;
const FSW_SF = 0x40;
const PE = 0x20;
const ES = 0x80;
const C0 = 0x100;
const C1 = 0x200;
const C2 = 0x400;
const C3 = 0x4000;
const BUSY = 0x8000;
const TOP_MASK = 0x3800;
const CC_MASK = C0 | C1 | C2 | C3;
/** FCW bits that exist (see x87.ts): 7 and 13–15 read as 0, 6 as 1. */
const FCW_BITS = 0x1f3f;
const FCW_ONES = 0x40;

const env = new F.FpEnv();
const TMP = new Uint8Array(108);
const ROT = new Uint8Array(10);

// --- the register stack

function top(s: CpuState): number {
  return (s.fsw >> 11) & 7;
}

function isEmpty(s: CpuState, i: number): boolean {
  return ((s.ftw >> ((((s.fsw >> 11) & 7) + i) & 7)) & 1) === 0;
}

function get(s: CpuState, i: number): F80 {
  return F.readF80(s.st, i * 10);
}

function put(s: CpuState, i: number, v: F80): void {
  F.writeF80(v, s.st, i * 10);
  s.ftw |= 1 << ((top(s) + i) & 7);
}

/** Moves TOP by `delta` (±1), rotating the ST-relative slots with it. */
function moveTop(s: CpuState, delta: number): void {
  const st = s.st;
  if (delta < 0) {
    ROT.set(st.subarray(70, 80));
    st.copyWithin(10, 0, 70);
    st.set(ROT, 0);
  } else {
    ROT.set(st.subarray(0, 10));
    st.copyWithin(0, 10, 80);
    st.set(ROT, 70);
  }
  s.fsw = (s.fsw & ~TOP_MASK) | (((top(s) + delta) & 7) << 11);
}

/** Sets TOP to `t`, rotating the slots so the physical registers keep their contents. */
function setTop(s: CpuState, t: number): void {
  const old = top(s);
  const n = (t - old) & 7;
  if (n === 0) return;
  const copy = s.st.slice();
  for (let i = 0; i < 8; i++) s.st.set(copy.subarray(((i + n) & 7) * 10, ((i + n) & 7) * 10 + 10), i * 10);
  s.fsw = (s.fsw & ~TOP_MASK) | (t << 11);
}

function push(s: CpuState, v: F80): void {
  moveTop(s, -1);
  put(s, 0, v);
}

function pop(s: CpuState): void {
  s.ftw &= ~(1 << top(s));
  moveTop(s, 1);
}

// --- status

const NO_FAULT = 0;
const UNDERFLOW = 1;
const OVERFLOW = 2;

/** A waiting x87 instruction first reports a pending unmasked exception (#MF). */
function begin(s: CpuState, ip: bigint): F.FpEnv {
  if ((s.fsw & ES) !== 0) throw new GuestException(VEC_MF, 0, 0);
  s.fip = ip;
  return env.reset(s.fcw);
}

/** Context of the executing instruction, for FDP/FOP and the unmasked-exception error. */
interface Site {
  d: DecodeInfo;
  fop: number;
  ea: EaFn | null;
}

function site(d: DecodeInfo): Site {
  let i = 0;
  const b = d.bytes;
  while (i < b.length && (b[i]! < 0xd8 || b[i]! > 0xdf)) i++;
  const fop = i + 1 < b.length ? ((b[i]! & 7) << 8) | b[i + 1]! : 0;
  return { d, fop, ea: d.mem ? makeEa(d.mem) : null };
}

/**
 * The FSW after an instruction that raised `env.flags`, with C1 as given (the rounding
 * direction, or null: unchanged) unless a stack fault decides it; null when an unmasked pre-computation exception
 * (IE, DE, ZE) means nothing may be stored: FSW is then updated here already.
 */
function status(s: CpuState, fault: number, c1: boolean | null, x: Site, regDest: boolean, load = false): number | null {
  let f = env.flags;
  if (fault !== NO_FAULT) f |= IE | FSW_SF;
  let c1bit = fault === OVERFLOW ? C1 : fault === UNDERFLOW ? 0 : c1 === null ? s.fsw & C1 : c1 ? C1 : 0;
  const unmasked = f & ~s.fcw & 0x3f;
  // A load completes despite an unmasked DE (the value is exact).
  const preComputation = unmasked & (load ? IE | ZE : IE | DE | ZE);
  if (preComputation !== 0) {
    f &= IE | DE | ZE | FSW_SF;
    if (fault === NO_FAULT && c1 !== null) c1bit = 0;
  } else if (env.unmaskedOU && !regDest) {
    // A store with an unmasked overflow/underflow writes nothing: only OE/UE.
    f &= ~PE;
    c1bit = 0;
  }
  let fsw = (s.fsw & ~C1) | f | c1bit;
  if (unmasked !== 0) {
    fsw |= ES | BUSY;
    s.fop = x.fop;
    if (x.ea) s.fdp = BigInt(x.ea(s));
    if (preComputation !== 0 || (env.unmaskedOU && !regDest)) {
      s.fsw = fsw;
      return null;
    }
  }
  return fsw;
}

// --- operands

function stIndex(r: Register): number {
  if (r < Register.ST0 || r > Register.ST7) throw new NotImplemented('not an x87 register operand');
  return r - Register.ST0;
}

/** The ST register numbers of the register operands, in order. */
function stOps(d: DecodeInfo): number[] {
  const out: number[] = [];
  for (const o of d.ops) if (o.kind === 'reg') out.push(stIndex(o.reg));
  return out;
}

type Loader = (s: CpuState, ea: number) => F80;

/** A memory source operand as an F80 (f32/f64/f80 or an integer), by memory size. */
function memLoader(d: DecodeInfo, integer: boolean): Loader {
  const size = d.mem!.size;
  if (integer) {
    switch (size) {
      case 2:
        return (s, a) => F.fromInt(BigInt((s.mem.read16(a) << 16) >> 16));
      case 4:
        return (s, a) => F.fromInt(BigInt(s.mem.read32(a) | 0));
      case 8:
        return (s, a) => {
          const lo = s.mem.read64(a);
          return F.fromInt((BigInt(s.mem.hi | 0) << 32n) | BigInt(lo));
        };
    }
  } else {
    switch (size) {
      case 4:
        return (s, a) => F.fromF32(s.mem.read32(a), env, true);
      case 8:
        return (s, a) => {
          const lo = s.mem.read64(a);
          return F.fromF64((BigInt(s.mem.hi) << 32n) | BigInt(lo), env, true);
        };
      case 10:
        return (s, a) => {
          s.mem.readBytes(a, TMP, 10);
          return F.readF80(TMP, 0);
        };
    }
  }
  throw new NotImplemented(`memory operand of ${size} bytes`);
}

function memEa(d: DecodeInfo): EaFn {
  if (!d.mem) throw new NotImplemented('register form');
  return makeEa(d.mem);
}

// --- loads

define(Mnemonic.Fld, (d) => {
  const ip = BigInt(d.rip);
  const x = site(d);
  if (d.mem) {
    const ea = x.ea!;
    const size = d.mem.size;
    const load: Loader =
      size === 4
        ? (s, a) => F.fromF32(s.mem.read32(a), env)
        : size === 8
          ? (s, a) => {
              const lo = s.mem.read64(a);
              return F.fromF64((BigInt(s.mem.hi) << 32n) | BigInt(lo), env);
            }
          : memLoader(d, false);
    return (s) => {
      begin(s, ip);
      const v = load(s, ea(s));
      pushValue(s, v, x);
    };
  }
  const [i] = stOps(d);
  if (i === undefined) throw new NotImplemented('fld without an operand');
  return (s) => {
    begin(s, ip);
    if (isEmpty(s, i)) {
      pushFaulted(s, x, UNDERFLOW);
      return;
    }
    pushValue(s, get(s, i), x);
  };
});

/** Pushes v (stack overflow if ST(7) is in use: IE, SF, C1 and the indefinite instead). */
function pushValue(s: CpuState, v: F80, x: Site): void {
  if (!isEmpty(s, 7)) {
    env.flags = 0; // the source is not converted
    pushFaulted(s, x, OVERFLOW);
    return;
  }
  const fsw = status(s, NO_FAULT, false, x, true, true);
  if (fsw === null) return;
  s.fsw = fsw;
  push(s, v);
}

function pushFaulted(s: CpuState, x: Site, fault: number): void {
  const fsw = status(s, fault, false, x, true);
  if (fsw === null) return;
  s.fsw = fsw;
  push(s, F.F80_INDEFINITE);
}

define(Mnemonic.Fild, (d) => {
  const ip = BigInt(d.rip);
  const x = site(d);
  const ea = memEa(d);
  const load = memLoader(d, true);
  return (s) => {
    begin(s, ip);
    pushValue(s, load(s, ea(s)), x);
  };
});

function defineConstant(m: Mnemonic, value: (rc: number) => F80): void {
  define(m, (d) => {
    const ip = BigInt(d.rip);
    const x = site(d);
    return (s) => {
      const e = begin(s, ip);
      pushValue(s, value(e.rc), x);
    };
  });
}
defineConstant(Mnemonic.Fld1, () => F.F80_ONE);
defineConstant(Mnemonic.Fldz, () => F.F80_ZERO);
defineConstant(Mnemonic.Fldpi, (rc) => F.constant80('pi', rc));
defineConstant(Mnemonic.Fldl2e, (rc) => F.constant80('l2e', rc));
defineConstant(Mnemonic.Fldl2t, (rc) => F.constant80('l2t', rc));
defineConstant(Mnemonic.Fldlg2, (rc) => F.constant80('lg2', rc));
defineConstant(Mnemonic.Fldln2, (rc) => F.constant80('ln2', rc));

// --- stores

const INDEF_F32 = 0xffc00000;
const INDEF_F64 = 0xfff8000000000000n;

define([Mnemonic.Fst, Mnemonic.Fstp], (d) => {
  const ip = BigInt(d.rip);
  const x = site(d);
  const popAfter = d.mnemonic === Mnemonic.Fstp;
  if (d.mem) {
    const ea = x.ea!;
    const size = d.mem.size;
    if (size !== 4 && size !== 8 && size !== 10) throw new NotImplemented(`store of ${size} bytes`);
    return (s) => {
      begin(s, ip);
      const a = ea(s);
      const empty = isEmpty(s, 0);
      const v = empty ? F.F80_INDEFINITE : get(s, 0);
      let lo = 0;
      let hi = 0;
      if (size === 4) {
        lo = empty ? INDEF_F32 : F.toF32(v, env);
      } else if (size === 8) {
        const b = empty ? INDEF_F64 : F.toF64(v, env);
        lo = Number(b & 0xffffffffn);
        hi = Number(b >> 32n);
      }
      const fsw = status(s, empty ? UNDERFLOW : NO_FAULT, env.roundedUp, x, false);
      if (fsw === null) return;
      if (size === 4) s.mem.write32(a, lo);
      else if (size === 8) s.mem.write64(a, lo, hi);
      else {
        F.writeF80(v, TMP, 0);
        s.mem.writeBytes(a, TMP, 10);
      }
      s.fsw = fsw;
      if (popAfter) pop(s);
    };
  }
  const [i] = stOps(d);
  if (i === undefined) throw new NotImplemented('fst without an operand');
  return (s) => {
    begin(s, ip);
    const empty = isEmpty(s, 0);
    const fsw = status(s, empty ? UNDERFLOW : NO_FAULT, false, x, true);
    if (fsw === null) return;
    s.fsw = fsw;
    put(s, i, empty ? F.F80_INDEFINITE : get(s, 0));
    if (popAfter) pop(s);
  };
});

define([Mnemonic.Fist, Mnemonic.Fistp, Mnemonic.Fisttp], (d) => {
  const ip = BigInt(d.rip);
  const x = site(d);
  const ea = memEa(d);
  const popAfter = d.mnemonic !== Mnemonic.Fist;
  const truncate = d.mnemonic === Mnemonic.Fisttp;
  const size = d.mem!.size;
  if (size !== 2 && size !== 4 && size !== 8) throw new NotImplemented(`integer store of ${size} bytes`);
  const bits = size * 8;
  const indefinite = -(1n << BigInt(bits - 1));
  return (s) => {
    begin(s, ip);
    const a = ea(s);
    const empty = isEmpty(s, 0);
    let v = indefinite;
    if (!empty) v = F.toInt(get(s, 0), bits, env, truncate) ?? indefinite;
    const fsw = status(s, empty ? UNDERFLOW : NO_FAULT, env.roundedUp, x, false);
    if (fsw === null) return;
    const u = BigInt.asUintN(bits, v);
    if (size === 2) s.mem.write16(a, Number(u));
    else if (size === 4) s.mem.write32(a, Number(u));
    else s.mem.write64(a, Number(u & 0xffffffffn), Number(u >> 32n));
    s.fsw = fsw;
    if (popAfter) pop(s);
  };
});

// --- arithmetic

type BinOp = (a: F80, b: F80, e: F.FpEnv) => F80;

const fsub: BinOp = (a, b, e) => F.add80(a, b, e, true);

function defineArith(plain: Mnemonic, popping: Mnemonic | null, integer: Mnemonic, op: BinOp, reversed: boolean): void {
  const build = (d: DecodeInfo): Exec => {
    const ip = BigInt(d.rip);
    const x = site(d);
    const popAfter = d.mnemonic === popping;
    if (d.mem) {
      // ST(0) = ST(0) op m (or m op ST(0) reversed)
      const ea = x.ea!;
      const load = memLoader(d, d.mnemonic === integer);
      return (s) => {
        begin(s, ip);
        const m = load(s, ea(s));
        if (isEmpty(s, 0)) {
          env.flags = 0;
          storeArith(s, 0, F.F80_INDEFINITE, UNDERFLOW, false, x);
          return;
        }
        const a = get(s, 0);
        storeArith(s, 0, reversed ? op(m, a, env) : op(a, m, env), NO_FAULT, false, x);
      };
    }
    const regs = stOps(d);
    // dst = dst op src; reversed: dst = src op dst
    const dst = regs.length === 2 ? regs[0]! : 1;
    const src = regs.length === 2 ? regs[1]! : 0;
    return (s) => {
      begin(s, ip);
      if (isEmpty(s, dst) || isEmpty(s, src)) {
        storeArith(s, dst, F.F80_INDEFINITE, UNDERFLOW, popAfter, x);
        return;
      }
      const a = get(s, dst);
      const b = get(s, src);
      storeArith(s, dst, reversed ? op(b, a, env) : op(a, b, env), NO_FAULT, popAfter, x);
    };
  };
  define(popping === null ? [plain, integer] : [plain, popping, integer], build);
}

function storeArith(s: CpuState, dst: number, v: F80, fault: number, popAfter: boolean, x: Site): void {
  const fsw = status(s, fault, env.roundedUp, x, true);
  if (fsw === null) return;
  s.fsw = fsw;
  put(s, dst, v);
  if (popAfter) pop(s);
}

defineArith(Mnemonic.Fadd, Mnemonic.Faddp, Mnemonic.Fiadd, F.add80, false);
defineArith(Mnemonic.Fsub, Mnemonic.Fsubp, Mnemonic.Fisub, fsub, false);
defineArith(Mnemonic.Fsubr, Mnemonic.Fsubrp, Mnemonic.Fisubr, fsub, true);
defineArith(Mnemonic.Fmul, Mnemonic.Fmulp, Mnemonic.Fimul, F.mul80, false);
defineArith(Mnemonic.Fdiv, Mnemonic.Fdivp, Mnemonic.Fidiv, F.div80, false);
defineArith(Mnemonic.Fdivr, Mnemonic.Fdivrp, Mnemonic.Fidivr, F.div80, true);

/** ST(0) = f(ST(0)) for the one-operand instructions. */
function defineUnary(m: Mnemonic, f: (a: F80, e: F.FpEnv) => F80, c1FromRounding = true): void {
  define(m, (d) => {
    const ip = BigInt(d.rip);
    const x = site(d);
    return (s) => {
      begin(s, ip);
      if (isEmpty(s, 0)) {
        storeArith(s, 0, F.F80_INDEFINITE, UNDERFLOW, false, x);
        return;
      }
      const v = f(get(s, 0), env);
      if (!c1FromRounding) env.roundedUp = false;
      storeArith(s, 0, v, NO_FAULT, false, x);
    };
  });
}

defineUnary(Mnemonic.Fsqrt, F.sqrt80);
defineUnary(Mnemonic.Frndint, F.roundInt80);
defineUnary(Mnemonic.Fchs, F.neg80, false);
defineUnary(Mnemonic.Fabs, F.abs80, false);

define(Mnemonic.Fscale, (d) => {
  const ip = BigInt(d.rip);
  const x = site(d);
  return (s) => {
    begin(s, ip);
    if (isEmpty(s, 0) || isEmpty(s, 1)) {
      storeArith(s, 0, F.F80_INDEFINITE, UNDERFLOW, false, x);
      return;
    }
    storeArith(s, 0, F.scale80(get(s, 0), get(s, 1), env), NO_FAULT, false, x);
  };
});

define([Mnemonic.Fprem, Mnemonic.Fprem1], (d) => {
  const ip = BigInt(d.rip);
  const x = site(d);
  const ieee = d.mnemonic === Mnemonic.Fprem1;
  return (s) => {
    begin(s, ip);
    // Stack faults, invalid operands and NaNs clear C1 and C2 and leave C0 and C3; a partial
    // reduction sets C2 alone; a complete one gives the quotient's low bits.
    if (isEmpty(s, 0) || isEmpty(s, 1)) {
      const fsw = status(s, UNDERFLOW, false, x, true);
      if (fsw === null) {
        s.fsw &= ~C2;
        return;
      }
      s.fsw = fsw & ~C2;
      put(s, 0, F.F80_INDEFINITE);
      return;
    }
    const r = F.prem80(get(s, 0), get(s, 1), env, ieee);
    const fsw = status(s, NO_FAULT, false, x, true);
    if (fsw === null) {
      s.fsw &= ~C2;
      return;
    }
    if (r.q < 0) s.fsw = fsw & ~(C1 | C2);
    else if (r.partial) s.fsw = (fsw & ~(C0 | C1 | C3)) | C2;
    else s.fsw = (fsw & ~(C0 | C1 | C2 | C3)) | (r.q & 4 ? C0 : 0) | (r.q & 2 ? C3 : 0) | (r.q & 1 ? C1 : 0);
    put(s, 0, r.value);
  };
});

define(Mnemonic.Fxtract, (d) => {
  const ip = BigInt(d.rip);
  const x = site(d);
  return (s) => {
    begin(s, ip);
    if (isEmpty(s, 0)) {
      pushPair(s, F.F80_INDEFINITE, F.F80_INDEFINITE, UNDERFLOW, x);
      return;
    }
    if (!isEmpty(s, 7)) {
      pushPair(s, F.F80_INDEFINITE, F.F80_INDEFINITE, OVERFLOW, x);
      return;
    }
    const [e, m] = F.xtract80(get(s, 0), env);
    pushPair(s, e, m, NO_FAULT, x);
  };
});

/** fxtract: ST(0) = a, then push b. */
function pushPair(s: CpuState, a: F80, b: F80, fault: number, x: Site): void {
  const fsw = status(s, fault, false, x, true);
  if (fsw === null) return;
  s.fsw = fsw;
  put(s, 0, a);
  push(s, b);
}

// --- comparisons

const CC_OF = [C0, C3, 0, C0 | C2 | C3];

function setCc(fsw: number, r: number): number {
  return (fsw & ~(C0 | C2 | C3)) | CC_OF[r]!;
}

/**
 * fcom/fcomp/fcompp/fucom…/ficom/ficomp/ftst: C3, C2, C0 from comparing ST(0) with the source.
 * The condition codes are set even with an unmasked exception (unordered for IE, the result of
 * the comparison for DE, as measured); only the pops are then skipped.
 */
function defineCompare(ms: Mnemonic[], signaling: boolean, pops: number, integer: boolean): void {
  define(ms, (d) => {
    const ip = BigInt(d.rip);
    const x = site(d);
    const popCount = d.mnemonic === Mnemonic.Fcompp || d.mnemonic === Mnemonic.Fucompp ? 2 : ms.length > 1 && d.mnemonic === ms[1] ? pops : 0;
    const run = (s: CpuState, b: F80 | null, bEmpty: boolean): void => {
      let r = F.CMP_UN;
      const fault = isEmpty(s, 0) || bEmpty ? UNDERFLOW : NO_FAULT;
      if (fault === NO_FAULT) r = F.compare80(get(s, 0), b!, env, signaling);
      const fsw = status(s, fault, false, x, false);
      if (fsw === null) {
        s.fsw = setCc(s.fsw, r);
        return;
      }
      s.fsw = setCc(fsw, r);
      for (let k = 0; k < popCount; k++) pop(s);
    };
    if (d.mnemonic === Mnemonic.Ftst) {
      return (s) => {
        begin(s, ip);
        run(s, F.F80_ZERO, false);
      };
    }
    if (d.mem) {
      const ea = x.ea!;
      const load = memLoader(d, integer);
      return (s) => {
        begin(s, ip);
        const b = load(s, ea(s));
        if (isEmpty(s, 0)) env.flags = 0;
        run(s, b, false);
      };
    }
    const regs = stOps(d);
    const j = regs.length === 0 ? 1 : regs[regs.length - 1]!;
    return (s) => {
      begin(s, ip);
      const e = isEmpty(s, j);
      run(s, e ? null : get(s, j), e);
    };
  });
}

defineCompare([Mnemonic.Fcom, Mnemonic.Fcomp, Mnemonic.Fcompp], true, 1, false);
defineCompare([Mnemonic.Fucom, Mnemonic.Fucomp, Mnemonic.Fucompp], false, 1, false);
defineCompare([Mnemonic.Ficom, Mnemonic.Ficomp], true, 1, true);
defineCompare([Mnemonic.Ftst], true, 0, false);

const EFLAGS_OF = [CF, ZF, 0, ZF | PF | CF];

/** fcomi/fcomip/fucomi/fucomip: ZF, PF, CF (OF, SF, AF cleared); C1 is left alone. */
define([Mnemonic.Fcomi, Mnemonic.Fcomip, Mnemonic.Fucomi, Mnemonic.Fucomip], (d) => {
  const ip = BigInt(d.rip);
  const x = site(d);
  const signaling = d.mnemonic === Mnemonic.Fcomi || d.mnemonic === Mnemonic.Fcomip;
  const popAfter = d.mnemonic === Mnemonic.Fcomip || d.mnemonic === Mnemonic.Fucomip;
  const regs = stOps(d);
  const j = regs.length === 0 ? 1 : regs[regs.length - 1]!;
  return (s) => {
    begin(s, ip);
    let r = F.CMP_UN;
    const fault = isEmpty(s, 0) || isEmpty(s, j) ? UNDERFLOW : NO_FAULT;
    if (fault === NO_FAULT) r = F.compare80(get(s, 0), get(s, j), env, signaling);
    const fsw = status(s, fault, null, x, false);
    setEager(s, EFLAGS_OF[r]!);
    if (fsw === null) return;
    s.fsw = fsw;
    if (popAfter) pop(s);
  };
});

define(Mnemonic.Fxam, (d) => {
  const ip = BigInt(d.rip);
  return (s) => {
    begin(s, ip);
    const v = get(s, 0);
    const cls = isEmpty(s, 0) ? 5 : F.fxamClass(v);
    s.fsw = (s.fsw & ~CC_MASK) | (cls & 1 ? C0 : 0) | (cls & 2 ? C2 : 0) | (cls & 4 ? C3 : 0) | (v.sign ? C1 : 0);
  };
});

// --- register moves

define(Mnemonic.Fxch, (d) => {
  const ip = BigInt(d.rip);
  const x = site(d);
  const regs = stOps(d);
  const j = regs.length === 0 ? 1 : regs[regs.length - 1]!;
  return (s) => {
    begin(s, ip);
    const e0 = isEmpty(s, 0);
    const ej = isEmpty(s, j);
    const fsw = status(s, e0 || ej ? UNDERFLOW : NO_FAULT, false, x, true);
    if (fsw === null) return;
    s.fsw = fsw;
    const a = e0 ? F.F80_INDEFINITE : get(s, 0);
    const b = ej ? F.F80_INDEFINITE : get(s, j);
    put(s, 0, b);
    put(s, j, a);
  };
});

const CMOV: [Mnemonic, (s: CpuState) => boolean][] = [
  [Mnemonic.Fcmovb, (s) => (readArith(s) & CF) !== 0],
  [Mnemonic.Fcmove, (s) => (readArith(s) & ZF) !== 0],
  [Mnemonic.Fcmovbe, (s) => (readArith(s) & (CF | ZF)) !== 0],
  [Mnemonic.Fcmovu, (s) => (readArith(s) & PF) !== 0],
  [Mnemonic.Fcmovnb, (s) => (readArith(s) & CF) === 0],
  [Mnemonic.Fcmovne, (s) => (readArith(s) & ZF) === 0],
  [Mnemonic.Fcmovnbe, (s) => (readArith(s) & (CF | ZF)) === 0],
  [Mnemonic.Fcmovnu, (s) => (readArith(s) & PF) === 0],
];

for (const [m, cond] of CMOV) {
  define(m, (d) => {
    const ip = BigInt(d.rip);
    const x = site(d);
    const regs = stOps(d);
    const j = regs[regs.length - 1];
    if (j === undefined) throw new NotImplemented('fcmov without a source');
    return (s) => {
      begin(s, ip);
      if (isEmpty(s, 0) || isEmpty(s, j)) {
        storeArith(s, 0, F.F80_INDEFINITE, UNDERFLOW, false, x);
        return;
      }
      if (cond(s)) put(s, 0, get(s, j));
    };
  });
}

define([Mnemonic.Ffree, Mnemonic.Ffreep], (d) => {
  const ip = BigInt(d.rip);
  const [i] = stOps(d);
  if (i === undefined) throw new NotImplemented('ffree without an operand');
  const popAfter = d.mnemonic === Mnemonic.Ffreep;
  return (s) => {
    begin(s, ip);
    s.fsw &= ~C1;
    s.ftw &= ~(1 << ((top(s) + i) & 7));
    if (popAfter) pop(s);
  };
});

define([Mnemonic.Fincstp, Mnemonic.Fdecstp], (d) => {
  const ip = BigInt(d.rip);
  const delta = d.mnemonic === Mnemonic.Fincstp ? 1 : -1;
  return (s) => {
    begin(s, ip);
    s.fsw &= ~C1;
    moveTop(s, delta);
  };
});

// --- environment: fnstenv/fldenv (28 bytes), fnsave/frstor (108 bytes)

/** The full tag word (2 bits per physical register: 00 valid, 01 zero, 10 special, 11 empty). */
function fullTag(s: CpuState): number {
  const t = top(s);
  let tw = 0;
  for (let r = 0; r < 8; r++) {
    let tag = 3;
    if ((s.ftw >> r) & 1) {
      const v = get(s, (r - t) & 7);
      if (v.exp === 0) tag = v.sig === 0n ? 1 : 2;
      else if (v.exp === F.EXP_INF || (v.sig >> 63n) === 0n) tag = 2;
      else tag = 0;
    }
    tw |= tag << (2 * r);
  }
  return tw;
}

function writeEnv(s: CpuState, b: Uint8Array): void {
  const v = new DataView(b.buffer, b.byteOffset, 28);
  v.setUint32(0, (0xffff0000 | s.fcw) >>> 0, true);
  v.setUint32(4, (0xffff0000 | s.fsw) >>> 0, true);
  v.setUint32(8, (0xffff0000 | fullTag(s)) >>> 0, true);
  v.setUint32(12, Number(s.fip & 0xffffffffn), true);
  v.setUint32(16, ((s.fop & 0x7ff) << 16) >>> 0, true);
  v.setUint32(20, Number(s.fdp & 0xffffffffn), true);
  v.setUint32(24, 0xffff0000, true);
}

function readEnv(s: CpuState, b: Uint8Array): void {
  const v = new DataView(b.buffer, b.byteOffset, 28);
  s.fcw = (v.getUint16(0, true) & FCW_BITS) | FCW_ONES;
  const fsw = v.getUint16(4, true);
  setTop(s, (fsw >> 11) & 7);
  s.fsw = fsw;
  const tw = v.getUint16(8, true);
  let ftw = 0;
  for (let r = 0; r < 8; r++) if (((tw >> (2 * r)) & 3) !== 3) ftw |= 1 << r;
  s.ftw = ftw;
  s.fip = BigInt(v.getUint32(12, true));
  s.fop = (v.getUint32(16, true) >>> 16) & 0x7ff;
  s.fdp = BigInt(v.getUint32(20, true));
  if ((s.fsw & ~s.fcw & 0x3f) !== 0) s.fsw |= ES | BUSY;
  else s.fsw &= ~(ES | BUSY);
}

function fwaitCheck(s: CpuState): void {
  if ((s.fsw & ES) !== 0) throw new GuestException(VEC_MF, 0, 0);
}

define([Mnemonic.Fnstenv, Mnemonic.Fstenv], (d) => {
  const ea = memEa(d);
  if (d.mem!.size !== 28) throw new NotImplemented('16-bit environment format');
  const wait = d.mnemonic === Mnemonic.Fstenv;
  return (s) => {
    if (wait) fwaitCheck(s);
    const a = ea(s);
    writeEnv(s, TMP);
    s.mem.writeBytes(a, TMP, 28);
    s.fcw |= 0x3f;
  };
});

define(Mnemonic.Fldenv, (d) => {
  const ea = memEa(d);
  if (d.mem!.size !== 28) throw new NotImplemented('16-bit environment format');
  return (s) => {
    s.mem.readBytes(ea(s), TMP, 28);
    readEnv(s, TMP);
  };
});

define([Mnemonic.Fnsave, Mnemonic.Fsave], (d) => {
  const ea = memEa(d);
  if (d.mem!.size !== 108) throw new NotImplemented('16-bit save format');
  const wait = d.mnemonic === Mnemonic.Fsave;
  return (s) => {
    if (wait) fwaitCheck(s);
    const a = ea(s);
    writeEnv(s, TMP);
    TMP.set(s.st, 28);
    s.mem.writeBytes(a, TMP, 108);
    s.fcw = 0x37f;
    s.fsw = 0;
    s.ftw = 0;
    s.fop = 0;
    s.fip = 0n;
    s.fdp = 0n;
  };
});

define(Mnemonic.Frstor, (d) => {
  const ea = memEa(d);
  if (d.mem!.size !== 108) throw new NotImplemented('16-bit save format');
  return (s) => {
    s.mem.readBytes(ea(s), TMP, 108);
    readEnv(s, TMP);
    s.st.set(TMP.subarray(28, 108));
  };
});
