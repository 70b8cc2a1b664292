/**
 * The execution token and the run timeline without KVM: acquire/release/check semantics, the
 * same token seen from another thread (a worker sharing its SharedArrayBuffer), findOverlap on
 * synthetic intervals, and an atomic ↔ o3 switching run that prints the native output and ends
 * in the same state as an unswitched run.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { InternalError } from '../../src/errors.js';
import { System } from '../../src/switch/system.js';
import { ConcurrentExecutionError, ExecutionToken, findOverlap, RunTimeline, type CpuModelName, type RunInterval } from '../../src/switch/token.js';
import { ROOT, runNative, workload, workloadPath } from '../support/workloads.js';

describe('ExecutionToken', () => {
  it('starts free; acquire names the holder and bumps the epoch', () => {
    const t = new ExecutionToken();
    expect(t.holder).toBeNull();
    expect(t.epoch).toBe(0);
    t.acquire('atomic');
    expect(t.holder).toBe('atomic');
    expect(t.epoch).toBe(1);
    t.check('atomic');
    // The holder may take it again (idempotent); the epoch still counts the acquire.
    t.acquire('atomic');
    expect(t.holder).toBe('atomic');
    expect(t.epoch).toBe(2);
  });

  it('a second model can neither take, run with, nor release the held token', () => {
    const t = new ExecutionToken();
    t.acquire('kvm');
    const epoch = t.epoch;
    for (const other of ['atomic', 'o3'] as const) {
      let err: unknown;
      try {
        t.acquire(other);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConcurrentExecutionError);
      expect(err).toBeInstanceOf(InternalError);
      const c = err as ConcurrentExecutionError;
      expect(c.name).toBe('ConcurrentExecutionError');
      expect(c.model).toBe(other);
      expect(c.holder).toBe('kvm');
      expect(c.message).toBe(`${other} tried to take the token while kvm holds the execution token`);
      expect(() => t.check(other)).toThrow(new ConcurrentExecutionError(other, 'kvm', 'run guest instructions'));
      expect(() => t.release(other)).toThrow(ConcurrentExecutionError);
    }
    // Nothing of that changed the token.
    expect(t.holder).toBe('kvm');
    expect(t.epoch).toBe(epoch);
    t.check('kvm');
  });

  it('release frees it for the next model; nobody may run or release a free token', () => {
    const t = new ExecutionToken();
    t.acquire('atomic');
    t.release('atomic');
    expect(t.holder).toBeNull();
    expect(() => t.check('atomic')).toThrow(/atomic tried to run guest instructions while nobody holds/);
    expect(() => t.release('atomic')).toThrow(ConcurrentExecutionError);
    t.acquire('o3');
    expect(t.holder).toBe('o3');
    expect(t.epoch).toBe(2);
    expect(() => t.check('atomic')).toThrow(/while o3 holds/);
  });

  it('two views of one buffer are one token', () => {
    const a = new ExecutionToken();
    const b = new ExecutionToken(a.buffer);
    a.acquire('o3');
    expect(b.holder).toBe('o3');
    expect(() => b.acquire('kvm')).toThrow(ConcurrentExecutionError);
    b.release('o3');
    expect(a.holder).toBeNull();
    expect(a.epoch).toBe(b.epoch);
  });

  it('is shared with a worker thread: the worker cannot run while atomic holds it, and takes it once free', async () => {
    // The worker runs plain JavaScript: it uses the compiled token module (npm run build).
    const tokenJs = path.join(ROOT, 'dist/src/switch/token.js');
    if (!existsSync(tokenJs)) throw new Error(`${tokenJs} is missing: run npm run build`);
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.tokenUrl).then(({ ExecutionToken }) => {
        const token = new ExecutionToken(workerData.buffer);
        const attempt = (f) => { try { f(); return null; } catch (e) { return { name: e.name, message: e.message, holder: e.holder }; } };
        parentPort.on('message', (m) => {
          if (m === 'check') parentPort.postMessage(attempt(() => token.check('kvm')));
          if (m === 'acquire') parentPort.postMessage(attempt(() => token.acquire('kvm')));
          if (m === 'release') parentPort.postMessage(attempt(() => token.release('kvm')));
        });
        parentPort.postMessage('ready');
      });
    `;
    const token = new ExecutionToken();
    token.acquire('atomic');
    const worker = new Worker(code, { eval: true, workerData: { buffer: token.buffer, tokenUrl: pathToFileURL(tokenJs).href } });
    const replies: unknown[] = [];
    const waiters: ((v: unknown) => void)[] = [];
    worker.on('message', (m) => (waiters.length > 0 ? waiters.shift()!(m) : replies.push(m)));
    const next = () => new Promise<unknown>((resolve, reject) => {
      if (replies.length > 0) resolve(replies.shift());
      else {
        waiters.push(resolve);
        worker.once('error', reject);
      }
    });
    const ask = (m: string) => {
      worker.postMessage(m);
      return next();
    };
    try {
      expect(await next()).toBe('ready');
      expect(await ask('check')).toEqual({
        name: 'ConcurrentExecutionError',
        message: 'kvm tried to run guest instructions while atomic holds the execution token',
        holder: 'atomic',
      });
      expect(await ask('acquire')).toMatchObject({ name: 'ConcurrentExecutionError', holder: 'atomic' });
      expect(token.holder).toBe('atomic');
      // Handed over: the worker takes it, and now this thread is the one refused.
      token.release('atomic');
      expect(await ask('acquire')).toBeNull();
      expect(token.holder).toBe('kvm');
      expect(await ask('check')).toBeNull();
      expect(() => token.check('atomic')).toThrow(/atomic tried to run guest instructions while kvm holds/);
      expect(() => token.acquire('o3')).toThrow(ConcurrentExecutionError);
      expect(await ask('release')).toBeNull();
      expect(token.holder).toBeNull();
    } finally {
      await worker.terminate();
    }
  });
});

describe('findOverlap and RunTimeline', () => {
  const iv = (model: CpuModelName, startNs: number, endNs: number): RunInterval => ({ model, startNs, endNs });

  it('finds nothing in empty, single and disjoint timelines (touching ends do not overlap)', () => {
    expect(findOverlap([])).toBeNull();
    expect(findOverlap([iv('kvm', 0, 10)])).toBeNull();
    expect(findOverlap([iv('kvm', 0, 10), iv('atomic', 10, 20), iv('o3', 20, 30), iv('kvm', 35, 40)])).toBeNull();
    // Order of recording does not matter.
    expect(findOverlap([iv('o3', 20, 30), iv('kvm', 0, 10), iv('kvm', 35, 40), iv('atomic', 10, 20)])).toBeNull();
    // Empty intervals (start = end) at a boundary overlap nothing.
    expect(findOverlap([iv('kvm', 0, 10), iv('atomic', 10, 10), iv('o3', 10, 12)])).toBeNull();
  });

  it('reports the first overlapping pair of different models, earlier start first', () => {
    expect(findOverlap([iv('atomic', 5, 15), iv('kvm', 0, 10)])).toEqual([iv('kvm', 0, 10), iv('atomic', 5, 15)]);
    // One interval inside another.
    expect(findOverlap([iv('kvm', 0, 100), iv('o3', 40, 41)])).toEqual([iv('kvm', 0, 100), iv('o3', 40, 41)]);
    // A long interval overlapping one that is not its neighbour in the recording.
    expect(findOverlap([iv('kvm', 0, 10), iv('atomic', 20, 30), iv('o3', 40, 50), iv('kvm', 45, 60)])).toEqual([iv('o3', 40, 50), iv('kvm', 45, 60)]);
    // Same start.
    expect(findOverlap([iv('kvm', 0, 10), iv('atomic', 0, 1)])).not.toBeNull();
  });

  it('a bounded timeline drops the oldest intervals and counts them', () => {
    const t = new RunTimeline(3);
    for (let i = 0; i < 5; i++) t.add(iv('atomic', i * 10, i * 10 + 5));
    expect(t.dropped).toBe(2);
    expect(t.intervals.map((x) => x.startNs)).toEqual([20, 30, 40]);
  });
});

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('atomic ↔ o3 switching (no KVM)', () => {
  const opts = () => ({
    models: ['atomic', 'o3'] as CpuModelName[],
    program: workloadPath('checksum'),
    args: workload('checksum').testArgs,
    env: [] as string[],
    seed: 3n,
    capture: true,
    memSize: 64 * 1024 * 1024,
  });

  it('checksum switched at random exact instruction counts prints its native output and ends in the unswitched state', async () => {
    const native = runNative('checksum', workload('checksum').testArgs, {});

    const ref = await System.create(opts());
    let refEnd, refHash, refInsts;
    try {
      await ref.start('atomic');
      refEnd = await ref.run();
      refHash = (await ref.stateHash()).hash;
      refInsts = ref.model('atomic').instructions();
      expect(ref.output().stdout.toString()).toBe(native.stdout.toString());
    } finally {
      await ref.close();
    }

    const seed = 4242;
    const rnd = prng(seed);
    const sys = await System.create(opts());
    try {
      await sys.start('atomic');
      const trace: string[] = [];
      const segments: number[] = [];
      let end;
      for (;;) {
        const cur = sys.current!;
        const insts = cur === 'atomic' ? 1_000 + Math.floor(rnd() * 299_001) : 500 + Math.floor(rnd() * 19_501);
        const m = sys.model(cur);
        const before = m.instructions();
        const out = await sys.run({ insts });
        trace.push(`${cur} ${insts} -> ${out.kind}`);
        if (out.kind === 'exited' || out.kind === 'faulted') {
          end = out;
          expect(m.instructions() - before).toBeLessThanOrEqual(insts);
          break;
        }
        expect(out.kind, trace.join('\n')).toBe('limit');
        expect(m.instructions() - before, trace.join('\n')).toBe(insts);
        segments.push(insts);
        await sys.switchTo(cur === 'atomic' ? 'o3' : 'atomic');
      }
      const ctx = `seed ${seed}:\n${trace.join('\n')}`;
      expect(sys.switches.length, ctx).toBeGreaterThanOrEqual(6);
      expect(sys.output().stdout.toString(), ctx).toBe(native.stdout.toString());
      expect(sys.output().stderr.toString(), ctx).toBe('');
      expect(end, ctx).toEqual({ kind: 'exited', status: native.status });
      expect(end, ctx).toEqual(refEnd);
      expect((await sys.stateHash()).hash, ctx).toBe(refHash);
      // Instruction counts are exact on both models: together they ran exactly the program.
      expect(sys.model('atomic').instructions() + sys.model('o3').instructions(), ctx).toBe(refInsts);
      // Each switch records the instructions of the segment it ended.
      expect(sys.switches.map((s) => s.segmentInsts), ctx).toEqual(segments);
      expect(sys.switches.map((s) => s.from)).toEqual(sys.switches.map((_, i) => (i % 2 === 0 ? 'atomic' : 'o3')));
      const intervals = sys.timeline.intervals;
      expect(findOverlap(intervals)).toBeNull();
      expect(new Set(intervals.map((x) => x.model))).toEqual(new Set(['atomic', 'o3']));
      for (const x of intervals) expect(x.endNs).toBeGreaterThanOrEqual(x.startNs);
    } finally {
      await sys.close();
    }
  });
});
