/**
 * Shared plumbing of the SSE files: XMM operand access, the scratch area sources are loaded
 * into, 16-byte alignment checks, MXCSR bits and the #XM rule.
 *
 * Sources are copied into a module-level scratch block first (registers: four 32-bit words;
 * memory: one read, after the alignment check), so an instruction whose source and destination
 * are the same register needs no special case, and a faulting load changes nothing. Execution
 * is single-threaded, so one scratch block serves every CPU.
 */
import { Decoder, DecoderOptions, Formatter, FormatterSyntax, Mnemonic, Register } from 'iced-x86';
import { hexBytes } from '../../guest/disasm.js';
import type { DecodeInfo } from '../decodeInfo.js';
import { GuestException, UnsupportedInstructionError, VEC_GP, VEC_XM } from '../errors.js';
import { makeEa, xmmOf, type EaFn } from '../operands.js';
import type { CpuState } from '../state.js';
import { NotImplemented, type Exec } from './registry.js';

// --- MXCSR
export const MX_IE = 0x1;
export const MX_DE = 0x2;
export const MX_ZE = 0x4;
export const MX_OE = 0x8;
export const MX_UE = 0x10;
export const MX_PE = 0x20;
export const MX_DAZ = 0x40;
export const MX_PM = 0x1000;
export const MX_RC_SHIFT = 13;
export const MX_RC = 0x6000;
export const MX_FTZ = 0x8000;
/** Bits ldmxcsr/fxrstor accept (MXCSR_MASK of the CPUs we run on: DAZ supported). */
export const MXCSR_MASK = 0xffff;

/**
 * Merges the exception flags an instruction raised into MXCSR and raises #XM (SIGFPE) when one
 * of them is unmasked. Call it before writing the destination: an unmasked exception leaves
 * the destination unchanged.
 */
export function raiseMx(s: CpuState, flags: number): void {
  const mx = s.mxcsr;
  s.mxcsr = mx | flags;
  if ((flags & ~(mx >>> 7) & 0x3f) !== 0) throw new GuestException(VEC_XM, 0, 0);
}

/**
 * Folds per-lane flags the way the hardware does: when a pre-computation exception (IE, DE, ZE)
 * is unmasked, the instruction stops before computing, so only those flags are recorded.
 */
export function raiseMxPrePost(s: CpuState, pre: number, post: number): void {
  const unmasked = ~(s.mxcsr >>> 7) & 0x3f;
  if ((pre & unmasked) !== 0) raiseMx(s, pre);
  else raiseMx(s, pre | post);
}

// --- scratch

const SCRATCH = new ArrayBuffer(64);
/** Source operand (bytes 0–15) and result staging (bytes 16–31), in every width. */
export const S8 = new Uint8Array(SCRATCH);
export const SI8 = new Int8Array(SCRATCH);
export const S16 = new Uint16Array(SCRATCH);
export const SI16 = new Int16Array(SCRATCH);
export const S32 = new Int32Array(SCRATCH);
export const SU32 = new Uint32Array(SCRATCH);
export const SF32 = new Float32Array(SCRATCH);
export const SF64 = new Float64Array(SCRATCH);

export type Load = (s: CpuState) => void;

export function isXmm(d: DecodeInfo, i: number): boolean {
  const k = d.ops[i];
  return k?.kind === 'reg' && xmmOf(k.reg) !== undefined;
}

/** XMM register number of operand i (NotImplemented for MMX and anything else). */
export function xmmReg(d: DecodeInfo, i: number): number {
  const k = d.ops[i];
  if (k?.kind === 'reg') {
    const x = xmmOf(k.reg);
    if (x !== undefined) return x;
    if (k.reg >= Register.MM0 && k.reg <= Register.MM7) throw new NotImplemented('MMX register forms are not supported');
  }
  throw new NotImplemented(`operand ${i} is not an XMM register`);
}

