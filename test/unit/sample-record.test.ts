// Sampling with a memory timestamp record (--warming record, the default with atomic fast-forward):
// each sample's caches are rebuilt from the record, so its measured unit runs as it would after
// functional warming of the whole program up to it (SMARTS' continuous warming), at the cost of a
// store per access during fast-forward.
import { describe, expect, it } from 'vitest';
import { FastWarmer } from '../../src/detailed/o3/fastWarming.js';
import { runSampling } from '../../src/sample/sampler.js';
import type { SampleRecord } from '../../src/sample/types.js';
import type { O3Model } from '../../src/switch/models.js';
import { System } from '../../src/switch/system.js';
import { workloadPath } from '../support/workloads.js';

const PROGRAM = 'qsort';
const ARGS = ['60000'];
const W = 10_000;
const U = 10_000;
const BRANCH_WARM = 200_000;

/** CPI of each sample's unit after functional warming of everything before it (no fast-forward at all). */
async function continuouslyWarmed(samples: readonly SampleRecord[]): Promise<number[]> {
  const system = await System.create({ models: ['atomic', 'o3'], program: workloadPath(PROGRAM), args: ARGS, env: [], allowRead: [], capture: true });
  try {
    await system.start('atomic');
    await system.switchTo('o3');
    const o3 = system.model('o3') as O3Model;
    const warmer = new FastWarmer(o3.cpu, o3.memSystem, o3.bpred);
    const runO3 = async (n: number, fetchBeyond = 0) => {
      const s0 = o3.instructions();
      while (o3.instructions() - s0 < n) await system.run({ insts: n - (o3.instructions() - s0), fetchBeyond });
    };
    const out: number[] = [];
    let at = 0;
    let unit = 0;
    for (const s of samples) {
      unit += s.fastForwardInsts! + s.functionalWarmInsts + s.detailedWarmInsts;
      const w = warmer.warm(unit - W - at, Math.min(unit - W - at, BRANCH_WARM));
      o3.warmedInsts += w.insts;
      await runO3(W, U);
      await o3.resetStats();
      expect(o3.nextCommitRip()).toBe(s.unitRip);
      await runO3(U);
      const st = await o3.stats();
      const v = (n: string) => Number(st.find((x) => x.name === `system.o3_cpu.${n}`)?.value);
      out.push(v('numCycles') / v('committedInsts'));
      unit += U;
      at = unit;
    }
    return out;
  } finally {
    await system.close();
  }
}

describe('sampling with a memory timestamp record', () => {
  it('refuses the record on KVM (it cannot see the guest\'s accesses) before starting anything', async () => {
    await expect(runSampling({
      program: workloadPath(PROGRAM), args: ARGS, env: [], capture: true, interval: { insts: 2_000_000 },
      measureInsts: U, samples: 1, targetError: 0.03, confidence: 0.997, seed: '1', fastForward: 'kvm', warming: 'record',
    })).rejects.toThrow(/--warming.*record needs --fast-forward atomic/);
  });

  it('measures each unit as continuous functional warming from the start would', async () => {
    const r = await runSampling({
      program: workloadPath(PROGRAM), args: ARGS, env: [], capture: true, interval: { insts: 2_000_000 },
      detailedWarmInsts: W, measureInsts: U, samples: 100, targetError: 0.03, confidence: 0.997, seed: '3', fastForward: 'atomic',
    });
    expect(r.end).toEqual({ kind: 'exited', status: 0 });
    expect(r.result.config.warming).toBe('record');
    const samples = r.result.samples;
    expect(samples.length).toBeGreaterThanOrEqual(4);
    // The default warming is short: the record stands in for the rest.
    expect(samples.every((s) => s.functionalWarmInsts === 200_000)).toBe(true);
    const truth = await continuouslyWarmed(samples);
    samples.forEach((s, i) => expect(s.cpi).toBeCloseTo(truth[i]!, 2));
  }, 120_000);

  it('o3 runs that fetch beyond their limit stop at it exactly, with the pipeline full, and go on from there', async () => {
    const run = async (how: 'whole' | 'drained' | 'beyond') => {
      const system = await System.create({ models: ['atomic', 'o3'], program: workloadPath(PROGRAM), args: ARGS, env: [], allowRead: [], capture: true });
      try {
        await system.start('atomic');
        await system.run({ insts: 1_000_000 });
        await system.switchTo('o3');
        const o3 = system.model('o3') as O3Model;
        const c0 = o3.instructions();
        let inFlight = 0;
        let rip = 0;
        if (how === 'whole') {
          expect(await system.run({ insts: 12_000 })).toEqual({ kind: 'limit' });
        } else {
          expect(await system.run({ insts: 7_000, ...(how === 'beyond' ? { fetchBeyond: 5_000 } : {}) })).toEqual({ kind: 'limit' });
          expect(o3.instructions() - c0).toBe(7_000);
          inFlight = o3.stream.handedOut - o3.instructions();
          rip = o3.nextCommitRip();
          expect(await system.run({ insts: 5_000 })).toEqual({ kind: 'limit' });
        }
        expect(o3.instructions() - c0).toBe(12_000);
        const st = await o3.stats();
        return { inFlight, rip, ctx: await o3.threadContext(), cycles: Number(st.find((x) => x.name === 'system.o3_cpu.numCycles')?.value) };
      } finally {
        await system.close();
      }
    };
    const whole = await run('whole');
    const drained = await run('drained');
    const beyond = await run('beyond');
    console.log(`fetchBeyond: ${beyond.inFlight} in flight at the stop; cycles whole ${whole.cycles}, drained ${drained.cycles}, beyond ${beyond.cycles}`);
    // A drained stop has nothing in flight; fetching beyond leaves younger instructions in flight,
    // and the next to commit is where the drained run stopped.
    expect(drained.inFlight).toBe(0);
    expect(beyond.inFlight).toBeGreaterThan(0);
    expect(beyond.rip).toBe(drained.rip);
    expect(beyond.ctx).toEqual(whole.ctx);
    expect(drained.ctx).toEqual(whole.ctx);
    // Draining and refilling the pipeline costs cycles; stopping without a drain (almost) none.
    expect(drained.cycles).toBeGreaterThan(whole.cycles);
    expect(Math.abs(beyond.cycles - whole.cycles)).toBeLessThanOrEqual(2);
  }, 60_000);
});
