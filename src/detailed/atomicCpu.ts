/**
 * The atomic CPU: functional execution of the guest, one basic block of cached closures at a
 * time, with exact instruction counts (gem5's AtomicSimpleCPU: one cycle per instruction).
 * It shares the guest layer (address space, syscalls) with the KVM CPU and reports faults the
 * same way. A block run FUSE_AFTER times whole is fused into one generated function
 * (decode.ts fuseBlock): the loop then makes one call per block instead of one per instruction.
 */
import { setFlagsFromString } from 'node:v8';
import type { CpuModelName, ExecutionToken } from '../switch/token.js';
import type { AddressSpace } from '../guest/addressSpace.js';
import { buildFaultReport, type GuestFaultReport } from '../guest/faults.js';
import { M5OP_VADDR, M5OP_SIZE } from '../guest/layout.js';
import { endsGuest, isKnownM5Op, m5ExitStatus, m5opCall, type M5OpCall } from '../guest/m5ops.js';
import type { Process } from '../guest/process.js';
import type { SyscallThread } from '../guest/syscalls.js';
import { syscallName } from '../guest/syscalls/names.js';
import { Gpr, THREAD_CONTEXT_VERSION, type ThreadContext } from '../guest/threadContext.js';
import type { CpuidEntry } from '../kvm/cpuid.js';
import { BASELINE_CPUID, cpuidLookup } from './cpuidTable.js';
import { decodeBlock, FUSE_AFTER, fuseBlock, type Block } from './decode.js';
import { GuestException, GuestIoAccess, VEC_BP, VEC_DB, VEC_OF } from './errors.js';
import { readFlags, writeFlags } from './flags.js';
import { GuestMemory } from './memory.js';
import { CpuState, Event, gprFingerprint } from './state.js';

const TWO32 = 4294967296;

// A fused block (decode.ts fuseBlock) runs fast only when V8 inlines its instructions' closures
// into it, and V8's default budgets (920 bytecodes per function, 460 per callee) stop after a
// few. Measured on phases/qsort/ptrchase: 1.3-1.7x on top of fusion. V8 reads these flags when
// it optimizes a function, so setting them here (process-wide, before any block is hot) works.
setFlagsFromString('--max-inlined-bytecode-size-cumulative=6000');
setFlagsFromString('--max-inlined-bytecode-size=1000');

export type AtomicOutcome =
  | { kind: 'exited'; status: number }
  | { kind: 'faulted'; report: GuestFaultReport }
  | { kind: 'limit' }
  | { kind: 'syscall' }
  /**
   * An m5op other than exit/fail: its instruction has completed (counted once, rip past it,
   * rax = 0); the next `run` continues after it.
   */
  | { kind: 'm5op'; call: M5OpCall };

export interface AtomicOptions {
  aspace: AddressSpace;
  process?: Process;
  /** The CPUID table to answer with (default: the baseline table). */
  cpuid?: readonly CpuidEntry[];
  /** XCR0 for xgetbv, as the guest sees it under KVM (default: x87|SSE|AVX). */
  xcr0?: bigint;
  /** Guest clock for time syscalls and rdtsc scaling (cycles = instructions). */
  freqHz?: number;
  warn?: (message: string) => void;
  /** The memory view to execute against (the detailed CPU passes one that records accesses). */
  memory?: (aspace: AddressSpace) => GuestMemory;
  /** A System's execution token, checked at every run() entry under `model`'s name. */
  token?: { token: ExecutionToken; model: CpuModelName };
  /**
   * Whole executions of a block before it is fused into one generated function (default
   * FUSE_AFTER; Infinity never fuses: the benchmark's side-by-side baseline).
   */
  fuseAfter?: number;
}

export { M5OP_NAMES } from '../guest/m5ops.js';

