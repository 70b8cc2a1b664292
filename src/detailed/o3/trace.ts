/**
 * The detailed CPU's instruction source: the functional core executes one instruction at a time
 * (it owns architectural state, syscalls and faults) and each one becomes a `DynInst` with
 * µops, real memory addresses and the real branch outcome. Static facts (registers read and
 * written, µop classes, branch kind) are worked out once per instruction address with
 * iced-x86's instruction info and cached.
 */
import { Decoder, DecoderOptions, FlowControl, InstructionInfoFactory, Mnemonic, OpAccess } from 'iced-x86';
import type { AtomicCPU, AtomicOutcome } from '../atomicCpu.js';
import { mnemonicName } from '../decode.js';
import { M5OP_SIZE, M5OP_VADDR } from '../../guest/layout.js';
import type { M5OpCall } from '../../guest/m5ops.js';
import { gprOf, xmmOf } from '../operands.js';
import type { TracingMemory } from './tracingMemory.js';
import { CLS_MEMREAD, CLS_MEMWRITE, CLS_SERIALIZE, OPCLASS_INDEX } from './params.js';

const CLS_INTALU = OPCLASS_INDEX.IntAlu;
import { countIntDsts } from './decode.js';
import { REG_FLAGS, REG_TMP, REG_X87, REG_XMM0, type BranchKind, type DynInst, type InstStream, type MicroOp, type OpClass } from './types.js';

interface StaticInfo {
  len: number;
  mnemonic: string;
  cls: OpClass;
  /** Registers the instruction reads (excluding address registers) and writes. */
  reads: number[];
  writes: number[];
  /** Registers forming memory addresses. */
  addrRegs: number[];
  /** A plain move: loads write the destination directly, stores need no compute µop. */
  move: boolean;
  branch: BranchKind | null;
  /** Precomputed µop register lists (shared by every dynamic instance; never mutated). */
  loadDsts: readonly number[];
  computeSrcsWithTmp: readonly number[];
  storeSrcsAfterCompute: readonly number[];
  storeSrcsMove: readonly number[];
  clsIdx: number;
  writesInt: number;
  loadDstsInt: number;
  /** Compute-µop destinations (without rsp for stack instructions: their own µop updates it). */
  computeDsts: readonly number[];
  computeDstsInt: number;
  /** push/pop/call/ret/leave…: a separate IntAlu µop adjusts rsp, as gem5's x86 µcode does. */
  stackOp: boolean;
}

const RSP = 4;
const RSP_ONLY: readonly number[] = [RSP];
const RAX = 0;
const RSI = 6;
const RDI = 7;

const NO_DSTS: readonly number[] = [];

/** Direct-mapped cache in front of the static-info map (index: low pc bits). */
const SCACHE_SIZE = 4096;

const M = Mnemonic;
const MOVES = new Set<number>([
  M.Mov, M.Movzx, M.Movsx, M.Movsxd, M.Movaps, M.Movups, M.Movapd, M.Movupd, M.Movdqa, M.Movdqu, M.Movq, M.Movd,
  M.Movss, M.Movsd, M.Movhps, M.Movlps, M.Movhpd, M.Movlpd, M.Lddqu, M.Movntdq, M.Movnti, M.Movntps, M.Push, M.Pop,
]);
const SERIALIZING = new Set<number>([M.Syscall, M.Cpuid, M.Mfence, M.Lfence, M.Sfence, M.Xgetbv, M.Rdtsc, M.Rdtscp, M.Fninit, M.Fldcw, M.Ldmxcsr, M.Fxrstor, M.Fxrstor64]);
const INT_MULT = new Set<number>([M.Imul, M.Mul, M.Mulx]);
const INT_DIV = new Set<number>([M.Div, M.Idiv]);

