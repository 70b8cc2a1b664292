/**
 * A set-associative LRU TLB as a timing model: a hit adds `hitLatency` cycles, a miss adds
 * `hitLatency + walkLatency` (a fixed page-walk latency; walks are not modelled as cache
 * accesses) and installs the translation.
 */
import type { Stat } from '../../../stats.js';
import type { ParamValues } from '../types.js';
import { isPow2, resolveParams, setIndex, setMaskOf, withDefaults } from './params.js';

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
  private readonly setMask: number;
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
  /**
   * page → way: an open-addressing hash table (linear probing, deletion by backward shift) in
   * typed arrays, never more than 1/8 full. A Map was slow here: user pages above 2^31 are heap
   * numbers, not small integers, and a miss (get, delete, set) cost ~200 ns.
   */
  private readonly slotPage: Float64Array;
  private readonly slotWay: Int32Array;
  private readonly slotMask: number;
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
    this.setMask = setMaskOf(sets);
    this.tags = new Float64Array(p.entries).fill(-1);
    this.newer = new Int32Array(p.entries);
    this.older = new Int32Array(p.entries);
    this.mru = new Int32Array(sets);
    this.lru = new Int32Array(sets);
    let slots = 16;
    while (slots < p.entries * 8) slots *= 2;
    this.slotPage = new Float64Array(slots).fill(-1);
    this.slotWay = new Int32Array(slots);
    this.slotMask = slots - 1;
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

  /** The home slot of a page (pages are below 2^53: their low 32 bits are exact). */
  private home(page: number): number {
    return (Math.imul((page >>> 0) ^ ((page / 4294967296) >>> 0), 0x9e3779b1) >>> 0) & this.slotMask;
  }

  /** The way holding `page`, or -1. */
  private find(page: number): number {
    const sp = this.slotPage;
    for (let i = this.home(page); ; i = (i + 1) & this.slotMask) {
      const k = sp[i]!;
      if (k === page) return this.slotWay[i]!;
      if (k === -1) return -1;
    }
  }

  private insertSlot(page: number, way: number): void {
    const sp = this.slotPage;
    let i = this.home(page);
    while (sp[i] !== -1) i = (i + 1) & this.slotMask;
    sp[i] = page;
    this.slotWay[i] = way;
  }

  /** Removes `page` (present), shifting later entries of its probe run back into the gap. */
  private removeSlot(page: number): void {
    const sp = this.slotPage;
    const mask = this.slotMask;
    let i = this.home(page);
    while (sp[i] !== page) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; sp[j] !== -1; j = (j + 1) & mask) {
      const h = this.home(sp[j]!);
      // Entry j may fill the gap at i if its home is not cyclically within (i, j].
      if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
        sp[i] = sp[j]!;
        this.slotWay[i] = this.slotWay[j]!;
        i = j;
      }
    }
    sp[i] = -1;
  }

  /** Translates the page of `addr` (true on a hit), installing it on a miss. */
  private lookup(page: number): boolean {
    const set = setIndex(page, this.numSets, this.setMask);
    const w = this.find(page);
    if (w >= 0) {
      this.touch(set, w);
      return true;
    }
    // Invalid ways are never touched, so they sink to the LRU end: they are filled first.
    const victim = this.lru[set]!;
    const old = this.tags[victim]!;
    if (old !== -1) this.removeSlot(old);
    this.tags[victim] = page;
    this.insertSlot(page, victim);
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
    return this.find(Math.floor(addr / this.p.pageSize)) >= 0;
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
    this.slotPage.fill(-1);
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