export class AtomicCPU {
  readonly s = new CpuState();
  readonly mem: GuestMemory;
  private readonly blocks = new Map<number, Block>();
  private readonly freqHz: number;
  private readonly thread: SyscallThread;
  /** Return 'syscall' before serving each syscall (lockstep testing). */
  stopAtSyscalls = false;
  /**
   * Called after each block executes (fully: `n === b.n`, or its first `n` instructions when the
   * budget ends inside it), with rip already at the next instruction. Functional warming sets it
   * (fastWarming.ts); null (the default) costs one local compare per block.
   */
  blockHook: ((b: Block, n: number) => void) | null = null;
  /**
   * When set, each block executed adds its instructions to Block.counted and is listed here the
   * first time (the sampler's exact counts). Inline rather than a blockHook: a hook call per block
   * costs the fast loop ~20%.
   */
  countedBlocks: Block[] | null = null;
  private syscallPending = false;
  syscalls = 0;
  /** Basic blocks decoded (each address once, until its code is written). */
  blocksDecoded = 0;
  /** Blocks fused into one function each (decode.ts fuseBlock), once hot. */
  blocksFused = 0;
  private readonly fuseAfter: number;
  readonly syscallsByName: Record<string, number> = {};
  private readonly warnedM5ops = new Set<number>();
  private m5Reexecuting = false;
  private exitStatus: number | null = null;

  constructor(private readonly opts: AtomicOptions) {
    this.mem = opts.memory ? opts.memory(opts.aspace) : new GuestMemory(opts.aspace);
    this.mem.onCodeWrite = () => this.invalidateCode();
    this.s.mem = this.mem;
    this.s.cpuid = cpuidLookup(opts.cpuid ?? BASELINE_CPUID);
    if (opts.xcr0 !== undefined) this.s.xcr0 = Number(opts.xcr0 & 0xffffffffn);
    this.freqHz = opts.freqHz ?? 2e9;
    this.fuseAfter = opts.fuseAfter ?? FUSE_AFTER;
    const s = this.s;
    this.thread = {
      getFsBase: () => BigInt(s.fsBase),
      setFsBase: (v) => {
        s.fsBase = Number(v);
      },
      getGsBase: () => BigInt(s.gsBase),
      setGsBase: (v) => {
        s.gsBase = Number(v);
      },
      guestTimeNs: () => this.guestTimeNs(),
      cpuTimeNs: () => this.guestTimeNs(),
    };
  }

  get instructions(): number {
    return this.s.instructions;
  }

  /** Guest clock: ns at the last startClock plus the instructions since, one cycle each. */
  private clockBaseNs = 0n;
  private clockBaseInsts = 0;

  guestTimeNs(): bigint {
    return this.clockBaseNs + BigInt(Math.round(((this.s.instructions - this.clockBaseInsts) / this.freqHz) * 1e9));
  }

  /** Continues the guest clock from `ns` (a model taking over: the time the last one reached). */
  startClock(ns: bigint): void {
    this.clockBaseNs = ns;
    this.clockBaseInsts = this.s.instructions;
  }

  get exitCode(): number | null {
    return this.exitStatus;
  }

  /**
   * Content hashes of the pages decoded blocks came from (virtual page → hash; -1 when not
   * executable). Taken when the guest leaves this CPU, checked when it comes back.
   */
  codeFingerprint(): Map<number, number> {
    const fp = new Map<number, number>();
    for (const vpn of this.mem.codePages) fp.set(vpn, this.codePageHash(vpn));
    return fp;
  }

  /**
   * After another model ran the guest: keeps the decoded blocks if every page they came from
   * still holds the same bytes at the same address (the usual case: nothing rewrites code), else
   * drops them all. The TLB is flushed either way. Returns whether the blocks were kept.
   */
  revalidateCode(fp: ReadonlyMap<number, number> | null): boolean {
    this.mem.flushTlb();
    if (fp !== null && fp.size === this.mem.codePages.size) {
      let same = true;
      for (const [vpn, h] of fp) {
        if (!this.mem.codePages.has(vpn) || h < 0 || this.codePageHash(vpn) !== h) {
          same = false;
          break;
        }
      }
      if (same) return true;
    }
    this.invalidateCode();
    return false;
  }

  /** FNV-1a over the page's 32-bit words; -1 when the page is not mapped executable. */
  private codePageHash(vpn: number): number {
    let pa: number;
    try {
      pa = this.mem.aspace.translate(vpn * 4096, 'exec');
    } catch {
      return -1;
    }
    const bytes = this.mem.aspace.phys.bytes;
    const words = new Int32Array(bytes.buffer, bytes.byteOffset + pa, 1024);
    let h = 0x811c9dc5 | 0;
    for (let i = 0; i < 1024; i++) h = Math.imul(h ^ words[i]!, 0x01000193);
    return h >>> 0;
  }

