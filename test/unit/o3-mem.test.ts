/**
 * The detailed CPU's memory hierarchy (src/detailed/o3/mem): a timing model checked against
 * analytical expectations. Defaults used below: L1D hit 4, L1I hit 1, L2 hit 14, DRAM 200
 * cycles at 8 B/cycle (64-byte line → one transfer per 8 cycles), TLB walk 25, 64-entry TLBs.
 */
import { describe, expect, it } from 'vitest';
import { Cache, CACHE_PARAMS, L1D_PARAMS, L2_PARAMS } from '../../src/detailed/o3/mem/cache.js';
import { DRAM_PARAMS } from '../../src/detailed/o3/mem/dram.js';
import { MEM_SYSTEM_PARAMS, MemSystem, type MemSystemConfig } from '../../src/detailed/o3/mem/hierarchy.js';
import type { MemLevel } from '../../src/detailed/o3/mem/level.js';
import { PREFETCHER_PARAMS } from '../../src/detailed/o3/mem/prefetcher.js';
import { TLB_PARAMS, Tlb } from '../../src/detailed/o3/mem/tlb.js';
import type { Stat } from '../../src/stats.js';

const L1 = 4;
const L2 = 14;
const L3 = 36;
const DRAM = 200;
const WALK = 25;
const LINE = 64;

function stat(stats: readonly Stat[], name: string): number {
  const s = stats.find((x) => x.name === name);
  if (!s) throw new Error(`no stat ${name}`);
  return s.value as number;
}

/** A next level with a fixed latency that records what it sees. */
class FixedLevel implements MemLevel {
  reads: number[] = [];
  writebacks: number[] = [];
  constructor(readonly latency: number) {}
  access(addr: number, _w: boolean, now: number): number {
    this.reads.push(addr);
    return now + this.latency;
  }
  writeback(addr: number): void {
    this.writebacks.push(addr);
  }
  warm(): void {}
  warmWriteback(addr: number): void {
    this.writebacks.push(addr);
  }
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A single random cycle over n elements (Sattolo): next[i] is the line after line i. */
function randomCycle(n: number, seed: number): Uint32Array {
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const r = rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * i);
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  const next = new Uint32Array(n);
  for (let i = 0; i < n; i++) next[perm[i]!] = perm[(i + 1) % n]!;
  return next;
}

/** Pointer chase over `lines` lines from `base`: each load waits for the previous one. Returns cycles per load of the measured part. */
function pointerChase(mem: MemSystem, lines: number, warmup: number, measured: number): number {
  const next = randomCycle(lines, 12345);
  const base = 0x10000000;
  let cur = 0;
  let now = 0;
  for (let i = 0; i < warmup; i++) {
    now = mem.load(base + cur * LINE, 8, now);
    cur = next[cur]!;
  }
  mem.resetStats();
  const start = now;
  for (let i = 0; i < measured; i++) {
    const done = mem.load(base + cur * LINE, 8, now);
    expect(done).toBeGreaterThan(now - 1);
    now = done;
    cur = next[cur]!;
  }
  return (now - start) / measured;
}

describe('o3 memory: parameters', () => {
  it('every parameter of every table has a default and a one-line description', () => {
    for (const t of [CACHE_PARAMS, L1D_PARAMS, L2_PARAMS, DRAM_PARAMS, TLB_PARAMS, PREFETCHER_PARAMS, MEM_SYSTEM_PARAMS]) {
      for (const [k, v] of Object.entries(t)) {
        expect(v.default, k).not.toBeUndefined();
        expect(v.desc.length, k).toBeGreaterThan(5);
        expect(v.desc.includes('\n'), k).toBe(false);
      }
    }
  });

  it('rejects unknown keys, wrong types and impossible geometries', () => {
    expect(() => new MemSystem({ l4: {} } as unknown as MemSystemConfig)).toThrow(/unknown key/);
    expect(() => new MemSystem({ l1d: { sizee: 1 } as never })).toThrow(/unknown parameter/);
    expect(() => new MemSystem({ l1d: { size: '32k' } as never })).toThrow(/expected number/);
    expect(() => new Cache('c', { size: 1000, assoc: 3 }, new FixedLevel(1))).toThrow();
    expect(() => new Cache('c', { lineSize: 48 }, new FixedLevel(1))).toThrow(/power of two/);
  });
});

