/**
 * Which rflags bits a comparison may ignore.
 *
 * The architecture leaves some arithmetic flags undefined after some instructions (Intel SDM
 * vol. 1 appendix A, "EFLAGS Cross-Reference"; AMD APM vol. 3 appendix C): a real CPU writes
 * *something* there, and a correct functional model may write something else. A difference in
 * such a flag is not a bug — unless a later instruction overwrote the flag with a defined value,
 * in which case it must match again. So the mask is per flag: a flag is masked at a given point
 * iff the LAST instruction that wrote it (on the path taken) left it undefined. When the path is
 * not known statically (a conditional forward branch in a random snippet), a flag is masked if
 * that holds on any path. Instructions that do not write flags (mov, lea, jcc, SSE moves…) are
 * transparent.
 *
 * The per-instruction "writes" and "leaves undefined" sets come from iced-x86's instruction info
 * (`Instruction.rflagsModified` / `rflagsUndefined`), which is data-dependent where the
 * instruction is: a shift by an immediate 0 writes nothing, by 1 defines OF; a shift by CL is
 * taken as the worst case (OF and AF undefined). docs/undefined-flags.md lists the table for
 * every form the generator emits (regenerate with `npm run difftest -- --flags-doc`).
 *
 * Never compared at all: TF (our single-step trap flag) and RF (set in exception frames).
 */
import { RflagsBits } from 'iced-x86';

export const CF = 0x1;
export const PF = 0x4;
export const AF = 0x10;
export const ZF = 0x40;
export const SF = 0x80;
export const TF = 0x100;
export const IF = 0x200;
export const DF = 0x400;
export const OF = 0x800;
export const RF = 0x10000;
export const AC = 0x40000;
export const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;
/** rflags bits that are never compared. */
export const IGNORED_RFLAGS = TF | RF;

export const FLAG_NAMES: readonly [number, string][] = [
  [CF, 'CF'], [PF, 'PF'], [AF, 'AF'], [ZF, 'ZF'], [SF, 'SF'], [TF, 'TF'], [IF, 'IF'], [DF, 'DF'], [OF, 'OF'],
  [0x4000, 'NT'], [RF, 'RF'], [AC, 'AC'], [0x200000, 'ID'],
];

/** iced-x86's RflagsBits (its own bit order) → EFLAGS bit positions. */
export function ifcFlagsToEflags(bits: number): number {
  let out = 0;
  if (bits & RflagsBits.OF) out |= OF;
  if (bits & RflagsBits.SF) out |= SF;
  if (bits & RflagsBits.ZF) out |= ZF;
  if (bits & RflagsBits.AF) out |= AF;
  if (bits & RflagsBits.CF) out |= CF;
  if (bits & RflagsBits.PF) out |= PF;
  if (bits & RflagsBits.DF) out |= DF;
  if (bits & RflagsBits.IF) out |= IF;
  if (bits & RflagsBits.AC) out |= AC;
  return out;
}

export function flagNames(bits: number): string {
  const names = FLAG_NAMES.filter(([b]) => bits & b).map(([, n]) => n);
  return names.length ? names.join(' ') : '-';
}

/**
 * Tracks the undefined-flag set along an executed instruction stream (lockstep per instruction):
 * after each instruction, flags it wrote are defined again unless it left them undefined.
 */
export class UndefinedFlagsTracker {
  /** Flags whose last writer left them undefined. */
  undefinedNow = 0;

  step(flagsModified: number, flagsUndefined: number): void {
    this.undefinedNow = (this.undefinedNow & ~flagsModified) | flagsUndefined;
  }

  reset(): void {
    this.undefinedNow = 0;
  }
}
