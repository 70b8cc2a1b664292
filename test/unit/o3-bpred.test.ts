/**
 * Branch prediction structures of the detailed CPU (src/detailed/o3/bpred): direction predictors
 * against analytical expectations (periodic, random, periodic-pattern and long-history streams),
 * speculative history repair, the RAS (nesting within and beyond its depth, squash repair), BTB
 * capacity and the indirect target predictor. Branches are predicted then resolved in program
 * order unless a test says otherwise; rates are measured after a stated warm-up.
 */
import { describe, expect, it } from 'vitest';
import type { BranchInfo, BranchKind } from '../../src/detailed/o3/types.js';
import {
  BranchPredictorParamSpecs,
  BranchPredictorUnit,
  type BranchPredictorParams,
  defaultBranchPredictorParams,
} from '../../src/detailed/o3/bpred/branchUnit.js';
import { BTB } from '../../src/detailed/o3/bpred/btb.js';
import { ReturnAddressStack } from '../../src/detailed/o3/bpred/ras.js';
import { TagePredictor } from '../../src/detailed/o3/bpred/direction.js';

type Dir = 'bimodal' | 'gshare' | 'tournament' | 'tage';
const DIRS: readonly Dir[] = ['bimodal', 'gshare', 'tournament', 'tage'];

function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

function unit(dir: Dir, extra: Partial<BranchPredictorParams> = {}): BranchPredictorUnit {
  return new BranchPredictorUnit({ directionPredictor: dir, ...extra });
}

const LEN = 2; // bytes of a jcc in these synthetic streams

/** Predicts and resolves one conditional branch; returns whether it was mispredicted. */
function cond(u: BranchPredictorUnit, pc: number, taken: boolean, target = pc - 0x40): boolean {
  const { handle } = u.predict(pc, 'cond', pc + LEN);
  return u.resolve(handle, { kind: 'cond', taken, target });
}

function branch(u: BranchPredictorUnit, pc: number, kind: BranchKind, target: number, len = 5): boolean {
  const { handle } = u.predict(pc, kind, pc + len);
  return u.resolve(handle, { kind, taken: true, target });
}

describe('parameters', () => {
  it('every parameter has a default and a one-line description', () => {
    for (const [k, spec] of Object.entries(BranchPredictorParamSpecs)) {
      expect(spec.desc.length, k).toBeGreaterThan(5);
      expect(spec.desc).not.toMatch(/\n/);
      expect(spec.default, k).toBeDefined();
    }
    expect(defaultBranchPredictorParams().directionPredictor).toBe('tournament');
    expect(defaultBranchPredictorParams().RASSize).toBe(16);
  });

  it('rejects an unknown direction predictor and non-power-of-two tables', () => {
    expect(() => new BranchPredictorUnit({ directionPredictor: 'perceptron' })).toThrow(/perceptron/);
    expect(() => new BranchPredictorUnit({ BTBEntries: 1000 })).toThrow(/power of two/);
  });

  it('TAGE history lengths are geometric between min and max', () => {
    const t = new TagePredictor({
      logBaseSize: 10, numTables: 7, logTableSize: 9, tagBits: 9, minHistory: 4, maxHistory: 128,
      ctrBits: 3, uBits: 2, logUResetPeriod: 18,
    });
    expect(t.historyLengths).toEqual([4, 7, 13, 23, 40, 72, 128]);
  });
});

