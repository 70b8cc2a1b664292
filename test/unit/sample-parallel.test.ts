// Parallel sampling (sample/parallel.ts): a worker thread measures each sample on its own copy of
// the guest while the atomic fast-forward goes on. It must measure exactly what the serial sampler
// measures, sample for sample, and leave the guest's run untouched.
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { MemoryTimestamps } from '../../src/detailed/memoryTimestamps.js';
import { PAGE_SIZE } from '../../src/guest/physmem.js';
import { applyMemoryUpdate, memoryUpdate } from '../../src/sample/parallel.js';
import { runSampling, type SampleOptions } from '../../src/sample/sampler.js';
import { workloadPath } from '../support/workloads.js';

const base = (over: Partial<SampleOptions>): SampleOptions => ({
  program: workloadPath('qsort'), args: ['60000'], env: [], capture: true, interval: { insts: 1_000_000 },
  detailedWarmInsts: 5_000, measureInsts: 10_000, samples: 1000, targetError: 0.03, confidence: 0.997, seed: '3', fastForward: 'atomic',
  ...over,
});

/** What a sample measured, without its host timings. */
const measured = (r: Awaited<ReturnType<typeof runSampling>>) =>
  r.result.samples.map((s) => ({ startRip: s.startRip, unitRip: s.unitRip, phase: s.phase, ff: s.fastForwardInsts, warm: s.functionalWarmInsts, insts: s.measuredInsts, cycles: s.measuredCycles, keyStats: s.keyStats }));

describe('parallel sampling', () => {
  it('measures every sample exactly as the serial sampler does, and the guest runs the same', async () => {
    const serial = await runSampling(base({ parallel: false }));
    const parallel = await runSampling(base({ parallel: true, verifyParallel: true }));
    expect(serial.notes.some((n) => n.startsWith('parallel sampling'))).toBe(false);
    expect(parallel.notes.some((n) => n.startsWith('parallel sampling'))).toBe(true);
    expect(parallel.end).toEqual({ kind: 'exited', status: 0 });
    expect(parallel.end).toEqual(serial.end);
    expect(serial.result.samples.length).toBeGreaterThanOrEqual(8);
    expect(measured(parallel)).toEqual(measured(serial));
    expect(parallel.result.summary.ipc).toEqual(serial.result.summary.ipc);
    expect(parallel.result.summary.phases).toEqual(serial.result.summary.phases);
    expect(parallel.result.summary.wholeProgram.jsInsts).toBe(serial.result.summary.wholeProgram.jsInsts);
    expect(parallel.stdout.toString()).toBe(serial.stdout.toString());
    expect(parallel.stdout.length).toBeGreaterThan(0);
  }, 120_000);

  it('takes the process state and memory syscalls changed (write, brk, mmap, munmap, mprotect, getrandom) inside and between samples', async () => {
    const opts = { program: workloadPath('syscalls'), args: [], interval: { insts: 60_000 }, functionalWarmInsts: 20_000, detailedWarmInsts: 2_000, measureInsts: 5_000 };
    const serial = await runSampling(base({ ...opts, parallel: false }));
    // verifyParallel: the worker's memory equals the fast-forward's at every sample point.
    const parallel = await runSampling(base({ ...opts, parallel: true, verifyParallel: true }));
    expect(serial.end).toEqual({ kind: 'exited', status: 0 });
    expect(parallel.end).toEqual(serial.end);
    expect(serial.result.samples.length).toBeGreaterThanOrEqual(15);
    expect(measured(parallel)).toEqual(measured(serial));
    // The worker's copies of the guest's output are dropped: the fast-forward's is the output.
    expect(parallel.stdout.toString()).toBe(serial.stdout.toString());
    expect(parallel.stdout.toString()).toMatch(/\nOK\n$/);
    // Only samples after a syscall that may write memory (or remap it) carry all of it: the
    // write() and getpid() stretches send the pages the CPU wrote.
    const m = /(\d+) of (\d+) samples carried all of guest memory/.exec(parallel.notes.join('\n'));
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(1);
    expect(Number(m![1])).toBeLessThan(Number(m![2]));
  }, 120_000);

  it('drops a sample the guest exits inside, as the serial sampler does', async () => {
    // Samples back to back (the interval is shorter than one): the last one runs into the exit.
    const opts = { interval: { insts: 150_000 }, functionalWarmInsts: 100_000 };
    const serial = await runSampling(base({ ...opts, parallel: false }));
    const parallel = await runSampling(base({ ...opts, parallel: true }));
    expect(serial.partialDropped).toBe(true);
    expect(parallel.partialDropped).toBe(true);
    expect(parallel.end).toEqual({ kind: 'exited', status: 0 });
    expect(measured(parallel)).toEqual(measured(serial));
  }, 120_000);

  it('is what `switchsim sample` does by default: atomic fast-forward, the record, a worker where there are 2+ CPUs', async () => {
    const { fastForward: _ff, ...opts } = base({ samples: 2 });
    const r = await runSampling(opts);
    expect(r.result.config.fastForwardModel).toBe('atomic');
    expect(r.result.config.warming).toBe('record');
    expect(r.result.config.parallel ?? false).toBe(availableParallelism() > 1);
    expect(r.result.samples).toHaveLength(2);
  }, 60_000);

  it('is refused where the worker could not rebuild caches (no record)', async () => {
    await expect(runSampling(base({ parallel: true, warming: 'fixed' }))).rejects.toThrow(/--parallel.*--warming record/);
    await expect(runSampling(base({ parallel: true, fastForward: 'kvm', warming: 'adaptive' }))).rejects.toThrow(/--parallel/);
  });
});