/** The functional-unit class an instruction's compute µop needs, from its mnemonic. */
function classOf(m: Mnemonic, name: string, usesXmm: boolean): OpClass {
  if (SERIALIZING.has(m)) return 'Serialize';
  if (m === M.Nop || m === M.Endbr64 || m === M.Pause) return 'Nop';
  if (INT_MULT.has(m)) return 'IntMult';
  if (INT_DIV.has(m)) return 'IntDiv';
  if (name.startsWith('f')) {
    if (name.includes('div')) return 'FloatDiv';
    if (name.includes('sqrt')) return 'FloatSqrt';
    if (name.includes('mul')) return 'FloatMult';
    return 'FloatAdd';
  }
  if (!usesXmm) return 'IntAlu';
  if (/^(div)(s|p)(s|d)$/.test(name)) return 'FloatDiv';
  if (/^sqrt/.test(name)) return 'FloatSqrt';
  if (/^(mul)(s|p)(s|d)$/.test(name)) return 'FloatMult';
  if (/^(add|sub|min|max|hadd|hsub|addsub)(s|p)(s|d)$/.test(name) || /^round/.test(name)) return 'FloatAdd';
  if (/^(u?comis|cmp)(s|p)?(s|d)?$/.test(name)) return 'FloatCmp';
  if (/^cvt/.test(name)) return 'FloatCvt';
  if (/^pmul|^pmadd|^psadbw/.test(name)) return 'SimdMult';
  if (/^(pshuf|punpck|unpck|shuf|palignr|pack|pinsr|pextr|insertps|extractps)/.test(name)) return 'SimdShuffle';
  return 'SimdAlu';
}

/** The predictor's branch kind of an instruction's flow control (null: not a branch). */
export function branchKind(flow: FlowControl): BranchKind | null {
  switch (flow) {
    case FlowControl.ConditionalBranch:
      return 'cond';
    case FlowControl.UnconditionalBranch:
      return 'uncond';
    case FlowControl.IndirectBranch:
      return 'indirect';
    case FlowControl.Call:
      return 'call';
    case FlowControl.IndirectCall:
      return 'indirectCall';
    case FlowControl.Return:
      return 'ret';
    default:
      return null;
  }
}

const READS = new Set<OpAccess>([OpAccess.Read, OpAccess.CondRead, OpAccess.ReadWrite, OpAccess.ReadCondWrite]);
const WRITES = new Set<OpAccess>([OpAccess.Write, OpAccess.CondWrite, OpAccess.ReadWrite, OpAccess.ReadCondWrite]);

export class FunctionalStream implements InstStream {
  private readonly statics = new Map<number, StaticInfo>();
  private readonly scacheTag = new Float64Array(SCACHE_SIZE).fill(-1);
  private readonly scacheVal: (StaticInfo | null)[] = new Array<StaticInfo | null>(SCACHE_SIZE).fill(null);
  private readonly infoFactory = new InstructionInfoFactory();
  private seq = 0;
  private ended: AtomicOutcome | null = null;
  private pending: M5OpCall | null = null;
  /** Instructions still allowed out before the stream pauses (limitFetch). */
  private remaining = Infinity;
  /** Instructions handed out since construction. */
  handedOut = 0;
  /** Pause after each syscall instruction (served by the functional core) until takeSyscallStop(). */
  stopAfterSyscall = false;
  private syscallStop = false;

  constructor(
    readonly cpu: AtomicCPU,
    private readonly mem: TracingMemory,
  ) {}

  /**
   * Hands out at most `n` more instructions, then pauses (not ends): the pipeline drains there
   * and fetch resumes when the limit is raised. Exact instruction budgets for switching.
   */
  limitFetch(n: number): void {
    this.remaining = n;
  }

  /** True once if the stream paused after a syscall (stopAfterSyscall); resumes it. */
  takeSyscallStop(): boolean {
    const was = this.syscallStop;
    this.syscallStop = false;
    return was;
  }

  /** Why the stream ended (exit, fault), once it has. */
  get outcome(): AtomicOutcome | null {
    return this.ended;
  }

  /**
   * The m5op the functional core stopped at (its instruction was the last one handed out), until
   * the driver takes it. Meanwhile the stream is paused: `next()` returns null but the stream has
   * not ended, so fetch goes idle and the pipeline drains up to and including the m5op.
   */
  get pendingM5op(): M5OpCall | null {
    return this.pending;
  }

  /** Whether the stream is paused at an m5op (see `pendingM5op`). */
  get paused(): boolean {
    return this.ended === null && (this.pending !== null || this.syscallStop || this.remaining <= 0);
  }

  /** Takes the pending m5op (null if none) and resumes the stream. */
  takeM5op(): M5OpCall | null {
    const call = this.pending;
    this.pending = null;
    return call;
  }

  /** Drops cached static facts (the code changed). */
  invalidate(): void {
    this.statics.clear();
    this.scacheTag.fill(-1);
    this.scacheVal.fill(null);
  }