describe('o3 memory: latencies (exact)', () => {
  it('a hit costs the L1 hit latency; a cold miss costs L1 tag + L2 + DRAM, plus the walk on a new page', () => {
    const mem = new MemSystem();
    // cold page, cold line: DTLB walk + L1D tag + L2 tag + DRAM
    expect(mem.load(0x1000, 8, 0)).toBe(WALK + L1 + L2 + DRAM);
    // same page, new line: no walk
    expect(mem.load(0x1040, 8, 1000)).toBe(1000 + L1 + L2 + DRAM);
    // hit
    expect(mem.load(0x1008, 8, 2000)).toBe(2000 + L1);
    expect(mem.store(0x1044, 4, 3000)).toBe(3000 + L1);
    // instruction side: ITLB walk + L1I (1) + L2 + DRAM; then an L1I hit
    expect(mem.fetch(0x400000, 4000)).toBe(4000 + WALK + 1 + L2 + DRAM);
    expect(mem.fetch(0x400010, 5000)).toBe(5000 + 1);
    // an L1 miss that hits the L2: the line fetched for the I-side is in the L2 for the D-side
    expect(mem.load(0x400020, 8, 6000)).toBe(6000 + WALK + L1 + L2);
    const s = mem.stats();
    expect(stat(s, 'system.cpu.dcache.overallAccesses')).toBe(5);
    expect(stat(s, 'system.cpu.dcache.overallMisses')).toBe(3);
    expect(stat(s, 'system.cpu.dtb.misses')).toBe(2);
    expect(stat(s, 'system.l2.overallHits')).toBe(1);
    expect(stat(s, 'system.cpu.dcache.avgMissLatency')).toBeCloseTo((WALK + 2 * (L1 + L2 + DRAM) + L1 + L2) / 3 - WALK / 3, 6);
  });

  it('with an L3 a cold miss costs L1 + L2 + L3 + DRAM', () => {
    const mem = new MemSystem({ l3Enabled: true });
    mem.dtlb.warm(0x1000);
    expect(mem.load(0x1000, 8, 0)).toBe(L1 + L2 + L3 + DRAM);
    expect(stat(mem.stats(), 'system.l3.overallMisses')).toBe(1);
  });

  it('a line-crossing access touches both lines and completes with the later one', () => {
    const mem = new MemSystem();
    mem.dtlb.warm(0);
    mem.warm(0, 'load');
    // bytes 60..67: line 0 hits, line 1 misses
    expect(mem.load(60, 8, 100)).toBe(100 + L1 + L2 + DRAM);
    expect(stat(mem.stats(), 'system.cpu.dcache.overallAccesses')).toBe(2);
    expect(stat(mem.stats(), 'system.cpu.dcache.overallHits')).toBe(1);
    // crossing a page: both pages walked (in parallel)
    expect(mem.load(0x2ffc, 8, 1000)).toBe(1000 + WALK + L1 + L2 + DRAM + 8 /* second line queued one DRAM transfer behind */);
    expect(stat(mem.stats(), 'system.cpu.dtb.misses')).toBe(2);
  });
});

