/**
 * gem5 pseudo-instructions (m5ops), shared by every CPU model. Function numbers are gem5's
 * (include/gem5/asm/generic/m5ops.h), so programs annotated for gem5 run unchanged. Two forms
 * reach a model: the magic instruction `0F 04 imm16` and an access to M5OP_VADDR + (func << 8).
 * Arguments are in rdi and rsi; the result (always 0 here) goes to rax.
 *
 * exit and fail end the guest inside the model. Every other op completes its instruction and
 * stops the model with an `M5OpCall`, so the driver (System) acts on it at an exact point.
 */
export const M5Op = {
  exit: 0x21,
  fail: 0x22,
  resetStats: 0x40,
  dumpStats: 0x41,
  dumpResetStats: 0x42,
  checkpoint: 0x43,
  switchCpu: 0x52,
  workBegin: 0x5a,
  workEnd: 0x5b,
} as const;

export const M5OP_NAMES: Readonly<Record<number, string>> = {
  0x21: 'exit', 0x22: 'fail', 0x40: 'reset_stats', 0x41: 'dump_stats', 0x42: 'dump_reset_stats',
  0x43: 'checkpoint', 0x52: 'switch_cpu', 0x5a: 'work_begin', 0x5b: 'work_end',
};

/** An m5op the model stopped at; the instruction has completed (rip is past it, rax = 0). */
export interface M5OpCall {
  func: number;
  name: string;
  /** rdi, rsi at the op. */
  args: [bigint, bigint];
  /** 'inst' = 0F 04 imm16; 'addr' = access to the m5op page. */
  form: 'inst' | 'addr';
}

/** True for ops a model handles itself (they end the guest). */
export function endsGuest(func: number): boolean {
  return func === M5Op.exit || func === M5Op.fail;
}

/** The exit status of exit/fail: gem5's m5_fail(delay, code) exits with `code`. */
export function m5ExitStatus(func: number, args: readonly [bigint, bigint]): number {
  return func === M5Op.fail ? Number(args[1] & 0xffn) : 0;
}

export function m5opCall(func: number, args: [bigint, bigint], form: 'inst' | 'addr'): M5OpCall {
  return { func, name: M5OP_NAMES[func] ?? `unknown_0x${func.toString(16)}`, args, form };
}

/** Ops switchsim knows; an unknown function is warned about once and ignored (rax = 0). */
export function isKnownM5Op(func: number): boolean {
  return M5OP_NAMES[func] !== undefined;
}
