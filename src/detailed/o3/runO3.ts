/**
 * `switchsim run --cpu o3`: the whole program on the detailed CPU. The functional core executes
 * (and serves syscalls); the O3 pipeline, branch predictor and memory hierarchy model time.
 */
import { ConfigError } from '../../errors.js';
import type { PreparedRun, RunEnd, RunOptions } from '../../run.js';
import type { Stat } from '../../stats.js';
import { AtomicCPU } from '../atomicCpu.js';
import { loadForJsCpu, M5OpLog, type AtomicRun } from '../runAtomic.js';
import { BranchPredictorUnit } from './bpred/branchUnit.js';
import { loadO3Config, o3Config, type O3Config } from './config.js';
import { MemSystem } from './mem/hierarchy.js';
import { O3Cpu } from './o3Cpu.js';
import { FunctionalStream } from './trace.js';
import { tracingMemory, type TracingMemory } from './tracingMemory.js';

export interface O3Stats {
  model: 'o3';
  instructions: number;
  ops: number;
  cycles: number;
  hostSeconds: number;
  freqHz: number;
  syscalls: number;
}

/** Instructions per slice between checks of the wall clock. */
const SLICE = 200_000;

export function buildO3(config: O3Config, stream: FunctionalStream): O3Cpu {
  return buildO3Parts(config, stream).o3;
}

/** The o3 CPU with its memory system and branch predictor (functional warming trains those two). */
export function buildO3Parts(config: O3Config, stream: FunctionalStream): { o3: O3Cpu; mem: MemSystem; bpred: BranchPredictorUnit } {
  try {
    const mem = new MemSystem(config.mem);
    const bpred = new BranchPredictorUnit(config.bpred);
    return { o3: new O3Cpu(config.cpu, stream, mem, bpred), mem, bpred };
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError('--config', (e as Error).message);
  }
}

export interface O3Run extends Omit<AtomicRun, 'stats'> {
  /** The whole run (from the start, whatever reset_stats did). */
  stats: O3Stats;
}

export async function runO3Program(prep: PreparedRun, opts: RunOptions): Promise<O3Run> {
  const config = opts.o3Config ? loadO3Config(opts.o3Config) : o3Config({});
  const { guest, context, cpuid, xcr0, stdout, stderr, warn } = loadForJsCpu(prep, opts);
  let tracing: TracingMemory | undefined;
  const cpu = new AtomicCPU({
    aspace: guest.aspace,
    process: guest,
    cpuid,
    freqHz: prep.freqHz,
    warn,
    memory: (a) => (tracing = tracingMemory(a)),
    ...(xcr0 != null ? { xcr0 } : {}),
  });
  cpu.setThreadContext(context);
  const stream = new FunctionalStream(cpu, tracing!);
  const o3 = buildO3(config, stream);
  const start = performance.now();
  const deadline = opts.maxSeconds && opts.maxSeconds > 0 ? start + opts.maxSeconds * 1000 : Infinity;
  let insts = 0;
  let ops = 0;
  // reset_stats: the driver's totals count from here on too (o3.resetStats() resets the model's).
  let base = { insts: 0, ops: 0, cycle: 0, time: start };
  const statList = (now = performance.now()): Stat[] => {
    const n = insts - base.insts;
    const secs = (now - base.time) / 1000;
    return [
      { name: 'simInsts', value: n, desc: 'Instructions committed', unit: 'Count' },
      { name: 'simOps', value: ops - base.ops, desc: 'Micro-ops committed', unit: 'Count' },
      { name: 'simSeconds', value: (o3.cycle - base.cycle) / prep.freqHz, desc: 'Guest seconds: cycles at the guest clock', unit: 's' },
      { name: 'hostSeconds', value: secs, desc: 'Host seconds spent simulating', unit: 's' },
      { name: 'hostInstRate', value: secs > 0 ? Math.round(n / secs) : 0, desc: 'Simulator instruction rate', unit: 'Count/s' },
      ...o3.stats(),
    ];
  };
  const m5 = new M5OpLog({
    resetStats: () => {
      base = { insts, ops, cycle: o3.cycle, time: performance.now() };
      o3.resetStats();
    },
    statList: () => statList(),
  });
  let end: RunEnd | undefined;
  try {
    while (!end) {
      const r = o3.run(SLICE);
      insts += r.insts;
      ops += r.ops;
      const out = stream.outcome;
      if (o3.drainedAtPause) {
        // An m5op: everything up to and including it has committed; act on it, fetch on.
        const call = stream.takeM5op();
        if (call) m5.handle(call, insts);
        if (performance.now() >= deadline) end = { kind: 'timeLimit', seconds: opts.maxSeconds ?? 0 };
      } else if (out && o3.done) {
        if (out.kind === 'exited') end = { kind: 'exited', status: out.status };
        else if (out.kind === 'faulted') end = { kind: 'faulted', report: out.report };
      } else if (r.insts === 0 && o3.done) {
        end = { kind: 'exited', status: cpu.exitCode ?? 0 };
      } else if (performance.now() >= deadline) {
        end = { kind: 'timeLimit', seconds: opts.maxSeconds ?? 0 };
      }
    }
  } finally {
    guest.close();
  }
  const finish = performance.now();
  const wallSeconds = (finish - start) / 1000;
  const stats: O3Stats = { model: 'o3', instructions: insts, ops, cycles: o3.cycle, hostSeconds: wallSeconds, freqHz: prep.freqHz, syscalls: cpu.syscalls };
  return {
    end: end!,
    stats,
    statList: statList(finish),
    m5events: m5.events,
    dumps: m5.dumps,
    stdout: Buffer.concat(stdout),
    stderr: Buffer.concat(stderr),
    cpuid,
    wallSeconds,
  };
}