describe('direction predictors', () => {
  // Loop branch: taken N-1 times then not taken once.
  const N = 10;
  for (const dir of DIRS) {
    it(`${dir}: periodic loop branch (trip count ${N})`, () => {
      const u = unit(dir);
      const pc = 0x401000;
      let miss = 0;
      let exits = 0;
      for (let it = 0; it < 3000; it++) {
        for (let i = 0; i < N; i++) {
          const m = cond(u, pc, i < N - 1);
          if (it >= 1000) {
            miss += m ? 1 : 0;
            if (i === N - 1) exits++;
          }
        }
      }
      if (dir === 'bimodal') {
        // Exactly one misprediction per loop exit (the counter stays strongly taken).
        expect(miss).toBe(exits);
      } else {
        // ≈ 0 %: tolerance 0.1 % of the 20 000 measured branches.
        expect(miss).toBeLessThanOrEqual(20);
      }
    });
  }

  for (const dir of DIRS) {
    it(`${dir}: uniformly random branches mispredict 50 % ± 3 %`, () => {
      const u = unit(dir);
      const rnd = xorshift(12345);
      const pcs = [0x401000, 0x401010, 0x401020, 0x401030];
      let miss = 0;
      const n = 40_000;
      for (let i = 0; i < n; i++) if (cond(u, pcs[i % 4]!, rnd() < 0.5)) miss++;
      expect(Math.abs(miss / n - 0.5)).toBeLessThan(0.03);
    });
  }

  const PATTERN = [1, 1, 0, 1, 0, 0, 1, 0].map((b) => b === 1);
  for (const dir of ['gshare', 'tage', 'tournament'] as const) {
    it(`${dir}: learns a period-8 pattern of one branch (≈ 0 % after warm-up)`, () => {
      const u = unit(dir);
      let miss = 0;
      for (let i = 0; i < 24_000; i++) {
        const m = cond(u, 0x402000, PATTERN[i % 8]!);
        if (i >= 8000 && m) miss++;
      }
      expect(miss).toBeLessThanOrEqual(16); // ≤ 0.1 % of 16 000
    });
  }

  it('bimodal cannot learn a period-8 pattern (≥ 25 % mispredicted)', () => {
    const u = unit('bimodal');
    let miss = 0;
    for (let i = 0; i < 24_000; i++) {
      const m = cond(u, 0x402000, PATTERN[i % 8]!);
      if (i >= 8000 && m) miss++;
    }
    expect(miss / 16_000).toBeGreaterThanOrEqual(0.25);
  });

  /** Branch A random; 19 always-taken fillers; branch B = A (A is 20 branches back at B). */
  function longCorrelation(dir: Dir): number {
    const u = unit(dir);
    const rnd = xorshift(777);
    // Distinct low bits: no aliasing in the bimodal table or the BTB.
    const A = 0x403404;
    const B = 0x403808;
    let miss = 0;
    let measured = 0;
    for (let it = 0; it < 8000; it++) {
      const a = rnd() < 0.5;
      cond(u, A, a);
      for (let f = 0; f < 19; f++) cond(u, 0x404000 + f * 16, true);
      const m = cond(u, B, a);
      if (it >= 4000) {
        measured++;
        if (m) miss++;
      }
    }
    return miss / measured;
  }

  it('TAGE learns a correlation with a branch 20 branches back (< 3 % on B)', () => {
    expect(longCorrelation('tage')).toBeLessThan(0.03);
  });

  it('bimodal and 12-bit gshare cannot (B ≈ 50 % ± 5 %)', () => {
    expect(Math.abs(longCorrelation('bimodal') - 0.5)).toBeLessThan(0.05);
    expect(Math.abs(longCorrelation('gshare') - 0.5)).toBeLessThan(0.05);
  });
});

