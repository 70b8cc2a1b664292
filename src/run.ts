/**
 * Runs one program to completion on a CPU model: the shared driver behind `switchsim run` and
 * the tests. Handles time quanta, the --max-seconds limit, and stats output.
 */
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from './errors.js';
import { allocatePhysicalMemory, DEFAULT_MEM_SIZE, releasePhysicalMemory } from './guest/physmem.js';
import { isGlibcProgram, parseElf } from './guest/elf.js';
import { KvmCpuClient } from './kvm/client.js';
import { StopRequest } from './kvm/control.js';
import type { GuestFaultReport } from './guest/faults.js';
import type { CpuidEntry } from './kvm/cpuid.js';
import { detectHostFrequency } from './kvm/hostFreq.js';
import { kvmStatsList, type KvmStats } from './kvm/stats.js';
import { writeStats, writeStatsDumps, type Stat } from './stats.js';
import type { AtomicStats } from './detailed/runAtomic.js';
import type { O3Stats } from './detailed/o3/runO3.js';

/** glibc's documented tunable that masks CPU features from its ifunc dispatch (KVM-NOTES.md). */
export const GLIBC_BASELINE_TUNABLES =
  'glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX2,-AVX,-FMA,-FMA4,-BMI1,-BMI2,-LZCNT,-MOVBE,-ERMS,-FSRM,-AVX_Fast_Unaligned_Load,-Prefer_No_VZEROUPPER';

export type CpuModelName = 'kvm' | 'atomic' | 'o3';
export const CPU_MODELS: readonly CpuModelName[] = ['kvm', 'atomic', 'o3'];

export interface RunOptions {
  cpu: CpuModelName;
  program: string;
  args: string[];
  /** The guest's argv[0] and AT_EXECFN (default: `program` as given): fixing it makes runs independent of where the checkout is. */
  argv0?: string;
  /** The guest's environment (default: the host's). */
  env?: string[];
  allowRead?: string[];
  memSize?: number;
  hostFreqHz?: number;
  hostFactor?: number;
  maxSeconds?: number;
  /** Kick the vCPU out of KVM_RUN every this many ms (time quanta; KVM only). */
  quantumMs?: number;
  seed?: bigint;
  /** Steer glibc programs to baseline code paths (default true). */
  glibcBaseline?: boolean;
  statsDir?: string;
  /** Capture guest stdout/stderr instead of passing them through. */
  capture?: boolean;
  /** Atomic CPU: answer CPUID with this table (default: captured from KVM where available, else baseline). */
  cpuid?: readonly CpuidEntry[];
  /** o3: a JSON configuration file (sections cpu, bpred, mem); default: the built-in defaults. */
  o3Config?: string;
  /** With `cpuid`: the XCR0 that xgetbv returns (default: x87|SSE|AVX when OSXSAVE is advertised). */
  xcr0?: bigint;
  onWarning?: (message: string) => void;
  onInfo?: (message: string) => void;
  /** atomic: whole executions of a block before it is fused (AtomicOptions.fuseAfter; benchmarks). */
  fuseAfter?: number;
  /** atomic: keep a memory timestamp record as sampling's fast-forward does (benchmarks: its cost). */
  recordTimestamps?: boolean;
}

export type RunEnd =
  | { kind: 'exited'; status: number }
  | { kind: 'faulted'; report: GuestFaultReport }
  | { kind: 'timeLimit'; seconds: number };

export interface RunResult {
  end: RunEnd;
  /** Exit code a shell would see: the guest's, 128+signal on a fault, 124 at the time limit. */
  exitCode: number;
  stats: KvmStats | AtomicStats | O3Stats;
  statList: Stat[];
  stdout: Buffer;
  stderr: Buffer;
  cpuid: readonly CpuidEntry[];
  wallSeconds: number;
  glibcBaseline: boolean;
}

export const TIME_LIMIT_EXIT_CODE = 124;

/** What every CPU model needs before it starts: the validated program and its environment. */
export interface PreparedRun {
  exePath: string;
  exeBytes: Uint8Array;
  argv: string[];
  /** AT_EXECFN when it must differ from the program path. */
  execFn?: string;
  env: string[];
  allowRead: string[];
  memSize: number;
  freqHz: number;
  glibcBaseline: boolean;
}

