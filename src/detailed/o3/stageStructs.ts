/**
 * Structures passed between pipeline stages, in one place (gem5's time buffers become
 * per-entry "ready at" cycles), plus the small interfaces through which the pipeline talks to
 * the memory system (`mem/`) and the branch predictor unit (`bpred/`).
 *
 * No per-cycle allocation: fetch-queue slots and µop records are preallocated and recycled.
 */
import type { Stat } from '../../stats.js';
import type { BranchInfo, BranchKind, DynInst, MicroOp } from './types.js';

/** What the pipeline needs from the memory hierarchy: each call returns the completion cycle, or -1 when it cannot accept now (MSHRs full; retried next cycle). */
export interface O3MemPort {
  fetch(addr: number, now: number): number;
  load(addr: number, size: number, now: number): number;
  store(addr: number, size: number, now: number): number;
  stats?(): Stat[];
  resetStats?(): void;
}

export interface BPredPrediction {
  taken: boolean;
  target: number;
  handle: unknown;
}

/** What the pipeline needs from the branch predictor unit. */
export interface O3BPredPort {
  predict(pc: number, kind: BranchKind | null, fallthrough: number): BPredPrediction;
  /** Trains with the actual outcome; returns whether it was mispredicted. */
  resolve(handle: unknown, actual: BranchInfo): boolean;
  /** Undoes the speculative state of a prediction whose instruction was squashed. */
  squash(handle: unknown): void;
  stats?(): Stat[];
  resetStats?(): void;
}

/** Fetch → decode: one fetched instruction and its prediction. */
export class FetchSlot {
  inst: DynInst | null = null;
  /** Cycle from which decode may see it (fetch cycle + fetchToDecodeDelay). */
  readyAt = 0;
  bpHandle: unknown = null;
  hasPrediction = false;
  mispredicted = false;
  /** Next µop of `inst` to decode (decode may split an instruction over cycles). */
  uopCursor = 0;
}

export const MAX_SRCS = 8;

/** One in-flight µop, from decode to commit (decode → rename → IEW → commit read and write it). */
export class UopRec {
  seq = -1;
  inst: DynInst | null = null;
  uop: MicroOp | null = null;
  cls = 0;
  /** Cycle from which the next stage may see it (decode→rename, then rename→IEW). */
  readyAt = 0;
  /** Producer µop seqs of the sources (-1 = architectural / committed). */
  readonly prod = new Float64Array(MAX_SRCS);
  nProd = 0;
  /** Cycle the result is available (Infinity until issued). */
  doneCycle = Infinity;
  isLast = false;
  isBranch = false;
  mispredicted = false;
  bpHandle: unknown = null;
  hasPrediction = false;
  serialize = false;
  intDsts = 0;
  fpDsts = 0;
  /** Store-queue slot of a store. */
  sqIdx = -1;
  memAddr = 0;
  memSize = 0;

  reset(seq: number, inst: DynInst, uop: MicroOp, cls: number): void {
    this.seq = seq;
    this.inst = inst;
    this.uop = uop;
    this.cls = cls;
    this.readyAt = 0;
    this.nProd = 0;
    this.doneCycle = Infinity;
    this.isLast = false;
    this.isBranch = false;
    this.mispredicted = false;
    this.bpHandle = null;
    this.hasPrediction = false;
    this.serialize = false;
    this.intDsts = 0;
    this.fpDsts = 0;
    this.sqIdx = -1;
    this.memAddr = uop.mem ? uop.mem.addr : 0;
    this.memSize = uop.mem ? uop.mem.size : 0;
  }
}

/** Fixed-capacity FIFO of preallocated, recycled objects. */
export class SlotRing<T> {
  private readonly buf: T[];
  private head = 0;
  count = 0;
  constructor(readonly capacity: number, make: () => T) {
    this.buf = Array.from({ length: capacity }, make);
  }
  get full(): boolean {
    return this.count >= this.capacity;
  }
  /** The slot to fill at the tail (caller fills it, then it is counted). */
  push(): T {
    const i = (this.head + this.count) % this.capacity;
    this.count++;
    return this.buf[i]!;
  }
  peek(): T | undefined {
    return this.count > 0 ? this.buf[this.head] : undefined;
  }
  /** The k-th slot from the head (k < count). */
  at(k: number): T {
    return this.buf[(this.head + k) % this.capacity]!;
  }
  shift(): void {
    this.head = (this.head + 1) % this.capacity;
    this.count--;
  }
  clear(): void {
    this.head = 0;
    this.count = 0;
  }
}

export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p <<= 1;
  return p;
}