  /** Drops every decoded block (code was written, or mappings changed). */
  invalidateCode(): void {
    for (const b of this.blocks.values()) b.valid = false;
    this.blocks.clear();
    this.blockCacheTag.fill(-1);
    this.blockCacheVal.fill(null);
    this.mem.codePages.clear();
    this.mem.flushTlb();
  }

  setThreadContext(tc: ThreadContext): void {
    const s = this.s;
    tc.gpr.forEach((v, i) => s.setReg64(i, v));
    s.rip = Number(tc.rip);
    s.eflags = 0x2;
    writeFlags(s, Number(tc.rflags & 0xffffffffn), 0xffffffff);
    s.fsBase = Number(tc.fsBase);
    s.gsBase = Number(tc.gsBase);
    s.xmm8.set(tc.xmm);
    s.mxcsr = tc.mxcsr;
    s.fcw = tc.x87.fcw;
    s.fsw = tc.x87.fsw;
    s.ftw = tc.x87.ftw;
    s.fop = tc.x87.fop;
    s.fip = tc.x87.fip;
    s.fdp = tc.x87.fdp;
    s.st.set(tc.x87.st);
    this.segs = { ...tc.seg };
  }

  private segs = { cs: 0x33, ss: 0x2b, ds: 0, es: 0, fs: 0, gs: 0 };

  getThreadContext(): ThreadContext {
    const s = this.s;
    return {
      version: THREAD_CONTEXT_VERSION,
      gpr: Array.from({ length: 16 }, (_, i) => s.getReg64(i)),
      rip: BigInt(s.rip),
      rflags: BigInt(readFlags(s)),
      fsBase: BigInt(s.fsBase),
      gsBase: BigInt(s.gsBase),
      seg: { ...this.segs },
      xmm: s.xmm8.slice(),
      mxcsr: s.mxcsr,
      x87: { fcw: s.fcw, fsw: s.fsw, ftw: s.ftw, fop: s.fop, fip: s.fip, fdp: s.fdp, st: s.st.slice() },
    };
  }

  /** Direct-mapped cache in front of `blocks` (single-stepping callers look a block up per instruction). */
  private readonly blockCacheTag = new Float64Array(1024).fill(-1);
  private readonly blockCacheVal: (Block | null)[] = new Array<Block | null>(1024).fill(null);

  private block(rip: number): Block {
    const ci = rip & 1023;
    if (this.blockCacheTag[ci] === rip) {
      const cb = this.blockCacheVal[ci]!;
      if (cb.valid) return cb;
    }
    let b = this.blocks.get(rip);
    this.blockCacheTag[ci] = rip;
    if (b === undefined) {
      b = decodeBlock(this.mem, rip);
      this.blocksDecoded++;
      this.blocks.set(rip, b);
      for (const p of b.pages) this.mem.codePages.add(p);
    }
    this.blockCacheVal[ci] = b;
    return b;
  }

  /** Runs at most `maxInstructions`; returns why it stopped. */
  run(maxInstructions: number): AtomicOutcome {
    const t = this.opts.token;
    if (t !== undefined) t.token.check(t.model);
    if (this.syscallPending) {
      this.syscallPending = false;
      const out = this.serveSyscall();
      if (out) return out;
    }
    return this.execute(maxInstructions);
  }

  /** The execution loop of `run` (also re-executes one instruction after an address-form m5op). */
  private execute(maxInstructions: number): AtomicOutcome {
    const s = this.s;
    let budget = maxInstructions;
    const hook = this.blockHook;
    const counted = this.countedBlocks;
    this.mem.syncTlb();
    let b = this.block(s.rip);
    while (budget > 0) {
      const n = b.n <= budget ? b.n : budget;
      const fused = n === b.n ? b.fused : null;
      let i = 0;
      try {
        if (fused !== null) fused(s);
        else {
          const execs = b.execs;
          for (; i < n; i++) execs[i]!(s);
          if (n === b.n && ++b.runs === this.fuseAfter) {
            b.fused = fuseBlock(b);
            this.blocksFused++;
          }
        }
      } catch (e) {
        if (fused !== null) i = s.faultIndex;
        s.instructions += i;
        budget -= i;
        const out = this.exception(e, b, i);
        if (out) return out;
        b = this.block(s.rip);
        continue;
      }
      s.instructions += n;
      budget -= n;
      if (n < b.n) {
        s.rip = b.rips[n]!;
        if (hook !== null) hook(b, n);
        if (counted !== null) {
          if (b.counted === 0) counted.push(b);
          b.counted += n;
        }
        break;
      }
      if (!b.setsRip) s.rip = b.end;
      if (hook !== null) hook(b, n);
      if (counted !== null) {
        if (b.counted === 0) counted.push(b);
        b.counted += n;
      }
      if (s.event !== Event.None) {
        const out = this.event();
        if (out) return out;
        this.mem.syncTlb();
      }
      // Follow the block chain: each block remembers its last two successors.
      const rip = s.rip;
      const n1 = b.succ1;
      if (n1 !== null && n1.start === rip && n1.valid) {
        b = n1;
        continue;
      }
      const n2 = b.succ2;
      if (n2 !== null && n2.start === rip && n2.valid) {
        b = n2;
        continue;
      }
      const nb = this.block(rip);
      if (n1 === null || !n1.valid) b.succ1 = nb;
      else b.succ2 = nb;
      b = nb;
    }
    return { kind: 'limit' };
  }

