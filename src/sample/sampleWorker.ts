/**
 * The parallel sampling worker (parallel.ts): a System of its own with the o3 model, loaded from
 * the same program, that takes over each sample's state from the fast-forward and measures it
 * with measureSample, exactly as the serial sampler does. Guest output inside samples is dropped
 * (the fast-forward runs those instructions too and writes it), and so are warnings.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Block } from '../detailed/decode.js';
import { MemoryTimestamps } from '../detailed/memoryTimestamps.js';
import { FastWarmer } from '../detailed/o3/fastWarming.js';
import type { O3Model } from '../switch/models.js';
import { System } from '../switch/system.js';
import { keyStatsOf, measureSample } from './measure.js';
import { applyMemoryUpdate, failure, memoryHash, type FromSampleWorker, type SampleWorkerConfig, type ToSampleWorker, type WorkerSampleOutcome } from './parallel.js';

const port = parentPort!;
const config = workerData as SampleWorkerConfig;
const post = (m: FromSampleWorker) => port.postMessage(m);

type WorkerState = 'idle' | 'measuring' | 'ended' | 'closed';

async function main(): Promise<void> {
  const system = await System.create({
    models: ['o3'],
    program: config.program,
    args: config.args,
    ...(config.argv0 !== undefined ? { argv0: config.argv0 } : {}),
    ...(config.env !== undefined ? { env: config.env } : {}),
    ...(config.guestSeed !== undefined ? { seed: BigInt(config.guestSeed) } : {}),
    ...(config.glibcBaseline !== undefined ? { glibcBaseline: config.glibcBaseline } : {}),
    ...(config.o3Config !== undefined ? { o3Config: config.o3Config } : {}),
    memSize: config.memSize,
    allowRead: config.allowRead,
    hostFreqHz: config.hostFreqHz,
    hostFactor: config.hostFactor,
    capture: true,
    onWarning: () => {},
  });
  const o3 = system.model('o3') as O3Model;
  const warmer = new FastWarmer(o3.cpu, o3.memSystem, o3.bpred);
  const record = new MemoryTimestamps();
  o3.cpu.mem.recordTimestamps(record);
  let state: WorkerState = 'idle';
  // Samples are measured one after another, in the order asked (a queue of promises).
  let queue: Promise<void> = Promise.resolve();

  const measure = async (m: Extract<ToSampleWorker, { kind: 'sample' }>): Promise<WorkerSampleOutcome> => {
    const t0 = performance.now();
    applyMemoryUpdate(system.phys.bytes, m.memory);
    record.applyDelta(m.record);
    await system.takeOver('o3', m.handoff);
    const syncSeconds = (performance.now() - t0) / 1000;
    const stateHash = m.verify ? memoryHash(system.phys.bytes, system.process.aspace.highWater) : undefined;
    const bbv = new Map<Block, number>();
    const unitCode = new Map<number, number>();
    const r = await measureSample(system, o3, warmer, record, config.params, { ...(m.wantBbv ? { bbv } : {}), unitCode }, performance.now());
    if (r.kind === 'ended') return { kind: 'ended', reason: r.outcome.kind };
    const k = keyStatsOf(r.stats);
    return {
      kind: 'measured',
      startRip: r.startRip,
      unitRip: r.unitRip,
      warmInsts: r.warmInsts,
      o3Insts: r.o3Insts,
      cycles: k.cycles,
      insts: k.insts,
      keyStats: k.keyStats,
      bbv: [...bbv].map(([b, n]) => [b.start, b.end, n]),
      unitCode: [...unitCode],
      warmingSeconds: r.warmingSeconds,
      detailedSeconds: r.detailedSeconds,
      syncSeconds,
      ...(stateHash !== undefined ? { stateHash } : {}),
    };
  };

  port.on('message', (m: ToSampleWorker) => {
    if (m.kind === 'close') {
      state = 'closed';
      queue = queue.then(() => system.close()).then(() => port.close());
      return;
    }
    if (state === 'closed') {
      post({ kind: 'notAllowed', request: m.kind, state });
      return;
    }
    queue = queue.then(async () => {
      // Its guest can only have ended before the fast-forward's if they diverged (a read from stdin
      // gets end-of-file here): the samples after it are dropped, not measured on a dead System.
      if (state === 'ended') {
        post({ kind: 'sample', index: m.index, outcome: { kind: 'ended', reason: 'the guest ended in an earlier sample' } });
        return;
      }
      state = 'measuring';
      try {
        const outcome = await measure(m);
        if (outcome.kind === 'ended') state = 'ended';
        else state = 'idle';
        post({ kind: 'sample', index: m.index, outcome });
      } catch (e) {
        post(failure(e));
      }
    });
  });
  post({ kind: 'ready' });
}

main().catch((e: unknown) => post(failure(e)));