describe('speculative history', () => {
  // The same committed stream, with and without wrong-path predictions squashed after each
  // branch: identical predictions mean the histories were repaired exactly.
  for (const dir of DIRS) {
    it(`${dir}: squashed wrong-path predictions leave no trace (squash order irrelevant)`, () => {
      const ref = unit(dir);
      const spec = unit(dir);
      const rnd = xorshift(99);
      const junk = xorshift(5);
      for (let i = 0; i < 5000; i++) {
        const pc = 0x405000 + (i % 7) * 8;
        const taken = i % 7 === 3 ? rnd() < 0.5 : (i >> 2) % 3 !== 0;
        const actual: BranchInfo = { kind: 'cond', taken, target: pc - 0x80 };
        const a = ref.predict(pc, 'cond', pc + LEN);
        const b = spec.predict(pc, 'cond', pc + LEN);
        expect(b.taken).toBe(a.taken);
        const wrong = [0, 1, 2].map(() => spec.predict(0x500000 + Math.floor(junk() * 64) * 4, 'cond', 0));
        // Squash the wrong path in a scrambled order (youngest, oldest, middle).
        spec.squash(wrong[2]!.handle);
        spec.squash(wrong[0]!.handle);
        spec.squash(wrong[1]!.handle);
        expect(spec.resolve(b.handle, actual)).toBe(ref.resolve(a.handle, actual));
      }
      expect(spec.inflightCount).toBe(0);
    });

    it(`${dir}: a misprediction squashes younger predictions itself`, () => {
      const ref = unit(dir);
      const spec = unit(dir);
      const rnd = xorshift(4242);
      for (let i = 0; i < 3000; i++) {
        const pc = 0x406000 + (i % 5) * 4;
        const actual: BranchInfo = { kind: 'cond', taken: rnd() < 0.7, target: pc - 0x20 };
        const a = ref.predict(pc, 'cond', pc + LEN);
        const b = spec.predict(pc, 'cond', pc + LEN);
        expect(b.taken).toBe(a.taken);
        // Younger predictions along the predicted path, still in flight when `b` resolves.
        const younger = [spec.predict(pc + 0x100, 'cond', 0), spec.predict(pc + 0x200, 'cond', 0)];
        const m = spec.resolve(b.handle, actual);
        expect(m).toBe(ref.resolve(a.handle, actual));
        if (!m) for (const y of younger) spec.squash(y.handle);
        // Dead handles: resolve is a no-op.
        expect(spec.resolve(younger[0]!.handle, { kind: 'cond', taken: true, target: 0 })).toBe(false);
      }
    });
  }
});

describe('branches in flight', () => {
  // Fetch runs up to 8 branches ahead of resolution; a misprediction kills the younger ones
  // (the unit squashes them) and fetch restarts after the mispredicted branch.
  for (const dir of ['gshare', 'tournament', 'tage'] as const) {
    it(`${dir}: loop + period-8 branches stay ≈ 0 % mispredicted with 8 in flight`, () => {
      const u = unit(dir);
      const PAT = [1, 1, 0, 1, 0, 0, 1, 0];
      const stream = (i: number): { pc: number; taken: boolean } => {
        const k = i % 12; // a 6-trip loop branch and a period-8 branch, interleaved
        return k % 2 === 0 ? { pc: 0x401000, taken: k !== 10 } : { pc: 0x401100, taken: PAT[(i >> 1) % 8] === 1 };
      };
      const total = 30_000;
      const warm = 10_000;
      let next = 0;
      let resolved = 0;
      let miss = 0;
      const window: { i: number; h: unknown }[] = [];
      while (resolved < total) {
        while (window.length < 8 && next < total) {
          const { pc } = stream(next);
          window.push({ i: next, h: u.predict(pc, 'cond', pc + LEN).handle });
          next++;
        }
        const e = window.shift()!;
        const { pc, taken } = stream(e.i);
        resolved++;
        if (u.resolve(e.h, { kind: 'cond', taken, target: pc - 0x40 })) {
          if (e.i >= warm) miss++;
          next = e.i + 1;
          window.length = 0; // already squashed by the unit
        }
      }
      expect(u.inflightCount).toBe(0);
      expect(miss).toBeLessThanOrEqual(20); // ≤ 0.1 % of 20 000
    });
  }
});