  /**
   * Executes up to `maxInstructions` recording, before each one, its rip and a fingerprint of
   * the 16 GPRs (`gprFingerprint`): entry k is the state after k instructions. Serves nothing:
   * it stops at the first syscall, m5op, I/O access or exception (that instruction is not
   * counted). Used to find how many instructions another model executed from the same state
   * (sample/hostRate.ts), so the caller restores the state afterwards. Returns the entries
   * recorded (instructions executed + 1).
   */
  runTraced(maxInstructions: number, rips: Float64Array, fps: Int32Array): number {
    const t = this.opts.token;
    if (t !== undefined) t.token.check(t.model);
    const s = this.s;
    const g = s.g;
    const hook = this.blockHook;
    const max = Math.min(maxInstructions, rips.length - 1, fps.length - 1);
    this.mem.syncTlb();
    let k = 0;
    try {
      while (k < max) {
        const b = this.block(s.rip);
        const n = Math.min(b.n, max - k);
        const execs = b.execs;
        const bRips = b.rips;
        for (let i = 0; i < n; i++) {
          rips[k] = bRips[i]!;
          fps[k] = gprFingerprint(g);
          execs[i]!(s);
          k++;
        }
        s.instructions += n;
        if (n < b.n) s.rip = bRips[n]!;
        else if (!b.setsRip) s.rip = b.end;
        if (hook !== null) hook(b, n);
        if (s.event !== Event.None) {
          // The syscall / m5op instruction ran but is not served: it does not count.
          s.event = Event.None;
          return k;
        }
      }
    } catch (e) {
      // The instruction that raised did not complete: entries 0..k (the state before it) stand.
      if (e instanceof GuestException || e instanceof GuestIoAccess) return k + 1;
      throw e;
    }
    rips[k] = s.rip;
    fps[k] = gprFingerprint(g);
    return k + 1;
  }

  /** An exception from instruction `i` of block `b`: retry after I/O, or end the guest. */
  private exception(e: unknown, b: Block, i: number): AtomicOutcome | null {
    const s = this.s;
    const rip = b.rips[i]!;
    if (e instanceof GuestIoAccess) {
      s.rip = rip;
      const out = this.io(e);
      return out;
    }
    if (e instanceof GuestException) {
      // Traps (int3, int1, int 3/4) complete the instruction and report the next rip, as KVM's
      // exception frame does; faults report the instruction's own rip.
      const trap = e.vector === VEC_BP || e.vector === VEC_DB || e.vector === VEC_OF;
      const at = trap ? e.address : rip;
      if (trap) s.instructions++;
      s.rip = at;
      const cr2 = e.vector === 14 ? BigInt(Math.min(e.address, 2 ** 64 - 1)) : 0n;
      const report = buildFaultReport(e.vector, BigInt(e.errorCode), BigInt(at), cr2, this.codeBytes(at));
      return { kind: 'faulted', report };
    }
    s.rip = rip;
    throw e;
  }

