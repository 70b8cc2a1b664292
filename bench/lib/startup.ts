/**
 * Section 3: start-up costs, in-process. benchmark.js micro-benchmarks of VM creation (+ SE
 * kernel + long mode + close) and of the CPUID capture; then KvmCpuClient.start (worker thread
 * start, VM, CPUID capture, program load) to 'ready', timed over a few runs, next to a bare
 * Node worker start for scale.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import Benchmark from 'benchmark';
import { allocatePhysicalMemory, DEFAULT_MEM_SIZE, releasePhysicalMemory } from '../../src/guest/physmem.js';
import { KvmCpuClient } from '../../src/kvm/client.js';
import { captureCpuid } from '../../src/kvm/cpuidProbe.js';
import { KvmVM } from '../../src/kvm/kvmVm.js';
import { CLI, ROOT, workloadPath, type Workload } from './env.js';
import { timedSpawn } from './proc.js';
import { createMachine } from './machine.js';
import type { Table } from './table.js';
import { fmt, int, max, median, min, percentile, progress } from './util.js';

export interface BenchFigure {
  name: string;
  meanMs: number;
  rmePct: number;
  deviationMs: number;
  opsPerSecond: number;
  samples: number;
  /** Calls timed in total (benchmark.js runs several per sample). */
  calls: number;
}

export interface TimedSeries {
  name: string;
  samplesMs: number[];
  p50Ms: number;
  p90Ms: number;
  minMs: number;
  maxMs: number;
}

export interface StartupResult {
  benchmarks: BenchFigure[];
  cpuidLeaves: number;
  clientStart: TimedSeries;
  bareWorkerStart: TimedSeries;
  moduleWorkerStart: TimedSeries;
  nodeProcess: TimedSeries;
  cliProcess: TimedSeries;
  program: string;
}

function microBench(name: string, fn: () => void, maxTime: number): BenchFigure {
  progress(`[startup] benchmark.js: ${name} (~${maxTime} s)`);
  const b = new Benchmark(name, fn, { maxTime, minSamples: 10, initCount: 1 });
  b.run({ async: false });
  if (b.error) throw b.error;
  let calls = 0;
  const cycles = b.stats.sample.length;
  calls = Math.round(b.count * cycles);
  return {
    name,
    meanMs: b.stats.mean * 1000,
    rmePct: b.stats.rme,
    deviationMs: b.stats.deviation * 1000,
    opsPerSecond: b.hz,
    samples: cycles,
    calls,
  };
}

function series(name: string, samplesMs: number[]): TimedSeries {
  return {
    name,
    samplesMs,
    p50Ms: median(samplesMs),
    p90Ms: percentile(samplesMs, 90),
    minMs: min(samplesMs),
    maxMs: max(samplesMs),
  };
}

async function timeClientStart(w: Workload, runs: number, hostFreqHz: number): Promise<number[]> {
  const exe = workloadPath(w.name);
  const envp = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const memory = allocatePhysicalMemory(DEFAULT_MEM_SIZE, 'mmap');
    let client: KvmCpuClient | undefined;
    try {
      const t0 = performance.now();
      client = await KvmCpuClient.start({
        memory: memory.handle,
        program: { path: exe, argv: [exe, ...w.args], envp, allowRead: [], cwd: ROOT, seed: '0' },
        hostFreqHz,
        hostFactor: 1,
        output: 'capture',
        onOutput: () => {},
      });
      out.push(performance.now() - t0);
      await client.finish();
      client = undefined;
    } finally {
      if (client) await client.terminate();
      releasePhysicalMemory(memory);
    }
  }
  return out;
}

/** Module URLs the KVM worker imports from the project (read from its compiled source). */
function workerImports(): string[] {
  const worker = path.join(ROOT, 'dist/src/kvm/worker.js');
  const src = readFileSync(worker, 'utf8');
  const urls = [...src.matchAll(/^import\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gm)].map((m) => pathToFileURL(path.resolve(path.dirname(worker), m[1]!)).href);
  return [...new Set(urls)];
}

