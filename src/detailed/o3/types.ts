/**
 * Shared vocabulary of the detailed (gem5 O3-style) CPU. The functional core executes each
 * instruction (architectural results come from it) and emits a `DynInst` with what timing
 * needs: µops with their class and architectural registers, memory addresses, and the branch
 * outcome. The pipeline (fetch … commit), the branch predictors and the memory hierarchy only
 * model time; they never change architectural state.
 */

/** Functional-unit classes of µops (gem5's OpClass, trimmed to what x86-64 user code needs). */
export type OpClass =
  | 'IntAlu'
  | 'IntMult'
  | 'IntDiv'
  | 'FloatAdd'
  | 'FloatCmp'
  | 'FloatCvt'
  | 'FloatMult'
  | 'FloatDiv'
  | 'FloatSqrt'
  | 'SimdAlu'
  | 'SimdMult'
  | 'SimdShuffle'
  | 'MemRead'
  | 'MemWrite'
  | 'Branch'
  | 'Nop'
  /** Waits for the pipeline to drain before and after (syscall, cpuid, fences, x87 control). */
  | 'Serialize';

/**
 * Register ids used for dependences: 0–15 GPRs (x86 order), 16 RFLAGS, 17–32 xmm0–15,
 * 33 MXCSR, 34 x87 stack (one token), 35 the µop temporary that carries a loaded value to the
 * instruction's compute µop.
 */
export const REG_FLAGS = 16;
export const REG_XMM0 = 17;
export const REG_MXCSR = 33;
export const REG_X87 = 34;
export const REG_TMP = 35;
export const NUM_ARCH_REGS = 36;

export interface MemRef {
  /** Virtual address. */
  addr: number;
  size: number;
}

export interface MicroOp {
  cls: OpClass;
  /** Architectural registers read / written (ids above). */
  srcs: readonly number[];
  dsts: readonly number[];
  /** For MemRead / MemWrite µops. */
  mem?: MemRef;
  /**
   * Optional precomputed facts (the trace front fills them; decode computes them otherwise):
   * the OPCLASS_INDEX of `cls`, and how many of `dsts` are integer / FP registers.
   */
  clsIdx?: number;
  nIntDsts?: number;
  nFpDsts?: number;
}

export type BranchKind = 'cond' | 'uncond' | 'call' | 'ret' | 'indirect' | 'indirectCall';

export interface BranchInfo {
  kind: BranchKind;
  taken: boolean;
  /** The actual next rip when taken (the target). */
  target: number;
}

export interface DynInst {
  /** Dynamic sequence number, from 0. */
  seq: number;
  pc: number;
  len: number;
  /** The rip of the next instruction actually executed. */
  nextPc: number;
  uops: readonly MicroOp[];
  branch?: BranchInfo;
  /** Disassembly-free mnemonic name, for stats and debugging. */
  mnemonic: string;
}

/** Produces the committed instruction stream, in program order. */
export interface InstStream {
  /** The next instruction, or null when the program ended (exit, fault) or the limit was hit. */
  next(): DynInst | null;
}

/** One parameter of a model: default and one-line description (gem5 style). */
export interface ParamSpec<T = number | boolean | string> {
  default: T;
  desc: string;
}

export type ParamSpecs = Record<string, ParamSpec>;

/** The values of a spec table. */
export type ParamValues<S extends ParamSpecs> = { -readonly [K in keyof S]: S[K]['default'] };

export function defaults<S extends ParamSpecs>(specs: S): ParamValues<S> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(specs)) out[k] = v.default;
  return out as ParamValues<S>;
}