describe('return address stack', () => {
  /** Calls through `depth` distinct sites (each function has its own ret), then returns. */
  function chain(u: BranchPredictorUnit, depth: number): void {
    for (let d = 0; d < depth; d++) branch(u, 0x410000 + d * 0x100, 'call', 0x420000 + d * 0x100);
    for (let d = depth - 1; d >= 0; d--) branch(u, 0x420000 + d * 0x100 + 0x40, 'ret', 0x410000 + d * 0x100 + 5, 1);
  }

  it('nesting within the RAS depth: every return predicted', () => {
    const u = unit('tournament', { RASSize: 16 });
    for (let i = 0; i < 50; i++) chain(u, 16);
    const s = Object.fromEntries(u.stats().map((x) => [x.name, x.value]));
    expect(s['system.cpu.branchPred.RASUsed']).toBe(800);
    expect(s['system.cpu.branchPred.RASIncorrect']).toBe(0);
    expect(s['system.cpu.branchPred.mispredicted::ret']).toBe(0);
  });

  it('deeper call chain: exactly depth − size returns mispredicted per chain', () => {
    const u = unit('tournament', { RASSize: 16 });
    for (let i = 0; i < 50; i++) chain(u, 24);
    const s = Object.fromEntries(u.stats().map((x) => [x.name, x.value]));
    expect(s['system.cpu.branchPred.RASIncorrect']).toBe(50 * 8);
  });

  it('self-recursion deeper than the RAS: only the outermost return is mispredicted', () => {
    const u = unit('tournament', { RASSize: 16 });
    const f = 0x430000;
    for (let i = 0; i < 20; i++) {
      branch(u, 0x401000, 'call', f); // main → f
      for (let d = 1; d < 40; d++) branch(u, f + 0x10, 'call', f); // f → f
      for (let d = 1; d < 40; d++) branch(u, f + 0x30, 'ret', f + 0x15, 1);
      branch(u, f + 0x30, 'ret', 0x401005, 1);
    }
    const s = Object.fromEntries(u.stats().map((x) => [x.name, x.value]));
    expect(s['system.cpu.branchPred.RASIncorrect']).toBe(20);
  });

  it('squash restores the stack after wrong-path calls and returns', () => {
    const u = unit('tournament');
    u.predict(0x401000, 'call', 0x401005);
    const wrongRet = u.predict(0x402000, 'ret', 0x402001);
    expect(wrongRet.target).toBe(0x401005);
    u.predict(0x402100, 'call', 0x402105); // overwrites the slot the ret popped
    u.predict(0x402200, 'call', 0x402205);
    u.squash(wrongRet.handle);
    expect(u.predict(0x403000, 'ret', 0x403001).target).toBe(0x401005);
  });

  it('a mispredicted branch repairs the RAS of its wrong path', () => {
    const u = unit('tournament');
    u.predict(0x401000, 'call', 0x401005);
    const c = u.predict(0x402000, 'cond', 0x402002); // predicted not taken (cold)
    u.predict(0x402002, 'ret', 0x402003); // wrong path
    u.predict(0x402010, 'call', 0x402015); // wrong path
    expect(u.resolve(c.handle, { kind: 'cond', taken: true, target: 0x402800 })).toBe(true);
    expect(u.predict(0x402900, 'ret', 0x402901).target).toBe(0x401005);
  });

  it('ReturnAddressStack is circular', () => {
    const r = new ReturnAddressStack(2);
    r.push(1);
    r.push(2);
    r.push(3);
    expect(r.pop().target).toBe(3);
    expect(r.pop().target).toBe(2);
    expect(r.pop().target).toBe(3); // stale: 1 was overwritten
  });
});

describe('BTB', () => {
  function run(nBranches: number): { hits: number; lookups: number; mispredicted: number } {
    const u = unit('bimodal', { BTBEntries: 64, BTBAssoc: 4 });
    // Odd stride spreads pcs evenly over the 16 sets.
    const pcs = Array.from({ length: nBranches }, (_, i) => 0x400000 + i * 5);
    for (const pc of pcs) branch(u, pc, 'uncond', pc + 0x1000);
    u.resetStats();
    let mispredicted = 0;
    for (let rep = 0; rep < 10; rep++) for (const pc of pcs) if (branch(u, pc, 'uncond', pc + 0x1000)) mispredicted++;
    const s = Object.fromEntries(u.stats().map((x) => [x.name, x.value]));
    return {
      hits: s['system.cpu.branchPred.BTBHits'] as number,
      lookups: s['system.cpu.branchPred.BTBLookups'] as number,
      mispredicted,
    };
  }

  it('taken branches that fit hit after warm-up', () => {
    expect(run(64)).toEqual({ hits: 640, lookups: 640, mispredicted: 0 });
  });

  it('more taken branches than entries: LRU capacity misses on every lookup', () => {
    expect(run(128)).toEqual({ hits: 0, lookups: 1280, mispredicted: 1280 });
  });

  it('keeps the kind and target; tags distinguish pcs of one set', () => {
    const b = new BTB({ entries: 16, assoc: 2, tagBits: 16 });
    b.update(0x400010, 0x500000, 'call');
    expect(b.lookup(0x400010)).toEqual({ target: 0x500000, kind: 'call' });
    expect(b.lookup(0x400010 + 8)).toBeNull(); // same set, another tag
    expect(b.lookup(0x7fff_0040_0010)).toBeNull(); // differs only above bit 32
    expect([b.hits, b.misses]).toEqual([1, 2]);
  });
});

