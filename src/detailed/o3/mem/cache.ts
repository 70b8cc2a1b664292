/**
 * A set-associative, LRU, write-back / write-allocate cache as a TIMING model (no data).
 *
 * - Hit: completes at `now + hitLatency`.
 * - Miss: the tag check takes `hitLatency`; the line is then requested from the next level at
 *   `now + hitLatency`, an MSHR is allocated until the fill arrives, and the access completes
 *   when it does. The line is installed (the LRU victim evicted, a dirty victim written back to
 *   the next level) when the miss is issued; the MSHR stays busy until the fill cycle.
 * - A miss to a line whose fill is in flight merges into its MSHR (an MSHR hit, counted as a
 *   miss as in gem5) and completes with that fill, up to `tgtsPerMshr` targets.
 * - When no MSHR (or no target slot) is free at `now`, `access` returns -1: retry later.
 *
 * Calls are expected in roughly non-decreasing `now` (the pipeline's cycle).
 */
import type { Stat } from '../../../stats.js';
import type { ParamValues } from '../types.js';
import type { MemLevel } from './level.js';
import { isPow2, resolveParams, setIndex, setMaskOf, withDefaults } from './params.js';
import type { StridePrefetcher } from './prefetcher.js';
import type { StampedLines } from '../../memoryTimestamps.js';

export const CACHE_PARAMS = {
  size: { default: 32768, desc: 'Capacity in bytes' },
  assoc: { default: 8, desc: 'Associativity (ways per set)' },
  lineSize: { default: 64, desc: 'Line (block) size in bytes, a power of two' },
  hitLatency: { default: 4, desc: 'Cycles for a hit, also the tag-check time before a miss is sent on' },
  mshrs: { default: 16, desc: 'Miss status holding registers: distinct lines that can be in flight' },
  tgtsPerMshr: { default: 16, desc: 'Accesses that can wait on one in-flight line (MSHR targets)' },
  writeback: { default: true, desc: 'Write-back (true) or write-through (false)' },
  writeAllocate: { default: true, desc: 'Allocate the line on a write miss (true) or send the write on (false)' },
};
export type CacheParams = ParamValues<typeof CACHE_PARAMS>;

/** Per-level defaults of a generic modern core (~3 GHz). */
export const L1I_PARAMS = withDefaults(CACHE_PARAMS, { size: 32768, assoc: 8, hitLatency: 1, mshrs: 8, tgtsPerMshr: 16 });
export const L1D_PARAMS = withDefaults(CACHE_PARAMS, { size: 32768, assoc: 8, hitLatency: 4, mshrs: 16, tgtsPerMshr: 16 });
export const L2_PARAMS = withDefaults(CACHE_PARAMS, { size: 1048576, assoc: 8, hitLatency: 14, mshrs: 32, tgtsPerMshr: 12 });
export const L3_PARAMS = withDefaults(CACHE_PARAMS, { size: 8388608, assoc: 16, hitLatency: 36, mshrs: 64, tgtsPerMshr: 12 });

interface Mshr {
  readyAt: number;
  /** Demand accesses waiting (0 for a prefetch nobody asked for yet). */
  targets: number;
  isPrefetch: boolean;
}

export class Cache implements MemLevel {
  readonly p: CacheParams;
  readonly numSets: number;
  /** For params.ts setIndex. */
  private readonly setMask: number;
  private readonly tags: Float64Array;
  private readonly stamp: Float64Array;
  private readonly dirty: Uint8Array;
  private readonly prefetched: Uint8Array;
  private clock = 0;
  private readonly mshr = new Map<number, Mshr>();
  prefetcher: StridePrefetcher | null = null;

  // stats
  private accesses = 0;
  private hits = 0;
  private misses = 0;
  private readAccesses = 0;
  private readMisses = 0;
  private writeAccesses = 0;
  private writeMisses = 0;
  private mshrHits = 0;
  private missLatency = 0;
  private writebacks = 0;
  private blockedNoMshrs = 0;
  private blockedNoTargets = 0;
  private blockedDownstream = 0;
  private blockedCycles = 0;
  private blockedUntil = 0;
  private pfIssued = 0;
  private pfUseful = 0;
  private pfLate = 0;
  private pfDropped = 0;

