/**
 * Architectural state of the functional x86-64 core, laid out for speed in JS:
 * - GPRs as 32-bit halves in one Int32Array: g[2r] = low half, g[2r+1] = high half, r in x86
 *   encoding order (rax=0 … r15=15). Hot paths never touch BigInt.
 * - Arithmetic flags are lazy (flags.ts): the last flag-writing operation is recorded and the
 *   flags are computed only when something reads them.
 * - XMM registers in one 256-byte buffer with typed views of every width.
 */
import { Gpr } from '../guest/threadContext.js';
import type { GuestMemory } from './memory.js';
import type { CpuidLookup } from './cpuidTable.js';

export const enum CcOp {
  /** Flags are in `eflags` already. */
  Eager = 0,
  Add,
  Adc,
  Sub,
  Sbb,
  Logic,
  Inc,
  Dec,
}

export const CF = 0x1;
export const PF = 0x4;
export const AF = 0x10;
export const ZF = 0x40;
export const SF = 0x80;
export const TF = 0x100;
export const IF = 0x200;
export const DF = 0x400;
export const OF = 0x800;
export const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;

/** What ended a block early: a syscall or another event the CPU loop must serve. */
export const enum Event {
  None = 0,
  Syscall = 1,
  /** m5op magic instruction (0F 04 imm16): `eventArg` is the function. */
  M5op = 2,
}

export class CpuState {
  /** Guest memory, set by the CPU that owns this state. */
  mem!: GuestMemory;
  /** CPUID answers (the table the guest sees under KVM). */
  cpuid!: CpuidLookup;
  /** GPR halves: g[2r] low, g[2r+1] high (signed int32 storage; read unsigned with >>> 0). */
  readonly g = new Int32Array(32);
  rip = 0;
  fsBase = 0;
  gsBase = 0;

  // Lazy flags: op kind, operand size in bytes, result and operands (unsigned 32-bit halves).
  ccOp: CcOp = CcOp.Eager;
  ccSize = 4;
  ccRes = 0;
  ccResHi = 0;
  ccA = 0;
  ccAHi = 0;
  ccB = 0;
  ccBHi = 0;
  /** Carry-in for ADC/SBB, preserved CF for INC/DEC. */
  ccC = 0;
  /**
   * The flag word. Arithmetic flags here are valid only when ccOp is Eager; the other bits
   * (DF, IF, TF, AC, ID, bit 1) always live here.
   */
  eflags = 0x202;

  /** Scratch: high half of the last 64-bit operand read. */
  hi = 0;

  readonly xmmBuf = new ArrayBuffer(256);
  readonly xmm8 = new Uint8Array(this.xmmBuf);
  readonly xmm16 = new Uint16Array(this.xmmBuf);
  readonly xmm32 = new Int32Array(this.xmmBuf);
  readonly xmmU32 = new Uint32Array(this.xmmBuf);
  readonly xmmF32 = new Float32Array(this.xmmBuf);
  readonly xmmF64 = new Float64Array(this.xmmBuf);
  mxcsr = 0x1f80;
  /** XCR0 (low half) as xgetbv returns it: x87 | SSE | AVX unless the KVM-captured value says otherwise. */
  xcr0 = 0x7;

  // x87 state (isa/x87.ts: control instructions, FXSAVE; isa/x87-arith.ts: the arithmetic).
  // `st` holds ST(0)…ST(7) RELATIVE TO TOP, 10 bytes each (the FXSAVE / KVM XSAVE legacy-area /
  // ThreadContext order), while `ftw` is the abridged tag word by PHYSICAL register (bit j set =
  // Rj valid): ST(i) is valid when bit (TOP + i) & 7 is set, TOP being fsw bits 11–13. Pushes
  // and pops rotate `st` so the physical registers keep their contents.
  fcw = 0x37f;
  fsw = 0;
  ftw = 0;
  fop = 0;
  fip = 0n;
  fdp = 0n;
  readonly st = new Uint8Array(80);

  /** Instructions retired. */
  instructions = 0;
  /** Set by a fused block (decode.ts fuseBlock) when instruction `faultIndex` raised. */
  faultIndex = 0;
  event: Event = Event.None;
  eventArg = 0;

  getReg64(r: number): bigint {
    return (BigInt(this.g[2 * r + 1]! >>> 0) << 32n) | BigInt(this.g[2 * r]! >>> 0);
  }

  setReg64(r: number, v: bigint): void {
    this.g[2 * r] = Number(v & 0xffffffffn) | 0;
    this.g[2 * r + 1] = Number((v >> 32n) & 0xffffffffn) | 0;
  }

  get rsp(): number {
    return (this.g[2 * Gpr.rsp + 1]! >>> 0) * 4294967296 + (this.g[2 * Gpr.rsp]! >>> 0);
  }
}

/**
 * A 32-bit fingerprint of the 16 GPRs (the `g` halves, or a ThreadContext's gpr via
 * `gprFingerprintOf`): tells apart loop iterations at the same rip when matching states.
 */
export function gprFingerprint(g: Int32Array): number {
  // Runs before every traced instruction, so it is cheap: a multiplicative chain over the low
  // halves (order-sensitive: swapped registers differ) and a shift-add chain over the high halves.
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < 32; i += 2) {
    lo = Math.imul(lo ^ g[i]!, 0x9e3779b1);
    hi = (hi + g[i + 1]!) ^ (hi >>> 7);
  }
  return (lo ^ hi) | 0;
}

export function gprFingerprintOf(gpr: readonly bigint[]): number {
  const g = new Int32Array(32);
  for (let r = 0; r < 16; r++) {
    const v = BigInt.asUintN(64, gpr[r] ?? 0n);
    g[2 * r] = Number(v & 0xffffffffn) | 0;
    g[2 * r + 1] = Number(v >> 32n) | 0;
  }
  return gprFingerprint(g);
}
