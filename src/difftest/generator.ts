/**
 * The random instruction-sequence generator: seeded and reproducible (a snippet is a pure
 * function of the form list, the CPUID table, (seed, index) and the options).
 *
 * A snippet is a list of items. An item is one tested instruction with the set-up instructions
 * it needs (a `mov reg, imm64` for each memory operand's base and index so the access lands in
 * the scratch page; the dividend for a division…), or a structure: a forward branch over 1–3
 * items, or a call to a subroutine placed after the terminator. Set-up instructions are tested
 * too (they are ordinary movs); they never touch the flags. Every instruction is encoded with
 * iced-x86 and decoded back, and must decode to what was meant.
 *
 * What is avoided and why: rsp as an explicit operand (the stack must stay in its page; push,
 * pop, call, ret and leave move it), backward branches (termination), syscalls, privileged and
 * host-dependent instructions (rdtsc, rdrand, rcpps…), 66-prefixed near branches (Intel and AMD
 * differ), undefined results (16-bit shld/shrd counts > 16). Division gets a dividend and a
 * non-zero divisor whose quotient fits most of the time; otherwise the #DE is the result.
 */
import {
  Code,
  Decoder,
  DecoderOptions,
  Encoder,
  Formatter,
  FormatterSyntax,
  Instruction,
  MemoryOperand,
  Mnemonic,
  OpCodeOperandKind as K,
  OpKind,
  Register,
  RepPrefixKind,
} from 'iced-x86';
import type { CpuidEntry } from '../kvm/cpuid.js';
import { Gpr, THREAD_CONTEXT_VERSION, USER_CS, USER_SS, type ThreadContext } from '../guest/threadContext.js';
import { ifcFlagsToEflags } from './flagsMask.js';
import type { Form } from './forms.js';
import { SCRATCH_ADDR, SCRATCH_SIZE, SNIPPET_CODE_ADDR, SNIPPET_CODE_SIZE, STACK_SIZE, STACK_START } from './layout.js';
import { Rng } from './rng.js';
import type { SnippetInput, SnippetState } from './snippetMemory.js';
import { fillVector, randomImmSigned, randomImmUnsigned, randomScratch, randomU64 } from './values.js';

const MASK64 = (1n << 64n) - 1n;

export class GeneratorError extends Error {}

/** One instruction of a snippet; `build` makes it afresh (layout may encode it several times). */
export interface Insn {
  role: 'setup' | 'test' | 'flow';
  form?: Form;
  build(label: (id: number) => bigint): Instruction;
  /** Short branch promoted to rel32 by layout (set there). */
  near?: boolean;
  /** A short-only branch (loop, jrcxz): cannot be promoted. */
  shortOnly?: boolean;
  /** A set-up the shrinker must keep (without it the item is no longer valid: popf's push). */
  essential?: boolean;
}

export type Item =
  | { kind: 'seq'; insns: Insn[] }
  /** `pre; branch L; body; L:` (conditional: the body may run; else it never does). */
  | { kind: 'skip'; pre: Insn[]; branch: Insn; conditional: boolean; label: number; body: Item[] }
  /** `pre; call S` here; `S: body; ret` after the terminator. */
  | { kind: 'sub'; pre: Insn[]; call: Insn; label: number; body: Item[]; ret: Insn };

export interface Snippet {
  seed: number;
  index: number;
  items: Item[];
  initial: SnippetState;
  /** The encoding of `items` (made once by the generator). */
  encoded?: EncodedSnippet;
}

export interface GenOptions {
  /** Items per snippet (tested instructions, structures count as one plus their bodies). */
  minItems: number;
  maxItems: number;
  /** Fraction of snippets with a random MXCSR rounding mode / FTZ / DAZ (exceptions stay masked). */
  randomMxcsr: number;
  /** Fraction of divisions generated without the no-#DE set-up. */
  rawDivision: number;
  /**
   * Fraction of 16-byte aligned-only SSE accesses left misaligned (#GP expected). Default 0:
   * on the kvm_pvm hosts KVM intercepts that #GP and emulates the instruction; its emulator does
   * not know most SSE instructions and injects #UD instead (measured: packssdw, pabsd, psraw…
   * at a misaligned address end in vector 6), so KVM is no oracle for it.
   */
  misalignedSse: number;
}

export const DEFAULT_GEN_OPTIONS: GenOptions = {
  minItems: 1,
  maxItems: 20,
  randomMxcsr: 0.25,
  rawDivision: 0.1,
  misalignedSse: 0,
};

// ---------------------------------------------------------------------------------------------
// registers

const R = Register as unknown as Record<string, Register>;
const NAMES64 = ['RAX', 'RCX', 'RDX', 'RBX', 'RSP', 'RBP', 'RSI', 'RDI', 'R8', 'R9', 'R10', 'R11', 'R12', 'R13', 'R14', 'R15'];
const NAMES32 = ['EAX', 'ECX', 'EDX', 'EBX', 'ESP', 'EBP', 'ESI', 'EDI', 'R8D', 'R9D', 'R10D', 'R11D', 'R12D', 'R13D', 'R14D', 'R15D'];
const NAMES16 = ['AX', 'CX', 'DX', 'BX', 'SP', 'BP', 'SI', 'DI', 'R8W', 'R9W', 'R10W', 'R11W', 'R12W', 'R13W', 'R14W', 'R15W'];
const NAMES8 = ['AL', 'CL', 'DL', 'BL', 'SPL', 'BPL', 'SIL', 'DIL', 'R8L', 'R9L', 'R10L', 'R11L', 'R12L', 'R13L', 'R14L', 'R15L'];
const REG64 = NAMES64.map((n) => R[n]!);
const REG32 = NAMES32.map((n) => R[n]!);
const REG16 = NAMES16.map((n) => R[n]!);
const REG8 = NAMES8.map((n) => R[n]!);
const REG8_HIGH = ['AH', 'CH', 'DH', 'BH'].map((n) => R[n]!);
const XMM = Array.from({ length: 16 }, (_, i) => R[`XMM${i}`]!);
/** GPR numbers usable as operands: all but rsp. */
const USABLE = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

function regOfWidth(n: number, width: 8 | 16 | 32 | 64): Register {
  return (width === 64 ? REG64 : width === 32 ? REG32 : width === 16 ? REG16 : REG8)[n]!;
}

// ---------------------------------------------------------------------------------------------
// instruction constructors (fresh objects every call: iced moves MemoryOperands into instructions)

interface MemSpec {
  base: Register;
  index: Register;
  scale: number;
  disp: bigint;
  displSize: number;
  seg: Register;
}

function memOperand(m: MemSpec): MemoryOperand {
  return new MemoryOperand(m.base, m.index, m.scale, m.disp, m.displSize, false, m.seg);
}

type Operand =
  | { t: 'r'; reg: Register }
  | { t: 'm'; mem: MemSpec }
  | { t: 'i'; v: number }
  | { t: 'q'; v: bigint };