  constructor(
    readonly name: string,
    params: Partial<CacheParams> | undefined,
    readonly next: MemLevel,
    specs: typeof CACHE_PARAMS = CACHE_PARAMS,
  ) {
    const p = resolveParams(specs, params, name);
    this.p = p;
    if (!isPow2(p.lineSize)) throw new Error(`${name}: lineSize ${p.lineSize} is not a power of two`);
    if (!Number.isInteger(p.assoc) || p.assoc < 1) throw new Error(`${name}: bad assoc ${p.assoc}`);
    const sets = p.size / (p.assoc * p.lineSize);
    if (!Number.isInteger(sets) || sets < 1) throw new Error(`${name}: size ${p.size} is not a multiple of assoc × lineSize`);
    if (!(p.mshrs >= 1) || !(p.tgtsPerMshr >= 1) || !(p.hitLatency >= 0)) throw new Error(`${name}: bad mshrs/tgtsPerMshr/hitLatency`);
    this.numSets = sets;
    this.setMask = setMaskOf(sets);
    const n = sets * p.assoc;
    this.tags = new Float64Array(n).fill(-1);
    this.stamp = new Float64Array(n);
    this.dirty = new Uint8Array(n);
    this.prefetched = new Uint8Array(n);
  }

  /** Line number of a byte address. */
  lineOf(addr: number): number {
    return Math.floor(addr / this.p.lineSize);
  }

  /** Set index of a byte address. */
  setOf(addr: number): number {
    return setIndex(this.lineOf(addr), this.numSets, this.setMask);
  }

  private lookup(line: number): number {
    const a = this.p.assoc;
    const base = setIndex(line, this.numSets, this.setMask) * a;
    for (let w = base; w < base + a; w++) if (this.tags[w] === line) return w;
    return -1;
  }

  /** Whether the line holding `addr` is present (no side effects). */
  contains(addr: number): boolean {
    return this.lookup(this.lineOf(addr)) >= 0;
  }

  /** Whether the line holding `addr` is present and dirty (no side effects). */
  isDirty(addr: number): boolean {
    const w = this.lookup(this.lineOf(addr));
    return w >= 0 && this.dirty[w] === 1;
  }

  /** MSHRs busy at `now`. */
  mshrsInUse(now: number): number {
    this.prune(now);
    return this.mshr.size;
  }

  /** Whether `access(addr, …, now)` would be refused by this level for lack of MSHRs/targets. */
  wouldBlock(addr: number, now: number): boolean {
    this.prune(now);
    const line = this.lineOf(addr);
    const m = this.mshr.get(line);
    if (m) return m.targets >= this.p.tgtsPerMshr;
    if (this.lookup(line) >= 0) return false;
    return this.mshr.size >= this.p.mshrs;
  }

  /** Lines installed so far (any path): functional warming watches it to know when to stop. */
  fills = 0;

  /** Capacity in lines. */
  get lines(): number {
    return this.numSets * this.p.assoc;
  }

  /** The lines held, set by set, each set from least to most recently used (tests, diagnostics). */
  residentLines(): number[][] {
    const a = this.p.assoc;
    const out: number[][] = [];
    for (let set = 0; set < this.numSets; set++) {
      const ways = Array.from({ length: a }, (_, k) => set * a + k).filter((w) => this.tags[w] !== -1);
      ways.sort((x, y) => this.stamp[x]! - this.stamp[y]!);
      out.push(ways.map((w) => this.tags[w]!));
    }
    return out;
  }

  /** Installs `line`, evicting the LRU way; `now` < 0 means functional warming. Returns the way. */
  private install(line: number, dirty: boolean, now: number): number {
    this.fills++;
    const a = this.p.assoc;
    const base = setIndex(line, this.numSets, this.setMask) * a;
    let victim = base;
    for (let w = base; w < base + a; w++) {
      if (this.tags[w] === -1) {
        victim = w;
        break;
      }
      if (this.stamp[w]! < this.stamp[victim]!) victim = w;
    }
    const old = this.tags[victim]!;
    if (old !== -1 && this.dirty[victim] === 1) {
      this.writebacks++;
      if (now < 0) this.next.warmWriteback(old * this.p.lineSize);
      else this.next.writeback(old * this.p.lineSize, now);
    }
    this.tags[victim] = line;
    this.stamp[victim] = ++this.clock;
    this.dirty[victim] = dirty ? 1 : 0;
    this.prefetched[victim] = 0;
    return victim;
  }