describe('what a sample carries to the worker', () => {
  it('a record delta gives the copy the same lines, stamps and written bits, and names the pages written', () => {
    const a = new MemoryTimestamps();
    a.noteFill(3 * PAGE_SIZE, 0x400);
    a.noteFill(5 * PAGE_SIZE, 0x401);
    a.stamp[3 * 64 + 1] = ++a.clock; // read
    a.stamp[5 * 64 + 7] = ++a.clock; // written
    a.written[5 * 64 + 7] = 1;
    const d = a.takeDelta();
    expect(d.clock).toBe(2);
    expect(d.dirty).toEqual([5]);
    // The written bits went with the delta; nothing is touched until the next fill.
    expect(a.written[5 * 64 + 7]).toBe(0);
    expect(a.takeDelta().pages.length).toBe(0);
    const b = new MemoryTimestamps();
    b.applyDelta(d);
    expect(b.clock).toBe(2);
    const lines = b.collect();
    const got = Array.from({ length: lines.count }, (_, i) => [lines.vline[i], lines.stamp[i], lines.written[i], lines.pline[i]]);
    expect(got).toEqual([
      [0x400 * 64 + 1, 1, 0, 3 * 64 + 1],
      [0x401 * 64 + 7, 2, 1, 5 * 64 + 7],
    ]);
  });

  it('memory updates copy the pages asked for, or all memory up to the allocator\'s high-water mark', () => {
    const src = new Uint8Array(8 * PAGE_SIZE);
    for (let i = 0; i < src.length; i++) src[i] = (i * 7 + 3) & 0xff;
    const dst = new Uint8Array(8 * PAGE_SIZE);
    applyMemoryUpdate(dst, memoryUpdate(src, 8 * PAGE_SIZE, [2, 6]));
    for (let p = 0; p < 8; p++) {
      const same = Buffer.compare(dst.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE), src.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE)) === 0;
      expect(same).toBe(p === 2 || p === 6);
    }
    applyMemoryUpdate(dst, memoryUpdate(src, 5 * PAGE_SIZE, null));
    expect(Buffer.compare(dst.subarray(0, 5 * PAGE_SIZE), src.subarray(0, 5 * PAGE_SIZE))).toBe(0);
    expect(dst[6 * PAGE_SIZE + 1]).toBe(src[6 * PAGE_SIZE + 1]);
    expect(dst[7 * PAGE_SIZE + 1]).toBe(0);
  });
});
