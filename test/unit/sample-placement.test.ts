// Where samples fall: stratified sampling with atomic fast-forward (exact instruction counts, no
// KVM needed). The program is cut into strata one interval long, the samples' own instructions
// included, and each sample's measured unit starts at a seeded random point of its own stratum
// (its fixed-length warming runs up to that point).
import { describe, expect, it } from 'vitest';
import { runSampling } from '../../src/sample/sampler.js';
import type { PhaseRecord, SampleRecord } from '../../src/sample/types.js';
import { workloadPath } from '../support/workloads.js';

const INTERVAL = 300_000;

async function sampleChecksum(seed: string): Promise<{ samples: SampleRecord[]; insts: number; phases: PhaseRecord[] }> {
  const r = await runSampling({
    program: workloadPath('checksum'),
    args: ['200000'],
    env: [],
    capture: true,
    interval: { insts: INTERVAL },
    functionalWarmInsts: 50_000,
    warming: 'fixed',
    detailedWarmInsts: 10_000,
    measureInsts: 10_000,
    samples: 1000,
    targetError: 0.03,
    confidence: 0.997,
    seed,
    fastForward: 'atomic',
  });
  expect(r.end).toEqual({ kind: 'exited', status: 0 });
  expect(r.result.summary.estimator).toBe('phaseStratified');
  return { samples: r.result.samples, insts: r.result.summary.wholeProgram.jsInsts, phases: r.result.summary.phases ?? [] };
}

/** Where each sample's fast-forward stopped and its unit started, in instructions from the start of the program. */
function starts(samples: readonly SampleRecord[]): { start: number; unit: number; end: number }[] {
  const out: { start: number; unit: number; end: number }[] = [];
  let at = 0;
  for (const s of samples) {
    const start = at + s.fastForwardInsts!;
    const unit = start + s.functionalWarmInsts + s.detailedWarmInsts;
    const end = unit + s.measuredInsts;
    out.push({ start, unit, end });
    at = end;
  }
  return out;
}

describe('sample placement (stratified)', () => {
  it('puts one sample in each interval-long stratum, at a seeded point; other seeds, other points', async () => {
    const a = await sampleChecksum('1');
    const pos = starts(a.samples);
    // Every stratum that fits before the exit holds exactly one sample.
    expect(a.samples.length).toBe(Math.floor(a.insts / INTERVAL));
    let overran = 0;
    const lead = 50_000 + 10_000;
    pos.forEach((p, i) => {
      const prevEnd = i > 0 ? pos[i - 1]!.end : 0;
      if (p.start - prevEnd <= 1) {
        // The point came before the previous sample's end plus this one's warming: it follows right after.
        overran++;
        expect(p.unit).toBeLessThanOrEqual(prevEnd + 1 + lead);
      } else {
        expect(p.unit).toBeGreaterThanOrEqual(i * INTERVAL);
      }
      expect(p.unit).toBeLessThan((i + 1) * INTERVAL);
    });
    expect(overran).toBeLessThan(pos.length / 4);
    // Spread over their strata, not bunched at one offset.
    const offsets = pos.map((p, i) => (p.unit - i * INTERVAL) / INTERVAL);
    expect(Math.min(...offsets)).toBeLessThan(0.3);
    expect(Math.max(...offsets)).toBeGreaterThan(0.7);

    // The strata hold every instruction of the program exactly once (exact counts on atomic).
    expect(a.phases.reduce((s, p) => s + p.insts, 0)).toBe(a.insts);

    const again = await sampleChecksum('1');
    expect(starts(again.samples)).toEqual(pos);
    const other = await sampleChecksum('2');
    expect(starts(other.samples).map((p) => p.start)).not.toEqual(pos.map((p) => p.start));
  }, 120_000);

  it('an interval shorter than one sample says so: samples then run back to back', async () => {
    const r = await runSampling({
      program: workloadPath('checksum'), args: ['200000'], env: [], capture: true, interval: { insts: 10_000 },
      functionalWarmInsts: 50_000, warming: 'fixed', detailedWarmInsts: 10_000, measureInsts: 10_000,
      samples: 3, targetError: 0.03, confidence: 0.997, seed: '1', fastForward: 'atomic',
    });
    expect(r.notes.some((n) => /shorter than one sample \(at least 70000\): samples run back to back/.test(n))).toBe(true);
    // The first starts inside the first stratum; the others right after the sample before.
    expect(r.result.samples.slice(1).map((s) => s.fastForwardInsts)).toEqual([1, 1]);
  }, 60_000);
});