  private prune(now: number): void {
    if (this.mshr.size === 0) return;
    for (const [k, m] of this.mshr) if (m.readyAt <= now) this.mshr.delete(k);
  }

  private block(now: number, freeAt: number): void {
    const from = Math.max(now, this.blockedUntil);
    if (freeAt > from) {
      this.blockedCycles += freeAt - from;
      this.blockedUntil = freeAt;
    }
  }

  /** `train` = false keeps the access from training the prefetcher (second half of a split access). */
  access(addr: number, isWrite: boolean, now: number, pc = 0, train = true): number {
    this.prune(now);
    const p = this.p;
    const line = Math.floor(addr / p.lineSize);
    const t = now + p.hitLatency;
    const m = this.mshr.get(line);
    if (m) {
      if (m.targets >= p.tgtsPerMshr) {
        this.blockedNoTargets++;
        this.block(now, m.readyAt);
        return -1;
      }
      m.targets++;
      const w = this.lookup(line);
      if (m.isPrefetch) {
        m.isPrefetch = false;
        this.pfLate++;
        if (w >= 0) this.prefetched[w] = 0;
      }
      if (w >= 0) {
        this.stamp[w] = ++this.clock;
        if (isWrite) {
          if (p.writeback) this.dirty[w] = 1;
          else this.next.writeback(line * p.lineSize, t);
        }
      }
      const done = Math.max(m.readyAt, t);
      this.count(isWrite, false);
      this.mshrHits++;
      this.missLatency += done - now;
      if (train) this.train(pc, addr, t);
      return done;
    }
    const w = this.lookup(line);
    if (w >= 0) {
      this.stamp[w] = ++this.clock;
      if (isWrite) {
        if (p.writeback) this.dirty[w] = 1;
        else this.next.writeback(line * p.lineSize, t);
      }
      if (this.prefetched[w] === 1) {
        this.prefetched[w] = 0;
        this.pfUseful++;
      }
      this.count(isWrite, true);
      if (train) this.train(pc, addr, t);
      return t;
    }
    if (isWrite && !p.writeAllocate) {
      // Write miss without allocation: the write goes on in the background (write buffer).
      this.next.writeback(line * p.lineSize, t);
      this.count(true, false);
      if (train) this.train(pc, addr, t);
      return t;
    }
    if (this.mshr.size >= p.mshrs) {
      this.blockedNoMshrs++;
      let free = Infinity;
      for (const e of this.mshr.values()) free = Math.min(free, e.readyAt);
      this.block(now, free);
      return -1;
    }
    const fill = this.next.access(line * p.lineSize, false, t, pc);
    if (fill < 0) {
      this.blockedDownstream++;
      return -1;
    }
    this.install(line, isWrite && p.writeback, t);
    if (isWrite && !p.writeback) this.next.writeback(line * p.lineSize, fill);
    this.mshr.set(line, { readyAt: fill, targets: 1, isPrefetch: false });
    this.count(isWrite, false);
    this.missLatency += fill - now;
    if (train) this.train(pc, addr, t);
    return fill;
  }

  private count(isWrite: boolean, hit: boolean): void {
    this.accesses++;
    if (hit) this.hits++;
    else this.misses++;
    if (isWrite) {
      this.writeAccesses++;
      if (!hit) this.writeMisses++;
    } else {
      this.readAccesses++;
      if (!hit) this.readMisses++;
    }
  }

  private train(pc: number, addr: number, t: number): void {
    const pf = this.prefetcher;
    if (!pf) return;
    const targets = pf.observe(pc, addr, this.p.lineSize);
    for (const a of targets) this.prefetch(a, t);
  }

  /**
   * Issues a prefetch of the line holding `addr` at cycle `t` if it is neither present nor in
   * flight and an MSHR is free. Returns whether it was issued.
   */
  prefetch(addr: number, t: number): boolean {
    const line = Math.floor(addr / this.p.lineSize);
    this.prune(t);
    if (line < 0 || this.mshr.has(line) || this.lookup(line) >= 0) return false;
    if (this.mshr.size >= this.p.mshrs) {
      this.pfDropped++;
      return false;
    }
    const fill = this.next.access(line * this.p.lineSize, false, t);
    if (fill < 0) {
      this.pfDropped++;
      return false;
    }
    const w = this.install(line, false, t);
    this.prefetched[w] = 1;
    this.mshr.set(line, { readyAt: fill, targets: 0, isPrefetch: true });
    this.pfIssued++;
    return true;
  }