function create(code: Code, ops: readonly Operand[]): Instruction {
  const sig = ops.map((o) => o.t).join('');
  const r = (i: number) => (ops[i] as { reg: Register }).reg;
  const m = (i: number) => memOperand((ops[i] as { mem: MemSpec }).mem);
  const v = (i: number) => (ops[i] as { v: number }).v;
  switch (sig) {
    case '': return Instruction.create(code);
    case 'r': return Instruction.createReg(code, r(0));
    case 'm': return Instruction.createMem(code, m(0));
    case 'i': return Instruction.createI32(code, v(0));
    case 'rr': return Instruction.createRegReg(code, r(0), r(1));
    case 'rm': return Instruction.createRegMem(code, r(0), m(1));
    case 'mr': return Instruction.createMemReg(code, m(0), r(1));
    case 'ri': return Instruction.createRegI32(code, r(0), v(1));
    case 'mi': return Instruction.createMemI32(code, m(0), v(1));
    case 'rq': return Instruction.createRegU64(code, r(0), (ops[1] as { v: bigint }).v);
    case 'rrr': return Instruction.createRegRegReg(code, r(0), r(1), r(2));
    case 'rrm': return Instruction.createRegRegMem(code, r(0), r(1), m(2));
    case 'rmr': return Instruction.createRegMemReg(code, r(0), m(1), r(2));
    case 'rri': return Instruction.createRegRegI32(code, r(0), r(1), v(2));
    case 'rmi': return Instruction.createRegMemI32(code, r(0), m(1), v(2));
    case 'mri': return Instruction.createMemRegI32(code, m(0), r(1), v(2));
    case 'mrr': return Instruction.createMemRegReg(code, m(0), r(1), r(2));
    default:
      throw new GeneratorError(`no constructor for operand pattern '${sig}' (${Code[code]})`);
  }
}

const movImm64 = (reg: number, value: bigint): Insn => ({
  role: 'setup',
  build: () => Instruction.createRegU64(Code.Mov_r64_imm64, REG64[reg]!, value & MASK64),
});
const movImm32 = (reg: number, value: number): Insn => ({
  role: 'setup',
  build: () => Instruction.createRegU32(Code.Mov_r32_imm32, REG32[reg]!, value >>> 0),
});
const plainSetup = (code: Code, ops: Operand[]): Insn => ({ role: 'setup', build: () => create(code, ops) });

const STORE_CODE: Record<number, Code> = { 1: Code.Mov_rm8_r8, 2: Code.Mov_rm16_r16, 4: Code.Mov_rm32_r32, 8: Code.Mov_rm64_r64 };

/** Immediate masks where the high bits are reserved (hardware may ignore them, we do not test that). */
const IMM8_MASK: Partial<Record<number, number>> = {
  [Mnemonic.Cmpps]: 7, [Mnemonic.Cmppd]: 7, [Mnemonic.Cmpss]: 7, [Mnemonic.Cmpsd]: 7,
  [Mnemonic.Roundss]: 0xf, [Mnemonic.Roundsd]: 0xf, [Mnemonic.Roundps]: 0xf, [Mnemonic.Roundpd]: 0xf,
  [Mnemonic.Pcmpestri]: 0x7f, [Mnemonic.Pcmpestri64]: 0x7f, [Mnemonic.Pcmpestrm]: 0x7f, [Mnemonic.Pcmpestrm64]: 0x7f,
  [Mnemonic.Pcmpistri]: 0x7f, [Mnemonic.Pcmpistrm]: 0x7f,
};

/** 16-byte SSE memory operands that may be misaligned. */
const UNALIGNED_OK = new Set<number>([
  Mnemonic.Movups, Mnemonic.Movupd, Mnemonic.Movdqu, Mnemonic.Lddqu, Mnemonic.Pcmpestri, Mnemonic.Pcmpestri64,
  Mnemonic.Pcmpestrm, Mnemonic.Pcmpestrm64, Mnemonic.Pcmpistri, Mnemonic.Pcmpistrm,
]);

const GPR_KIND_WIDTH: Partial<Record<number, 8 | 16 | 32 | 64>> = {
  [K.r8_reg]: 8, [K.r8_opcode]: 8, [K.r8_or_mem]: 8,
  [K.r16_reg]: 16, [K.r16_rm]: 16, [K.r16_opcode]: 16, [K.r16_or_mem]: 16,
  [K.r32_reg]: 32, [K.r32_rm]: 32, [K.r32_opcode]: 32, [K.r32_vvvv]: 32, [K.r32_or_mem]: 32,
  [K.r64_reg]: 64, [K.r64_rm]: 64, [K.r64_opcode]: 64, [K.r64_vvvv]: 64, [K.r64_or_mem]: 64,
};
const OR_MEM = new Set<number>([K.r8_or_mem, K.r16_or_mem, K.r32_or_mem, K.r64_or_mem, K.xmm_or_mem]);
const FIXED_REG: Partial<Record<number, Register>> = {
  [K.al]: Register.AL, [K.cl]: Register.CL, [K.ax]: Register.AX, [K.eax]: Register.EAX, [K.rax]: Register.RAX,
};

/** Mnemonics that move rsp unbalanced: not inside subroutine bodies (ret must find its address). */
const STACK_MOVERS = new Set<number>([Mnemonic.Push, Mnemonic.Pop, Mnemonic.Leave, Mnemonic.Pushf, Mnemonic.Pushfq]);

// ---------------------------------------------------------------------------------------------
// the generator

export class SnippetGenerator {
  readonly options: GenOptions;
  private readonly forms: Form[];
  private readonly cumulative: Float64Array;
  private readonly bodyForms: Form[];
  private readonly bodyCumulative: Float64Array;
  private readonly cpuidLeaves: [number, number][];

  constructor(forms: readonly Form[], cpuid: readonly CpuidEntry[], options: Partial<GenOptions> = {}) {
    if (forms.length === 0) throw new GeneratorError('no instruction forms to generate from');
    this.options = { ...DEFAULT_GEN_OPTIONS, ...options };
    this.forms = [...forms];
    this.cumulative = cumulativeWeights(this.forms);
    // Structure bodies hold plain items only (no nesting), and no unbalanced stack movers.
    this.bodyForms = this.forms.filter((f) => !isStructural(f) && !STACK_MOVERS.has(f.mnemonic));
    this.bodyCumulative = cumulativeWeights(this.bodyForms);
    this.cpuidLeaves = cpuid.map((e) => [e.leaf, e.subleaf]);
  }

