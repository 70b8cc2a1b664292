/**
 * Fast functional warming: the functional core runs whole blocks (its ordinary fast loop, no
 * DynInst per instruction) and a per-block hook trains the detailed CPU's state:
 *   - L1I/ITLB: every cache line the executed part of the block spans;
 *   - L1D/DTLB/L2…: every data access the block made (recorded by the detailed CPU's
 *     TracingMemory, which the core already executes against), in order;
 *   - branch predictor: the block's last instruction when it is a branch (blocks end at every
 *     control-flow instruction), taken = the next rip is not the fall-through.
 * Same training as `warmFunctionally` (warming.ts) over the instruction stream, in block order
 * (within a block, instruction fetches are warmed before the block's data accesses).
 */
import { Decoder, DecoderOptions } from 'iced-x86';
import type { AtomicCPU, AtomicOutcome } from '../atomicCpu.js';
import type { Block } from '../decode.js';
import { M5OP_SIZE, M5OP_VADDR } from '../../guest/layout.js';
import type { M5OpCall } from '../../guest/m5ops.js';
import type { BranchPredictorUnit } from './bpred/branchUnit.js';
import type { MemSystem } from './mem/hierarchy.js';
import { isTracing, type TracingMemory } from './tracingMemory.js';
import { branchKind } from './trace.js';
import type { BranchKind } from './types.js';

const LINE = 64;
/** Steps of adaptive warming (FastWarmer.warm with `adaptive`). */
const ADAPTIVE_STEP = 200_000;

/** When adaptive warming may stop (FastWarmer.warm): in instructions, branch training included. */
export interface AdaptiveWarming {
  /** Once the last-level cache has turned over. */
  minInsts: number;
  /** Once it has gone quiet. */
  minQuietInsts: number;
}

export interface FastWarmResult {
  /** Instructions executed (= asked unless the guest ended). */
  insts: number;
  /** Set when the guest exited or faulted during warming. */
  end: Extract<AtomicOutcome, { kind: 'exited' } | { kind: 'faulted' }> | null;
  /** m5ops met (and passed over) while warming. */
  m5ops: M5OpCall[];
}


/** No branch at the end of the block (cached as this, so `undefined` means "not looked up"). */
const NONE = 'none' as const;

export class FastWarmer {
  private readonly tm: TracingMemory;
  /** Branch kind of each block's last instruction (blocks are dropped on code changes). */
  private readonly kinds = new WeakMap<Block, BranchKind | typeof NONE>();
  private readonly hook: (b: Block, n: number) => void;
  /** The last line warmed on the instruction side (a repeated MRU hit changes nothing). */
  private lastFetchLine = -1;
  /** Whether blocks train the branch predictor (warm(): only the last `branchInsts`). */
  private warmBranches = true;
  /** When set, instructions executed per block (in the branch-training window) are added here: a basic-block vector. */
  profile: Map<Block, number> | null = null;

  constructor(
    private readonly cpu: AtomicCPU,
    private readonly mem: MemSystem,
    private readonly bpred: BranchPredictorUnit,
  ) {
    if (!isTracing(cpu.mem)) throw new Error('FastWarmer needs a CPU executing against a tracing GuestMemory');
    this.tm = cpu.mem;
    this.hook = (b, n) => this.onBlock(b, n);
  }

  private branchKind(b: Block): BranchKind | null {
    let k = this.kinds.get(b);
    if (k === undefined) {
      k = NONE;
      if (b.setsRip && b.n > 0) {
        const pc = b.rips[b.n - 1]!;
        const len = b.end - pc;
        if (len > 0 && len <= 15) {
          try {
            const { bytes } = this.cpu.mem.fetch(pc, len);
            if (bytes.length === len) {
              const dec = new Decoder(64, bytes, DecoderOptions.None);
              dec.ip = BigInt(pc);
              const ins = dec.decode();
              k = branchKind(ins.flowControl) ?? NONE;
              ins.free();
              dec.free();
            }
          } catch {
            k = NONE;
          }
        }
      }
      this.kinds.set(b, k);
    }
    return k === NONE ? null : k;
  }

