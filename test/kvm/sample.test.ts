/**
 * `switchsim sample` end to end, through the CLI: KVM fast-forward, switch to o3, functional
 * warming, detailed warm-up and measurement, back to KVM; every output file; the guest's stdout
 * unchanged; the target-error stopping rule; and accuracy against a full o3 run.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { SamplingResult } from '../../src/sample/types.js';
import { System } from '../../src/switch/system.js';
import { switchsim } from '../support/cli.js';
import { runNative, workloadPath } from '../support/workloads.js';
import { describeKvm } from './support.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'switchsim-sample-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function readResult(dir: string): SamplingResult {
  return JSON.parse(readFileSync(path.join(dir, 'samples.json'), 'utf8')) as SamplingResult;
}

/** The whole program on o3 only (a System with one model, run to the end): o3 stats over the whole run. */
async function fullO3Ipc(name: string, args: string[]): Promise<{ ipc: number; insts: number; seconds: number }> {
  const t0 = performance.now();
  const sys = await System.create({ models: ['o3'], program: workloadPath(name), args, env: [], capture: true, onWarning: () => {} });
  try {
    await sys.start('o3');
    for (;;) {
      const out = await sys.run({});
      if (out.kind === 'exited') break;
      if (out.kind === 'faulted') throw new Error(`${name} faulted on o3`);
    }
    const stats = await sys.model('o3').stats();
    const v = (n: string) => Number(stats.find((s) => s.name === `system.o3_cpu.${n}`)?.value);
    return { ipc: v('committedInsts') / v('numCycles'), insts: v('committedInsts'), seconds: (performance.now() - t0) / 1000 };
  } finally {
    await sys.close();
  }
}