  /**
   * gem5's address-form m5op: an access to the m5op window (s.rip is the accessing instruction,
   * not yet counted). The access is answered with 0 and the instruction re-executed; an unknown
   * function continues in the caller's loop (within its budget), a known one completes exactly
   * that instruction here (the caller's budget has room for it) and then acts like the
   * instruction form.
   */
  private io(e: GuestIoAccess): AtomicOutcome | null {
    // (A second m5op access while its instruction is re-executed is not supported: a bus error.)
    if (e.address >= M5OP_VADDR && e.address < M5OP_VADDR + M5OP_SIZE && !this.m5Reexecuting) {
      const func = Math.floor((e.address - M5OP_VADDR) / 256);
      const call = m5opCall(func, this.m5Args(), 'addr');
      this.mem.ioAnswer = { address: e.address, value: 0 };
      if (!isKnownM5Op(func)) {
        this.warnUnknownM5op(func);
        return null;
      }
      this.m5Reexecuting = true;
      let out: AtomicOutcome;
      try {
        out = this.execute(1);
      } finally {
        this.m5Reexecuting = false;
      }
      if (out.kind !== 'limit') return out;
      return this.m5opDone(call);
    }
    const report = buildFaultReport(14, 6n, BigInt(this.s.rip), BigInt(e.address), this.codeBytes(this.s.rip));
    return { kind: 'faulted', report: { ...report, signal: 'SIGBUS', signalNumber: 7 } };
  }

  private m5Args(): [bigint, bigint] {
    return [this.s.getReg64(Gpr.rdi), this.s.getReg64(Gpr.rsi)];
  }

  /** The instruction form, after its instruction completed (rip past it, counted). */
  private m5op(func: number): AtomicOutcome | null {
    this.s.setReg64(Gpr.rax, 0n);
    if (!isKnownM5Op(func)) {
      this.warnUnknownM5op(func);
      return null;
    }
    return this.m5opDone(m5opCall(func, this.m5Args(), 'inst'));
  }

  /** A known m5op whose instruction has completed: exit/fail end the guest, the others stop the run. */
  private m5opDone(call: M5OpCall): AtomicOutcome {
    if (endsGuest(call.func)) {
      const status = m5ExitStatus(call.func, call.args);
      this.exitStatus = status;
      return { kind: 'exited', status };
    }
    return { kind: 'm5op', call };
  }

  private warnUnknownM5op(func: number): void {
    if (this.warnedM5ops.has(func)) return;
    this.warnedM5ops.add(func);
    this.opts.warn?.(`unknown m5op function 0x${func.toString(16)} (${func}); ignored (rax = 0)`);
  }

  private event(): AtomicOutcome | null {
    const s = this.s;
    const ev = s.event;
    s.event = Event.None;
    if (ev === Event.Syscall) {
      if (this.stopAtSyscalls) {
        this.syscallPending = true;
        return { kind: 'syscall' };
      }
      return this.serveSyscall();
    }
    if (ev === Event.M5op) return this.m5op(s.eventArg);
    return null;
  }

  private serveSyscall(): AtomicOutcome | null {
    const s = this.s;
    const p = this.opts.process;
    const g = s.g;
    const arg = (r: number) => (BigInt(g[2 * r + 1]! >>> 0) << 32n) | BigInt(g[2 * r]! >>> 0);
    const nr = Number(arg(Gpr.rax));
    if (!p) throw new Error(`syscall ${nr} with no process attached`);
    this.syscalls++;
    const name = syscallName(nr) ?? `syscall_${nr}`;
    this.syscallsByName[name] = (this.syscallsByName[name] ?? 0) + 1;
    const out = p.syscall(this.thread, nr, [
      arg(Gpr.rdi), arg(Gpr.rsi), arg(Gpr.rdx), arg(Gpr.r10), arg(Gpr.r8), arg(Gpr.r9),
    ]);
    if (out.kind === 'exit') {
      this.exitStatus = out.status;
      return { kind: 'exited', status: out.status };
    }
    s.setReg64(Gpr.rax, out.value);
    // Mappings may have changed: drop stale translations and decoded code of unmapped pages.
    if (this.mem.aspace.tlbGeneration !== this.lastGeneration) {
      this.lastGeneration = this.mem.aspace.tlbGeneration;
      this.invalidateCode();
    }
    return null;
  }

  private lastGeneration = -1;

  private codeBytes(rip: number): Uint8Array {
    const out: number[] = [];
    for (let i = 0; i < 15; i++) {
      try {
        out.push(this.mem.aspace.phys.bytes[this.mem.aspace.translate(rip + i, 'read')]!);
      } catch {
        break;
      }
    }
    return Uint8Array.from(out);
  }
}

export { TWO32 };
