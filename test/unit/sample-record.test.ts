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
    const runO3 = async (n: number) => {
      const s0 = o3.instructions();
      while (o3.instructions() - s0 < n) await system.run({ insts: n - (o3.instructions() - s0) });
    };
    const out: number[] = [];
    let at = 0;
    let unit = 0;
    for (const s of samples) {
      unit += s.fastForwardInsts! + s.functionalWarmInsts + s.detailedWarmInsts;
      const w = warmer.warm(unit - W - at, Math.min(unit - W - at, BRANCH_WARM));
      o3.warmedInsts += w.insts;
      await runO3(W);
      await o3.resetStats();
      expect(o3.cpu.s.rip).toBe(s.unitRip);
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
});
