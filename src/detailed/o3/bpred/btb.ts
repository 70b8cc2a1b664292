/**
 * Set-associative branch target buffer (gem5 SimpleBTB, with associativity and LRU). Entries keep
 * the branch kind too: fetch learns an instruction is a branch from the BTB before decode.
 */
import type { BranchKind } from '../types.js';
import { pcLow, requirePow2 } from './util.js';

export interface BTBParams {
  entries: number;
  assoc: number;
  tagBits: number;
}

export interface BTBEntry {
  target: number;
  kind: BranchKind;
}

const KINDS: readonly BranchKind[] = ['cond', 'uncond', 'call', 'ret', 'indirect', 'indirectCall'];

export class BTB {
  readonly sets: number;
  readonly assoc: number;
  private readonly valid: Uint8Array;
  private readonly tags: Uint32Array;
  private readonly targets: Float64Array;
  private readonly kinds: Uint8Array;
  private readonly lru: Float64Array;
  private readonly tagMask: number;
  private clock = 0;
  lookups = 0;
  hits = 0;
  misses = 0;

  constructor(p: BTBParams) {
    requirePow2('BTB entries', p.entries);
    requirePow2('BTB assoc', p.assoc);
    if (p.assoc > p.entries) throw new RangeError('BTB assoc must be ≤ entries');
    if (p.tagBits < 1 || p.tagBits > 32) throw new RangeError('BTB tagBits must be in [1, 32]');
    this.assoc = p.assoc;
    this.sets = p.entries / p.assoc;
    this.tagMask = p.tagBits === 32 ? -1 : (1 << p.tagBits) - 1;
    this.valid = new Uint8Array(p.entries);
    this.tags = new Uint32Array(p.entries);
    this.targets = new Float64Array(p.entries);
    this.kinds = new Uint8Array(p.entries);
    this.lru = new Float64Array(p.entries);
  }

  private set(pc: number): number {
    return (pcLow(pc) & (this.sets - 1)) * this.assoc;
  }

  private tag(pc: number): number {
    // Bits above the set index (the high address bits mixed in), truncated to tagBits: short
    // tags alias, as in hardware.
    const t = Math.floor(pc / this.sets);
    return (((t >>> 0) ^ Math.imul(Math.floor(t / 4294967296) >>> 0, 0x9e3779b1)) & this.tagMask) >>> 0;
  }

  private find(pc: number): number {
    const base = this.set(pc);
    const t = this.tag(pc);
    for (let w = 0; w < this.assoc; w++) {
      const i = base + w;
      if (this.valid[i] && this.tags[i] === t) return i;
    }
    return -1;
  }

  /** Looks the pc up (counts a lookup, a hit or a miss; a hit refreshes LRU). */
  lookup(pc: number): BTBEntry | null {
    this.lookups++;
    const i = this.find(pc);
    if (i < 0) {
      this.misses++;
      return null;
    }
    this.hits++;
    this.lru[i] = ++this.clock;
    return { target: this.targets[i]!, kind: KINDS[this.kinds[i]!]! };
  }

  /** Inserts or updates the entry of a branch (LRU victim in its set). */
  update(pc: number, target: number, kind: BranchKind): void {
    let i = this.find(pc);
    if (i < 0) {
      const base = this.set(pc);
      i = base;
      for (let w = 0; w < this.assoc; w++) {
        const j = base + w;
        if (!this.valid[j]) {
          i = j;
          break;
        }
        if (this.lru[j]! < this.lru[i]!) i = j;
      }
      this.valid[i] = 1;
      this.tags[i] = this.tag(pc);
    }
    this.targets[i] = target;
    this.kinds[i] = KINDS.indexOf(kind);
    this.lru[i] = ++this.clock;
  }

  /** Drops the entry of a pc that turned out not to be a branch (aliasing, changed code). */
  invalidate(pc: number): void {
    const i = this.find(pc);
    if (i >= 0) this.valid[i] = 0;
  }

  resetStats(): void {
    this.lookups = this.hits = this.misses = 0;
  }
}