describeKvm('switchsim sample', () => {
  it('samples a workload on KVM + o3 (--host-rate) and writes samples.csv, samples.json, stats and report.html; stdout is native', () => {
    const out = path.join(tmp, 'matmul');
    const args = ['400']; // long enough on KVM (~80 ms) that 3 samples fit even when a loaded host stretches the intervals
    const r = switchsim([
      'sample', '--fast-forward', 'kvm', '--samples', '3', '--interval-insts', '2M', '--functional-warm-insts', '50k', '--detailed-warm-insts', '5k',
      '--measure-insts', '10k', '--seed', '5', '--host-rate', '--clear-env', '--out', out, workloadPath('matmul_int'), ...args,
    ]);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(runNative('matmul_int', args).stdout.toString());
    // No TTY: a line per sample, the PMU note, the summary.
    expect(r.stderr.match(/^switchsim: sample +\d+: IPC /gm)).toHaveLength(3);
    expect(r.stderr).toMatch(/no PMU/);
    expect(r.stderr).toMatch(/probed host rate/);
    // Three samples may fall in three phases: no degrees of freedom, an unbounded interval (n/a).
    expect(r.stderr).toMatch(/IPC [\d.]+ ± ([\d.]+|n\/a) \(99\.7% CI/);

    const csv = readFileSync(path.join(out, 'samples.csv'), 'utf8').trimEnd().split('\n');
    expect(csv).toHaveLength(4);
    const header = csv[0]!.split(',');
    expect(header).toContain('ipc');
    for (const row of csv.slice(1)) expect(row.split(',')).toHaveLength(header.length);

    const res = readResult(out);
    expect(res.config).toMatchObject({ args, samples: 3, functionalWarmInsts: 50_000, detailedWarmInsts: 5_000, measureInsts: 10_000, seed: '5', fastForwardModel: 'kvm' });
    expect(res.config.interval).toEqual({ insts: 2_000_000 });
    expect(res.samples).toHaveLength(3);
    for (const [i, s] of res.samples.entries()) {
      expect(s.index).toBe(i);
      expect(s.measuredInsts).toBe(10_000);
      expect(s.functionalWarmInsts).toBe(50_000);
      expect(s.measuredCycles).toBeGreaterThan(0);
      expect(s.ipc).toBeCloseTo(s.measuredInsts / s.measuredCycles, 10);
      expect(s.cpi).toBeCloseTo(1 / s.ipc, 10);
      expect(s.fastForwardSeconds).toBeGreaterThan(0);
      expect(s.fastForwardHostCycles).toBeCloseTo(s.fastForwardSeconds * res.config.hostFreqHz, 0);
      expect(Object.keys(s.keyStats)).toEqual(expect.arrayContaining(['l1dMissRate', 'branchMispredictsPki']));
      expect(s.hostSeconds.detailed).toBeGreaterThan(0);
    }
    const sum = res.summary;
    expect(sum.samples).toBe(3);
    // --host-rate: each sample has a phase; the first of each phase probed the host's rate
    // (hostRate.ts); the estimate is phase-stratified when a probe measured one.
    for (const s of res.samples) expect(s.phase).toBeGreaterThanOrEqual(0);
    expect(res.samples[0]!.hostRate).toBeDefined();
    const phases = sum.phases ?? [];
    expect(sum.estimator).toBe(phases.length > 0 ? 'phaseStratified' : 'meanIpc');
    if (phases.length > 0) {
      // Every sample stands in a phase (in two where a phase owning KVM time borrowed it).
      const used = new Set(phases.flatMap((p) => p.sampleIndexes ?? []));
      expect([...used].sort()).toEqual([0, 1, 2]);
      for (const p of phases) expect(p.samples).toBe(p.sampleIndexes?.length);
      for (const p of phases) expect(p.insts).toBeGreaterThanOrEqual(p.jsInsts);
      for (const s of res.samples) {
        expect(s.startRip).toBeGreaterThan(0);
        expect(s.unitRip).toBeGreaterThan(0);
      }
      const i = phases.reduce((a, p) => a + p.insts, 0);
      expect(sum.ipc.mean).toBeCloseTo(i / phases.reduce((a, p) => a + p.insts * p.cpi, 0), 10);
    } else {
      expect(sum.ipc.mean).toBeCloseTo(res.samples.reduce((a, s) => a + s.ipc, 0) / 3, 10);
    }
    expect(sum.ipc.low).toBeLessThanOrEqual(sum.ipc.mean);
    expect(sum.ipc.high ?? Infinity).toBeGreaterThanOrEqual(sum.ipc.mean); // null in JSON: unbounded
    expect(sum.ipc.confidence).toBe(0.997);
    expect(sum.samplesNeeded).toBeGreaterThanOrEqual(2);
    const w = sum.wholeProgram;
    expect(w.kvmHostCycles).toBeGreaterThan(0);
    expect(w.jsInsts).toBeGreaterThanOrEqual(3 * (50_000 + 5_000 + 10_000));
    expect(w.cycles).toBeCloseTo(w.kvmHostCycles * w.hostFactor + w.jsInsts * sum.cpi.mean, -2);
    expect(sum.hostSeconds.total).toBeGreaterThan(0);

    const txt = readFileSync(path.join(out, 'stats.txt'), 'utf8');
    expect(txt).toMatch(/^sampling\.ipc\.mean +[\d.]+ +# Mean IPC/m);
    expect(txt).toMatch(/^sampling\.samplesNeeded /m);
    expect(JSON.parse(readFileSync(path.join(out, 'stats.json'), 'utf8'))['sampling.samples'].value).toBe(3);
    expect(statSync(path.join(out, 'report.html')).size).toBeGreaterThan(500);
    expect(readFileSync(path.join(out, 'report.html'), 'utf8')).toMatch(/<html/i);
  });

  it('--target-error stops once the interval is narrow enough (at least --min-samples), then runs the rest on KVM', () => {
    const out = path.join(tmp, 'checksum');
    const args = ['20000000'];
    const r = switchsim([
      'sample', '--fast-forward', 'kvm', '--target-error', '3%', '--confidence', '99.7%', '--interval-insts', '2M', '--functional-warm-insts', '20k',
      '--detailed-warm-insts', '5k', '--measure-insts', '10k', '--clear-env', '--out', out, workloadPath('checksum'), ...args,
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(runNative('checksum', args).stdout.toString());
    expect(r.stderr).toMatch(/target reached/);
    const res = readResult(out);
    // A uniform loop: CV ≈ 0, so the minimum of 8 samples already meets ±3%.
    expect(res.summary.samples).toBe(8);
    expect(res.summary.ipc.relativeError).toBeLessThanOrEqual(0.03);
    expect(res.summary.samplesNeeded).toBeLessThanOrEqual(8);
    expect(res.config.samples).toBeNull();
  });

  // Accuracy: the sampled mean IPC against the whole program on o3. The fast-forward here is the
  // atomic CPU (--fast-forward atomic): a KVM fast-forward cannot be shorter than one kick
  // (≥ 1 ms ≈ 2M+ instructions), so a program of a few million instructions would get one or
  // two samples on KVM; the sampling path (switch, warming, W, U on o3) is the same, and atomic
  // fast-forward makes the sample points exact and the test deterministic.
  it('small case: checksum (one uniform phase) — sampled mean IPC within 3% of the full o3 run', async () => {
    const args = ['200000'];
    const out = path.join(tmp, 'acc-checksum');
    const t0 = performance.now();
    const r = switchsim([
      'sample', '-q', '--fast-forward', 'atomic', '--interval-insts', '150k', '--functional-warm-insts', '50k', '--detailed-warm-insts', '10k',
      '--measure-insts', '10k', '--samples', '1000', '--seed', '1', '--clear-env', '--out', out, workloadPath('checksum'), ...args,
    ]);
    const sampledSeconds = (performance.now() - t0) / 1000;
    expect(r.status).toBe(0);
    const res = readResult(out);
    const full = await fullO3Ipc('checksum', args);
    expect(full.insts).toBeGreaterThan(2_000_000);
    expect(res.summary.samples).toBeGreaterThanOrEqual(8);
    const err = Math.abs(res.summary.ipc.mean - full.ipc) / full.ipc;
    console.log(`sample accuracy checksum ${args.join(' ')}: full o3 IPC ${full.ipc.toFixed(4)} (${full.insts} insts, ${full.seconds.toFixed(1)} s), sampled ${res.summary.ipc.mean.toFixed(4)} ± ${res.summary.ipc.halfWidth.toFixed(4)} over ${res.summary.samples} samples (${sampledSeconds.toFixed(1)} s): error ${(err * 100).toFixed(2)}%`);
    expect(err).toBeLessThanOrEqual(0.03);
    expect(full.ipc).toBeGreaterThanOrEqual(res.summary.ipc.low * 0.99);
    expect(full.ipc).toBeLessThanOrEqual(res.summary.ipc.high * 1.01);
  }, 120_000);

  // matmul_int has phases (fill, row/column blocks of the product, Freivalds check): per-sample
  // IPC CV ≈ 10–20% at this unit size, so SMARTS needs n ≥ (t·cv/ε)² ≈ 100+ samples for ±3% at
  // 99.7% — more than a 4M-instruction program holds. With ~38 samples (one per 100k stratum) the
  // expected error is cv/√n ≈ 2% (1σ): checked at 6% (observed −2.9% to +1.5% over seeds 1–5;
  // with 150k strata, 25 samples, two of five seeds were off by 8–10%: one sample of the cold
  // start-up code then stands for 100k instructions).
  it('small case: matmul_int (phases) — sampled mean IPC within 6% of the full o3 run', async () => {
    const args = ['80'];
    const out = path.join(tmp, 'acc-matmul');
    const r = switchsim([
      'sample', '-q', '--fast-forward', 'atomic', '--interval-insts', '100k', '--functional-warm-insts', '50k', '--detailed-warm-insts', '10k',
      '--measure-insts', '10k', '--samples', '1000', '--seed', '1', '--clear-env', '--out', out, workloadPath('matmul_int'), ...args,
    ]);
    expect(r.status).toBe(0);
    const res = readResult(out);
    const full = await fullO3Ipc('matmul_int', args);
    const err = Math.abs(res.summary.ipc.mean - full.ipc) / full.ipc;
    console.log(`sample accuracy matmul_int ${args.join(' ')}: full o3 IPC ${full.ipc.toFixed(4)} (${full.insts} insts), sampled ${res.summary.ipc.mean.toFixed(4)} over ${res.summary.samples} samples (CV ${(res.summary.ipc.cv * 100).toFixed(1)}%): error ${(err * 100).toFixed(2)}%`);
    expect(res.summary.samples).toBeGreaterThanOrEqual(12);
    expect(err).toBeLessThanOrEqual(0.06);
  }, 120_000);
});