const BARE_WORKER = "require('node:worker_threads').parentPort.postMessage('ready')";
/** Imports the KVM worker's modules and loads libc through koffi, as the real worker does, then reports. */
const MODULE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
Promise.all(workerData.urls.map((u) => import(u))).then(async () => {
  (await import(workerData.libc)).libc();
  parentPort.postMessage('ready');
});`;

async function timeWorker(runs: number, code: string, workerData?: unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const worker = new Worker(code, { eval: true, workerData });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    out.push(performance.now() - t0);
    await worker.terminate();
  }
  return out;
}

export async function startupBench(w: Workload, starts: number, hostFreqHz: number): Promise<StartupResult> {
  const benchmarks: BenchFigure[] = [];
  benchmarks.push(
    microBench(
      'VM create + SE kernel + setupLongMode + close',
      () => createMachine().close(),
      3,
    ),
  );
  benchmarks.push(
    microBench(
      'VM + vCPU create + close only',
      () => {
        const phys = allocatePhysicalMemory(DEFAULT_MEM_SIZE, 'mmap');
        try {
          new KvmVM(phys).close();
        } finally {
          releasePhysicalMemory(phys);
        }
      },
      2,
    ),
  );
  const m = createMachine();
  let cpuidLeaves = 0;
  try {
    cpuidLeaves = captureCpuid(m.vm, m.aspace).length;
    benchmarks.push(microBench(`captureCpuid (${cpuidLeaves} entries)`, () => void captureCpuid(m.vm, m.aspace), 2));
  } finally {
    m.close();
  }
  progress(`[startup] KvmCpuClient.start to ready, ${starts} runs (program ${w.name})`);
  const clientStart = series('KvmCpuClient.start -> ready', await timeClientStart(w, starts, hostFreqHz));
  progress(`[startup] bare Node worker and module-loading worker, ${starts} runs each`);
  const bareWorkerStart = series('bare Node worker -> first message', await timeWorker(starts, BARE_WORKER));
  const libcUrl = pathToFileURL(path.join(ROOT, 'dist/src/native/libc.js')).href;
  const moduleWorkerStart = series(
    "worker importing the KVM worker's modules + koffi libc",
    await timeWorker(starts, MODULE_WORKER, { urls: workerImports(), libc: libcUrl }),
  );
  progress(`[startup] node -e 0 and switchsim --version processes, ${starts} runs each`);
  const spawnSeries = (name: string, args: string[]) =>
    series(name, Array.from({ length: starts }, () => timedSpawn(process.execPath, args, process.env).wallSeconds * 1000));
  const nodeProcess = spawnSeries('process: node -e 0', ['-e', '0']);
  const cliProcess = spawnSeries('process: node dist/src/cli.js --version', [CLI, '--version']);
  return {
    benchmarks,
    cpuidLeaves,
    clientStart,
    bareWorkerStart,
    moduleWorkerStart,
    nodeProcess,
    cliProcess,
    program: `${w.name} ${w.args.join(' ')}`.trim(),
  };
}

export function startupTables(r: StartupResult): Table[] {
  const micro: Table = {
    title: 'VM creation micro-benchmarks (benchmark.js, in-process)',
    headers: ['operation', 'mean ms', '± rme', 'ops/s', 'samples', 'calls'],
    rows: r.benchmarks.map((b) => [b.name, fmt(b.meanMs, 3), `${fmt(b.rmePct, 2)}%`, fmt(b.opsPerSecond, 1), int(b.samples), int(b.calls)]),
    notes: [
      'VM create + SE kernel + setupLongMode + close: fresh 2 GiB sparse mmap guest memory, KvmVM (open /dev/kvm, KVM_CREATE_VM, memory slot, KVM_CREATE_VCPU, kvm_run mmap), AddressSpace + installSeKernel (GDT/IDT/TSS/stubs, page tables), setupLongMode (CPUID2, sregs, XCR0, MSRs, sync regs), close, munmap — what the KVM worker does before the CPUID capture and the ELF load.',
      'captureCpuid: one cpuid at CPL3 per leaf/subleaf, each a doorbell exit (KVM_RUN round trip), on an already set-up VM.',
      '± rme: benchmark.js relative margin of error (95% confidence) of the mean.',
    ],
  };
  const row = (s: TimedSeries) => [s.name, fmt(s.p50Ms, 1), fmt(s.p90Ms, 1), fmt(s.minMs, 1), fmt(s.maxMs, 1), int(s.samplesMs.length)];
  const start: Table = {
    title: `Whole KVM CPU start-up to ready (program: ${r.program})`,
    headers: ['measurement', 'p50 ms', 'p90 ms', 'min ms', 'max ms', 'runs'],
    rows: [row(r.clientStart), row(r.moduleWorkerStart), row(r.bareWorkerStart), row(r.nodeProcess), row(r.cliProcess)],
    notes: [
      'KvmCpuClient.start -> ready: new Worker (fresh isolate, loads the worker\'s module graph), VM + SE kernel + long mode, CPUID capture, ELF load + stack setup, ready message. Excludes guest memory mmap and the run; each run ends with finish().',
      'worker importing ...: a worker that only imports the modules worker.js imports and loads libc through koffi: start-up without any KVM work. bare Node worker: posts one message, nothing imported.',
      'process rows: whole-process spawn-to-exit times, for the fixed cost of a `switchsim run` (KVM fixed column of the first table): Node itself, and Node + the CLI\'s module graph.',
    ],
  };
  return [micro, start];
}