describe('o3 memory: LRU replacement', () => {
  it('evicts the least recently used way, with exact set arithmetic', () => {
    // 4 sets × 2 ways × 64 B
    const next = new FixedLevel(10);
    const c = new Cache('c', { size: 512, assoc: 2, lineSize: 64, hitLatency: 1, mshrs: 4 }, next);
    expect(c.numSets).toBe(4);
    const inSet1 = (k: number) => (1 + 4 * k) * 64; // line numbers 1, 5, 9, … all map to set 1
    for (let k = 0; k < 3; k++) expect(c.setOf(inSet1(k))).toBe(1);
    expect(c.setOf(2 * 64)).toBe(2);
    const A = inSet1(0);
    const B = inSet1(1);
    const C = inSet1(2);
    let now = 0;
    now = c.access(A, false, now); // miss, fill at 11
    now = c.access(B, false, now);
    expect(c.access(A + 8, false, now)).toBe(now + 1); // hit: A becomes MRU
    now += 1;
    now = c.access(C, false, now); // evicts B (LRU), not A
    expect(c.contains(A)).toBe(true);
    expect(c.contains(B)).toBe(false);
    expect(c.contains(C)).toBe(true);
    // other sets untouched
    c.access(2 * 64, false, now);
    expect(c.contains(A) && c.contains(C)).toBe(true);
  });

  it('4-way: victims come out in exact LRU order of last use', () => {
    const c = new Cache('c', { size: 1024, assoc: 4, lineSize: 64, hitLatency: 1 }, new FixedLevel(5));
    // 4 sets; set 3 lines: 3, 7, 11, …
    const L = (k: number) => (3 + 4 * k) * 64;
    for (let k = 0; k < 4; k++) c.warm(L(k), false);
    // use order B, D, A, C (k = 1, 3, 0, 2) → LRU order is the same
    for (const k of [1, 3, 0, 2]) c.warm(L(k), false);
    const order = [1, 3, 0, 2];
    for (let i = 0; i < 4; i++) {
      c.warm(L(4 + i), false);
      expect(c.contains(L(order[i]!)), `insert ${i} evicts k=${order[i]}`).toBe(false);
      for (const k of order.slice(i + 1)) expect(c.contains(L(k))).toBe(true);
    }
  });
});

describe('o3 memory: working sets (pointer chase, cycles per load)', () => {
  it('fits in L1: ≈ L1 latency, ~0 misses after the first pass (tolerance 1%)', () => {
    const mem = new MemSystem();
    const lines = 256; // 16 KiB < 32 KiB L1D
    const cpl = pointerChase(mem, lines, lines, 4 * lines);
    expect(Math.abs(cpl - L1) / L1).toBeLessThan(0.01);
    expect(stat(mem.stats(), 'system.cpu.dcache.overallMisses')).toBe(0);
  });

  // The chase follows one random cycle through all the lines, so every pass repeats the same
  // order: with LRU, a working set larger than a cache hits in it never (the line reused next
  // is always the one evicted longest ago), and one that fits always hits.
  it('between L1 and L2: misses L1, hits L2, ≈ L1+L2 (tolerance 2%)', () => {
    const mem = new MemSystem();
    const lines = 4096; // 256 KiB: 8 × L1D, 1/4 of L2, 64 pages = DTLB reach
    const cpl = pointerChase(mem, lines, 2 * lines, 4 * lines);
    const expected = L1 + L2;
    expect(Math.abs(cpl - expected) / expected).toBeLessThan(0.02);
    const s = mem.stats();
    expect(stat(s, 'system.cpu.dcache.overallMissRate')).toBeGreaterThan(0.98);
    expect(stat(s, 'system.l2.overallMissRate')).toBe(0);
    expect(stat(s, 'system.cpu.dtb.misses')).toBe(0);
  });

  it('between L1 and L2 with independent uniform random lines: hit fraction ≈ L1 capacity / N (tolerance 5%)', () => {
    const mem = new MemSystem();
    const lines = 4096;
    const r = rng(7);
    const base = 0x10000000;
    let now = 0;
    for (let i = 0; i < lines; i++) now = mem.load(base + i * LINE, 8, now); // all lines into the L2
    for (let i = 0; i < lines; i++) now = mem.load(base + Math.floor(r() * lines) * LINE, 8, now);
    mem.resetStats();
    const start = now;
    const n = 50_000;
    for (let i = 0; i < n; i++) now = mem.load(base + Math.floor(r() * lines) * LINE, 8, now);
    const h1 = 512 / lines;
    const expected = h1 * L1 + (1 - h1) * (L1 + L2);
    expect(Math.abs((now - start) / n - expected) / expected).toBeLessThan(0.05);
    expect(Math.abs(stat(mem.stats(), 'system.cpu.dcache.overallMissRate') - (1 - h1))).toBeLessThan(0.03);
    expect(stat(mem.stats(), 'system.l2.overallMisses')).toBe(0);
  });

  it('≫ L2: misses both, ≈ L1+L2+DRAM (+ TLB walks) (tolerance 2%)', () => {
    const mem = new MemSystem();
    const lines = 1 << 18; // 16 MiB = 16 × L2, 4096 pages
    const cpl = pointerChase(mem, lines, lines, 100_000);
    // a page is still in the 64-entry DTLB only if it was among the last 64 pages touched
    const tlbHit = 64 / 4096;
    const expected = (1 - tlbHit) * WALK + L1 + L2 + DRAM;
    expect(Math.abs(cpl - expected) / expected).toBeLessThan(0.02);
    const s = mem.stats();
    expect(stat(s, 'system.l2.overallMissRate')).toBeGreaterThan(0.9);
    expect(stat(s, 'system.cpu.dtb.missRate')).toBeGreaterThan(0.95);
  });
});