  private staticAt(pc: number): StaticInfo {
    const ci = pc & (SCACHE_SIZE - 1);
    if (this.scacheTag[ci] === pc) return this.scacheVal[ci]!;
    const st = this.staticLookup(pc);
    this.scacheTag[ci] = pc;
    this.scacheVal[ci] = st;
    return st;
  }

  private staticLookup(pc: number): StaticInfo {
    let st = this.statics.get(pc);
    if (st) return st;
    const { bytes } = this.mem.fetch(pc, 15);
    if (bytes[0] === 0x0f && bytes[1] === 0x04 && bytes.length >= 4) {
      st = m5opStatic();
      this.statics.set(pc, st);
      return st;
    }
    const dec = new Decoder(64, bytes, DecoderOptions.None);
    dec.ip = BigInt(pc);
    const ins = dec.decode();
    try {
      const info = this.infoFactory.info(ins);
      const addrRegs: number[] = [];
      for (const r of [ins.memoryBase, ins.memoryIndex]) {
        const g = gprOf(r);
        if (g) addrRegs.push(g.index);
      }
      const reads = new Set<number>();
      const writes = new Set<number>();
      let usesXmm = false;
      for (const u of info.usedRegisters() as { register: number; access: OpAccess }[]) {
        const g = gprOf(u.register);
        const x = xmmOf(u.register);
        const id = g ? g.index : x !== undefined ? REG_XMM0 + x : -1;
        if (x !== undefined) usesXmm = true;
        if (id < 0) continue;
        if (READS.has(u.access) && !addrRegs.includes(id)) reads.add(id);
        if (WRITES.has(u.access)) writes.add(id);
      }
      if (ins.rflagsRead) reads.add(REG_FLAGS);
      if (ins.rflagsWritten) writes.add(REG_FLAGS);
      const name = mnemonicName(ins.mnemonic);
      if (name.startsWith('f') && ins.mnemonic !== M.Fxsave && ins.mnemonic !== M.Fxsave64) {
        reads.add(REG_X87);
        writes.add(REG_X87);
      }
      info.free();
      const branch = branchKind(ins.flowControl);
      const cls0 = classOf(ins.mnemonic, name, usesXmm);
      // Branches execute on the branch unit (an IntAlu port here), counted as their own class.
      const cls: OpClass = branch && cls0 === 'IntAlu' ? 'Branch' : cls0;
      const move = MOVES.has(ins.mnemonic);
      const stackOp = ins.isStackInstruction;
      if (stackOp && !addrRegs.includes(RSP)) addrRegs.push(RSP);
      const readArr = [...reads];
      const writeArr = [...writes];
      const noSp = stackOp ? writeArr.filter((r) => r !== RSP) : writeArr;
      st = {
        len: ins.length,
        mnemonic: name,
        cls,
        reads: readArr,
        writes: writeArr,
        addrRegs,
        move,
        branch,
        loadDsts: move && cls !== 'Serialize' ? noSp : [REG_TMP],
        computeSrcsWithTmp: [...readArr, REG_TMP],
        storeSrcsAfterCompute: [...addrRegs, ...writeArr.filter((r) => r !== REG_FLAGS)],
        storeSrcsMove: [...addrRegs, ...readArr],
        clsIdx: OPCLASS_INDEX[cls] ?? 0,
        writesInt: 0,
        loadDstsInt: 0,
        computeDsts: noSp,
        computeDstsInt: countIntDsts(noSp),
        stackOp,
      };
      st.writesInt = countIntDsts(st.writes);
      st.loadDstsInt = countIntDsts(st.loadDsts);
    } finally {
      ins.free();
      dec.free();
    }
    this.statics.set(pc, st);
    return st;
  }