export function prepareRun(opts: RunOptions): PreparedRun {
  if (!CPU_MODELS.includes(opts.cpu)) {
    throw new ConfigError('--cpu', `unknown CPU model '${String(opts.cpu)}' (available: ${CPU_MODELS.join(', ')})`);
  }
  let exeBytes: Uint8Array;
  let exePath: string;
  try {
    exePath = realpathSync(opts.program);
    exeBytes = readFileSync(exePath);
  } catch (e) {
    throw new ConfigError('program', `cannot read '${opts.program}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const memSize = opts.memSize ?? DEFAULT_MEM_SIZE;
  // Validate here so a bad ELF is a typed error naming its field before any VM exists.
  parseElf(exeBytes, { memSize });
  const glibcBaseline = isGlibcProgram(exeBytes) && opts.glibcBaseline !== false;
  let env = opts.env ?? Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
  if (glibcBaseline) {
    env = env.filter((e) => !e.startsWith('GLIBC_TUNABLES='));
    env.push(`GLIBC_TUNABLES=${GLIBC_BASELINE_TUNABLES}`);
    opts.onInfo?.('glibc program: steering it to baseline code paths (GLIBC_TUNABLES glibc.cpu.hwcaps); --no-glibc-baseline to disable');
  }
  return {
    exePath,
    exeBytes,
    argv: [opts.argv0 ?? opts.program, ...opts.args],
    ...(opts.argv0 !== undefined ? { execFn: opts.argv0 } : {}),
    env,
    allowRead: (opts.allowRead ?? []).map((d) => path.resolve(d)),
    memSize,
    freqHz: opts.hostFreqHz ?? detectHostFrequency().hz,
    glibcBaseline,
  };
}

export function exitCodeOf(end: RunEnd): number {
  return end.kind === 'exited' ? end.status & 0xff : end.kind === 'faulted' ? 128 + end.report.signalNumber : TIME_LIMIT_EXIT_CODE;
}

export async function runProgram(opts: RunOptions): Promise<RunResult> {
  const prep = prepareRun(opts);
  if (opts.cpu === 'atomic') {
    // Loaded on demand: the functional core (iced-x86's wasm) costs ~0.2 s to import.
    const { runAtomicProgram } = await import('./detailed/runAtomic.js');
    const r = await runAtomicProgram(prep, opts);
    if (opts.statsDir) writeStatsDumps(opts.statsDir, [...r.dumps, r.statList]);
    return { ...r, exitCode: exitCodeOf(r.end), glibcBaseline: prep.glibcBaseline };
  }
  if (opts.cpu === 'o3') {
    const { runO3Program } = await import('./detailed/o3/runO3.js');
    const r = await runO3Program(prep, opts);
    if (opts.statsDir) writeStatsDumps(opts.statsDir, [...r.dumps, r.statList]);
    return { ...r, exitCode: exitCodeOf(r.end), glibcBaseline: prep.glibcBaseline };
  }
  return runKvm(prep, opts);
}

async function runKvm(prep: PreparedRun, opts: RunOptions): Promise<RunResult> {
  const memory = allocatePhysicalMemory(prep.memSize, 'mmap');
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const start = performance.now();
  let client: KvmCpuClient | undefined;
  let quantum: NodeJS.Timeout | undefined;
  let limit: NodeJS.Timeout | undefined;
  try {
    client = await KvmCpuClient.start({
      memory: memory.handle,
      program: {
        path: prep.exePath,
        argv: prep.argv,
        envp: prep.env,
        allowRead: prep.allowRead,
        cwd: process.cwd(),
        seed: String(opts.seed ?? 0n),
      },
      hostFreqHz: prep.freqHz,
      hostFactor: opts.hostFactor ?? 1,
      output: opts.capture ? 'capture' : 'passthrough',
      ...(opts.capture ? { onOutput: (fd: 1 | 2, d: Uint8Array) => (fd === 1 ? stdout : stderr).push(Buffer.from(d)) } : {}),
      ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
    });
    const c = client;
    if (opts.quantumMs && opts.quantumMs > 0) {
      quantum = setInterval(() => {
        if (c.isRunning) c.kick(StopRequest.Pause);
      }, opts.quantumMs);
    }
    let timedOut = false;
    if (opts.maxSeconds && opts.maxSeconds > 0) {
      limit = setTimeout(() => {
        timedOut = true;
        c.kick(StopRequest.TimeLimit);
      }, opts.maxSeconds * 1000);
    }
    let end: RunEnd | undefined;
    while (!end) {
      const outcome = await c.run();
      if (outcome.kind === 'exited') end = { kind: 'exited', status: outcome.status };
      else if (outcome.kind === 'faulted') end = { kind: 'faulted', report: outcome.report };
      else if (outcome.kind === 'stopped' || timedOut) end = { kind: 'timeLimit', seconds: opts.maxSeconds ?? 0 };
      // 'paused': a quantum ended; go on.
    }
    clearInterval(quantum);
    clearTimeout(limit);
    const stats = await c.finish();
    client = undefined;
    const statList = kvmStatsList(stats);
    if (opts.statsDir) writeStats(opts.statsDir, statList);
    return {
      end,
      exitCode: exitCodeOf(end),
      stats,
      statList,
      stdout: Buffer.concat(stdout),
      stderr: Buffer.concat(stderr),
      cpuid: c.cpuid,
      wallSeconds: (performance.now() - start) / 1000,
      glibcBaseline: prep.glibcBaseline,
    };
  } finally {
    clearInterval(quantum);
    clearTimeout(limit);
    if (client) await client.terminate();
    releasePhysicalMemory(memory);
  }
}
