/**
 * O3 pipeline timing model (src/detailed/o3/): synthetic instruction streams (DynInsts made
 * directly, no functional core) with fixed-latency memory and branch-predictor doubles. Each
 * test checks an analytical expectation within the tolerance stated next to it.
 */
import { describe, expect, it } from 'vitest';
import { O3Cpu } from '../../src/detailed/o3/o3Cpu.js';
import { O3ParamSpecs, o3Defaults, type O3Params } from '../../src/detailed/o3/params.js';
import type { O3BPredPort, O3MemPort } from '../../src/detailed/o3/stageStructs.js';
import type { BranchInfo, DynInst, InstStream, MicroOp } from '../../src/detailed/o3/types.js';

// ---------- doubles ----------

/** Fixed-latency memory: I-fetch `fetchLat` (0 = ideal, pipelined into fetch), loads `loadLat`, stores `storeLat`; never refuses. */
class FixedMem implements O3MemPort {
  loads = 0;
  stores = 0;
  fetches = 0;
  constructor(readonly loadLat = 4, readonly fetchLat = 0, readonly storeLat = 1) {}
  fetch(_addr: number, now: number): number {
    this.fetches++;
    return now + this.fetchLat;
  }
  load(_addr: number, _size: number, now: number): number {
    this.loads++;
    return now + this.loadLat;
  }
  store(_addr: number, _size: number, now: number): number {
    this.stores++;
    return now + this.storeLat;
  }
}

/** Oracle predictor (`mode: 'perfect'`) or one that always predicts wrong (`'alwaysWrong'`). */
class DoubleBPred implements O3BPredPort {
  predictions = 0;
  resolves = 0;
  mispredicts = 0;
  squashes = 0;
  constructor(private readonly oracle: Map<number, BranchInfo>, readonly mode: 'perfect' | 'alwaysWrong') {}
  predict(pc: number, _kind: BranchInfo['kind'] | null, fallthrough: number): { taken: boolean; target: number; handle: unknown } {
    this.predictions++;
    const b = this.oracle.get(pc);
    const taken = b ? b.taken : false;
    const target = b ? b.target : fallthrough;
    if (this.mode === 'perfect') return { taken, target, handle: pc };
    return taken ? { taken: false, target: 0, handle: pc } : { taken: true, target: fallthrough + 0x1000, handle: pc };
  }
  resolve(_handle: unknown, _actual: BranchInfo): boolean {
    this.resolves++;
    if (this.mode === 'alwaysWrong') this.mispredicts++;
    return this.mode === 'alwaysWrong';
  }
  squash(_handle: unknown): void {
    this.squashes++;
  }
}

// ---------- synthetic streams ----------

const alu = (srcs: number[], dsts: number[]): MicroOp => ({ cls: 'IntAlu', srcs, dsts });

/** A straight-line stream of `n` instructions, 4 bytes each, from 0x400000; `make(i)` gives the µops. */
function straight(n: number, make: (i: number) => MicroOp[]): InstStream {
  let i = 0;
  return {
    next(): DynInst | null {
      if (i >= n) return null;
      const pc = 0x400000 + 4 * i;
      const d: DynInst = { seq: i, pc, len: 4, nextPc: pc + 4, uops: make(i), mnemonic: 'x' };
      i++;
      return d;
    },
  };
}

/**
 * A loop: `bodyLen` instructions from `make(i)` then a taken conditional branch back to the top,
 * `iters` times. The oracle map gets the branch.
 */
function loop(iters: number, bodyLen: number, make: (k: number) => MicroOp[], oracle: Map<number, BranchInfo>): InstStream {
  const top = 0x400000;
  const brPc = top + 4 * bodyLen;
  const br: BranchInfo = { kind: 'cond', taken: true, target: top };
  oracle.set(brPc, br);
  let it = 0;
  let k = 0;
  let seq = 0;
  return {
    next(): DynInst | null {
      if (it >= iters) return null;
      if (k < bodyLen) {
        const pc = top + 4 * k;
        const d: DynInst = { seq: seq++, pc, len: 4, nextPc: pc + 4, uops: make(k), mnemonic: 'x' };
        k++;
        return d;
      }
      k = 0;
      it++;
      return { seq: seq++, pc: brPc, len: 4, nextPc: top, uops: [{ cls: 'Branch', srcs: [16], dsts: [] }], branch: br, mnemonic: 'jnz' };
    },
  };
}

