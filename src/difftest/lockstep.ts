/**
 * Whole programs on KVM and on the atomic CPU side by side.
 *
 * - lockstepInstructions: single-step KVM (TF, src/kvm/stepper.ts) and run the atomic CPU one
 *   instruction at a time; after every instruction compare all registers (rflags minus the
 *   flags whose last writer left them undefined, tracked along the executed path) and the
 *   memory the instruction wrote; at the end compare all of memory, the VMAs and the output.
 * - lockstepSyscalls: both at full speed to each syscall (before it is served) and to the exit;
 *   compare registers and memory at every stop. The first mismatch is diagnosed by a replay:
 *   both restart, run to the previous syscall, then go in per-instruction lockstep to find the
 *   first instruction that diverges and the ones before it. A stop that differs only in flags
 *   the replay shows to be undefined is not a mismatch.
 *
 * Both CPUs get their own copy of the process (same ELF, argv, env, seed, CPUID, hwcap) and the
 * same deterministic clock (time syscalls answer alike). rdtsc/rdtscp/rdrand/rdseed results are
 * copied from KVM to the atomic CPU in per-instruction mode (they are not functions of state).
 */
import { readFileSync } from 'node:fs';
import {
  Decoder,
  DecoderOptions,
  Formatter,
  FormatterSyntax,
  InstructionInfoFactory,
  CpuidFeature,
  MemorySizeExt,
  Mnemonic,
  RegisterExt,
  OpAccess,
  OpKind,
  Register,
  type Instruction,
} from 'iced-x86';
import type { AddressSpace } from '../guest/addressSpace.js';
import { allocatePhysicalMemory, type PhysicalMemory } from '../guest/physmem.js';
import { Process, type GuestIO } from '../guest/process.js';
import { Gpr, GPR_NAMES, type ThreadContext } from '../guest/threadContext.js';
import { hwcapFromCpuid } from '../kvm/cpuid.js';
import { bootKvmInProcess, type InProcessKvm, type StepResult } from '../kvm/stepper.js';
import { deterministicClock, withClock, type AtomicCpuLike, type AtomicFactory, type AtomicOutcomeLike } from './atomic.js';
import { bytesEqual, compareContexts, compareMemory, formatDiffs, type CompareOptions, type FieldDiff } from './compare.js';
import { ARITH_FLAGS, ifcFlagsToEflags, UndefinedFlagsTracker } from './flagsMask.js';
import { writesFlagsConditionally } from './generator.js';

export interface LockstepProgram {
  /** Host path of a static x86-64 ELF. */
  program: string;
  argv: string[];
  envp: string[];
  allowRead?: string[];
  seed?: bigint;
  memSize?: number;
}

export interface LockstepOptions extends LockstepProgram {
  atomic: AtomicFactory;
  compare?: CompareOptions;
  /** Instructions kept for the mismatch report (default 16). */
  history?: number;
}

export interface LockstepMismatch {
  /** Human-readable position: instruction number and rip, or syscall number and name. */
  where: string;
  instruction?: number;
  syscall?: number;
  diffs: FieldDiff[];
  history: string[];
  report: string;
}