describe('o3 memory: MSHRs and memory-level parallelism', () => {
  /** Issues n independent loads to distinct cold lines as fast as the L1D accepts them; returns the cycle the last completes. */
  function burst(mem: MemSystem, n: number, base = 0x20000000): number {
    mem.dtlb.warm(base); // one page per 64 lines; keep the walk out of the picture
    for (let i = 0; i < n; i += 64) mem.dtlb.warm(base + i * LINE);
    let now = 0;
    let i = 0;
    let last = 0;
    while (i < n) {
      const done = mem.load(base + i * LINE, 8, now);
      if (done < 0) {
        now++;
        continue;
      }
      last = Math.max(last, done);
      i++;
    }
    return last;
  }

  it('N independent misses with M MSHRs take ≈ ceil(N/M) × miss latency (tolerance 2%); more MSHRs → fewer cycles', () => {
    const N = 32;
    const miss = L1 + L2 + DRAM;
    let prev = Infinity;
    for (const M of [1, 2, 4, 8, 16]) {
      const mem = new MemSystem({ l1d: { mshrs: M }, l2: { mshrs: 64 }, dram: { bytesPerCycle: 1e6 } });
      const cycles = burst(mem, N);
      const expected = Math.ceil(N / M) * miss;
      expect(Math.abs(cycles - expected) / expected, `M=${M}`).toBeLessThan(0.02);
      expect(cycles).toBeLessThan(prev);
      prev = cycles;
      const s = mem.stats();
      expect(stat(s, 'system.cpu.dcache.overallMisses')).toBe(N);
      if (M < N) {
        expect(stat(s, 'system.cpu.dcache.blocked::noMshrs')).toBeGreaterThan(0);
        // the cache is full from the first refusal until the last batch is issued
        expect(stat(s, 'system.cpu.dcache.mshrFullCycles')).toBe((Math.ceil(N / M) - 1) * miss);
      }
    }
  });

  it('the L2 MSHRs limit parallelism too (a refused L1 miss is retried)', () => {
    const mem = new MemSystem({ l1d: { mshrs: 16 }, l2: { mshrs: 4 }, dram: { bytesPerCycle: 1e6 } });
    const cycles = burst(mem, 16);
    const expected = 4 * (L1 + L2 + DRAM);
    expect(Math.abs(cycles - expected) / expected).toBeLessThan(0.02);
    expect(stat(mem.stats(), 'system.cpu.dcache.blocked::downstream')).toBeGreaterThan(0);
  });

  it('two accesses to one in-flight line merge into its MSHR', () => {
    const mem = new MemSystem({ l1d: { tgtsPerMshr: 2 } });
    mem.dtlb.warm(0x5000);
    const first = mem.load(0x5000, 8, 0);
    expect(first).toBe(L1 + L2 + DRAM);
    expect(mem.load(0x5010, 8, 10)).toBe(first); // MSHR hit: completes with the fill
    expect(mem.load(0x5020, 8, 11)).toBe(-1); // no target slot left
    expect(mem.load(0x5020, 8, first)).toBe(first + L1); // after the fill: a hit
    const s = mem.stats();
    expect(stat(s, 'system.cpu.dcache.demandMshrHits')).toBe(1);
    expect(stat(s, 'system.cpu.dcache.overallMisses')).toBe(2);
    expect(stat(s, 'system.cpu.dcache.blocked::noTargets')).toBe(1);
    expect(stat(s, 'system.l2.overallAccesses')).toBe(1);
    expect(stat(s, 'system.mem_ctrl.readReqs')).toBe(1);
  });
});