  private onBlock(b: Block, n: number): void {
    const mem = this.mem;
    const profile = this.profile;
    // Only the window that also trains the predictor: the code right before the detailed run.
    if (profile !== null && this.warmBranches) profile.set(b, (profile.get(b) ?? 0) + n);
    // Instruction side: the lines of the executed instructions.
    const endPc = n >= b.n ? b.end : b.rips[n]!;
    const first = Math.floor(b.start / LINE);
    const last = Math.floor((Math.max(endPc, b.start + 1) - 1) / LINE);
    for (let l = first; l <= last; l++) {
      if (l === this.lastFetchLine) continue;
      mem.warm(l * LINE, 'fetch');
      this.lastFetchLine = l;
    }
    // Data side: the accesses the block made.
    const tm = this.tm;
    const c = tm.count;
    if (c > 0) {
      const addrs = tm.addrs;
      const sizes = tm.sizes;
      const writes = tm.writes;
      for (let i = 0; i < c; i++) {
        const a = addrs[i]!;
        if (a >= M5OP_VADDR && a < M5OP_VADDR + M5OP_SIZE) continue;
        mem.warm(a, writes[i] ? 'store' : 'load', sizes[i]!);
      }
      tm.count = 0;
    }
    // The branch ending the block.
    if (n === b.n && b.setsRip && this.warmBranches) {
      const kind = this.branchKind(b);
      if (kind !== null) {
        const pc = b.rips[n - 1]!;
        const next = this.cpu.s.rip;
        this.bpred.warm(pc, b.end, { kind, taken: kind !== 'cond' || next !== b.end, target: next });
      }
    }
  }

  /**
   * Executes up to `insts` instructions on the functional core, warming as it goes. m5ops are
   * passed over (returned in `m5ops`); an exit or fault stops it (`end`). Only the last
   * `branchInsts` train the branch predictor (default: all): its state is reached in far fewer
   * instructions than an L2's, and training it is the dearest part of warming.
   */
  warm(insts: number, branchInsts = insts, adaptive?: AdaptiveWarming): FastWarmResult {
    if (adaptive) return this.warmAdaptive(adaptive, insts, Math.min(branchInsts, insts));
    return this.warmFixed(insts, branchInsts);
  }

  /**
   * Warming whose length adapts to the program: caches and TLBs only, in steps of 200k
   * instructions, until the last-level cache has turned over (installed as many lines as it
   * holds: its contents now all come from the window, as in a run that never stopped) or gone
   * quiet (under 1/64 of that in the last step: the code does not use it much now), at least
   * `minInsts` (`minQuietInsts` to stop on quiet) and at most `maxInsts` in all; then
   * `branchInsts` that also train the branch predictor. A pointer chase turns an 8-way 1 MiB L2
   * over in ~150k instructions; a sort streaming through a 6 MB array takes millions. Quiet
   * needs the longer floor: code with a small working set may next reach data loaded into L2
   * long before (qsort's deep recursion, sampled 6–8% slow with a 400k floor).
   */
  private warmAdaptive(adaptive: AdaptiveWarming, maxInsts: number, branchInsts: number): FastWarmResult {
    const ll = this.mem.lastLevel;
    const cap = ll.lines;
    const f0 = ll.fills;
    const first = Math.max(0, maxInsts - branchInsts);
    const floor = Math.max(0, adaptive.minInsts - branchInsts);
    const quietFloor = Math.max(floor, adaptive.minQuietInsts - branchInsts);
    const m5ops: M5OpCall[] = [];
    let insts = 0;
    while (insts < first) {
      const before = ll.fills;
      const r = this.warmFixed(Math.min(ADAPTIVE_STEP, first - insts), 0);
      insts += r.insts;
      m5ops.push(...r.m5ops);
      if (r.end) return { insts, end: r.end, m5ops };
      const turned = ll.fills - f0 >= cap;
      const quiet = ll.fills - before < cap / 64;
      if ((insts >= floor && turned) || (insts >= quietFloor && quiet)) break;
    }
    const r = this.warmFixed(branchInsts, branchInsts);
    m5ops.push(...r.m5ops);
    return { insts: insts + r.insts, end: r.end, m5ops };
  }

  private warmFixed(insts: number, branchInsts: number): FastWarmResult {
    const cpu = this.cpu;
    const start = cpu.instructions;
    const m5ops: M5OpCall[] = [];
    let end: FastWarmResult['end'] = null;
    this.tm.clearTrace();
    this.lastFetchLine = -1;
    this.mem.warmBegin();
    cpu.blockHook = this.hook;
    try {
      for (;;) {
        const done = cpu.instructions - start;
        const left = insts - done;
        if (left <= 0) break;
        const untrained = insts - branchInsts - done;
        this.warmBranches = untrained <= 0;
        const out = cpu.run(untrained > 0 ? untrained : left);
        if (out.kind === 'exited' || out.kind === 'faulted') {
          end = out;
          break;
        }
        if (out.kind === 'm5op') m5ops.push(out.call);
      }
    } finally {
      this.warmBranches = true;
      cpu.blockHook = null;
      this.tm.clearTrace();
    }
    return { insts: cpu.instructions - start, end, m5ops };
  }
}