  writeback(addr: number, now: number): void {
    const line = Math.floor(addr / this.p.lineSize);
    const w = this.lookup(line);
    if (!this.p.writeback) {
      if (w >= 0) this.stamp[w] = ++this.clock;
      this.next.writeback(line * this.p.lineSize, now);
      return;
    }
    if (w >= 0) {
      this.stamp[w] = ++this.clock;
      this.dirty[w] = 1;
    } else {
      this.install(line, true, now);
    }
  }

  warm(addr: number, isWrite: boolean): void {
    const p = this.p;
    const line = Math.floor(addr / p.lineSize);
    const w = this.lookup(line);
    if (w >= 0) {
      this.stamp[w] = ++this.clock;
      if (isWrite) {
        if (p.writeback) this.dirty[w] = 1;
        else this.next.warmWriteback(line * p.lineSize);
      }
      this.prefetched[w] = 0;
      return;
    }
    if (isWrite && !p.writeAllocate) {
      this.next.warmWriteback(line * p.lineSize);
      return;
    }
    this.next.warm(line * p.lineSize, false);
    this.install(line, isWrite && p.writeback, -1);
    if (isWrite && !p.writeback) this.next.warmWriteback(line * p.lineSize);
  }

  warmWriteback(addr: number): void {
    const line = Math.floor(addr / this.p.lineSize);
    const w = this.lookup(line);
    if (!this.p.writeback) {
      this.next.warmWriteback(line * this.p.lineSize);
      return;
    }
    if (w >= 0) {
      this.stamp[w] = ++this.clock;
      this.dirty[w] = 1;
    } else this.install(line, true, -1);
  }

  /** Drops every line (dirty ones are discarded, not written back) and all in-flight misses. */
  /**
   * Replaces the contents with, per set, the most recently accessed of `lines` (64-byte lines
   * from a memory timestamp record), in their LRU order: the cache as if every access of the
   * record had reached it. Sets `kept[i]` for each line taken; a written line is taken dirty.
   */
  rebuild(lines: StampedLines, kept: Uint8Array): void {
    this.invalidateAll();
    const a = this.p.assoc;
    const ls = this.p.lineSize;
    const tags = this.tags;
    const stamp = this.stamp;
    const dirty = this.dirty;
    const who = new Int32Array(tags.length).fill(-1);
    // Per set: the oldest stamp held once the set is full (0 while it has room), so the many
    // lines older than everything in their set are passed over without a scan.
    const floor = new Float64Array(this.numSets);
    const free = new Int32Array(this.numSets).fill(a);
    // Record lines per cache line (1 for 64-byte lines; a longer line merges several, a shorter one is split).
    const per = ls >= 64 ? 1 : 64 / ls;
    const div = ls >= 64 ? ls / 64 : 1;
    const vlines = lines.vline;
    const stamps = lines.stamp;
    const written = lines.written;
    const numSets = this.numSets;
    const mask = this.setMask;
    let newest = 0;
    for (let i = 0; i < lines.count; i++) {
      const st = stamps[i]!;
      if (st > newest) newest = st;
      const v = vlines[i]!;
      for (let k = 0; k < per; k++) {
        const line = per === 1 ? Math.floor(v / div) : v * per + k;
        const set = setIndex(line, numSets, mask);
        if (free[set] === 0 && st <= floor[set]! && div === 1) continue;
        const base = set * a;
        let victim = base;
        let merged = false;
        for (let w = base; w < base + a; w++) {
          if (tags[w] === line) {
            // Two record lines in one cache line: the newer stamp, dirty if either was written.
            if (st > stamp[w]!) {
              stamp[w] = st;
              who[w] = i;
            }
            if (written[i] === 1) dirty[w] = 1;
            merged = true;
            break;
          }
          if (stamp[w]! < stamp[victim]!) victim = w;
        }
        if (merged || st <= stamp[victim]!) continue;
        if (tags[victim] === -1) free[set]!--;
        tags[victim] = line;
        stamp[victim] = st;
        dirty[victim] = written[i]!;
        who[victim] = i;
        if (free[set] === 0) {
          let m = stamp[base]!;
          for (let w = base + 1; w < base + a; w++) if (stamp[w]! < m) m = stamp[w]!;
          floor[set] = m;
        }
      }
    }
    if (per === 1 && div === 1) {
      for (let w = 0; w < who.length; w++) if (who[w]! >= 0) kept[who[w]!] = 1;
    } else {
      // Merged or split lines: a record line stays if any cache line it maps to did.
      for (let i = 0; i < lines.count; i++) {
        const v = lines.vline[i]!;
        for (let k = 0; k < per; k++) if (this.lookup(per === 1 ? Math.floor(v / div) : v * per + k) >= 0) kept[i] = 1;
      }
    }
    this.clock = Math.max(this.clock, newest);
  }

