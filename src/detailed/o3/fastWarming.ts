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
import { TracingMemory } from './tracingMemory.js';
import { branchKind } from './trace.js';
import type { BranchKind } from './types.js';

const LINE = 64;

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
  /** When set, instructions executed per block start are added here (a basic-block vector). */
  profile: Map<number, number> | null = null;

  constructor(
    private readonly cpu: AtomicCPU,
    private readonly mem: MemSystem,
    private readonly bpred: BranchPredictorUnit,
  ) {
    if (!(cpu.mem instanceof TracingMemory)) throw new Error('FastWarmer needs a CPU executing against a TracingMemory');
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
    if (profile !== null) profile.set(b.start, (profile.get(b.start) ?? 0) + n);
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
    if (n === b.n && b.setsRip) {
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
   * passed over (returned in `m5ops`); an exit or fault stops it (`end`).
   */
  warm(insts: number): FastWarmResult {
    const cpu = this.cpu;
    const start = cpu.instructions;
    const m5ops: M5OpCall[] = [];
    let end: FastWarmResult['end'] = null;
    this.tm.clearTrace();
    this.lastFetchLine = -1;
    cpu.blockHook = this.hook;
    try {
      for (;;) {
        const left = insts - (cpu.instructions - start);
        if (left <= 0) break;
        const out = cpu.run(left);
        if (out.kind === 'exited' || out.kind === 'faulted') {
          end = out;
          break;
        }
        if (out.kind === 'm5op') m5ops.push(out.call);
      }
    } finally {
      cpu.blockHook = null;
      this.tm.clearTrace();
    }
    return { insts: cpu.instructions - start, end, m5ops };
  }
}