describe('o3 memory: write-back', () => {
  it('dirty victims are written back (and counted) at each level; clean ones are not', () => {
    // L1D: 2 sets × 2 ways; L2: 4 sets × 2 ways
    const mem = new MemSystem({ l1d: { size: 256, assoc: 2 }, l2: { size: 512, assoc: 2 } });
    const set0 = (k: number) => k * 2 * LINE; // L1D set 0: even lines
    let now = 0;
    mem.dtlb.warm(0);
    now = mem.store(set0(0), 8, now); // dirty A
    now = mem.load(set0(1), 8, now); // clean B
    now = mem.load(set0(2), 8, now); // evicts A (dirty) → writeback
    now = mem.load(set0(3), 8, now); // evicts B (clean) → nothing
    let s = mem.stats();
    expect(stat(s, 'system.cpu.dcache.writebacks')).toBe(1);
    expect(mem.l2.isDirty(set0(0))).toBe(true);
    expect(mem.l1d.contains(set0(0))).toBe(false);
    // L2 set 0 holds lines 0, 4, 8… : push A (line 0) out of the L2 → DRAM write
    expect(mem.l2.setOf(set0(0))).toBe(0);
    now = mem.load(4 * LINE * 2, 8, now); // line 8
    now = mem.load(4 * LINE * 3, 8, now); // line 12
    s = mem.stats();
    expect(stat(s, 'system.l2.writebacks')).toBe(1);
    expect(stat(s, 'system.mem_ctrl.writeReqs')).toBe(1);
    expect(now).toBeGreaterThan(0);
  });

  it('a writeback occupies DRAM bandwidth (a read behind it waits one transfer)', () => {
    const mk = () => new MemSystem({ l1d: { size: 128, assoc: 1 }, l2: { size: 128, assoc: 1 }, dram: { bytesPerCycle: 1 } });
    const gap = LINE / 1;
    const a = mk();
    a.dtlb.warm(0);
    let now = a.store(0, 8, 0); // line 0 dirty in L1D
    now = a.load(2 * LINE, 8, now + 1000); // same L1D/L2 set (2 sets): L1 evicts line 0 into L2 (dirty), L2 evicts nothing dirty yet
    const t = now + 1000;
    // next load evicts the dirty line 0 from the L2: its writeback is queued right behind this read
    const done1 = a.load(4 * LINE, 8, t);
    expect(done1).toBe(t + L1 + L2 + DRAM);
    const done2 = a.load(6 * LINE + 0, 8, t);
    // the second read waits for the first read's transfer and the writeback's
    expect(done2).toBe(t + L1 + L2 + DRAM + 2 * gap);
  });
});

describe('o3 memory: write policies', () => {
  it('write-through sends every write on; no-write-allocate does not fill on a write miss', () => {
    const next = new FixedLevel(50);
    const wt = new Cache('wt', { size: 1024, assoc: 2, hitLatency: 2, writeback: false, writeAllocate: false }, next);
    expect(wt.access(0x100, true, 0)).toBe(2); // write miss, no allocate: completes after the tag check
    expect(wt.contains(0x100)).toBe(false);
    expect(next.writebacks).toEqual([0x100]);
    expect(next.reads).toEqual([]);
    expect(wt.access(0x100, false, 10)).toBe(10 + 2 + 50); // read miss allocates
    expect(wt.access(0x108, true, 100)).toBe(102); // write hit: written through, line stays clean
    expect(wt.isDirty(0x100)).toBe(false);
    expect(next.writebacks).toEqual([0x100, 0x100]);
    expect(stat(wt.stats(), 'wt.writebacks')).toBe(0);
  });
});

