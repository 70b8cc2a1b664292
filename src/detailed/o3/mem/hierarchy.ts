/**
 * The memory system of the detailed CPU, built from one config object: ITLB + L1I and DTLB +
 * L1D, a shared L2, an optional L3, DRAM, and optional stride prefetchers on L1D and L2.
 * Timing only: every call returns the cycle at which the access completes, or -1 when a cache
 * on the path has no free MSHR at `now` (the pipeline retries later).
 *
 * Latencies add up along the path: a cold load costs DTLB (hit 0 / walk) + L1D hitLatency
 * + L2 hitLatency (+ L3 hitLatency) + DRAM latency.
 */
import type { Stat } from '../../../stats.js';
import type { ParamValues } from '../types.js';
import { CACHE_PARAMS, Cache, type CacheParams, L1D_PARAMS, L1I_PARAMS, L2_PARAMS, L3_PARAMS } from './cache.js';
import { DRAM_PARAMS, Dram, type DramParams } from './dram.js';
import type { MemLevel } from './level.js';
import type { MemoryTimestamps } from '../../memoryTimestamps.js';
import { resolveParams } from './params.js';
import { PREFETCHER_PARAMS, StridePrefetcher, type PrefetcherParams } from './prefetcher.js';
import { DTLB_PARAMS, ITLB_PARAMS, TLB_PARAMS, Tlb, type TlbParams } from './tlb.js';

export { CACHE_PARAMS, L1I_PARAMS, L1D_PARAMS, L2_PARAMS, L3_PARAMS, DRAM_PARAMS, PREFETCHER_PARAMS, TLB_PARAMS, ITLB_PARAMS, DTLB_PARAMS };
export type { CacheParams, DramParams, PrefetcherParams, TlbParams };

/** Structure switches of the hierarchy. */
export const MEM_SYSTEM_PARAMS = {
  l3Enabled: { default: false, desc: 'Add an L3 between the L2 and DRAM' },
  l1dPrefetcher: { default: false, desc: 'Attach a stride prefetcher to the L1 D-cache' },
  l2Prefetcher: { default: false, desc: 'Attach a stride prefetcher to the L2 (trained on L1 misses)' },
};
export type MemSystemParams = ParamValues<typeof MEM_SYSTEM_PARAMS>;

/** One config object; every omitted field takes its default from the spec tables above. */
export interface MemSystemConfig extends Partial<MemSystemParams> {
  l1i?: Partial<CacheParams>;
  l1d?: Partial<CacheParams>;
  l2?: Partial<CacheParams>;
  l3?: Partial<CacheParams>;
  dram?: Partial<DramParams>;
  itlb?: Partial<TlbParams>;
  dtlb?: Partial<TlbParams>;
  l1dPf?: Partial<PrefetcherParams>;
  l2Pf?: Partial<PrefetcherParams>;
}

const CONFIG_KEYS = new Set([...Object.keys(MEM_SYSTEM_PARAMS), 'l1i', 'l1d', 'l2', 'l3', 'dram', 'itlb', 'dtlb', 'l1dPf', 'l2Pf']);

export type AccessKind = 'fetch' | 'load' | 'store';

export class MemSystem {
  readonly sys: MemSystemParams;
  readonly l1i: Cache;
  readonly l1d: Cache;
  readonly l2: Cache;
  readonly l3: Cache | null;
  readonly dram: Dram;
  readonly itlb: Tlb;
  readonly dtlb: Tlb;
  private readonly dLine: number;

  constructor(config: MemSystemConfig = {}) {
    for (const k of Object.keys(config)) if (!CONFIG_KEYS.has(k)) throw new Error(`memory config: unknown key '${k}'`);
    const { l1i, l1d, l2, l3, dram, itlb, dtlb, l1dPf, l2Pf, ...sys } = config;
    this.sys = resolveParams(MEM_SYSTEM_PARAMS, sys, 'memory config');
    const l2p = resolveParams(L2_PARAMS, l2, 'system.l2');
    const l3p = this.sys.l3Enabled ? resolveParams(L3_PARAMS, l3, 'system.l3') : null;
    const llcLine = l3p ? l3p.lineSize : l2p.lineSize;
    this.dram = new Dram('system.mem_ctrl', { lineSize: llcLine, ...dram });
    let below: MemLevel = this.dram;
    this.l3 = l3p ? new Cache('system.l3', l3p, below, L3_PARAMS) : null;
    if (this.l3) below = this.l3;
    this.l2 = new Cache('system.l2', l2p, below, L2_PARAMS);
    this.l1i = new Cache('system.cpu.icache', l1i, this.l2, L1I_PARAMS);
    this.l1d = new Cache('system.cpu.dcache', l1d, this.l2, L1D_PARAMS);
    this.itlb = new Tlb('system.cpu.itb', itlb, ITLB_PARAMS);
    this.dtlb = new Tlb('system.cpu.dtb', dtlb, DTLB_PARAMS);
    if (this.sys.l1dPrefetcher) this.l1d.prefetcher = new StridePrefetcher(l1dPf, 'system.cpu.dcache.prefetcher');
    if (this.sys.l2Prefetcher) this.l2.prefetcher = new StridePrefetcher(l2Pf, 'system.l2.prefetcher');
    this.dLine = this.l1d.p.lineSize;
  }

  /** Instruction fetch of the line holding `addr` at `now`: ITLB then L1I. */
  fetch(addr: number, now: number): number {
    const t = this.itlb.access(addr, now);
    return this.l1i.access(addr, false, t, addr);
  }