export interface LockstepReport {
  program: string;
  /** Instructions compared one by one (lockstepInstructions), or executed by the atomic CPU. */
  instructions: number;
  /** Syscall stops compared (lockstepSyscalls) or syscalls stepped over. */
  syscalls: number;
  end: 'exited' | 'faulted' | 'limit' | 'mismatch';
  exitStatus?: number;
  mismatch?: LockstepMismatch;
  /** Syscall stops that differed only in flags the replay showed undefined. */
  maskedFlagStops: number;
  /** rdtsc-like instructions whose KVM result was copied to the atomic CPU. */
  copiedNondeterministic: number;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------
// two copies of one program

interface Capture extends GuestIO {
  out: Buffer[];
}

function capture(): Capture {
  const out: Buffer[] = [];
  return {
    out,
    write: (fd, bytes) => {
      out.push(Buffer.from(`${fd}:`), Buffer.from(bytes));
    },
    read: () => new Uint8Array(0),
  };
}

interface Pair {
  kvm: InProcessKvm;
  kvmIo: Capture;
  cpu: AtomicCpuLike;
  jsProcess: Process;
  jsPhys: PhysicalMemory;
  jsIo: Capture;
  close(): void;
}

function bootPair(opts: LockstepOptions): Pair {
  const memSize = opts.memSize ?? 256 * 1024 * 1024;
  const kvmIo = capture();
  const kvm = bootKvmInProcess({
    program: opts.program,
    argv: opts.argv,
    envp: opts.envp,
    allowRead: opts.allowRead ?? [],
    cwd: '/',
    seed: opts.seed ?? 0n,
    memSize,
    io: kvmIo,
    warn: () => {},
    wrapProcess: (p) => withClock(p, deterministicClock()),
  });
  try {
    const jsIo = capture();
    const jsPhys = allocatePhysicalMemory(memSize, 'shared');
    const { process, context } = Process.load(jsPhys, readFileSync(opts.program), {
      exePath: opts.program,
      argv: opts.argv,
      envp: opts.envp,
      allowRead: opts.allowRead ?? [],
      cwd: '/',
      seed: opts.seed ?? 0n,
      hwcap: hwcapFromCpuid(kvm.cpuid),
      hwcap2: 0,
      io: jsIo,
      warn: () => {},
    });
    const cpu = opts.atomic({
      aspace: process.aspace,
      process: withClock(process, deterministicClock()),
      cpuid: kvm.cpuid,
      ...(kvm.xcr0 !== null ? { xcr0: kvm.xcr0 } : {}),
    });
    cpu.setThreadContext(context);
    return { kvm, kvmIo, cpu, jsProcess: process, jsPhys, jsIo, close: () => kvm.close() };
  } catch (e) {
    kvm.close();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// memory

function readVirt(aspace: AddressSpace, vaddr: number, len: number): Uint8Array | null {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; ) {
    let p: number;
    try {
      p = aspace.translate(vaddr + i, 'read');
    } catch {
      return null;
    }
    const n = Math.min(len - i, 4096 - ((vaddr + i) % 4096));
    out.set(aspace.phys.bytes.subarray(p, p + n), i);
    i += n;
  }
  return out;
}

/** Every mapped user page (io windows aside) and the VMA lists of both copies. */
function compareAllMemory(a: AddressSpace, b: AddressSpace, maxDiffs = 8): FieldDiff[] {
  const va = a.vmas.filter((v) => v.kind !== 'io');
  const vb = b.vmas.filter((v) => v.kind !== 'io');
  const fmt = (v: (typeof va)[number]) => `${v.start.toString(16)}-${v.end.toString(16)} ${v.prot} ${v.kind}`;
  const la = va.map(fmt).join(', ');
  const lb = vb.map(fmt).join(', ');
  if (la !== lb) return [{ field: 'vmas', kvm: la, js: lb }];
  const out: FieldDiff[] = [];
  for (const v of va) {
    for (let at = v.start; at < v.end && out.length < maxDiffs; at += 4096) {
      const x = readVirt(a, at, 4096);
      const y = readVirt(b, at, 4096);
      if (!x || !y) continue;
      if (!bytesEqual(x, y)) out.push(...compareMemory('mem', at, x, y, maxDiffs - out.length));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// decoded instructions (cached per rip)

const R = Register as unknown as Record<string, Register>;
/** iced register → [gpr number, width in bytes, high byte]. */
const GPR_OF = new Map<Register, [number, number, boolean]>();
{
  const n64 = ['RAX', 'RCX', 'RDX', 'RBX', 'RSP', 'RBP', 'RSI', 'RDI', 'R8', 'R9', 'R10', 'R11', 'R12', 'R13', 'R14', 'R15'];
  const n32 = ['EAX', 'ECX', 'EDX', 'EBX', 'ESP', 'EBP', 'ESI', 'EDI', 'R8D', 'R9D', 'R10D', 'R11D', 'R12D', 'R13D', 'R14D', 'R15D'];
  const n16 = ['AX', 'CX', 'DX', 'BX', 'SP', 'BP', 'SI', 'DI', 'R8W', 'R9W', 'R10W', 'R11W', 'R12W', 'R13W', 'R14W', 'R15W'];
  const n8 = ['AL', 'CL', 'DL', 'BL', 'SPL', 'BPL', 'SIL', 'DIL', 'R8L', 'R9L', 'R10L', 'R11L', 'R12L', 'R13L', 'R14L', 'R15L'];
  n64.forEach((n, i) => GPR_OF.set(R[n]!, [i, 8, false]));
  n32.forEach((n, i) => GPR_OF.set(R[n]!, [i, 4, false]));
  n16.forEach((n, i) => GPR_OF.set(R[n]!, [i, 2, false]));
  n8.forEach((n, i) => GPR_OF.set(R[n]!, [i, 1, false]));
  ['AH', 'CH', 'DH', 'BH'].forEach((n, i) => GPR_OF.set(R[n]!, [i, 1, true]));
}

interface MemWrite {
  seg: Register;
  base: Register;
  index: Register;
  scale: number;
  disp: bigint;
  size: number;
}

interface Decoded {
  rip: bigint;
  length: number;
  text: string;
  mnemonic: number;
  flagsModified: number;
  flagsUndefined: number;
  conditional: boolean;
  /** Count register width mask for conditional writers (0x3f or 0x1f), 0 = rcx as a rep count. */
  countMask: number;
  isSyscall: boolean;
  nondeterministic: boolean;
  writes: MemWrite[];
  /** A rep-prefixed movs/stos: compares [rdi range] after the instruction. */
  repStore: number;
  /** May change x87/SSE state (so KVM's must be read again after it). */
  touchesFpu: boolean;
}

const FEATURE_NAME = new Map<number, string>(
  Object.entries(CpuidFeature).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]),
);
const FPU_FEATURES = /^(FPU|SSE|SSSE|AVX|FMA|F16C|FXSR|XSAVE|MMX|AES|PCLMUL|SHA|GFNI|VAES|VPCLMUL|D3NOW|AMX|KNC)/;

/** Conservative: any vector/x87 operand or any x87/SSE/AVX-family instruction. */
function touchesFpu(ins: Instruction): boolean {
  if (ins.mnemonic === Mnemonic.Syscall) return true;
  for (const f of ins.cpuidFeatures()) if (FPU_FEATURES.test(FEATURE_NAME.get(f) ?? '')) return true;
  for (let i = 0; i < ins.opCount; i++) {
    if (ins.opKind(i) !== OpKind.Register) continue;
    const r = ins.opRegister(i);
    if (RegisterExt.isVectorRegister(r) || RegisterExt.isST(r) || RegisterExt.isMM(r)) return true;
  }
  return false;
}

const NONDETERMINISTIC = new Set<number>([Mnemonic.Rdtsc, Mnemonic.Rdtscp, Mnemonic.Rdrand, Mnemonic.Rdseed, Mnemonic.Rdpid]);
const STRING_STORES = new Set<number>([
  Mnemonic.Movsb, Mnemonic.Movsw, Mnemonic.Movsd, Mnemonic.Movsq, Mnemonic.Stosb, Mnemonic.Stosw, Mnemonic.Stosd, Mnemonic.Stosq,
]);

class DecodeCache {
  private readonly cache = new Map<bigint, Decoded>();
  private readonly factory = new InstructionInfoFactory();
  private formatter: Formatter | undefined;

  constructor(private readonly aspace: AddressSpace) {}

  get(rip: bigint): Decoded {
    let d = this.cache.get(rip);
    if (!d) {
      d = this.decode(rip);
      this.cache.set(rip, d);
    }
    return d;
  }

  /** Code can change (JIT-like programs, or a page reused): drop everything. */
  clear(): void {
    this.cache.clear();
  }

  private decode(rip: bigint): Decoded {
    let bytes: Uint8Array = new Uint8Array(0);
    for (let n = 15; n > 0 && bytes.length === 0; n--) bytes = readVirt(this.aspace, Number(rip), n) ?? new Uint8Array(0);
    const dec = new Decoder(64, bytes, DecoderOptions.None);
    dec.ip = rip;
    const ins = dec.decode();
    try {
      this.formatter ??= new Formatter(FormatterSyntax.Intel);
      const writes: MemWrite[] = [];
      if (!ins.isInvalid) {
        const info = this.factory.info(ins);
        for (const m of info.usedMemory() as { access: OpAccess; base: Register; index: Register; scale: number; displacement: bigint; memorySize: number; segment: Register; free(): void }[]) {
          const a = m.access;
          if (a === OpAccess.Write || a === OpAccess.CondWrite || a === OpAccess.ReadWrite || a === OpAccess.ReadCondWrite) {
            writes.push({ seg: m.segment, base: m.base, index: m.index, scale: m.scale, disp: m.displacement, size: memSize(m.memorySize) });
          }
          m.free();
        }
        info.free();
      }
      const m = ins.mnemonic;
      const cl = writesFlagsConditionally(ins) && !ins.isStringInstruction;
      return {
        rip,
        length: ins.length,
        text: this.formatter.format(ins),
        mnemonic: m,
        flagsModified: ifcFlagsToEflags(ins.rflagsModified),
        flagsUndefined: ifcFlagsToEflags(ins.rflagsUndefined),
        conditional: writesFlagsConditionally(ins),
        countMask: cl ? (destSize(ins) === 8 ? 0x3f : 0x1f) : 0,
        isSyscall: m === Mnemonic.Syscall,
        nondeterministic: NONDETERMINISTIC.has(m),
        writes,
        repStore: (ins.hasRepePrefix || ins.hasRepnePrefix) && STRING_STORES.has(m) ? stringElement(m) : 0,
        touchesFpu: ins.isInvalid || touchesFpu(ins),
      };
    } finally {
      ins.free();
      dec.free();
    }
  }
}

function memSize(ms: number): number {
  return MemorySizeExt.size(ms) || 8;
}

/** Operand size in bytes of a shift/rotate's destination. */
function destSize(ins: Instruction): number {
  if (ins.op0Kind === OpKind.Register) return GPR_OF.get(ins.op0Register)?.[1] ?? 8;
  return MemorySizeExt.size(ins.memorySize) || 8;
}

function stringElement(m: number): number {
  const name = Mnemonic[m] ?? '';
  return name.endsWith('b') ? 1 : name.endsWith('w') ? 2 : name.endsWith('d') ? 4 : 8;
}

function regValue(tc: ThreadContext, r: Register): bigint {
  const g = GPR_OF.get(r);
  if (!g) return 0n;
  const v = tc.gpr[g[0]]!;
  if (g[2]) return (v >> 8n) & 0xffn;
  return g[1] === 8 ? v : v & ((1n << BigInt(8 * g[1])) - 1n);
}

/** Address of a memory operand with `tc`'s registers (before the instruction). */
function addressOf(w: MemWrite, tc: ThreadContext): number | null {
  let a: bigint;
  const addr32 = GPR_OF.get(w.base)?.[1] === 4 || GPR_OF.get(w.index)?.[1] === 4;
  if (w.base === Register.RIP || w.base === Register.EIP) a = w.disp;
  else a = regValue(tc, w.base) + regValue(tc, w.index) * BigInt(w.scale) + w.disp;
  a &= addr32 ? 0xffffffffn : (1n << 64n) - 1n;
  if (w.seg === Register.FS) a += tc.fsBase;
  else if (w.seg === Register.GS) a += tc.gsBase;
  a &= (1n << 64n) - 1n;
  return a < 1n << 47n ? Number(a) : null;
}

// ---------------------------------------------------------------------------------------------
// per-instruction lockstep

type StepVerdict = { kind: 'ok' } | { kind: 'end'; end: 'exited' | 'faulted'; status?: number } | { kind: 'mismatch'; diffs: FieldDiff[] } | { kind: 'atSyscall' };

class InstructionLockstep {
  readonly tracker = new UndefinedFlagsTracker();
  private readonly decode: DecodeCache;
  private readonly history: string[] = [];
  private kvmCtx: ThreadContext;
  /** Flags-at-syscall mask for r11 while it still holds the flags the last syscall saved. */
  private r11Mask = 0;
  private r11Value = -1n;
  instructions = 0;
  syscalls = 0;
  copied = 0;
  /** Both states at the last mismatch. */
  states: States;

  constructor(
    private readonly pair: Pair,
    private readonly opts: LockstepOptions,
  ) {
    this.decode = new DecodeCache(pair.kvm.cpu.aspace);
    this.kvmCtx = pair.kvm.stepper.context();
  }

  get historyLines(): string[] {
    return [...this.history];
  }

  get context(): ThreadContext {
    return this.kvmCtx;
  }

  /** Compares the current states (registers only). */
  compareNow(): FieldDiff[] {
    return this.compare(this.kvmCtx, this.pair.cpu.getThreadContext());
  }

  private compare(k: ThreadContext, j: ThreadContext): FieldDiff[] {
    this.states = { kvm: k, js: j };
    if (this.r11Mask && k.gpr[Gpr.r11] === this.r11Value && ((k.gpr[Gpr.r11]! ^ j.gpr[Gpr.r11]!) & ~BigInt(this.r11Mask)) === 0n) {
      j = { ...j, gpr: [...j.gpr] };
      j.gpr[Gpr.r11] = k.gpr[Gpr.r11]!;
    }
    return compareContexts(k, j, this.tracker.undefinedNow, this.opts.compare);
  }

  /** One instruction on both; `stopBeforeSyscall`: return 'atSyscall' instead of executing syscall number n. */
  step(stopBeforeSyscall?: number): StepVerdict {
    const before = this.kvmCtx;
    const d = this.decode.get(before.rip);
    if (d.isSyscall && stopBeforeSyscall !== undefined && this.syscalls === stopBeforeSyscall) return { kind: 'atSyscall' };
    const { kvm, cpu } = this.pair;
    const k: StepResult = kvm.stepper.stepInstruction({ fpu: d.touchesFpu });
    let a: AtomicOutcomeLike;
    try {
      a = cpu.run(1);
    } catch (e) {
      this.history.push(`#${this.instructions + 1} 0x${d.rip.toString(16)}  ${d.text}`);
      return { kind: 'mismatch', diffs: [{ field: 'js', kvm: 'executed', js: `threw ${errorText(e)}` }] };
    }
    this.instructions++;
    const keep = this.opts.history ?? 16;
    this.history.push(`#${this.instructions} 0x${d.rip.toString(16)}  ${d.text}`);
    if (this.history.length > keep) this.history.shift();
    // Flags: count-0 shifts and rcx=0 repeated compares write none.
    let writes = !d.conditional;
    if (d.conditional) {
      const count = d.countMask ? Number(before.gpr[Gpr.rcx]! & BigInt(d.countMask)) : Number(before.gpr[Gpr.rcx]! !== 0n);
      writes = count !== 0 && !(d.mnemonic === Mnemonic.Rcl || d.mnemonic === Mnemonic.Rcr);
    }
    if (writes) this.tracker.step(d.flagsModified, d.flagsUndefined);
    else this.tracker.undefinedNow |= d.flagsUndefined;
    if (d.isSyscall) {
      this.syscalls++;
      this.r11Mask = this.tracker.undefinedNow & ARITH_FLAGS;
    }
    if (k.kind === 'exited') {
      if (a.kind === 'exited' && a.status === k.status) return { kind: 'end', end: 'exited', status: k.status };
      return { kind: 'mismatch', diffs: [{ field: 'end', kvm: `exit ${k.status}`, js: describeAtomic(a) }] };
    }
    if (k.kind === 'syscall') throw new Error('lockstep: unexpected syscall stop');
    if (k.kind === 'faulted') {
      this.kvmCtx = k.context;
      if (a.kind !== 'faulted' || a.report.vector !== k.report.vector || a.report.rip !== k.report.rip) {
        return { kind: 'mismatch', diffs: [{ field: 'end', kvm: `${k.report.vectorName} at ${k.report.rip}`, js: describeAtomic(a) }] };
      }
      const diffs = this.compare(k.context, cpu.getThreadContext());
      return diffs.length ? { kind: 'mismatch', diffs } : { kind: 'end', end: 'faulted' };
    }
    this.kvmCtx = k.context;
    if (d.isSyscall) this.r11Value = k.context.gpr[Gpr.r11]!;
    if (a.kind !== 'limit') {
      return { kind: 'mismatch', diffs: [{ field: 'end', kvm: 'one instruction executed', js: describeAtomic(a) }] };
    }
    if (d.nondeterministic) this.copyResult(d, k.context);
    const diffs = this.compare(k.context, cpu.getThreadContext());
    diffs.push(...this.compareWrites(d, before, k.context));
    if (diffs.length) return { kind: 'mismatch', diffs };
    return { kind: 'ok' };
  }

  /** rdtsc & co. read the host: give the atomic CPU KVM's answer. */
  private copyResult(d: Decoded, k: ThreadContext): void {
    const j = this.pair.cpu.getThreadContext();
    const regs = d.mnemonic === Mnemonic.Rdtsc ? [Gpr.rax, Gpr.rdx] : d.mnemonic === Mnemonic.Rdtscp ? [Gpr.rax, Gpr.rdx, Gpr.rcx] : [...Array(16).keys()];
    for (const r of regs) j.gpr[r] = k.gpr[r]!;
    if (d.mnemonic === Mnemonic.Rdrand || d.mnemonic === Mnemonic.Rdseed) j.rflags = k.rflags;
    this.pair.cpu.setThreadContext(j);
    this.copied++;
  }

  private compareWrites(d: Decoded, before: ThreadContext, after: ThreadContext): FieldDiff[] {
    const ka = this.pair.kvm.cpu.aspace;
    const ja = this.pair.jsProcess.aspace;
    const out: FieldDiff[] = [];
    const check = (addr: number, size: number) => {
      const x = readVirt(ka, addr, size);
      const y = readVirt(ja, addr, size);
      if (x && y) out.push(...compareMemory('mem', addr, x, y, 4));
      else if (!x !== !y) out.push({ field: `mem[0x${addr.toString(16)}]`, kvm: x ? 'mapped' : 'unmapped', js: y ? 'mapped' : 'unmapped' });
    };
    if (d.repStore) {
      const a = Number(before.gpr[Gpr.rdi]!);
      const b = Number(after.gpr[Gpr.rdi]!);
      const lo = Math.min(a, b);
      const len = Math.min(Math.abs(b - a) + d.repStore, 1 << 20);
      if (len > 0 && lo >= 0 && lo < 2 ** 47) check(lo, len);
      return out;
    }
    for (const w of d.writes) {
      const addr = addressOf(w, before);
      if (addr !== null) check(addr, Math.min(w.size, 64));
    }
    return out;
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e);
}

/** Runs the atomic CPU, turning a throw (unsupported instruction, internal error) into a value. */
function safeRun(cpu: AtomicCpuLike, f: () => AtomicOutcomeLike): AtomicOutcomeLike | { kind: 'threw'; message: string } {
  try {
    return f();
  } catch (e) {
    void cpu;
    return { kind: 'threw', message: errorText(e) };
  }
}

function describeAtomic(a: AtomicOutcomeLike | { kind: 'threw'; message: string }): string {
  switch (a.kind) {
    case 'exited':
      return `exit ${a.status}`;
    case 'faulted':
      return `${a.report.vectorName} at ${a.report.rip}`;
    case 'limit':
      return 'one instruction executed';
    case 'syscall':
      return 'syscall stop';
    case 'm5op':
      return 'm5op stop';
    case 'threw':
      return `threw ${a.message}`;
  }
}

type States = { kvm: ThreadContext; js: ThreadContext } | undefined;

/** Both register files side by side, differing lines marked. */
function formatStates(st: NonNullable<States>): string[] {
  const hex = (v: bigint) => `0x${v.toString(16).padStart(16, '0')}`;
  const rows: [string, string, string][] = GPR_NAMES.map((n, i) => [n, hex(st.kvm.gpr[i]!), hex(st.js.gpr[i]!)]);
  rows.push(['rip', hex(st.kvm.rip), hex(st.js.rip)], ['rflags', hex(st.kvm.rflags), hex(st.js.rflags)]);
  rows.push(['fs.base', hex(st.kvm.fsBase), hex(st.js.fsBase)], ['gs.base', hex(st.kvm.gsBase), hex(st.js.gsBase)]);
  rows.push(['mxcsr', `0x${st.kvm.mxcsr.toString(16)}`, `0x${st.js.mxcsr.toString(16)}`]);
  return ['both states (kvm | js):', ...rows.map(([n, a, b]) => `  ${a === b ? ' ' : '*'} ${n.padEnd(7)} ${a} | ${b}`)];
}

function report(where: string, diffs: FieldDiff[], history: string[], extra: Partial<LockstepMismatch> = {}, states?: States): LockstepMismatch {
  const text = [
    `LOCKSTEP MISMATCH at ${where}`,
    'last instructions (KVM and the atomic CPU agreed before the last one):',
    ...history.map((h) => `  ${h}`),
    'differences:',
    formatDiffs(diffs),
    ...(states ? formatStates(states) : []),
  ].join('\n');
  return { where, diffs, history, report: text, ...extra };
}

function endDiffs(pair: Pair): FieldDiff[] {
  const diffs = compareAllMemory(pair.kvm.cpu.aspace, pair.jsProcess.aspace);
  const ko = Buffer.concat(pair.kvmIo.out);
  const jo = Buffer.concat(pair.jsIo.out);
  if (!ko.equals(jo)) diffs.push({ field: 'output', kvm: JSON.stringify(ko.toString().slice(0, 200)), js: JSON.stringify(jo.toString().slice(0, 200)) });
  return diffs;
}

/** Per-instruction lockstep over the first `maxInstructions` instructions (or to the exit). */
export function lockstepInstructions(opts: LockstepOptions & { maxInstructions: number }): LockstepReport {
  const t0 = performance.now();
  const pair = bootPair(opts);
  try {
    const ls = new InstructionLockstep(pair, opts);
    const base = { program: opts.program, maskedFlagStops: 0 };
    const finish = (end: LockstepReport['end'], extra: Partial<LockstepReport> = {}): LockstepReport => ({
      ...base, instructions: ls.instructions, syscalls: ls.syscalls, end, copiedNondeterministic: ls.copied,
      seconds: (performance.now() - t0) / 1000, ...extra,
    });
    const initial = [...ls.compareNow(), ...compareAllMemory(pair.kvm.cpu.aspace, pair.jsProcess.aspace)];
    if (initial.length) return finish('mismatch', { mismatch: report('the entry point (programs loaded differently)', initial, []) });
    for (;;) {
      if (ls.instructions >= opts.maxInstructions) {
        const diffs = compareAllMemory(pair.kvm.cpu.aspace, pair.jsProcess.aspace);
        if (diffs.length) return finish('mismatch', { mismatch: report(`instruction ${ls.instructions} (memory at the limit)`, diffs, ls.historyLines) });
        return finish('limit');
      }
      const v = ls.step();
      if (v.kind === 'ok') continue;
      if (v.kind === 'mismatch') {
        return finish('mismatch', { mismatch: report(`instruction ${ls.instructions}`, v.diffs, ls.historyLines, { instruction: ls.instructions }, ls.states) });
      }
      if (v.kind === 'end') {
        const diffs = endDiffs(pair);
        if (diffs.length) return finish('mismatch', { mismatch: report(`the ${v.end === 'exited' ? 'exit' : 'fault'}`, diffs, ls.historyLines) });
        return finish(v.end, v.status !== undefined ? { exitStatus: v.status } : {});
      }
    }
  } finally {
    pair.close();
  }
}

// ---------------------------------------------------------------------------------------------
// lockstep at syscalls

/** Runs the atomic CPU to its next stop (syscall, exit, fault). */
function runAtomicToStop(cpu: AtomicCpuLike): AtomicOutcomeLike {
  cpu.stopAtSyscalls = true;
  for (;;) {
    const a = cpu.run(1 << 30);
    if (a.kind !== 'limit') return a;
  }
}

/**
 * The atomic CPU's state at a syscall stop in KVM's convention (just after the syscall
 * instruction: rip = rcx = next, r11 = rflags), whatever convention the core uses.
 */
function afterSyscallConvention(tc: ThreadContext, aspace: AddressSpace): ThreadContext {
  const b = readVirt(aspace, Number(tc.rip), 2);
  if (b && b[0] === 0x0f && b[1] === 0x05) {
    const next = tc.rip + 2n;
    const gpr = [...tc.gpr];
    gpr[Gpr.rcx] = next;
    gpr[Gpr.r11] = tc.rflags & ~0x10100n;
    return { ...tc, gpr, rip: next };
  }
  return tc;
}

/** Lockstep at every syscall and at the exit; a mismatch is diagnosed by a per-instruction replay. */
export function lockstepSyscalls(opts: LockstepOptions & { memoryEvery?: number; diagnose?: boolean; maxSyscalls?: number }): LockstepReport {
  const t0 = performance.now();
  const pair = bootPair(opts);
  let masked = 0;
  let stops = 0;
  const finish = (end: LockstepReport['end'], extra: Partial<LockstepReport> = {}): LockstepReport => ({
    program: opts.program, instructions: pair.cpu.instructions, syscalls: stops, end, maskedFlagStops: masked,
    copiedNondeterministic: 0, seconds: (performance.now() - t0) / 1000, ...extra,
  });
  try {
    const every = opts.memoryEvery ?? 1;
    let stopStates: States;
    for (let k = 0; ; k++) {
      stopStates = undefined;
      if (opts.maxSyscalls !== undefined && k >= opts.maxSyscalls) return finish('limit');
      const kr = pair.kvm.stepper.runToSyscall();
      const ar = safeRun(pair.cpu, () => runAtomicToStop(pair.cpu));
      const where = kr.kind === 'syscall' ? `syscall ${k} (nr ${kr.nr})` : `stop ${k} (${kr.kind})`;
      let diffs: FieldDiff[] = [];
      if (kr.kind !== ar.kind) {
        diffs = [{ field: 'stop', kvm: kr.kind === 'syscall' ? `syscall ${kr.nr}` : kr.kind, js: describeAtomic(ar) }];
      } else if (kr.kind === 'exited' && ar.kind === 'exited') {
        if (kr.status !== ar.status) diffs = [{ field: 'exit status', kvm: String(kr.status), js: String(ar.status) }];
        diffs.push(...endDiffs(pair));
        if (!diffs.length) return finish('exited', { exitStatus: kr.status });
      } else if (kr.kind === 'faulted' && ar.kind === 'faulted') {
        if (kr.report.vector !== ar.report.vector || kr.report.rip !== ar.report.rip) {
          diffs = [{ field: 'fault', kvm: `${kr.report.vectorName} at ${kr.report.rip}`, js: `${ar.report.vectorName} at ${ar.report.rip}` }];
        } else diffs = compareContexts(kr.context, pair.cpu.getThreadContext(), 0, opts.compare);
        diffs.push(...endDiffs(pair));
        if (!diffs.length) return finish('faulted');
      } else if (kr.kind === 'syscall') {
        const js = afterSyscallConvention(pair.cpu.getThreadContext(), pair.jsProcess.aspace);
        stopStates = { kvm: kr.context, js };
        diffs = compareContexts(kr.context, js, 0, opts.compare);
        if (k % every === 0) diffs.push(...compareAllMemory(pair.kvm.cpu.aspace, pair.jsProcess.aspace));
        stops++;
      }
      if (!diffs.length) continue;
      // Only arithmetic flags (in rflags and in r11, which holds them) may be undefined ones.
      const flagsOnly = diffs.every((d) => d.field === 'rflags' || d.field === 'r11');
      if (opts.diagnose === false) return finish('mismatch', { mismatch: report(where, diffs, [], { syscall: k }, stopStates) });
      const diag = diagnose(opts, k);
      if (diag.kind === 'clean' && flagsOnly && kr.kind === 'syscall') {
        const undefinedAt = diag.undefinedFlags;
        const js = afterSyscallConvention(pair.cpu.getThreadContext(), pair.jsProcess.aspace);
        const rest = compareContexts(kr.context, js, undefinedAt, opts.compare).filter(
          (d) => !(d.field === 'r11' && ((kr.context.gpr[Gpr.r11]! ^ js.gpr[Gpr.r11]!) & ~BigInt(undefinedAt)) === 0n),
        );
        if (!rest.length) {
          masked++;
          continue;
        }
      }
      if (diag.kind === 'mismatch') return finish('mismatch', { mismatch: { ...diag.mismatch, syscall: k, where: `${diag.mismatch.where}, before ${where}`, report: `${diag.mismatch.report.replace(/^LOCKSTEP MISMATCH at .*$/m, `LOCKSTEP MISMATCH at ${diag.mismatch.where}, before ${where}`)}` } });
      return finish('mismatch', { mismatch: report(where, diffs, diag.kind === 'clean' ? diag.history : [], { syscall: k }, stopStates) });
    }
  } finally {
    pair.close();
  }
}

type Diagnosis =
  | { kind: 'mismatch'; mismatch: LockstepMismatch }
  | { kind: 'clean'; history: string[]; undefinedFlags: number };

/** Replays to syscall stop k-1 at full speed, then per instruction up to syscall k. */
function diagnose(opts: LockstepOptions, k: number): Diagnosis {
  const pair = bootPair(opts);
  try {
    for (let j = 0; j < k; j++) {
      const kr = pair.kvm.stepper.runToSyscall();
      const ar = safeRun(pair.cpu, () => runAtomicToStop(pair.cpu));
      if (kr.kind !== 'syscall' || ar.kind !== 'syscall') {
        return { kind: 'mismatch', mismatch: report(`replay stop ${j}`, [{ field: 'stop', kvm: kr.kind, js: ar.kind }], []) };
      }
    }
    pair.cpu.stopAtSyscalls = false;
    const ls = new InstructionLockstep(pair, opts);
    // From a syscall stop both serve the pending syscall with their next step.
    for (;;) {
      // Syscall k is the first syscall instruction from here (k-1 has executed, unserved).
      const v = ls.step(0);
      if (v.kind === 'ok') continue;
      if (v.kind === 'atSyscall') return { kind: 'clean', history: ls.historyLines, undefinedFlags: ls.tracker.undefinedNow };
      if (v.kind === 'mismatch') {
        const from = k === 0 ? 'from the entry point' : `after syscall stop ${k - 1}`;
        return { kind: 'mismatch', mismatch: report(`instruction ${ls.instructions} ${from}`, v.diffs, ls.historyLines, {}, ls.states) };
      }
      return { kind: 'clean', history: ls.historyLines, undefinedFlags: ls.tracker.undefinedNow };
    }
  } finally {
    pair.close();
  }
}