function cpu(stream: InstStream, over: Partial<O3Params> = {}, mem: O3MemPort = new FixedMem(), bp?: O3BPredPort): O3Cpu {
  return new O3Cpu(o3Defaults(over), stream, mem, bp ?? new DoubleBPred(new Map(), 'perfect'));
}

function stat(c: O3Cpu, name: string): number {
  const s = c.stats().find((x) => x.name === 'system.cpu.' + name);
  if (!s) throw new Error(`no stat ${name}`);
  return s.value as number;
}

const N = 20_000;

describe('o3 params', () => {
  it('every parameter has a default and a description', () => {
    for (const [k, v] of Object.entries(O3ParamSpecs)) {
      expect(v.desc.length, k).toBeGreaterThan(5);
      expect(v.default, k).not.toBeUndefined();
    }
    expect(o3Defaults().numIntAlu).toBe(4);
    expect(o3Defaults({ numROBEntries: 8 }).numROBEntries).toBe(8);
  });
});

describe('o3 pipeline: analytical expectations', () => {
  it('dependent add chain: IPC ≈ 1 (±2%)', () => {
    const c = cpu(straight(N, () => [alu([0], [0])]));
    const r = c.run();
    expect(r.insts).toBe(N);
    expect(r.insts / r.cycles).toBeGreaterThan(0.98);
    expect(r.insts / r.cycles).toBeLessThanOrEqual(1.0);
    expect(stat(c, 'committedInsts')).toBe(N);
    expect(stat(c, 'ipc')).toBeCloseTo(r.insts / r.cycles, 9);
  });

  it('independent adds: IPC ≈ min(width, #IntAlu) (±3%)', () => {
    const ind = (i: number): MicroOp[] => [alu([], [i % 14])];
    for (const [over, expectIpc] of [
      [{}, 4],
      [{ numIntAlu: 2 }, 2],
      [{ numIntAlu: 8, fetchWidth: 2 }, 2],
      [{ numIntAlu: 3 }, 3],
    ] as const) {
      const r = cpu(straight(N, ind), over).run();
      const ipc = r.insts / r.cycles;
      expect(ipc, JSON.stringify(over)).toBeGreaterThan(expectIpc * 0.97);
      expect(ipc, JSON.stringify(over)).toBeLessThanOrEqual(expectIpc * 1.0001);
    }
  });

  it('I-cache: one access per fetch-buffer block; with fetch latency F, 16 insts per 64-byte block take 4 + F cycles (±2%)', () => {
    const F = 2;
    const mem = new FixedMem(4, F);
    const c = cpu(straight(N, (i) => [alu([], [i % 14])]), {}, mem);
    const r = c.run();
    expect(mem.fetches).toBe(N / 16);
    expect(stat(c, 'fetch.icacheAccesses')).toBe(N / 16);
    const perBlock = r.cycles / (N / 16);
    expect(perBlock).toBeGreaterThan((4 + F) * 0.98);
    expect(perBlock).toBeLessThan((4 + F) * 1.02);
  });

  it('load-op through the µop temporary: the compute µop waits for the load (cycles ≈ L + 1 per instruction, ±2%)', () => {
    const L = 10;
    // add r0, [mem] with r0 chained: load → tmp(35), alu reads r0 and tmp.
    const s = straight(2000, (i) => [
      { cls: 'MemRead', srcs: [], dsts: [35], mem: { addr: 0x1000 + 64 * i, size: 8 } },
      { cls: 'IntAlu', srcs: [0, 35], dsts: [0] },
    ]);
    // Loads are independent, so only the ALU chain (1/cycle) and the first load bound it.
    const r = cpu(s, {}, new FixedMem(L)).run();
    expect(r.ops).toBe(4000);
    expect(r.cycles / 2000).toBeLessThan(1.05);
    // Make the load address depend on the chain: now each instruction costs L + 1.
    const s2 = straight(2000, (i) => [
      { cls: 'MemRead', srcs: [0], dsts: [35], mem: { addr: 0x1000 + 64 * i, size: 8 } },
      { cls: 'IntAlu', srcs: [0, 35], dsts: [0] },
    ]);
    const r2 = cpu(s2, {}, new FixedMem(L)).run();
    expect(r2.cycles / 2000).toBeGreaterThan((L + 1) * 0.98);
    expect(r2.cycles / 2000).toBeLessThan((L + 1) * 1.02);
  });

  it('dependent multiplies: IPC ≈ 1/3 for IntMult latency 3, 1/5 for latency 5 (±2%)', () => {
    for (const lat of [3, 5]) {
      const r = cpu(straight(N, () => [{ cls: 'IntMult', srcs: [0], dsts: [0] }]), { intMultLat: lat }).run();
      expect(r.insts / r.cycles).toBeGreaterThan((1 / lat) * 0.98);
      expect(r.insts / r.cycles).toBeLessThanOrEqual((1 / lat) * 1.0001);
    }
  });

  it('unpipelined divider: independent divides issue one per latency (±2%)', () => {
    const c = cpu(straight(2000, (i) => [{ cls: 'IntDiv', srcs: [], dsts: [i % 14] }]), { intDivLat: 20 });
    const r = c.run();
    expect(r.cycles / r.insts).toBeGreaterThan(20 * 0.98);
    expect(r.cycles / r.insts).toBeLessThan(20 * 1.02);
    expect(stat(c, 'iew.fuBusy::IntDiv')).toBeGreaterThan(0);
  });

  it('dependent loads (pointer chase), memory latency L: cycles/load ≈ L (±2%)', () => {
    for (const L of [4, 30, 200]) {
      const n = 3000;
      const mem = new FixedMem(L);
      const r = cpu(straight(n, (i) => [{ cls: 'MemRead', srcs: [1], dsts: [1], mem: { addr: 0x10000 + 64 * i, size: 8 } }]), {}, mem).run();
      expect(mem.loads).toBe(n);
      expect(r.cycles / n, `L=${L}`).toBeGreaterThan(L * 0.98);
      expect(r.cycles / n, `L=${L}`).toBeLessThan(L * 1.02 + 0.1);
    }
  });

  it('independent long-latency loads: memory-level parallelism grows with the ROB (cycles/load ≈ L/ROB, ±15%)', () => {
    const L = 200;
    const n = 8000;
    const cyclesFor = (rob: number): number => {
      const mem = new FixedMem(L);
      const s = straight(n, (i) => [{ cls: 'MemRead', srcs: [], dsts: [i % 14], mem: { addr: 0x10000 + 64 * i, size: 8 } }]);
      return cpu(s, { numROBEntries: rob, numIQEntries: 256, LQEntries: 256, numLoadPorts: 2 }, mem).run().cycles;
    };
    const c32 = cyclesFor(32);
    const c128 = cyclesFor(128);
    expect(c32 / n).toBeGreaterThan((L / 32) * 0.95);
    expect(c32 / n).toBeLessThan((L / 32) * 1.15);
    expect(c128 / n).toBeGreaterThan((L / 128) * 0.95);
    expect(c128 / n).toBeLessThan((L / 128) * 1.15);
    // 4× the ROB → about 4× fewer cycles (at least 3.3×).
    expect(c32 / c128).toBeGreaterThan(3.3);
  });

  it('always-mispredicted branch: cycles per branch = front-end depth + resolution + redirect (±0.3), and grows with the stage delays', () => {
    const iters = 2000;
    const run = (over: Partial<O3Params>): { perBranch: number; c: O3Cpu; bp: DoubleBPred } => {
      const oracle = new Map<number, BranchInfo>();
      // 3 independent adds + the branch: one fetch group per iteration.
      const s = loop(iters, 3, (k) => [alu([], [k])], oracle);
      const bp = new DoubleBPred(oracle, 'alwaysWrong');
      const c = cpu(s, over, new FixedMem(), bp);
      const r = c.run();
      return { perBranch: r.cycles / iters, c, bp };
    };
    const p = o3Defaults();
    const expected = (q: O3Params): number => q.fetchToDecodeDelay + q.decodeToRenameDelay + q.renameToIEWDelay + q.branchLat + q.branchRedirectDelay;
    const base = run({});
    expect(base.perBranch).toBeGreaterThan(expected(p) - 0.3);
    expect(base.perBranch).toBeLessThan(expected(p) + 0.3);
    expect(stat(base.c, 'iew.branchMispredicts')).toBe(iters);
    expect(stat(base.c, 'commit.branchMispredicts')).toBe(iters);
    expect(base.bp.resolves).toBe(iters);
    expect(stat(base.c, 'iew.predictorDisagreements')).toBe(0);
    expect(stat(base.c, 'fetch.squashCycles')).toBeGreaterThan(iters * (expected(p) - 2));

    const deepOver = { fetchToDecodeDelay: 3, decodeToRenameDelay: 3, renameToIEWDelay: 4, branchRedirectDelay: 2 };
    const deep = run(deepOver);
    const grow = expected(o3Defaults(deepOver)) - expected(p);
    expect(grow).toBe(7);
    expect(deep.perBranch - base.perBranch).toBeGreaterThan(grow - 0.3);
    expect(deep.perBranch - base.perBranch).toBeLessThan(grow + 0.3);

    // A perfect predictor on the same loop: taken branches only end the fetch group (1 cycle/iteration).
    const oracle = new Map<number, BranchInfo>();
    const good = cpu(loop(iters, 3, (k) => [alu([], [k])], oracle), {}, new FixedMem(), new DoubleBPred(oracle, 'perfect')).run();
    expect(good.cycles / iters).toBeLessThan(1.05);
  });

  it('a serializing instruction drains the pipeline: waits for an empty ROB, blocks fetch until it commits', () => {
    const k = 40;
    const blocks = 200;
    const s = straight(blocks * (k + 1), (i) => (i % (k + 1) === k ? [{ cls: 'Serialize', srcs: [], dsts: [] }] : [alu([], [i % 14])]));
    const c = cpu(s);
    const r = c.run();
    const p = o3Defaults();
    expect(r.insts).toBe(blocks * (k + 1));
    expect(stat(c, 'commit.serializing')).toBe(blocks);
    expect(stat(c, 'rename.serializeStallCycles')).toBeGreaterThan(0);
    expect(stat(c, 'fetch.serializeStallCycles')).toBeGreaterThan(0);
    // Per block: the adds stream at 4/cycle, then nothing overlaps the serializing µop's trip
    // through the whole pipeline: rename waits for the ROB to empty (last add: f2d+d2r+r2i+1+i2c
    // after its fetch), the µop issues, completes, commits, and fetch restarts after commitToFetch.
    const drain = p.fetchToDecodeDelay + p.decodeToRenameDelay + p.renameToIEWDelay + p.intAluLat + p.iewToCommitDelay;
    const lower = k / p.fetchWidth + drain + p.serializeLat + p.commitToFetchDelay;
    const perBlock = r.cycles / blocks;
    expect(perBlock).toBeGreaterThan(lower - 1);
    expect(perBlock).toBeLessThan(lower + p.renameToIEWDelay + 3);
    // Against the same stream without serialization (≈ 4 IPC), each serializing instruction
    // costs about the drain of the back end plus its own trip and the fetch restart.
    const plain = cpu(straight(blocks * (k + 1), (i) => [alu([], [i % 14])])).run();
    const cost = (r.cycles - plain.cycles) / blocks;
    const expectedCost = drain + p.serializeLat + p.commitToFetchDelay;
    expect(cost).toBeGreaterThan(expectedCost - 1);
    expect(cost).toBeLessThan(expectedCost + p.renameToIEWDelay + 3);
  });

  it('ROB-full stall cycles are counted while a long-latency load blocks commit (±10%)', () => {
    const L = 300;
    const rob = 64;
    const blocks = 50;
    const body = 400;
    const mem = new FixedMem(L);
    const s = straight(blocks * body, (i) =>
      i % body === 0 ? [{ cls: 'MemRead', srcs: [], dsts: [15], mem: { addr: 0x9000 + 64 * i, size: 8 } }] : [alu([], [i % 14])],
    );
    const c = cpu(s, { numROBEntries: rob, numIQEntries: 64 }, mem);
    c.run();
    // The ROB fills ≈ rob/width cycles after the load enters it, then rename waits until the load completes.
    const expectedPerLoad = L - rob / o3Defaults().renameWidth - o3Defaults().renameToIEWDelay;
    const full = stat(c, 'rename.robFullEvents');
    expect(full / blocks).toBeGreaterThan(expectedPerLoad * 0.9);
    expect(full / blocks).toBeLessThan(expectedPerLoad * 1.1);
    expect(stat(c, 'rename.iqFullEvents')).toBe(0);
  });

  it('store-to-load forwarding: a load after a covering store gets the data in storeForwardLatency, not the memory latency', () => {
    const n = 2000;
    const mem = new FixedMem(100);
    // store [A] <- r1 ; r1 <- load [A] ; … a dependent chain through memory.
    const s = straight(2 * n, (i) =>
      i % 2 === 0 ? [{ cls: 'MemWrite', srcs: [1], dsts: [], mem: { addr: 0x8000, size: 8 } }] : [{ cls: 'MemRead', srcs: [], dsts: [1], mem: { addr: 0x8000, size: 8 } }],
    );
    const c = cpu(s, { storeForwardLatency: 2 }, mem);
    const r = c.run();
    expect(stat(c, 'iew.forwardedLoads')).toBe(n);
    expect(mem.loads).toBe(0);
    expect(mem.stores).toBe(n);
    // Per pair: store executes (1) then the forwarded load (2).
    expect(r.cycles / n).toBeGreaterThan(3 * 0.97);
    expect(r.cycles / n).toBeLessThan(3 * 1.05);
  });

  it('memory dependence: a load waits for an older overlapping store with an unresolved address; non-overlapping loads do not', () => {
    const mk = (overlap: boolean) =>
      straight(3, (i) =>
        i === 0
          ? [{ cls: 'IntDiv', srcs: [], dsts: [2] }]
          : i === 1
            ? [{ cls: 'MemWrite', srcs: [2], dsts: [], mem: { addr: 0x8000, size: 8 } }]
            : [{ cls: 'MemRead', srcs: [], dsts: [3], mem: { addr: overlap ? 0x8004 : 0x9000, size: 4 } }],
      );
    const a = cpu(mk(true), {}, new FixedMem(5));
    a.run();
    const b = cpu(mk(false), {}, new FixedMem(5));
    b.run();
    expect(stat(a, 'iew.memOrderWaits')).toBeGreaterThan(15);
    expect(stat(a, 'iew.forwardedLoads')).toBe(1);
    expect(stat(b, 'iew.memOrderWaits')).toBe(0);
    expect(stat(b, 'iew.forwardedLoads')).toBe(0);
  });
});