  invalidateAll(): void {
    this.tags.fill(-1);
    this.dirty.fill(0);
    this.prefetched.fill(0);
    this.stamp.fill(0);
    this.mshr.clear();
    this.blockedUntil = 0;
  }

  /** Forgets in-flight misses (e.g. when switching CPU models; tags are kept). */
  resetTiming(): void {
    this.mshr.clear();
    this.blockedUntil = 0;
  }

  resetStats(): void {
    this.accesses = this.hits = this.misses = 0;
    this.readAccesses = this.readMisses = this.writeAccesses = this.writeMisses = 0;
    this.mshrHits = this.missLatency = this.writebacks = 0;
    this.blockedNoMshrs = this.blockedNoTargets = this.blockedDownstream = this.blockedCycles = 0;
    this.pfIssued = this.pfUseful = this.pfLate = this.pfDropped = 0;
    this.prefetcher?.resetStats();
  }

  stats(): Stat[] {
    const n = this.name;
    const out: Stat[] = [
      { name: `${n}.overallAccesses`, value: this.accesses, desc: 'Demand accesses' },
      { name: `${n}.overallHits`, value: this.hits, desc: 'Demand hits' },
      { name: `${n}.overallMisses`, value: this.misses, desc: 'Demand misses (including MSHR hits)' },
      { name: `${n}.overallMissRate`, value: this.accesses ? this.misses / this.accesses : 0, desc: 'Demand misses / accesses', unit: 'ratio' },
      { name: `${n}.ReadReq.accesses`, value: this.readAccesses, desc: 'Read accesses' },
      { name: `${n}.ReadReq.misses`, value: this.readMisses, desc: 'Read misses' },
      { name: `${n}.WriteReq.accesses`, value: this.writeAccesses, desc: 'Write accesses' },
      { name: `${n}.WriteReq.misses`, value: this.writeMisses, desc: 'Write misses' },
      { name: `${n}.demandMshrHits`, value: this.mshrHits, desc: 'Misses merged into an in-flight MSHR' },
      { name: `${n}.avgMissLatency`, value: this.misses ? this.missLatency / this.misses : 0, desc: 'Average cycles from a miss to its completion', unit: 'cycles' },
      { name: `${n}.writebacks`, value: this.writebacks, desc: 'Dirty lines evicted and written back' },
      { name: `${n}.blocked::noMshrs`, value: this.blockedNoMshrs, desc: 'Accesses refused: all MSHRs busy' },
      { name: `${n}.blocked::noTargets`, value: this.blockedNoTargets, desc: 'Accesses refused: the MSHR of the line has no free target' },
      { name: `${n}.blocked::downstream`, value: this.blockedDownstream, desc: 'Accesses refused because the next level refused the miss' },
      { name: `${n}.mshrFullCycles`, value: this.blockedCycles, desc: 'Cycles during which the cache refused accesses for lack of MSHRs/targets', unit: 'cycles' },
    ];
    if (this.prefetcher) {
      out.push(
        { name: `${n}.prefetcher.pfIssued`, value: this.pfIssued, desc: 'Prefetches issued' },
        { name: `${n}.prefetcher.pfUseful`, value: this.pfUseful, desc: 'Prefetched lines later hit by a demand access' },
        { name: `${n}.prefetcher.pfLate`, value: this.pfLate, desc: 'Demand accesses that found their prefetch still in flight' },
        { name: `${n}.prefetcher.pfDropped`, value: this.pfDropped, desc: 'Prefetches dropped for lack of MSHRs' },
        ...this.prefetcher.stats(`${n}.prefetcher`),
      );
    }
    return out;
  }
}