describe('fetch without the branch kind', () => {
  it('an unknown instruction is predicted not taken until the BTB knows it', () => {
    const u = unit('tournament');
    const pc = 0x401000;
    const first = u.predict(pc, null, pc + 5);
    expect(first.taken).toBe(false);
    expect(u.resolve(first.handle, { kind: 'uncond', taken: true, target: 0x409000 })).toBe(true);
    const second = u.predict(pc, null, pc + 5);
    expect(second).toMatchObject({ taken: true, target: 0x409000 });
    expect(u.resolve(second.handle, { kind: 'uncond', taken: true, target: 0x409000 })).toBe(false);
    // A non-branch never enters the BTB.
    const nb = u.predict(0x401100, null, 0x401103);
    expect(u.resolve(nb.handle, null)).toBe(false);
    expect(u.inflightCount).toBe(0);
  });

  it('late-discovered calls push the RAS', () => {
    const u = unit('tournament');
    const c = u.predict(0x401000, null, 0x401005);
    expect(u.resolve(c.handle, { kind: 'call', taken: true, target: 0x402000 })).toBe(true);
    expect(u.predict(0x402050, 'ret', 0x402051).target).toBe(0x401005);
  });
});

describe('indirect target predictor', () => {
  /** A random conditional branch decides the target of the following indirect jump. */
  function rate(useIndirect: boolean): number {
    const u = unit('tage', { useIndirect });
    const rnd = xorshift(31337);
    const T1 = 0x480000;
    const T2 = 0x490000;
    let miss = 0;
    let n = 0;
    for (let i = 0; i < 6000; i++) {
      const t = rnd() < 0.5;
      cond(u, 0x470000, t, 0x470100);
      const pc = t ? 0x470100 : 0x470002;
      // Both paths reach the same `jmp *%rax` at 0x470200.
      void pc;
      const m = branch(u, 0x470200, 'indirect', t ? T1 : T2, 2);
      if (i >= 2000) {
        n++;
        if (m) miss++;
      }
    }
    return miss / n;
  }

  it('learns a target that depends on the global history (< 2 %)', () => {
    expect(rate(true)).toBeLessThan(0.02);
  });

  it('the BTB alone mispredicts it about half the time', () => {
    expect(Math.abs(rate(false) - 0.5)).toBeLessThan(0.05);
  });

  it('counts indirect lookups and mispredictions', () => {
    const u = unit('tage');
    branch(u, 0x470200, 'indirectCall', 0x480000, 2);
    branch(u, 0x470200, 'indirectCall', 0x480000, 2);
    const s = Object.fromEntries(u.stats().map((x) => [x.name, x.value]));
    expect(s['system.cpu.branchPred.indirectLookups']).toBe(2);
    expect(s['system.cpu.branchPred.indirectMispredicted']).toBe(1);
    expect(s['system.cpu.branchPred.mispredicted::indirectCall']).toBe(1);
  });
});

describe('stats', () => {
  it('gem5 names and descriptions; resetStats zeroes them', () => {
    const u = unit('gshare');
    for (let i = 0; i < 100; i++) cond(u, 0x401000, i % 2 === 0);
    const st = u.stats();
    for (const s of st) {
      expect(s.name.startsWith('system.cpu.branchPred.')).toBe(true);
      expect(s.desc.length).toBeGreaterThan(5);
    }
    const names = st.map((s) => s.name.slice('system.cpu.branchPred.'.length));
    for (const n of ['lookups', 'condPredicted', 'condIncorrect', 'BTBLookups', 'BTBHits', 'RASUsed', 'RASIncorrect',
      'indirectLookups', 'indirectMispredicted', 'mispredicted::cond', 'mispredicted::ret']) {
      expect(names).toContain(n);
    }
    const get = (n: string) => u.stats().find((s) => s.name === `system.cpu.branchPred.${n}`)!.value;
    expect(get('condPredicted')).toBe(100);
    expect(get('lookups')).toBe(100);
    u.resetStats();
    expect(u.stats().every((s) => s.value === 0)).toBe(true);
  });
});