  /** A load of `size` bytes at `addr`; `pc` (optional) trains PC-indexed prefetchers. */
  load(addr: number, size: number, now: number, pc = 0): number {
    return this.data(addr, size, false, now, pc);
  }

  /** A store of `size` bytes at `addr` (write-allocate: completes when the line is owned). */
  store(addr: number, size: number, now: number, pc = 0): number {
    return this.data(addr, size, true, now, pc);
  }

  private data(addr: number, size: number, isWrite: boolean, now: number, pc: number): number {
    const ls = this.dLine;
    const first = Math.floor(addr / ls);
    const last = Math.floor((addr + Math.max(size, 1) - 1) / ls);
    if (first === last) {
      if (this.l1d.wouldBlock(addr, now)) return this.l1d.access(addr, isWrite, now, pc); // counts the refusal
      const t = this.dtlb.access(addr, now);
      return this.l1d.access(addr, isWrite, t, pc);
    }
    // A line-crossing access touches both lines (and both pages when it crosses a page).
    const addr2 = last * ls;
    if (this.l1d.wouldBlock(addr, now) || this.l1d.wouldBlock(addr2, now) || this.twoNewMisses(addr, addr2, now)) {
      return -1;
    }
    const t1 = this.dtlb.access(addr, now);
    const samePage = Math.floor(addr / this.dtlb.p.pageSize) === Math.floor(addr2 / this.dtlb.p.pageSize);
    const t2 = samePage ? t1 : this.dtlb.access(addr2, now);
    const d1 = this.l1d.access(addr, isWrite, t1, pc);
    const d2 = this.l1d.access(addr2, isWrite, t2, pc, false);
    if (d1 < 0 || d2 < 0) return -1;
    return Math.max(d1, d2);
  }

  /** Whether both lines miss and need two MSHRs while only one is free. */
  private twoNewMisses(a1: number, a2: number, now: number): boolean {
    const c = this.l1d;
    if (c.contains(a1) || c.contains(a2)) return false;
    return c.mshrsInUse(now) + 2 > c.p.mshrs;
  }

  /** The cache furthest from the core (L3 when configured, else L2). */
  get lastLevel(): Cache {
    return this.l3 ?? this.l2;
  }

  /** The data line the last warm() touched (-1: none, or something else ran since: warmBegin). */
  private lastWarmLine = -1;
  private lastWarmWritten = false;

  /**
   * The L1D and the lower caches rebuilt from a memory timestamp record: per set, the lines
   * accessed most recently (memoryTimestamps.ts). The L1I and the TLBs are left to warming (the
   * record has data lines only). Returns the lines the record offered.
   */
  rebuildFrom(rec: MemoryTimestamps): number {
    const lines = rec.collect();
    const kept = new Uint8Array(lines.count);
    for (const c of [this.l1d, this.l2, this.l3]) c?.rebuild(lines, kept);
    rec.settle(lines, kept);
    this.lastWarmLine = -1;
    return lines.count;
  }

  /** Before a stretch of warm() calls: other accesses may have run since the last one. */
  warmBegin(): void {
    this.lastWarmLine = -1;
  }

  /** Functional warming (no timing, no stats): TLB and cache state as if the access happened. */
  warm(addr: number, kind: AccessKind, size = 1): void {
    if (kind === 'fetch') {
      this.itlb.warm(addr);
      this.l1i.warm(addr, false);
      return;
    }
    const isWrite = kind === 'store';
    // Another access to the line warmed last (stack slots, unit strides) changes nothing: it is
    // already most recent in the L1D and the DTLB (and dirty, if it was written).
    const line = Math.floor(addr / this.dLine);
    if (line === this.lastWarmLine && (!isWrite || this.lastWarmWritten) && Math.floor((addr + Math.max(size, 1) - 1) / this.dLine) === line) return;
    this.lastWarmLine = line;
    this.lastWarmWritten = isWrite;
    this.dtlb.warm(addr);
    this.l1d.warm(addr, isWrite);
    const end = addr + Math.max(size, 1) - 1;
    if (Math.floor(end / this.dLine) !== Math.floor(addr / this.dLine)) {
      this.dtlb.warm(end);
      this.l1d.warm(end, isWrite);
    }
  }

  private all(): { stats(): Stat[]; resetStats(): void }[] {
    const out: { stats(): Stat[]; resetStats(): void }[] = [this.itlb, this.dtlb, this.l1i, this.l1d, this.l2];
    if (this.l3) out.push(this.l3);
    out.push(this.dram);
    return out;
  }

  stats(): Stat[] {
    return this.all().flatMap((c) => c.stats());
  }

  resetStats(): void {
    for (const c of this.all()) c.resetStats();
  }

  /** Drops all cache and TLB contents. */
  invalidateAll(): void {
    this.lastWarmLine = -1;
    for (const c of [this.l1i, this.l1d, this.l2, this.l3]) c?.invalidateAll();
    this.itlb.invalidateAll();
    this.dtlb.invalidateAll();
    this.dram.resetTiming();
  }

  /** Forgets in-flight misses and bus occupancy (contents kept), e.g. when switching in at cycle 0. */
  resetTiming(): void {
    for (const c of [this.l1i, this.l1d, this.l2, this.l3]) c?.resetTiming();
    this.dram.resetTiming();
  }
}