describe('o3 memory: stride prefetcher', () => {
  function stream(cfg: MemSystemConfig): Stat[] {
    const mem = new MemSystem(cfg);
    const base = 0x30000000;
    const n = 4096; // 8-byte loads: 512 lines
    for (let i = 0; i < n; i++) {
      const done = mem.load(base + 8 * i, 8, 10 * i, 0x401000);
      expect(done).toBeGreaterThan(0);
    }
    return mem.stats();
  }

  it('turns a sequential stream’s misses mostly into hits', () => {
    const without = stream({});
    const withPf = stream({ l1dPrefetcher: true });
    const m0 = stat(without, 'system.cpu.dcache.overallMisses');
    const m1 = stat(withPf, 'system.cpu.dcache.overallMisses');
    // without: every line misses (the 7 later loads to it merge into its MSHR)
    expect(m0).toBeGreaterThan(0.9 * 4096);
    expect(stat(without, 'system.cpu.dcache.overallMissRate')).toBeGreaterThan(0.9);
    // with: only the training loads miss (tolerance: < 2% of loads)
    expect(stat(withPf, 'system.cpu.dcache.overallMissRate')).toBeLessThan(0.02);
    expect(m1).toBeLessThan(0.05 * m0);
    expect(stat(withPf, 'system.cpu.dcache.prefetcher.pfIssued')).toBeGreaterThan(500);
    expect(stat(withPf, 'system.cpu.dcache.prefetcher.pfUseful')).toBeGreaterThan(0.95 * 510);
  });

  it('an L2 prefetcher (trained on L1 misses) turns the L2 misses of a stream into hits', () => {
    const without = stream({});
    const withPf = stream({ l2Prefetcher: true });
    expect(stat(without, 'system.l2.overallMissRate')).toBe(1);
    expect(stat(withPf, 'system.l2.overallMissRate')).toBeLessThan(0.05);
    expect(stat(withPf, 'system.l2.prefetcher.pfUseful')).toBeGreaterThan(0.95 * 510);
    // the L1 still misses every line (L2 hits: fills in L1+L2 cycles)
    expect(stat(withPf, 'system.cpu.dcache.overallMisses')).toBeGreaterThan(0.9 * 4096 * (L1 + L2) / 80);
  });

  it('prefetches that arrive after the demand access are counted late', () => {
    // 2 cycles between 8-byte loads = 16 cycles per line; one line ahead is 16 cycles of lead
    // against a 218-cycle fill: the demand stream catches up with its prefetches
    const mem = new MemSystem({ l1dPrefetcher: true, l1dPf: { degree: 1 } });
    for (let i = 0; i < 2048; i++) mem.load(0x30000000 + 8 * i, 8, 2 * i, 0x401000);
    const s = mem.stats();
    expect(stat(s, 'system.cpu.dcache.prefetcher.pfLate')).toBeGreaterThan(100);
  });
});

describe('o3 memory: DRAM bandwidth', () => {
  it('a burst of misses is stretched by the bus: the k-th completes k transfers later (exact)', () => {
    const N = 16;
    const mem = new MemSystem({ l1d: { mshrs: N }, l2: { mshrs: N } }); // 8 B/cycle → 8 cycles per line
    const base = 0x40000000;
    mem.dtlb.warm(base);
    const done: number[] = [];
    for (let i = 0; i < N; i++) done.push(mem.load(base + i * LINE, 8, 0));
    for (let i = 0; i < N; i++) expect(done[i]).toBe(L1 + L2 + DRAM + 8 * i);
    expect(stat(mem.stats(), 'system.mem_ctrl.avgQueueLat')).toBeCloseTo((8 * (N - 1)) / 2, 9);
    // with unlimited bandwidth they all complete together
    const fast = new MemSystem({ l1d: { mshrs: N }, l2: { mshrs: N }, dram: { bytesPerCycle: 1e9 } });
    fast.dtlb.warm(base);
    for (let i = 0; i < N; i++) expect(fast.load(base + i * LINE, 8, 0)).toBe(L1 + L2 + DRAM);
  });
});

