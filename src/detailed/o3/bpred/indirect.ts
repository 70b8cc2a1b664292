/**
 * Indirect target predictor like gem5's SimpleIndirectPredictor: a set-associative table of
 * targets indexed by pc XOR global (conditional-outcome) history XOR a hash of the last
 * `pathLength` indirect targets, tagged by pc. Its histories are speculative: the branch unit
 * pushes predicted outcomes/targets at predict time and restores snapshots on squash/repair.
 */
import { pcHash, pcLow, requirePow2 } from './util.js';

export interface IndirectParams {
  sets: number;
  ways: number;
  tagBits: number;
  /** Global history bits hashed into the index. */
  ghrBits: number;
  /** Previous indirect targets hashed into the index. */
  pathLength: number;
}

export interface IndirectHistory {
  ghr: number;
  path: readonly number[];
}

export interface IndirectLookup {
  set: number;
  tag: number;
  target: number | null;
}

export class IndirectPredictor {
  private readonly sets: number;
  private readonly ways: number;
  private readonly valid: Uint8Array;
  private readonly tags: Uint32Array;
  private readonly targets: Float64Array;
  private readonly lru: Float64Array;
  private readonly tagMask: number;
  private readonly ghrMask: number;
  private readonly pathLength: number;
  private clock = 0;
  private ghr = 0;
  private path: number[] = [];

  constructor(p: IndirectParams) {
    requirePow2('indirect sets', p.sets);
    if (p.ways < 1) throw new RangeError('indirect ways must be ≥ 1');
    if (p.ghrBits < 0 || p.ghrBits > 30) throw new RangeError('indirect ghrBits must be in [0, 30]');
    this.sets = p.sets;
    this.ways = p.ways;
    const n = p.sets * p.ways;
    this.valid = new Uint8Array(n);
    this.tags = new Uint32Array(n);
    this.targets = new Float64Array(n);
    this.lru = new Float64Array(n);
    this.tagMask = p.tagBits >= 32 ? -1 : (1 << p.tagBits) - 1;
    this.ghrMask = p.ghrBits === 0 ? 0 : (1 << p.ghrBits) - 1;
    this.pathLength = p.pathLength;
  }

  private pathHash(): number {
    let h = 0;
    for (let i = 0; i < this.path.length; i++) h ^= (this.path[i]! >>> (i + 1)) ^ (this.path[i]! << (i + 2));
    return h;
  }

  lookup(pc: number): IndirectLookup {
    const set = (pcLow(pc) ^ this.ghr ^ this.pathHash()) & (this.sets - 1);
    const tag = (pcHash(pc) & this.tagMask) >>> 0;
    let target: number | null = null;
    for (let w = 0; w < this.ways; w++) {
      const i = set * this.ways + w;
      if (this.valid[i] && this.tags[i] === tag) {
        target = this.targets[i]!;
        this.lru[i] = ++this.clock;
        break;
      }
    }
    return { set, tag, target };
  }

  /** Trains the entry looked up by `l` with the actual target. */
  update(l: IndirectLookup, target: number): void {
    const base = l.set * this.ways;
    let victim = -1;
    for (let w = 0; w < this.ways && victim < 0; w++) {
      const i = base + w;
      if (this.valid[i] && this.tags[i] === l.tag) victim = i;
    }
    if (victim < 0) {
      victim = base;
      for (let w = 0; w < this.ways; w++) {
        const i = base + w;
        if (!this.valid[i]) {
          victim = i;
          break;
        }
        if (this.lru[i]! < this.lru[victim]!) victim = i;
      }
    }
    this.valid[victim] = 1;
    this.tags[victim] = l.tag;
    this.targets[victim] = target;
    this.lru[victim] = ++this.clock;
  }

  snapshot(): IndirectHistory {
    return { ghr: this.ghr, path: this.path.slice() };
  }

  restore(h: IndirectHistory): void {
    this.ghr = h.ghr;
    this.path = h.path.slice();
  }

  pushCond(taken: boolean): void {
    this.ghr = ((this.ghr << 1) | (taken ? 1 : 0)) & this.ghrMask;
  }

  pushTarget(target: number): void {
    if (this.pathLength === 0) return;
    this.path.unshift(pcLow(target) ^ Math.floor(target / 4294967296));
    if (this.path.length > this.pathLength) this.path.pop();
  }
}