  /** Snippet `index` of the run with `seed`. */
  generate(seed: number, index: number): Snippet {
    const rng = new Rng(seed, index);
    const initial = this.initialState(rng);
    for (let attempt = 0; ; attempt++) {
      const g = new ItemGen(rng, this, initial.context);
      const n = rng.range(this.options.minItems, this.options.maxItems);
      const items: Item[] = [];
      for (let i = 0; i < n; i++) items.push(g.item(this.pickForm(rng, false), false));
      try {
        // Must lay out (short branches in range, code fits) and decode back as meant. A read of
        // a possibly undefined flag (setcc after mul…) would make its result undefined: define
        // the flags right before such readers.
        let current = items;
        let encoded = encodeSnippet(current);
        for (let fix = 0; encoded.undefinedReads.length > 0; fix++) {
          if (fix > 4) throw new LayoutError('undefined flag reads did not go away');
          current = defineFlagsBefore(current, new Set(encoded.undefinedReads), rng);
          encoded = encodeSnippet(current);
        }
        return { seed, index, items: current, initial, encoded };
      } catch (e) {
        if (!(e instanceof GeneratorError) || attempt > 20) throw e;
      }
    }
  }

  get hasBodyForms(): boolean {
    return this.bodyForms.length > 0;
  }

  pickForm(rng: Rng, body: boolean): Form {
    if (body && this.bodyForms.length === 0) throw new GeneratorError('no forms for structure bodies');
    const [list, cum] = body ? [this.bodyForms, this.bodyCumulative] : [this.forms, this.cumulative];
    const x = rng.float() * cum[cum.length - 1]!;
    let lo = 0;
    let hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return list[lo]!;
  }

  cpuidLeaf(rng: Rng): [number, number] {
    return this.cpuidLeaves.length ? rng.pick(this.cpuidLeaves) : [0, 0];
  }

  private initialState(rng: Rng): SnippetState {
    const gpr = Array.from({ length: 16 }, () => randomU64(rng));
    gpr[Gpr.rsp] = BigInt(STACK_START);
    const arith = [0x1, 0x4, 0x10, 0x40, 0x80, 0x800].reduce((f, bit) => (rng.chance(0.5) ? f | bit : f), 0);
    const xmm = new Uint8Array(256);
    for (let i = 0; i < 16; i++) fillVector(rng, xmm, i * 16);
    let mxcsr = 0x1f80;
    if (rng.chance(this.options.randomMxcsr)) mxcsr |= (rng.below(4) << 13) | (rng.below(2) << 15) | (rng.below(2) << 6);
    const context: ThreadContext = {
      version: THREAD_CONTEXT_VERSION,
      gpr,
      rip: BigInt(SNIPPET_CODE_ADDR),
      rflags: BigInt(0x202 | arith),
      // Segment bases near the scratch page: fs:/gs: operands reach it with small offsets.
      fsBase: BigInt(SCRATCH_ADDR - rng.below(1 << 20)),
      gsBase: BigInt(SCRATCH_ADDR - rng.below(1 << 20)),
      seg: { cs: USER_CS, ss: USER_SS, ds: 0, es: 0, fs: 0, gs: 0 },
      xmm,
      mxcsr,
      x87: { fcw: 0x37f, fsw: 0, ftw: 0, fop: 0, fip: 0n, fdp: 0n, st: new Uint8Array(80) },
    };
    return { context, scratch: randomScratch(rng, SCRATCH_SIZE), stack: rng.bytes(STACK_SIZE) };
  }
}

function cumulativeWeights(forms: readonly Form[]): Float64Array {
  const out = new Float64Array(forms.length);
  let sum = 0;
  forms.forEach((f, i) => (out[i] = sum += f.weight));
  return out;
}

function isStructural(f: Form): boolean {
  return f.special === 'branch' || f.special === 'call' || f.special === 'callIndirect' || f.special === 'jmpIndirect';
}

let labelCounter = 0;

/** Generates items; holds the RNG and what memory operands need to know (segment bases). */
class ItemGen {
  constructor(
    private readonly rng: Rng,
    private readonly gen: SnippetGenerator,
    private readonly ctx: ThreadContext,
  ) {}

  item(form: Form, inBody: boolean): Item {
    for (let attempt = 0; ; attempt++) {
      try {
        const it = this.itemOnce(form, inBody);
        validateItem(it);
        return it;
      } catch (e) {
        // Encoding refused this choice of operands (e.g. AH with a REX prefix): choose again.
        if (attempt > 30) throw new GeneratorError(`cannot generate ${form.name}: ${(e as Error).message}`);
        if (attempt > 10) form = this.gen.pickForm(this.rng, inBody);
      }
    }
  }

  private itemOnce(form: Form, inBody: boolean): Item {
    const rng = this.rng;
    switch (form.special) {
      case 'branch':
      case 'jmpIndirect':
      case 'call':
      case 'callIndirect':
        if (inBody) return this.item(this.gen.pickForm(rng, true), true);
        return this.structure(form);
      case 'div':
        return { kind: 'seq', insns: this.division(form) };
      case 'string':
        return { kind: 'seq', insns: this.string(form) };
      case 'popf': {
        let flags = 0x2 | (rng.u32() & 0x8d5) | (rng.chance(0.5) ? 0x200 : 0) | (rng.chance(0.3) ? 0x400 : 0);
        // AC stays clear: kvm_pvm runs guest user code under the host's CR0.AM=1, so AC=1 makes
        // misaligned accesses raise #AC although the guest's CR0.AM is 0 (measured).
        // NT stays clear too: kvm_pvm loses NT across an intercepted instruction (after
        // `popfq; cpuid` KVM shows NT = 0; measured), so KVM is no oracle for it.
        if (rng.chance(0.1)) flags |= 0x200000; // ID
        if (rng.chance(0.05)) flags |= 0x3000; // IOPL (ignored at CPL3)
        const push: Insn = {
          ...(form.code === Code.Popfw
            ? plainSetup(Code.Push_imm16, [{ t: 'i', v: flags & 0xffff }])
            : plainSetup(Code.Pushq_imm32, [{ t: 'i', v: flags | 0 }])),
          essential: true,
        };
        return { kind: 'seq', insns: [push, this.test(form, [])] };
      }
      case 'leave': {
        const mem: MemSpec = { base: Register.RSP, index: Register.None, scale: 1, disp: BigInt(8 * rng.below(9)), displSize: 1, seg: Register.None };
        return { kind: 'seq', insns: [plainSetup(Code.Lea_r64_m, [{ t: 'r', reg: Register.RBP }, { t: 'm', mem }]), this.test(form, [])] };
      }
      case 'cpuid': {
        const [leaf, sub] = this.gen.cpuidLeaf(rng);
        return { kind: 'seq', insns: [movImm32(Gpr.rax, leaf), movImm32(Gpr.rcx, sub), this.test(form, [])] };
      }
      case 'xgetbv':
        return { kind: 'seq', insns: [{ ...movImm32(Gpr.rcx, 0), essential: true }, this.test(form, [])] };
      case 'xlat': {
        const base = SCRATCH_ADDR + rng.below(SCRATCH_SIZE - 256);
        const mem: MemSpec = { base: Register.RBX, index: Register.AL, scale: 1, disp: 0n, displSize: 0, seg: Register.None };
        return { kind: 'seq', insns: [movImm64(Gpr.rbx, BigInt(base)), this.test(form, [{ t: 'm', mem }])] };
      }
      case 'ldmxcsr': {
        const setup: Insn[] = [];
        const mem = this.memory(4, 4, new Set(), setup);
        const value = 0x1f80 | (rng.below(4) << 13) | (rng.below(2) << 15) | (rng.below(2) << 6) | (rng.u32() & 0x3f);
        const t = this.freeReg(new Set(memRegs(mem)));
        setup.push(movImm32(t, value), plainSetup(Code.Mov_rm32_r32, [{ t: 'm', mem }, { t: 'r', reg: REG32[t]! }]));
        return { kind: 'seq', insns: [...setup, this.test(form, [{ t: 'm', mem }])] };
      }
      case 'moffs': {
        const size = form.memSize;
        const off = alignDown(rng.below(SCRATCH_SIZE - size + 1), rng.chance(0.7) ? size : 1);
        const mem: MemSpec = { base: Register.None, index: Register.None, scale: 1, disp: BigInt(SCRATCH_ADDR + off), displSize: 8, seg: Register.None };
        const reg = FIXED_REG[form.ops[0] === K.mem_offs ? form.ops[1]! : form.ops[0]!]!;
        const ops: Operand[] = form.ops[0] === K.mem_offs ? [{ t: 'm', mem }, { t: 'r', reg }] : [{ t: 'r', reg }, { t: 'm', mem }];
        return { kind: 'seq', insns: [this.test(form, ops)] };
      }
      case 'shiftDouble':
      case 'bitMem':
      case undefined:
        return { kind: 'seq', insns: this.plain(form) };
    }
  }

