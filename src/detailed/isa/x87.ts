/**
 * x87 control instructions (what libc start-up and fenv code use) and FXSAVE/FXRSTOR; the
 * arithmetic (fld/fadd/…, as musl's printf needs) is in x87-arith.ts. emms is a no-op (the MMX
 * state is the x87 state, which nothing here changes).
 */
import { Mnemonic } from 'iced-x86';
import { Gpr } from '../../guest/threadContext.js';
import type { DecodeInfo } from '../decodeInfo.js';
import { GuestException, VEC_GP, VEC_MF } from '../errors.js';
import { makeEa } from '../operands.js';
import type { CpuState } from '../state.js';
import { define, NotImplemented, type Exec } from './registry.js';
import { alignCheck, MXCSR_MASK } from './sse-common.js';

/** FSW exception summary (ES) and busy (B) bits, set while an unmasked exception is pending. */
const FSW_ES = 0x80;
const FSW_B = 0x8000;
/** The control word bits that exist (measured: 7 and 13–15 read as 0, 6 as 1). */
const FCW_BITS = 0x1f3f;
const FCW_ONES = 0x40;

/** Recomputes ES/B from the exception flags and masks (after fldcw, fxrstor). */
function updateSummary(s: CpuState): void {
  if ((s.fsw & ~s.fcw & 0x3f) !== 0) s.fsw |= FSW_ES | FSW_B;
  else s.fsw &= ~(FSW_ES | FSW_B);
}

function memEa(d: DecodeInfo) {
  if (!d.mem) throw new NotImplemented('register form');
  return makeEa(d.mem);
}

define([Mnemonic.Fnstcw, Mnemonic.Fstcw], (d) => {
  const ea = memEa(d);
  const wait = d.mnemonic === Mnemonic.Fstcw;
  return (s) => {
    if (wait) fwait(s);
    s.mem.write16(ea(s), s.fcw & 0xffff);
  };
});

define(Mnemonic.Fldcw, (d) => {
  const ea = memEa(d);
  return (s) => {
    s.fcw = (s.mem.read16(ea(s)) & FCW_BITS) | FCW_ONES;
    updateSummary(s);
  };
});

define([Mnemonic.Fnstsw, Mnemonic.Fstsw], (d) => {
  const wait = d.mnemonic === Mnemonic.Fstsw;
  const k = d.ops[0];
  if (k?.kind === 'reg') {
    // fnstsw ax
    return (s) => {
      if (wait) fwait(s);
      s.g[Gpr.rax * 2] = (s.g[Gpr.rax * 2]! & ~0xffff) | (s.fsw & 0xffff);
    };
  }
  const ea = memEa(d);
  return (s) => {
    if (wait) fwait(s);
    s.mem.write16(ea(s), s.fsw & 0xffff);
  };
});

function fninit(s: CpuState): void {
  s.fcw = 0x37f;
  s.fsw = 0;
  s.ftw = 0;
  s.fop = 0;
  s.fip = 0n;
  s.fdp = 0n;
}

/** A waiting x87 instruction reports a pending unmasked exception (#MF → SIGFPE). */
function fwait(s: CpuState): void {
  if ((s.fsw & FSW_ES) !== 0) throw new GuestException(VEC_MF, 0, 0);
}

define(Mnemonic.Fninit, () => fninit);
define(Mnemonic.Finit, () => (s) => {
  fwait(s);
  fninit(s);
});
define(Mnemonic.Wait, () => fwait);
define(Mnemonic.Fnclex, () => (s) => {
  s.fsw &= ~0x80ff;
});
define(Mnemonic.Fclex, () => (s) => {
  fwait(s);
  s.fsw &= ~0x80ff;
});
define(Mnemonic.Fnop, () => (s) => fwait(s));
define(Mnemonic.Emms, () => () => {});

// --- FXSAVE / FXRSTOR (512-byte legacy area, 16-byte aligned)

const AREA = new Uint8Array(512);
const AV = new DataView(AREA.buffer);

/**
 * fxsave: the 64-bit layout with REX.W (FIP/FDP as 64-bit offsets), the 32-bit one without
 * (FIP, FCS, FDP, FDS; the selectors read as 0 on CPUs that deprecate them, as ours do).
 * Bytes 416–511 are not written.
 */
function fxsave(wide: boolean) {
  return (d: DecodeInfo): Exec => {
    const ea = alignCheck(memEa(d));
    return (s) => {
      const a = ea(s);
      const m = s.mem;
      AV.setUint16(0, s.fcw, true);
      AV.setUint16(2, s.fsw, true);
      AV.setUint8(4, s.ftw);
      AV.setUint8(5, 0);
      AV.setUint16(6, s.fop, true);
      if (wide) {
        AV.setBigUint64(8, s.fip, true);
        AV.setBigUint64(16, s.fdp, true);
      } else {
        AV.setUint32(8, Number(s.fip & 0xffffffffn), true);
        AV.setUint32(12, 0, true);
        AV.setUint32(16, Number(s.fdp & 0xffffffffn), true);
        AV.setUint32(20, 0, true);
      }
      AV.setUint32(24, s.mxcsr, true);
      AV.setUint32(28, MXCSR_MASK, true);
      for (let i = 0; i < 8; i++) {
        AREA.set(s.st.subarray(i * 10, i * 10 + 10), 32 + i * 16);
        AREA.fill(0, 32 + i * 16 + 10, 32 + i * 16 + 16);
      }
      AREA.set(s.xmm8, 160);
      m.writeBytes(a, AREA, 416);
    };
  };
}
define(Mnemonic.Fxsave, fxsave(false));
define(Mnemonic.Fxsave64, fxsave(true));

function fxrstor(wide: boolean) {
  return (d: DecodeInfo): Exec => {
    const ea = alignCheck(memEa(d));
    return (s) => {
      const a = ea(s);
      s.mem.readBytes(a, AREA, 512);
      const mx = AV.getUint32(24, true);
      if ((mx & ~MXCSR_MASK) !== 0) throw new GuestException(VEC_GP, 0, 0);
      s.fcw = (AV.getUint16(0, true) & FCW_BITS) | FCW_ONES;
      s.fsw = AV.getUint16(2, true);
      s.ftw = AV.getUint8(4);
      s.fop = AV.getUint16(6, true) & 0x7ff;
      if (wide) {
        // FIP holds 57 bits (measured: bits 63:57 read back as copies of bit 56); FDP all 64.
        s.fip = BigInt.asUintN(64, BigInt.asIntN(57, AV.getBigUint64(8, true)));
        s.fdp = AV.getBigUint64(16, true);
      } else {
        s.fip = BigInt(AV.getUint32(8, true));
        s.fdp = BigInt(AV.getUint32(16, true));
      }
      s.mxcsr = mx;
      for (let i = 0; i < 8; i++) s.st.set(AREA.subarray(32 + i * 16, 32 + i * 16 + 10), i * 10);
      s.xmm8.set(AREA.subarray(160, 416));
      updateSummary(s);
    };
  };
}
define(Mnemonic.Fxrstor, fxrstor(false));
define(Mnemonic.Fxrstor64, fxrstor(true));