describe('o3 run/drain/stats', () => {
  it('skipIdleCycles is invisible: identical cycles and stats with it on and off (mixed stream)', () => {
    const mixed = (oracle: Map<number, BranchInfo>): InstStream =>
      loop(300, 23, (k) => {
        if (k === 0) return [{ cls: 'MemRead', srcs: [1], dsts: [1], mem: { addr: 0x10000 + 4096 * k, size: 8 } }];
        if (k === 3) return [{ cls: 'MemWrite', srcs: [1, 2], dsts: [], mem: { addr: 0x8000, size: 8 } }];
        if (k === 4) return [{ cls: 'MemRead', srcs: [], dsts: [5], mem: { addr: 0x8004, size: 4 } }];
        if (k === 7) return [{ cls: 'IntDiv', srcs: [5], dsts: [2] }];
        if (k === 11) return [{ cls: 'FloatSqrt', srcs: [20], dsts: [20] }];
        if (k === 15) return [{ cls: 'IntMult', srcs: [2], dsts: [3] }];
        if (k === 19) return [{ cls: 'Serialize', srcs: [], dsts: [] }];
        return [alu([k % 6], [k % 6, 16])];
      }, oracle);
    const go = (skip: boolean) => {
      const oracle = new Map<number, BranchInfo>();
      const s = mixed(oracle);
      const c = cpu(s, { skipIdleCycles: skip, numROBEntries: 48 }, new FixedMem(60, 3, 20), new DoubleBPred(oracle, 'alwaysWrong'));
      const r = c.run();
      return { r, stats: c.stats(), skipped: c.skippedCycles };
    };
    const on = go(true);
    const off = go(false);
    expect(off.skipped).toBe(0);
    expect(on.skipped).toBeGreaterThan(on.r.cycles / 4);
    expect(on.r).toEqual(off.r);
    expect(on.stats).toEqual(off.stats);
  });

  it('run(maxInsts) stops exactly; drain() commits everything already taken from the stream', () => {
    let pulled = 0;
    const inner = straight(10_000, (i) => [alu([0], [i % 14]), alu([], [15])]);
    const s: InstStream = {
      next: () => {
        const d = inner.next();
        if (d) pulled++;
        return d;
      },
    };
    const c = cpu(s);
    const r1 = c.run(1000);
    expect(r1.insts).toBe(1000);
    expect(r1.ops).toBe(2000);
    expect(pulled).toBeGreaterThan(1000);
    const d = c.drain();
    expect(c.isDrained).toBe(true);
    expect(r1.insts + d.insts).toBe(pulled);
    expect(c.run(10).insts).toBe(0); // still drained
    c.resume();
    const r2 = c.run();
    expect(r1.insts + d.insts + r2.insts).toBe(10_000);
  });

  it('stats are named gem5-style and resetStats clears them', () => {
    const c = cpu(straight(5000, (i) => [alu([], [i % 14])]));
    c.run(3000);
    const names = c.stats().map((s) => s.name);
    for (const n of ['numCycles', 'committedInsts', 'committedOps', 'ipc', 'cpi', 'fetch.insts', 'decode.decodedOps', 'rename.renamedOps', 'rename.robFullEvents', 'rename.iqFullEvents', 'rename.lqFullEvents', 'rename.sqFullEvents', 'iew.issuedOps', 'iew.fuBusy::IntAlu', 'iew.branchMispredicts', 'commit.committedOps', 'fetch.squashCycles']) {
      expect(names).toContain('system.cpu.' + n);
    }
    expect(new Set(names).size).toBe(names.length);
    for (const s of c.stats()) expect(s.desc.length).toBeGreaterThan(5);
    c.resetStats();
    expect(stat(c, 'numCycles')).toBe(0);
    expect(stat(c, 'committedInsts')).toBe(0);
    const r = c.run();
    expect(stat(c, 'committedInsts')).toBe(r.insts);
    expect(stat(c, 'numCycles')).toBe(r.cycles);
  });

  it('IQ/LQ/SQ full stalls are counted per cause', () => {
    const mem = new FixedMem(100);
    const lq = cpu(straight(2000, (i) => [{ cls: 'MemRead', srcs: [], dsts: [i % 14], mem: { addr: 64 * i, size: 8 } }]), { LQEntries: 8 }, mem);
    lq.run();
    expect(stat(lq, 'rename.lqFullEvents')).toBeGreaterThan(0);
    const sq = cpu(straight(2000, (i) => [{ cls: 'MemWrite', srcs: [], dsts: [], mem: { addr: 64 * i, size: 8 } }]), { SQEntries: 4 }, new FixedMem(4, 0, 50));
    sq.run();
    expect(stat(sq, 'rename.sqFullEvents')).toBeGreaterThan(0);
    const iq = cpu(straight(2000, () => [{ cls: 'IntMult', srcs: [0], dsts: [0] }]), { numIQEntries: 8 });
    iq.run();
    expect(stat(iq, 'rename.iqFullEvents')).toBeGreaterThan(0);
  });
});