  private test(form: Form, ops: Operand[], lock = false): Insn {
    return {
      role: 'test',
      form,
      build: () => {
        const ins = create(form.code, ops);
        if (lock) ins.hasLockPrefix = true;
        return ins;
      },
    };
  }

  /** A register number not in `avoid` (never rsp). */
  private freeReg(avoid: Set<number>): number {
    const pool = USABLE.filter((n) => !avoid.has(n));
    return this.rng.pick(pool.length ? pool : USABLE);
  }

  private gprOperand(width: 8 | 16 | 32 | 64, avoid: Set<number>): { reg: Register; num: number } {
    const rng = this.rng;
    if (width === 8 && rng.chance(0.15)) {
      const pool = [0, 1, 2, 3].filter((n) => !avoid.has(n));
      if (pool.length) {
        const n = rng.pick(pool);
        return { reg: REG8_HIGH[n]!, num: n };
      }
    }
    const n = this.freeReg(avoid);
    return { reg: regOfWidth(n, width), num: n };
  }

  /**
   * A memory operand of `size` bytes inside the scratch page, and the set-up that makes its
   * registers point there. `align`: required alignment (1 = any).
   */
  private memory(size: number, align: number, avoid: Set<number>, setup: Insn[], opts: { noRip?: boolean; offset?: number } = {}): MemSpec {
    const rng = this.rng;
    const span = Math.max(size, 1);
    const off = opts.offset ?? alignDown(rng.below(SCRATCH_SIZE - span + 1), align);
    const target = BigInt(SCRATCH_ADDR + off);
    const mode = rng.below(100);
    if (mode < 7 && !opts.noRip) {
      return { base: Register.RIP, index: Register.None, scale: 1, disp: target, displSize: 8, seg: Register.None };
    }
    let segBase = 0n;
    let seg = Register.None;
    if (mode >= 7 && mode < 15) {
      const fs = rng.chance(0.5);
      seg = fs ? Register.FS : Register.GS;
      segBase = fs ? this.ctx.fsBase : this.ctx.gsBase;
      if (rng.chance(0.4)) {
        // fs:[disp32], like TLS accesses.
        return { base: Register.None, index: Register.None, scale: 1, disp: target - segBase, displSize: 8, seg };
      }
    }
    const addr32 = mode >= 15 && mode < 20;
    const ea = (target - segBase) & MASK64;
    const wrap = addr32 ? (1n << 32n) - 1n : MASK64;
    const regs = addr32 ? REG32 : REG64;
    const base = this.freeReg(avoid);
    const useIndex = rng.chance(0.4);
    const useBase = !useIndex || rng.chance(0.9);
    const index = useIndex ? this.freeReg(new Set([...avoid, base])) : -1;
    const scale = useIndex ? rng.pick([1, 2, 4, 8]) : 1;
    // iced's displacement size: 1 for disp8, else the address size (4 with 67h, 8 in 64-bit).
    const wide = addr32 ? 4 : 8;
    let displSize = useBase ? rng.pick([0, 1, wide]) : wide;
    let disp = 0n;
    if (displSize === 1) disp = BigInt(rng.range(-128, 127));
    else if (displSize === wide) disp = BigInt(rng.u32() | 0);
    let indexValue = 0n;
    if (useIndex) indexValue = rng.chance(0.6) ? randomU64(rng) : BigInt(rng.below(256));
    if (!useBase) {
      // [index*scale + disp32]: pick a small index and solve for the displacement.
      indexValue = BigInt(rng.below(64));
      disp = ea - indexValue * BigInt(scale);
      displSize = wide;
    }
    const baseValue = (ea - disp - indexValue * BigInt(scale)) & wrap;
    const upper = addr32 ? randomU64(rng) & ~wrap : 0n;
    if (useBase) setup.push(movImm64(base, baseValue | upper));
    if (useIndex) setup.push(movImm64(index, (indexValue & wrap) | (addr32 ? randomU64(rng) & ~wrap : 0n)));
    return {
      base: useBase ? regs[base]! : Register.None,
      index: useIndex ? regs[index]! : Register.None,
      scale,
      disp: addr32 ? disp & wrap : BigInt.asIntN(64, disp),
      displSize,
      seg,
    };
  }

  private memAlign(form: Form): number {
    const rng = this.rng;
    const size = form.memSize;
    if (size === 16 && !UNALIGNED_OK.has(form.mnemonic) && form.group !== 'int') {
      return rng.chance(this.gen.options.misalignedSse) ? 1 : 16;
    }
    if (form.code === Code.Cmpxchg16b_m128) return rng.chance(this.gen.options.misalignedSse) ? 1 : 16;
    if (size >= 2 && rng.chance(0.6)) return Math.min(size, 16);
    return 1;
  }

