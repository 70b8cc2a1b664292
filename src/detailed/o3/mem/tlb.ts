/**
 * A set-associative LRU TLB as a timing model: a hit adds `hitLatency` cycles, a miss adds
 * `hitLatency + walkLatency` (a fixed page-walk latency; walks are not modelled as cache
 * accesses) and installs the translation.
 */
import type { Stat } from '../../../stats.js';
import type { ParamValues } from '../types.js';
import { isPow2, resolveParams, withDefaults } from './params.js';

export const TLB_PARAMS = {
  entries: { default: 64, desc: 'Translations held' },
  assoc: { default: 64, desc: 'Associativity (entries = fully associative)' },
  pageSize: { default: 4096, desc: 'Page size in bytes, a power of two' },
  hitLatency: { default: 0, desc: 'Extra cycles added to every access on a hit' },
  walkLatency: { default: 25, desc: 'Extra cycles of a page walk on a miss' },
};
export type TlbParams = ParamValues<typeof TLB_PARAMS>;

export const ITLB_PARAMS = withDefaults(TLB_PARAMS, { entries: 64, assoc: 64 });
export const DTLB_PARAMS = withDefaults(TLB_PARAMS, { entries: 64, assoc: 64 });

export class Tlb {
  readonly p: TlbParams;
  readonly numSets: number;
  private readonly tags: Float64Array;
  /**
   * Each set's ways in recency order, a doubly linked list (way → neighbours; per set its MRU
   * head and LRU tail), so neither a hit nor a miss scans the set: a fully associative 64-entry
   * TLB missing on every access (a pointer chase) spent most of functional warming in that scan.
   */
  private readonly newer: Int32Array;
  private readonly older: Int32Array;
  private readonly mru: Int32Array;
  private readonly lru: Int32Array;
  /** page → way, so a hit needs no scan of the set. */
  private readonly where = new Map<number, number>();
  private lastPage = -1;
  private accesses = 0;
  private misses = 0;

  constructor(
    readonly name: string,
    params?: Partial<TlbParams>,
    specs: typeof TLB_PARAMS = TLB_PARAMS,
  ) {
    const p = resolveParams(specs, params, name);
    this.p = p;
    if (!isPow2(p.pageSize)) throw new Error(`${name}: pageSize ${p.pageSize} is not a power of two`);
    const sets = p.entries / p.assoc;
    if (!Number.isInteger(sets) || sets < 1 || !Number.isInteger(p.assoc) || p.assoc < 1) throw new Error(`${name}: entries must be a multiple of assoc`);
    this.numSets = sets;
    this.tags = new Float64Array(p.entries).fill(-1);
    this.newer = new Int32Array(p.entries);
    this.older = new Int32Array(p.entries);
    this.mru = new Int32Array(sets);
    this.lru = new Int32Array(sets);
    this.resetOrder();
  }

  /** Every set's ways in index order (all invalid, so which is LRU does not matter). */
  private resetOrder(): void {
    const a = this.p.assoc;
    for (let set = 0; set < this.numSets; set++) {
      const base = set * a;
      for (let w = base; w < base + a; w++) {
        this.newer[w] = w === base ? -1 : w - 1;
        this.older[w] = w === base + a - 1 ? -1 : w + 1;
      }
      this.mru[set] = base;
      this.lru[set] = base + a - 1;
    }
  }

  /** Makes `w` the most recently used way of `set`. */
  private touch(set: number, w: number): void {
    if (this.mru[set] === w) return;
    const n = this.newer[w]!;
    const o = this.older[w]!;
    // Unlink (w is not the head, so it has a newer neighbour).
    this.older[n] = o;
    if (o >= 0) this.newer[o] = n;
    else this.lru[set] = n;
    // Relink at the head.
    const h = this.mru[set]!;
    this.newer[w] = -1;
    this.older[w] = h;
    this.newer[h] = w;
    this.mru[set] = w;
  }

  /** Translates the page of `addr` (true on a hit), installing it on a miss. */
  private lookup(page: number): boolean {
    const set = page % this.numSets;
    const hit = this.where.get(page);
    if (hit !== undefined) {
      this.touch(set, hit);
      return true;
    }
    // Invalid ways are never touched, so they sink to the LRU end: they are filled first.
    const victim = this.lru[set]!;
    const old = this.tags[victim]!;
    if (old !== -1) this.where.delete(old);
    this.tags[victim] = page;
    this.where.set(page, victim);
    this.touch(set, victim);
    return false;
  }

  /** The cycle at which the translation of `addr` requested at `now` is available. */
  access(addr: number, now: number): number {
    this.accesses++;
    const page = Math.floor(addr / this.p.pageSize);
    if (page === this.lastPage) return now + this.p.hitLatency;
    this.lastPage = page;
    if (this.lookup(page)) return now + this.p.hitLatency;
    this.misses++;
    return now + this.p.hitLatency + this.p.walkLatency;
  }

  /** Whether the page of `addr` is present (no side effects). */
  contains(addr: number): boolean {
    return this.where.has(Math.floor(addr / this.p.pageSize));
  }

  /** Functional warming: installs/touches the translation, no timing, no stats. */
  warm(addr: number): void {
    const page = Math.floor(addr / this.p.pageSize);
    if (page === this.lastPage) return;
    this.lastPage = page;
    this.lookup(page);
  }

  invalidateAll(): void {
    this.tags.fill(-1);
    this.resetOrder();
    this.where.clear();
    this.lastPage = -1;
  }

  resetStats(): void {
    this.accesses = this.misses = 0;
  }

  stats(): Stat[] {
    const n = this.name;
    return [
      { name: `${n}.accesses`, value: this.accesses, desc: 'Translations requested' },
      { name: `${n}.misses`, value: this.misses, desc: 'Translations that needed a page walk' },
      { name: `${n}.missRate`, value: this.accesses ? this.misses / this.accesses : 0, desc: 'Misses / accesses', unit: 'ratio' },
    ];
  }
}