/** Rejects MMX forms (any MMn operand) at build time. */
export function rejectMmx(d: DecodeInfo): void {
  for (const k of d.ops) {
    if (k.kind === 'reg' && k.reg >= Register.MM0 && k.reg <= Register.MM7) {
      throw new NotImplemented('MMX register forms are not supported');
    }
  }
}

export function alignCheck(ea: EaFn): EaFn {
  return (s) => {
    const a = ea(s);
    if (a % 16 !== 0) throw new GuestException(VEC_GP, 0, 0);
    return a;
  };
}

/** Effective address of the memory operand, optionally checked for 16-byte alignment. */
export function memEa(d: DecodeInfo, aligned: boolean): EaFn {
  const ea = makeEa(d.mem!);
  return aligned ? alignCheck(ea) : ea;
}

/**
 * Loads operand i (an XMM register or memory) into scratch bytes 0..15. `size` is the number of
 * bytes a memory form reads (16, 8, 4, 2 or 1; the rest of the scratch is left as it was);
 * legacy SSE 16-byte memory operands must be aligned unless `unaligned` is set.
 */
export function loadSrc(d: DecodeInfo, i: number, size = 16, unaligned = false): Load {
  const k = d.ops[i];
  if (k?.kind === 'mem') {
    const sz = d.mem!.size || size;
    const ea = memEa(d, sz === 16 && !unaligned);
    switch (sz) {
      case 16:
        return (s) => s.mem.readBytes(ea(s), S8, 16);
      case 8:
        return (s) => {
          const m = s.mem;
          SU32[0] = m.read64(ea(s));
          SU32[1] = m.hi;
        };
      case 4:
        return (s) => {
          SU32[0] = s.mem.read32(ea(s));
        };
      case 2:
        return (s) => {
          S16[0] = s.mem.read16(ea(s));
        };
      case 1:
        return (s) => {
          S8[0] = s.mem.read8(ea(s));
        };
      default:
        throw new NotImplemented(`memory operand of ${sz} bytes`);
    }
  }
  const r = xmmReg(d, i) * 4;
  return (s) => {
    const x = s.xmm32;
    S32[0] = x[r]!;
    S32[1] = x[r + 1]!;
    S32[2] = x[r + 2]!;
    S32[3] = x[r + 3]!;
  };
}

/** Copies the staged result (scratch bytes 16..31) into XMM register `x`. */
export function storeStaged(s: CpuState, x: number): void {
  const o = x * 4;
  const v = s.xmm32;
  v[o] = S32[4]!;
  v[o + 1] = S32[5]!;
  v[o + 2] = S32[6]!;
  v[o + 3] = S32[7]!;
}

/** The 8-bit immediate of operand i. */
export function imm8(d: DecodeInfo, i: number): number {
  const k = d.ops[i];
  if (k?.kind !== 'imm') throw new NotImplemented(`operand ${i} is not an immediate`);
  return Number(k.value & 0xffn);
}

/**
 * An instruction form we recognise but do not implement: built normally, raises the typed
 * unsupported-instruction error when (and only when) it executes in that form.
 */
export function unsupportedAtRuntime(d: DecodeInfo, why: string): UnsupportedInstructionError {
  const err = new UnsupportedInstructionError(d.rip, hexBytes(d.bytes), disassembly(d), mnemonicText(d));
  (err as { detail?: string }).detail = why;
  return err;
}

function disassembly(d: DecodeInfo): string {
  try {
    const dec = new Decoder(64, d.bytes, DecoderOptions.None);
    dec.ip = BigInt(d.rip);
    const ins = dec.decode();
    const out = new Formatter(FormatterSyntax.Intel).format(ins);
    ins.free();
    dec.free();
    return out;
  } catch {
    return '(no disassembly)';
  }
}

function mnemonicText(d: DecodeInfo): string {
  for (const [k, v] of Object.entries(Mnemonic)) if (v === d.mnemonic) return k.toLowerCase();
  return `mnemonic ${d.mnemonic}`;
}

export type { Exec };