  /** A form with random registers, immediates and at most one scratch-page memory operand. */
  private plain(form: Form, avoidIn: Set<number> = new Set()): Insn[] {
    const rng = this.rng;
    const setup: Insn[] = [];
    const ops: Operand[] = [];
    const avoid = new Set(avoidIn);
    const rmIndex = form.ops.findIndex((k) => OR_MEM.has(k) || k === K.mem);
    const useMem = rmIndex >= 0 && (form.ops[rmIndex] === K.mem || rng.chance(0.5));
    // Registers the instruction uses implicitly must not be memory base/index registers
    // when the set-up writes them (bit offset, shift count).
    let memSpec: MemSpec | undefined;
    let bitOffsetReg = -1;
    if (form.special === 'bitMem' && useMem && (form.ops[1] === K.r16_reg || form.ops[1] === K.r32_reg || form.ops[1] === K.r64_reg)) {
      bitOffsetReg = this.freeReg(avoid);
      avoid.add(bitOffsetReg);
    }
    const shiftDouble16 = form.special === 'shiftDouble' && form.ops[0] === K.r16_or_mem;
    if (shiftDouble16 && form.ops[2] === K.cl) avoid.add(Gpr.rcx);
    if (useMem) {
      const align = this.memAlign(form);
      const w = form.memSize || 1;
      const off = form.special === 'bitMem' && bitOffsetReg >= 0 ? alignDown(rng.below(SCRATCH_SIZE - w + 1), w) : undefined;
      memSpec = this.memory(form.memSize, align, avoid, setup, off === undefined ? {} : { offset: off });
      if (bitOffsetReg >= 0) {
        // Offset in bits from the operand: keep the accessed unit inside the page.
        const unitOff = (off ?? 0) / w;
        const units = SCRATCH_SIZE / w;
        const limit = w === 2 ? 2047 : 1 << 20;
        const k = rng.range(-Math.min(unitOff, limit), Math.min(units - 1 - unitOff, limit));
        const bit = k * 8 * w + rng.below(8 * w);
        setup.push(movImm64(bitOffsetReg, (BigInt(bit) & (w === 8 ? MASK64 : (1n << BigInt(8 * w)) - 1n)) | (w === 8 ? 0n : randomU64(rng) & ~((1n << BigInt(8 * w)) - 1n))));
      }
    }
    for (let i = 0; i < form.ops.length; i++) {
      const k = form.ops[i]!;
      const fixed = FIXED_REG[k];
      if (fixed !== undefined) {
        ops.push({ t: 'r', reg: fixed });
        continue;
      }
      if (i === rmIndex && useMem) {
        ops.push({ t: 'm', mem: memSpec! });
        continue;
      }
      const width = GPR_KIND_WIDTH[k];
      if (width !== undefined) {
        if (i === 1 && bitOffsetReg >= 0) ops.push({ t: 'r', reg: regOfWidth(bitOffsetReg, width) });
        else ops.push({ t: 'r', reg: this.gprOperand(width, new Set()).reg });
        continue;
      }
      switch (k) {
        case K.xmm_reg:
        case K.xmm_rm:
        case K.xmm_or_mem:
          ops.push({ t: 'r', reg: rng.pick(XMM) });
          break;
        case K.imm8: {
          let v = randomImmUnsigned(rng, 8);
          const mask = IMM8_MASK[form.mnemonic];
          if (mask !== undefined) v &= mask;
          if (shiftDouble16) v = rng.below(17);
          ops.push({ t: 'i', v });
          break;
        }
        case K.imm8_const_1:
          ops.push({ t: 'i', v: 1 });
          break;
        case K.imm8sex16:
        case K.imm8sex32:
        case K.imm8sex64:
          ops.push({ t: 'i', v: randomImmSigned(rng, 8) });
          break;
        case K.imm16:
          ops.push({ t: 'i', v: randomImmUnsigned(rng, 16) });
          break;
        case K.imm32:
        case K.imm32sex64:
          ops.push({ t: 'i', v: randomImmSigned(rng, 32) });
          break;
        case K.imm64:
          ops.push({ t: 'q', v: randomU64(rng) });
          break;
        default:
          throw new GeneratorError(`operand kind ${k} of ${form.name} is not generated`);
      }
    }
    if (shiftDouble16 && form.ops[2] === K.cl) setup.push(movImm64(Gpr.rcx, (randomU64(rng) & ~0x1fn) | BigInt(rng.below(17))));
    const lock = useMem && form.lockable && rmIndex === 0 && rng.chance(0.25);
    return [...setup, this.test(form, ops, lock)];
  }

  /** div/idiv with a dividend and divisor whose quotient fits (or, sometimes, anything). */
  private division(form: Form): Insn[] {
    const rng = this.rng;
    if (rng.chance(this.gen.options.rawDivision)) return this.plain(form);
    const width = GPR_KIND_WIDTH[form.ops[0]!]!;
    const signed = form.mnemonic === Mnemonic.Idiv;
    const bits = BigInt(width);
    const wmask = (1n << bits) - 1n;
    let d: bigint; // divisor (two's complement in `width` bits)
    let hi: bigint;
    let lo: bigint;
    if (!signed) {
      d = rng.chance(0.5) ? BigInt(rng.range(1, 1000)) & wmask : randomU64(rng) & wmask;
      if (d === 0n) d = 1n;
      hi = (randomU64(rng) & wmask) % d;
      lo = randomU64(rng) & wmask;
    } else {
      const half = 1n << (bits - 1n);
      let ds = rng.chance(0.5) ? BigInt(rng.range(-1000, 1000)) : BigInt.asIntN(width, randomU64(rng));
      if (ds === 0n) ds = 3n;
      const q = BigInt.asIntN(width, randomU64(rng)) >> BigInt(rng.below(width));
      const qc = q >= half ? half - 1n : q < -half ? -half : q;
      const prod = qc * ds;
      const absd = ds < 0n ? -ds : ds;
      let r = (randomU64(rng) % absd);
      if (prod < 0n || (prod === 0n && rng.chance(0.5))) r = -r;
      let dividend = prod + r;
      const dhalf = 1n << (2n * bits - 1n);
      if (dividend >= dhalf || dividend < -dhalf) dividend = r;
      d = ds & wmask;
      const du = dividend & ((1n << (2n * bits)) - 1n);
      hi = du >> bits;
      lo = du & wmask;
    }
    const setup: Insn[] = [];
    if (width === 8) {
      setup.push(movImm64(Gpr.rax, (randomU64(rng) & ~0xffffn) | (hi << 8n) | lo));
    } else {
      setup.push(movImm64(Gpr.rax, (width === 64 ? 0n : randomU64(rng) & ~wmask) | lo));
      setup.push(movImm64(Gpr.rdx, (width === 64 ? 0n : randomU64(rng) & ~wmask) | hi));
    }
    const avoid = new Set([Gpr.rax, Gpr.rdx]);
    if (rng.chance(0.5)) {
      const n = this.freeReg(avoid);
      setup.push(movImm64(n, (width === 64 ? 0n : randomU64(rng) & ~wmask) | d));
      return [...setup, this.test(form, [{ t: 'r', reg: regOfWidth(n, width) }])];
    }
    const mem = this.memory(width / 8, rng.chance(0.7) ? width / 8 : 1, avoid, setup);
    const t = this.freeReg(new Set([...avoid, ...memRegs(mem)]));
    setup.push(movImm64(t, d), plainSetup(STORE_CODE[width / 8]!, [{ t: 'm', mem }, { t: 'r', reg: regOfWidth(t, width) }]));
    return [...setup, this.test(form, [{ t: 'm', mem }])];
  }