describe('o3 memory: functional warming, TLB, reset', () => {
  it('warm() fills tags/LRU/TLB with no timing and no stats; invalidateAll() empties them', () => {
    const mem = new MemSystem();
    for (let a = 0; a < 8192; a += LINE) mem.warm(0x7000000 + a, 'load');
    mem.warm(0x400000, 'fetch');
    mem.warm(0x7100000, 'store');
    expect(mem.l1d.isDirty(0x7100000)).toBe(true);
    expect(stat(mem.stats(), 'system.cpu.dcache.overallAccesses')).toBe(0);
    expect(mem.load(0x7000100, 8, 10)).toBe(10 + L1);
    expect(mem.fetch(0x400000, 10)).toBe(11);
    mem.invalidateAll();
    expect(mem.load(0x7000100, 8, 10)).toBe(10 + WALK + L1 + L2 + DRAM);
    mem.resetStats();
    expect(mem.stats().every((s) => s.value === 0)).toBe(true);
  });

  it('TLB: set-associative LRU, walk latency on a miss', () => {
    const t = new Tlb('tlb', { entries: 4, assoc: 2, walkLatency: 30 });
    expect(t.numSets).toBe(2);
    const P = (k: number) => k * 2 * 4096; // even pages → set 0
    expect(t.access(P(0), 0)).toBe(30);
    expect(t.access(P(1), 0)).toBe(30);
    expect(t.access(P(0) + 5, 100)).toBe(100);
    expect(t.access(P(2), 0)).toBe(30); // evicts P(1)
    expect(t.contains(P(1))).toBe(false);
    expect(t.contains(P(0))).toBe(true);
    expect(t.access(4096, 0)).toBe(30); // set 1 independent
    const s = t.stats();
    expect(stat(s, 'tlb.accesses')).toBe(5);
    expect(stat(s, 'tlb.misses')).toBe(4);
  });

  it('TLB: hits and misses match a reference LRU on random streams (user pages above 2^32, several shapes)', () => {
    const shapes = [
      { entries: 64, assoc: 64 },
      { entries: 64, assoc: 4 },
      { entries: 48, assoc: 4 }, // 12 sets: not a power of two
      { entries: 8, assoc: 1 },
    ];
    let seed = 99;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    for (const shape of shapes) {
      const t = new Tlb('tlb', { ...shape, walkLatency: 7 });
      const sets = shape.entries / shape.assoc;
      const ref: number[][] = Array.from({ length: sets }, () => []); // most recent first
      for (let i = 0; i < 40_000; i++) {
        // Mostly a hot set of pages, sometimes a wide range; high user pages (stack-like) too.
        const r = rand();
        const span = r % 4 === 0 ? 4096 : 96;
        const page = (r % 2 === 0 ? 0x7ffff0000 : 0x400) + ((r >>> 3) % span);
        const lru = ref[page % sets]!;
        const at = lru.indexOf(page);
        const hit = at >= 0;
        if (hit) lru.splice(at, 1);
        else if (lru.length === shape.assoc) lru.pop();
        lru.unshift(page);
        expect(t.access(page * 4096 + (r & 4095), 1000), `${shape.entries}/${shape.assoc} access ${i}`).toBe(hit ? 1000 : 1007);
      }
      for (const lru of ref) for (const page of lru) expect(t.contains(page * 4096)).toBe(true);
      t.invalidateAll();
      expect(t.contains(0x7ffff0000 * 4096)).toBe(false);
    }
  });

  it('stats carry gem5-style names and descriptions', () => {
    const mem = new MemSystem({ l3Enabled: true, l1dPrefetcher: true, l2Prefetcher: true });
    const names = mem.stats().map((s) => s.name);
    for (const n of [
      'system.cpu.icache.overallMissRate',
      'system.cpu.dcache.demandMshrHits',
      'system.l2.avgMissLatency',
      'system.l3.writebacks',
      'system.cpu.dcache.prefetcher.pfUseful',
      'system.l2.prefetcher.pfLate',
      'system.cpu.itb.misses',
      'system.mem_ctrl.readReqs',
    ])
      expect(names).toContain(n);
    expect(new Set(names).size).toBe(names.length);
    for (const s of mem.stats()) expect(s.desc.length).toBeGreaterThan(3);
  });
});