  next(): DynInst | null {
    if (this.ended || this.pending || this.syscallStop || this.remaining <= 0) return null;
    const cpu = this.cpu;
    const pc = cpu.s.rip;
    const st = this.staticAt(pc);
    const mem = this.mem;
    mem.clearTrace();
    const out = cpu.run(1);
    if (out.kind === 'faulted') {
      this.ended = out;
      return null;
    }
    if (out.kind === 'exited') this.ended = out;
    else if (out.kind === 'm5op') this.pending = out.call;
    else if (this.stopAfterSyscall && st.mnemonic === 'syscall') this.syscallStop = true;
    this.remaining--;
    this.handedOut++;
    const n = mem.count;
    if (st.cls !== 'Serialize' && n > 0 && touchesM5opWindow(mem)) return this.m5opAccessInst(pc, st);
    const uops: MicroOp[] = [];
    let loads = 0;
    for (let i = 0; i < n; i++) {
      if (mem.writes[i]) continue;
      loads++;
      uops.push({
        cls: 'MemRead',
        srcs: st.addrRegs,
        dsts: st.loadDsts,
        mem: { addr: mem.addrs[i]!, size: mem.sizes[i]! },
        clsIdx: CLS_MEMREAD,
        nIntDsts: st.loadDstsInt,
        nFpDsts: st.loadDsts.length - st.loadDstsInt,
      });
    }
    const needsCompute = !st.move || n === 0 || st.cls === 'Serialize';
    if (needsCompute) {
      uops.push({ cls: st.cls, srcs: loads ? st.computeSrcsWithTmp : st.reads, dsts: st.computeDsts, clsIdx: st.clsIdx, nIntDsts: st.computeDstsInt, nFpDsts: st.computeDsts.length - st.computeDstsInt });
    }
    if (st.stackOp) {
      uops.push({ cls: 'IntAlu', srcs: RSP_ONLY, dsts: RSP_ONLY, clsIdx: CLS_INTALU, nIntDsts: 1, nFpDsts: 0 });
    }
    for (let i = 0; i < n; i++) {
      if (!mem.writes[i]) continue;
      uops.push({
        cls: 'MemWrite',
        srcs: needsCompute ? st.storeSrcsAfterCompute : st.storeSrcsMove,
        dsts: NO_DSTS,
        mem: { addr: mem.addrs[i]!, size: mem.sizes[i]! },
        clsIdx: CLS_MEMWRITE,
        nIntDsts: 0,
        nFpDsts: 0,
      });
    }
    const nextPc = cpu.s.rip;
    const inst: DynInst = { seq: this.seq++, pc, len: st.len, nextPc, uops, mnemonic: st.mnemonic };
    if (st.branch) {
      const fall = pc + st.len;
      inst.branch = { kind: st.branch, taken: st.branch !== 'cond' || nextPc !== fall, target: nextPc };
    }
    return inst;
  }

  /**
   * An address-form m5op (an access to the m5op window): like the instruction form, one
   * serializing, non-speculative µop and no memory access (gem5 serves the window in the TLB
   * with a strictly ordered local access, never through the caches).
   */
  private m5opAccessInst(pc: number, st: StaticInfo): DynInst {
    const srcs = [...st.addrRegs, ...st.reads.filter((r) => !st.addrRegs.includes(r))];
    const uop: MicroOp = { cls: 'Serialize', srcs, dsts: st.computeDsts, clsIdx: CLS_SERIALIZE, nIntDsts: st.computeDstsInt, nFpDsts: st.computeDsts.length - st.computeDstsInt };
    return { seq: this.seq++, pc, len: st.len, nextPc: this.cpu.s.rip, uops: [uop], mnemonic: st.mnemonic };
  }
}

function touchesM5opWindow(mem: TracingMemory): boolean {
  for (let i = 0; i < mem.count; i++) {
    const a = mem.addrs[i]!;
    if (a >= M5OP_VADDR && a < M5OP_VADDR + M5OP_SIZE) return true;
  }
  return false;
}

/** Static facts of gem5's magic instruction 0F 04 imm16: reads rdi, rsi; writes rax; serializing. */
function m5opStatic(): StaticInfo {
  const reads = [RDI, RSI];
  const writes = [RAX];
  return {
    len: 4,
    mnemonic: 'm5op',
    cls: 'Serialize',
    reads,
    writes,
    addrRegs: [],
    move: false,
    branch: null,
    loadDsts: [REG_TMP],
    computeSrcsWithTmp: [...reads, REG_TMP],
    storeSrcsAfterCompute: writes,
    storeSrcsMove: reads,
    clsIdx: CLS_SERIALIZE,
    writesInt: countIntDsts(writes),
    loadDstsInt: countIntDsts([REG_TMP]),
    computeDsts: writes,
    computeDstsInt: countIntDsts(writes),
    stackOp: false,
  };
}