  /** movs/stos/lods/cmps/scas with rsi/rdi in the scratch page and a small rcx. */
  private string(form: Form): Insn[] {
    const rng = this.rng;
    const name = form.mnemonicName.toLowerCase();
    const op = name.slice(0, name.length - 1) as 'movs' | 'stos' | 'lods' | 'cmps' | 'scas';
    const size = ({ b: 1, w: 2, d: 4, q: 8 } as const)[name[name.length - 1] as 'b' | 'w' | 'd' | 'q'];
    const conditional = op === 'cmps' || op === 'scas';
    const p = rng.below(100);
    const rep = conditional
      ? p < 30 ? RepPrefixKind.None : p < 65 ? RepPrefixKind.Repe : RepPrefixKind.Repne
      : p < 40 ? RepPrefixKind.None : RepPrefixKind.Repe;
    const addressSize = rng.chance(0.1) ? 32 : 64;
    const setup: Insn[] = [];
    const dfChoice = rng.below(10);
    if (dfChoice < 5) setup.push(plainSetup(Code.Cld, []));
    else if (dfChoice < 7) setup.push(plainSetup(Code.Std, []));
    const upper = () => (addressSize === 32 ? randomU64(rng) & ~0xffffffffn : 0n);
    const margin = 128;
    const place = () => BigInt(SCRATCH_ADDR + margin + rng.below(SCRATCH_SIZE - 2 * margin - size));
    setup.push(movImm64(Gpr.rsi, place() | upper()), movImm64(Gpr.rdi, place() | upper()));
    if (rep !== RepPrefixKind.None || rng.chance(0.5)) setup.push(movImm64(Gpr.rcx, BigInt(rng.below(13)) | upper()));
    const build = (): Instruction => {
      const suffix = ({ 1: 'b', 2: 'w', 4: 'd', 8: 'q' } as const)[size];
      const cap = op[0]!.toUpperCase() + op.slice(1);
      const factory = (Instruction as unknown as Record<string, (...a: unknown[]) => Instruction>)[`create${cap}${suffix}`]!;
      if (op === 'stos' || op === 'scas') return factory.call(Instruction, addressSize, rep);
      return factory.call(Instruction, addressSize, Register.None, rep);
    };
    return [...setup, { role: 'test', form, build }];
  }

  /** Branches and calls: forward only; subroutines live after the terminator. */
  private structure(form: Form): Item {
    const rng = this.rng;
    const label = ++labelCounter;
    const shortOnly = form.mnemonic === Mnemonic.Loop || form.mnemonic === Mnemonic.Loope || form.mnemonic === Mnemonic.Loopne ||
      form.mnemonic === Mnemonic.Jrcxz || form.mnemonic === Mnemonic.Jecxz;
    const bodyItems = (max: number): Item[] => {
      if (!this.gen.hasBodyForms) return [];
      const n = rng.range(shortOnly ? 1 : 0, max);
      return Array.from({ length: n }, () => this.item(this.gen.pickForm(rng, true), true));
    };
    switch (form.special) {
      case 'branch': {
        const body = bodyItems(shortOnly ? 1 : 3);
        const branch: Insn = { role: 'flow', form, shortOnly, build: (l) => Instruction.createBranch(form.code, l(label)) };
        return { kind: 'skip', pre: [], branch, conditional: form.mnemonic !== Mnemonic.Jmp, label, body };
      }
      case 'jmpIndirect': {
        const { pre, operand } = this.indirectTarget(label);
        const branch: Insn = { role: 'flow', form, build: (l) => create(form.code, [operand(l)]) };
        return { kind: 'skip', pre, branch, conditional: false, label, body: bodyItems(2) };
      }
      case 'call':
      case 'callIndirect': {
        const body = bodyItems(3);
        const retImm = rng.chance(0.25) ? 8 * rng.below(5) : -1;
        const ret: Insn = {
          role: 'flow',
          build: () => (retImm < 0 ? Instruction.create(Code.Retnq) : Instruction.createI32(Code.Retnq_imm16, retImm)),
        };
        if (form.special === 'call') {
          const call: Insn = { role: 'flow', form, build: (l) => Instruction.createBranch(form.code, l(label)) };
          return { kind: 'sub', pre: [], call, label, body, ret };
        }
        const { pre, operand } = this.indirectTarget(label);
        const call: Insn = { role: 'flow', form, build: (l) => create(form.code, [operand(l)]) };
        return { kind: 'sub', pre, call, label, body, ret };
      }
      default:
        throw new GeneratorError(`${form.name} is not a structure`);
    }
  }

  /** `mov r, L` (then `jmp/call r`), or `mov r, L; mov [m], r` (then `jmp/call [m]`). */
  private indirectTarget(label: number): { pre: Insn[]; operand: (l: (id: number) => bigint) => Operand } {
    const rng = this.rng;
    const r = this.freeReg(new Set());
    const movLabel: Insn = { role: 'setup', build: (l) => Instruction.createRegU64(Code.Mov_r64_imm64, REG64[r]!, l(label)) };
    if (rng.chance(0.5)) return { pre: [movLabel], operand: () => ({ t: 'r', reg: REG64[r]! }) };
    const pre: Insn[] = [];
    const mem = this.memory(8, rng.chance(0.8) ? 8 : 1, new Set([r]), pre);
    pre.push(movLabel, plainSetup(Code.Mov_rm64_r64, [{ t: 'm', mem }, { t: 'r', reg: REG64[r]! }]));
    return { pre, operand: () => ({ t: 'm', mem }) };
  }
}

function alignDown(x: number, a: number): number {
  return a <= 1 ? x : x - (x % a);
}

function memRegs(m: MemSpec): number[] {
  const out: number[] = [];
  for (const r of [m.base, m.index]) {
    const i64 = REG64.indexOf(r);
    const i32 = REG32.indexOf(r);
    if (i64 >= 0) out.push(i64);
    else if (i32 >= 0) out.push(i32);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// layout and encoding

export class LayoutError extends GeneratorError {}

export interface EncodedInsn {
  addr: number;
  bytes: Uint8Array;
  /** Intel-syntax disassembly (computed on first use). */
  readonly text: string;
  role: Insn['role'] | 'terminator';
  form?: Form;
  /** EFLAGS bits the instruction may write, and those it leaves undefined. */
  flagsModified: number;
  flagsUndefined: number;
  /** EFLAGS bits it reads. */
  flagsRead: number;
  /** It may leave the flags untouched (count 0 in CL or RCX): its writes do not redefine them. */
  flagsConditional: boolean;
}

export interface EncodedSnippet {
  code: Uint8Array;
  /** In address order. */
  insns: EncodedInsn[];
  /** Address of the terminating ud2. */
  terminator: number;
  /**
   * Arithmetic flags that may be undefined when execution reaches each instruction address
   * (the terminator included): on some path to it, the last instruction that wrote the flag
   * left it undefined. See flagsMask.ts.
   */
  undefinedBefore: Map<number, number>;
  /** Instructions that read a flag which may be undefined there (their results would be undefined too). */
  undefinedReads: Insn[];
}

type Emit = { t: 'insn'; insn: Insn } | { t: 'label'; id: number };

const UD2: Insn = { role: 'flow', build: () => Instruction.create(Code.Ud2) };

function flatten(items: readonly Item[]): Emit[] {
  const out: Emit[] = [];
  const subs: Extract<Item, { kind: 'sub' }>[] = [];
  const emit = (list: readonly Item[]) => {
    for (const it of list) {
      if (it.kind === 'seq') for (const insn of it.insns) out.push({ t: 'insn', insn });
      else if (it.kind === 'skip') {
        for (const insn of it.pre) out.push({ t: 'insn', insn });
        out.push({ t: 'insn', insn: it.branch });
        emit(it.body);
        out.push({ t: 'label', id: it.label });
      } else {
        for (const insn of it.pre) out.push({ t: 'insn', insn });
        out.push({ t: 'insn', insn: it.call });
        subs.push(it);
      }
    }
  };
  emit(items);
  out.push({ t: 'insn', insn: UD2 });
  for (let i = 0; i < subs.length; i++) {
    const s = subs[i]!;
    out.push({ t: 'label', id: s.label });
    emit(s.body);
    out.push({ t: 'insn', insn: s.ret });
  }
  return out;
}

let encoder: Encoder | undefined;
let formatter: Formatter | undefined;

function encodeAt(ins: Instruction, ip: number): Uint8Array {
  encoder ??= new Encoder(64);
  try {
    encoder.encode(ins, BigInt(ip));
  } catch (e) {
    // A failed encode may leave partial bytes behind: start the next one from a fresh encoder.
    encoder.free();
    encoder = undefined;
    throw e;
  }
  return encoder.takeBuffer();
}

/**
 * Throws when an item cannot be encoded as generated (AH with a REX prefix…), so the item is
 * chosen again. (Decoding back is checked once for the whole snippet, in encodeSnippet.)
 */
function validateItem(item: Item): void {
  const check = (insn: Insn) => {
    const ins = insn.build(() => BigInt(SNIPPET_CODE_ADDR));
    try {
      encodeAt(ins, SNIPPET_CODE_ADDR);
    } finally {
      ins.free();
    }
  };
  if (item.kind === 'seq') item.insns.forEach(check);
  else if (item.kind === 'skip') {
    item.pre.forEach(check);
    check(item.branch);
    item.body.forEach(validateItem);
  } else {
    item.pre.forEach(check);
    check(item.call);
    check(item.ret);
    item.body.forEach(validateItem);
  }
}

/** Decodes `bytes` and checks they are the instruction that was built. */
function verifyDecode(ins: Instruction, bytes: Uint8Array, ip: number): void {
  const dec = new Decoder(64, bytes, DecoderOptions.None);
  dec.ip = BigInt(ip);
  const got = dec.decode();
  try {
    const same = got.length === bytes.length && got.code === ins.code && got.opCount === ins.opCount && sameOperands(ins, got);
    if (!same) {
      formatter ??= new Formatter(FormatterSyntax.Intel);
      throw new GeneratorError(`encoded ${formatter.format(ins)} decodes as ${formatter.format(got)} (${Code[got.code]})`);
    }
  } finally {
    got.free();
    dec.free();
  }
}

/** Intel-syntax disassembly of one instruction (for reports; ~1 µs). */
export function disassembleAt(bytes: Uint8Array, ip: number): string {
  const dec = new Decoder(64, bytes, DecoderOptions.None);
  dec.ip = BigInt(ip);
  const got = dec.decode();
  try {
    formatter ??= new Formatter(FormatterSyntax.Intel);
    return formatter.format(got);
  } finally {
    got.free();
    dec.free();
  }
}

function sameOperands(a: Instruction, b: Instruction): boolean {
  if (a.hasLockPrefix !== b.hasLockPrefix || a.hasRepePrefix !== b.hasRepePrefix || a.hasRepnePrefix !== b.hasRepnePrefix) return false;
  for (let i = 0; i < a.opCount; i++) {
    const k = a.opKind(i);
    if (k !== b.opKind(i)) return false;
    if (k === OpKind.Register && a.opRegister(i) !== b.opRegister(i)) return false;
    if (k === OpKind.Memory) {
      if (a.memoryBase !== b.memoryBase || a.memoryIndex !== b.memoryIndex || a.memorySegment !== b.memorySegment) return false;
      if (a.memoryIndex !== Register.None && a.memoryIndexScale !== b.memoryIndexScale) return false;
      if (a.memoryDisplacement !== b.memoryDisplacement) return false;
    }
    if (k >= OpKind.Immediate8 && k <= OpKind.Immediate32to64 && a.immediate(i) !== b.immediate(i)) return false;
    if (k === OpKind.NearBranch64 && a.nearBranch64 !== b.nearBranch64) return false;
  }
  return true;
}

/** Lays out and encodes a snippet: main items, the terminating ud2, then the subroutines. */
export function encodeSnippet(items: readonly Item[]): EncodedSnippet {
  const emits = flatten(items);
  let lengths = new Map<Insn, number>();
  let layout: { addr: Map<Insn, number>; labels: Map<number, number> } | undefined;
  const place = () => {
    const addr = new Map<Insn, number>();
    const labels = new Map<number, number>();
    let at = SNIPPET_CODE_ADDR;
    for (const e of emits) {
      if (e.t === 'label') labels.set(e.id, at);
      else {
        addr.set(e.insn, at);
        at += lengths.get(e.insn) ?? 15;
      }
    }
    if (at - SNIPPET_CODE_ADDR > SNIPPET_CODE_SIZE) throw new LayoutError(`snippet code is ${at - SNIPPET_CODE_ADDR} bytes`);
    return { addr, labels };
  };
  const built = new Map<Insn, { ins: Instruction; bytes: Uint8Array; addr: number }>();
  const freeBuilt = () => {
    for (const b of built.values()) b.ins.free();
    built.clear();
  };
  try {
    for (let pass = 0; pass < 8; pass++) {
      layout = place();
      freeBuilt();
      const next = new Map<Insn, number>();
      let changed = false;
      for (const e of emits) {
        if (e.t !== 'insn') continue;
        const insn = e.insn;
        const addr = layout.addr.get(insn)!;
        const labels = layout.labels;
        const ins = insn.build((id) => BigInt(pass === 0 ? addr : labels.get(id) ?? addr));
        if (insn.near) ins.asNearBranch();
        let bytes: Uint8Array;
        try {
          bytes = encodeAt(ins, addr);
        } catch (err) {
          ins.free();
          if (pass > 0 && !insn.near && !insn.shortOnly) {
            insn.near = true;
            changed = true;
            next.set(insn, 6);
            continue;
          }
          throw new LayoutError(`cannot encode at 0x${addr.toString(16)}: ${(err as Error).message}`);
        }
        built.set(insn, { ins, bytes, addr });
        next.set(insn, bytes.length);
        if (lengths.get(insn) !== bytes.length) changed = true;
      }
      lengths = next;
      if (!changed && pass > 0) break;
      if (pass === 7) throw new LayoutError('branch layout did not settle');
    }
    const code: number[] = [];
    const insns: EncodedInsn[] = [];
    const info = new Map<Insn, EncodedInsn>();
    for (const e of emits) {
      if (e.t !== 'insn') continue;
      const b = built.get(e.insn)!;
      verifyDecode(b.ins, b.bytes, b.addr);
      let text: string | undefined;
      const enc: EncodedInsn = {
        addr: b.addr,
        bytes: b.bytes,
        get text() {
          return (text ??= disassembleAt(b.bytes, b.addr));
        },
        role: e.insn === UD2 ? 'terminator' : e.insn.role,
        ...(e.insn.form ? { form: e.insn.form } : {}),
        flagsModified: ifcFlagsToEflags(b.ins.rflagsModified),
        flagsUndefined: ifcFlagsToEflags(b.ins.rflagsUndefined),
        flagsRead: ifcFlagsToEflags(b.ins.rflagsRead),
        flagsConditional: writesFlagsConditionally(b.ins),
      };
      insns.push(enc);
      info.set(e.insn, enc);
      code.push(...b.bytes);
    }
    const terminator = info.get(UD2)!.addr;
    const flow = undefinedFlagsDataflow(items, info, terminator);
    return { code: Uint8Array.from(code), insns, terminator, undefinedBefore: flow.before, undefinedReads: flow.undefinedReads };
  } finally {
    freeBuilt();
  }
}

/**
 * Which arithmetic flags may be undefined at each instruction: forward dataflow in execution
 * order (branch bodies may or may not run: union; subroutine bodies run at their call). An
 * instruction that may not write at all (count 0) cannot make a flag defined again.
 */
function undefinedFlagsDataflow(
  items: readonly Item[],
  info: Map<Insn, EncodedInsn>,
  terminator: number,
): { before: Map<number, number>; undefinedReads: Insn[] } {
  const before = new Map<number, number>();
  const undefinedReads: Insn[] = [];
  const step = (insn: Insn, u: number): number => {
    const e = info.get(insn)!;
    before.set(e.addr, (before.get(e.addr) ?? 0) | u);
    if (e.flagsRead & u) undefinedReads.push(insn);
    return e.flagsConditional ? u | e.flagsUndefined : (u & ~e.flagsModified) | e.flagsUndefined;
  };
  const walk = (list: readonly Item[], u: number): number => {
    for (const it of list) {
      if (it.kind === 'seq') for (const insn of it.insns) u = step(insn, u);
      else if (it.kind === 'skip') {
        for (const insn of it.pre) u = step(insn, u);
        u = step(it.branch, u);
        const body = walk(it.body, u);
        u = it.conditional ? u | body : u;
      } else {
        for (const insn of it.pre) u = step(insn, u);
        u = step(it.call, u);
        u = walk(it.body, u);
        u = step(it.ret, u);
      }
    }
    return u;
  };
  const end = walk(items, 0);
  before.set(terminator, (before.get(terminator) ?? 0) | end);
  return { before, undefinedReads };
}

const CL_COUNTED = new Set<number>([
  Mnemonic.Shl, Mnemonic.Sal, Mnemonic.Shr, Mnemonic.Sar, Mnemonic.Rol, Mnemonic.Ror, Mnemonic.Rcl, Mnemonic.Rcr,
  Mnemonic.Shld, Mnemonic.Shrd,
]);

/**
 * Shifts and rotates by CL write no flags when the masked count is 0; rcl/rcr of 8/16 bits by a
 * multiple of 9/17 leave CF as it was; repeated cmps/scas write none when rcx is 0.
 */
export function writesFlagsConditionally(ins: Instruction): boolean {
  const m = ins.mnemonic;
  if (CL_COUNTED.has(m)) {
    for (let i = 0; i < ins.opCount; i++) if (ins.opKind(i) === OpKind.Register && ins.opRegister(i) === Register.CL) return true;
    if ((m === Mnemonic.Rcl || m === Mnemonic.Rcr) && ins.opCount > 0) {
      const k = ins.op0Kind;
      const size = k === OpKind.Register ? regSize(ins.op0Register) : ins.memorySize === 0 ? 0 : memBytes(ins);
      return size === 1 || size === 2;
    }
    return false;
  }
  return (ins.hasRepePrefix || ins.hasRepnePrefix) && ins.isStringInstruction;
}

function regSize(r: Register): number {
  if (REG8.includes(r) || REG8_HIGH.includes(r)) return 1;
  if (REG16.includes(r)) return 2;
  return 8;
}

function memBytes(ins: Instruction): number {
  const name = Code[ins.code] ?? '';
  return /rm8/.test(name) ? 1 : /rm16/.test(name) ? 2 : 8;
}

/** `cmp r64, imm32`: defines every arithmetic flag, changes no register. */
function defineFlags(rng: Rng): Insn {
  const reg = REG64[rng.pick(USABLE)]!;
  const imm = randomImmSigned(rng, 32);
  return { role: 'setup', build: () => Instruction.createRegI32(Code.Cmp_rm64_imm32, reg, imm) };
}

/** Puts a flag-defining set-up right before each of `readers` (a new array structure). */
function defineFlagsBefore(items: readonly Item[], readers: ReadonlySet<Insn>, rng: Rng): Item[] {
  const fixList = (insns: readonly Insn[]): Insn[] => insns.flatMap((i) => (readers.has(i) ? [defineFlags(rng), i] : [i]));
  return items.map((it): Item => {
    if (it.kind === 'seq') return { kind: 'seq', insns: fixList(it.insns) };
    if (it.kind === 'skip') {
      const pre = fixList(it.pre);
      if (readers.has(it.branch)) pre.push(defineFlags(rng));
      return { ...it, pre, body: defineFlagsBefore(it.body, readers, rng) };
    }
    return { ...it, pre: fixList(it.pre), body: defineFlagsBefore(it.body, readers, rng) };
  });
}

/** The input a CPU runs for this snippet. */
export function snippetInput(snippet: Snippet, encoded: EncodedSnippet): SnippetInput {
  return {
    code: encoded.code,
    context: { ...snippet.initial.context, gpr: [...snippet.initial.context.gpr], xmm: snippet.initial.context.xmm.slice() },
    scratch: snippet.initial.scratch,
    stack: snippet.initial.stack,
  };
}

/** Number of tested (non-setup, non-flow) instructions. */
export function countTested(items: readonly Item[]): number {
  let n = 0;
  for (const it of items) {
    if (it.kind === 'seq') n += it.insns.filter((i) => i.role === 'test').length;
    else n += 1 + countTested(it.body);
  }
  return n;
}
