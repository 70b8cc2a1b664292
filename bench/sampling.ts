/**
 * `npm run bench:sampling` (issue 6): validates `switchsim sample` (src/sample/sampler.ts,
 * runSampling — the code path of the CLI) against full o3 runs.
 *
 * 1. Validation. For each long-enough workload (phases at its manifest args; qsort and ptrchase
 *    sized to ~60–100 M instructions), side by side in this process:
 *      - the full o3 run (src/sample/validate.ts runFullO3): IPC = committed instructions /
 *        cycles over the whole run, and its wall time;
 *      - a sampled run with KVM fast-forward, one SMARTS setting for every workload (functional
 *        warming F — each mode's default: adaptive up to 4M on KVM, 200k after a rebuild from the
 *        memory timestamp record on atomic —, detailed warm-up W, measured unit U), sampling over the whole program (no
 *        early stop: the interval sets the count). The interval aims at ~TARGET samples: with
 *        instruction strata (atomic, KVM host-rate) it is instructions / TARGET; KVM's seconds
 *        strata (--no-host-rate) hold fast-forward only: a KVM-only run of the program
 *        (runSampling with 0 samples; its wall time is counted in the sampled wall time) gives
 *        the KVM rate, and interval = (instructions / TARGET − (warming floor 400k + W + U)) / KVM
 *        rate, at least 1 ms (KVM cannot stop much sooner).
 *    Reported: full IPC, sampled IPC ± CI (99.7%), error, samples, wall-time speedup (full o3
 *    wall / sampled wall), error ≤ 3% (goal 2%), speedup ≥ 20×. Side by side, each sampled run
 *    is timed twice, right before and right after the full o3 run, and the speed-up uses the mean.
 *    Runs with atomic fast-forward (exact counts, the same sample count; `switchsim sample`'s
 *    default), parallel (the default on 2+ CPUs) and serial (--no-parallel: the same samples,
 *    one thread), separate warming and sampling error from KVM's instruction estimates.
 *
 *    Estimators. KVM has no PMU here, so its intervals are host time: samples fall uniformly
 *    in host time, and the mean of the per-sample IPCs (summary.ipc, what `switchsim sample`
 *    prints) estimates instructions / cycles if o3 cycles are proportional to host time
 *    (constant host factor). With exact instruction intervals (atomic) samples fall uniformly
 *    in instructions, and the consistent estimator is U / mean cycles per unit = 1 / mean CPI
 *    (interval [1 / CPI high, 1 / CPI low]); the mean of IPCs is then biased upward by about
 *    CV². Both are shown in the detail table; "sampled IPC" is each mode's summary.ipc: KVM
 *    host-rate and atomic stratify by phase (atomic with exact instruction counts per phase).
 *
 * 2. Coverage. On one workload the sampled run (SAMPLING_COVERAGE_FF, default kvm-rate) is repeated with SEEDS sampling seeds:
 *    the fraction of runs whose interval contains the full-run IPC, at 99.7% and, recomputed
 *    from the same samples, at 95%.
 *
 * Writes bench/results/sampling.json (rows, atomic rows, coverage) and sampling.md.
 *
 * Environment (all optional):
 *   SAMPLING_SIZES=full|small            workload sizes (default full: ~15 min on 2 cores)
 *   SAMPLING_WORKLOADS=phases,qsort      subset (matmul_int 200 is available but not default:
 *                                        at ~6 G instructions/s on KVM it runs 9 ms, too short
 *                                        for 30 samples at a 1 ms minimum interval)
 *   SAMPLING_TARGET_SAMPLES=100          samples aimed at per program (interval from it)
 *   SAMPLING_F=4M SAMPLING_B=200k SAMPLING_W=20k SAMPLING_U=20k   per-sample functional warming
 *                                        of which the last B train the predictor / detailed
 *                                        warm-up / unit (F, W default: the warming mode's own)
 *   SAMPLING_HOST_RATE=1                 the KVM host-rate rows (KVM's default mode; 0: skip)
 *   SAMPLING_ATOMIC=1                    the atomic fast-forward rows (exact counts; 0: skip)
 *   SAMPLING_SEEDS=20                    coverage repeats (0: skip the coverage study)
 *   SAMPLING_COVERAGE_WORKLOAD=qsort     the coverage workload (one of the validation rows)
 *   SAMPLING_FULL_CACHE=file.json        development only: reuse full o3 runs from this file
 *                                        (rows say so; speedups are then not side by side)
 *   SAMPLING_OUT=bench/results/sampling  output path prefix (.json, .md)
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_DETAILED_WARM, DEFAULT_FUNCTIONAL_WARM, DEFAULT_RECORD_DETAILED_WARM, DEFAULT_RECORD_WARM, ipcEstimate, MIN_ADAPTIVE_WARM, runSampling, type SampleRunResult } from '../src/sample/sampler.js';
import { estimate, type VarianceMethod } from '../src/sample/stats.js';
import { runFullO3, type FullO3Run } from '../src/sample/validate.js';
import { runProgram } from '../src/run.js';
import type { Estimate, PhaseRecord, SampleRecord } from '../src/sample/types.js';
import { checkBuilt, checkKvm, loadWorkloads, RESULTS_DIR, ROOT, workloadPath } from './lib/env.js';
import { renderMarkdown, renderText, type Table } from './lib/table.js';
import { progress } from './lib/util.js';
import { writeFileAtomic } from '../src/util/atomicWrite.js';

// ------------------------------------------------------------------------------ settings

function envNum(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const m = /^([0-9.]+)\s*([kKmMgG]?)$/.exec(v.trim());
  if (!m) throw new Error(`${name}: not a number: ${v}`);
  const mult = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9 }[m[2]!]!;
  return Number(m[1]) * mult;
}

const SIZES = (process.env.SAMPLING_SIZES ?? 'full') as 'full' | 'small';
if (SIZES !== 'full' && SIZES !== 'small') throw new Error(`SAMPLING_SIZES must be full or small (got ${String(SIZES)})`);
const TARGET_SAMPLES = envNum('SAMPLING_TARGET_SAMPLES', 100);
/** Functional warming per sample; undefined: each warming mode's default (sampler.ts). */
const F: number | undefined = process.env.SAMPLING_F ? envNum('SAMPLING_F', 0) : undefined;
/** What F means for a fast-forward model: its warming mode's default unless SAMPLING_F is set. */
function warmingOf(ff: FastForward): number {
  return F ?? (isAtomic(ff) ? DEFAULT_RECORD_WARM : DEFAULT_FUNCTIONAL_WARM);
}
const B = envNum('SAMPLING_B', 200_000);
/** Detailed warm-up per sample; undefined: each warming mode's default (sampler.ts). */
const W: number | undefined = process.env.SAMPLING_W ? envNum('SAMPLING_W', 0) : undefined;
/** What W means for a fast-forward model: its warming mode's default unless SAMPLING_W is set. */
function detailedWarmOf(ff: FastForward): number {
  return W ?? (isAtomic(ff) ? DEFAULT_RECORD_DETAILED_WARM : DEFAULT_DETAILED_WARM);
}
const U = envNum('SAMPLING_U', 20_000);
const SEEDS = envNum('SAMPLING_SEEDS', 20);
const ATOMIC = (process.env.SAMPLING_ATOMIC ?? '1') !== '0';
const HOST_RATE = (process.env.SAMPLING_HOST_RATE ?? '1') !== '0';
/** The mode of the coverage study. */
const COVERAGE_FF = (process.env.SAMPLING_COVERAGE_FF ?? 'kvm-rate') as 'kvm' | 'atomic' | 'kvm-rate';
const CONFIDENCE = 0.997;
const LOW_CONFIDENCE = 0.95;
/** A third level, where a conservative interval shows (about ±1 standard error). */
const LOWEST_CONFIDENCE = 0.68;
const ERROR_LIMIT = 0.03;
const ERROR_GOAL = 0.02;
const SPEEDUP_GOAL = 20;
/** No early stop: sample until the program ends (the interval sets the count). */
const MAX_SAMPLES = 100_000;
const VALIDATION_SEED = '1';
/** The smallest KVM interval asked for: KVM cannot stop much sooner than ~1 ms. */
const MIN_INTERVAL_SECONDS = 0.001;

/** kvm-rate: KVM with --host-rate (phase profile, host-rate probes, stratified estimate). */
/** 'atomic': the default with atomic fast-forward (parallel sampling where there are 2+ CPUs); 'atomic-serial': --no-parallel. */
type FastForward = 'kvm' | 'atomic' | 'atomic-serial' | 'kvm-rate';
const isAtomic = (ff: FastForward): boolean => ff === 'atomic' || ff === 'atomic-serial';
type EstimatorName = 'sampler' | 'samplerIid' | 'meanIpc' | 'ratio';

interface Spec {
  name: string;
  args: string[];
}

function manifestArgs(name: string): string[] {
  const w = loadWorkloads().find((x) => x.name === name);
  if (!w) throw new Error(`workload ${name} is not in workloads/workloads.json`);
  return w.args;
}

/** Full: phases at its manifest args (~280 M instructions), qsort ~105 M, ptrchase ~60 M. */
function specs(): Spec[] {
  const all: Spec[] =
    SIZES === 'full'
      ? [
          { name: 'phases', args: manifestArgs('phases') },
          { name: 'qsort', args: ['1500000'] }, // 333 M; ~0.2 s on KVM
          { name: 'ptrchase', args: ['8M', '16000000'] }, // 186 M, 8 MiB working set (L2 1 MiB); ~0.7 s on KVM
          { name: 'matmul_int', args: ['200'] }, // ~57 M but ~9 ms on KVM: only on request
        ]
      : [
          { name: 'phases', args: ['2', '8M', '32K'] },
          { name: 'qsort', args: ['100000'] },
          { name: 'ptrchase', args: ['2M', '500000'] },
          { name: 'matmul_int', args: ['120'] },
        ];
  const only = process.env.SAMPLING_WORKLOADS?.split(',').map((s) => s.trim()).filter(Boolean);
  return only?.length ? all.filter((s) => only.includes(s.name)) : all.filter((s) => s.name !== 'matmul_int');
}

// ------------------------------------------------------------------------------ types

interface IpcInterval {
  ipc: number;
  low: number;
  high: number;
  /** (high − low) / 2. */
  halfWidth: number;
}

interface Row {
  workload: string;
  args: string[];
  fastForward: FastForward;
  /** Which estimator `sampledIpc` is (the one consistent with where the samples fall). */
  estimator: EstimatorName;
  fullInsts: number;
  fullCycles: number;
  fullIpc: number;
  fullWallSeconds: number;
  fullCached: boolean;
  /** The strata: KVM fast-forward seconds, or instructions (the samples' own included). */
  interval: { seconds: number } | { insts: number };
  /** KVM: KVM_RUN seconds of the whole program alone (the calibration run). */
  kvmRunSeconds: number | null;
  calibrationWallSeconds: number;
  samples: number;
  sampledIpc: number;
  ipcLow: number;
  ipcHigh: number;
  ipcHalfWidth: number;
  /** Signed relative error of sampledIpc vs the full run. */
  error: number;
  ciContainsFull: boolean;
  /** Mean of per-sample IPCs (summary.ipc, what `switchsim sample` prints) and its interval. */
  meanIpc: number;
  meanIpcHalfWidth: number;
  meanIpcError: number;
  /** U / mean cycles per unit = 1 / mean CPI, interval from the CPI interval. */
  ratioIpc: number;
  ratioIpcLow: number;
  ratioIpcHigh: number;
  ratioIpcError: number;
  cvIpc: number;
  cvCpi: number;
  /** Samples the tool says a 3% interval at 99.7% needs at this CV (summary.samplesNeeded). */
  samplesNeeded: number;
  /** The mean of sampledWallRuns: calibration + sampled run, before and after the full o3 run (one run when the full run is cached). */
  sampledWallSeconds: number;
  sampledWallRuns: number[];
  samplingWallSeconds: number;
  hostSeconds: { kvm: number; warming: number; detailed: number; other: number; total: number };
  speedup: number;
  errorOk: boolean;
  errorGoal: boolean;
  speedupOk: boolean;
  outputMatches: boolean;
  exit: string;
  fullExit: string;
  keyStats: Record<string, number>;
  /** Host-rate rows: the estimate's strata (summary.phases: KVM seconds, rate, instructions, CPI). */
  phases?: PhaseRecord[];
}

interface CoverageRun {
  seed: string;
  samples: number;
  ipc: number;
  in997: boolean;
  in95: boolean;
  in68: boolean;
  halfWidth997: number;
  halfWidth95: number;
  halfWidth68: number;
  error: number;
  /** The other estimator. */
  otherIpc: number;
  otherIn997: boolean;
  otherIn95: boolean;
  otherIn68: boolean;
  otherError: number;
  wallSeconds: number;
}

// ------------------------------------------------------------------------------ helpers

function ipcFromCpi(cpi: Estimate): IpcInterval {
  const ipc = 1 / cpi.mean;
  const low = cpi.high > 0 && Number.isFinite(cpi.high) ? 1 / cpi.high : 0;
  const high = cpi.low > 0 && Number.isFinite(cpi.low) ? 1 / cpi.low : Infinity;
  return { ipc, low, high, halfWidth: (high - low) / 2 };
}

function ipcFromMean(ipc: Estimate): IpcInterval {
  return { ipc: ipc.mean, low: ipc.low, high: ipc.high, halfWidth: ipc.halfWidth };
}

/** The estimators of a set of samples at a confidence. */
function estimators(samples: readonly SampleRecord[], confidence: number, instructionUniform: boolean, phases?: readonly PhaseRecord[]): Record<EstimatorName, IpcInterval> {
  const mine = (m: VarianceMethod): IpcInterval => {
    const e = ipcEstimate(samples, confidence, instructionUniform, m, phases);
    return { ipc: e.mean, low: e.low, high: e.high, halfWidth: e.halfWidth };
  };
  return {
    sampler: mine('successive'),
    samplerIid: mine('iid'),
    meanIpc: ipcFromMean(estimate(samples.map((x) => x.ipc), confidence)),
    ratio: ipcFromCpi(estimate(samples.map((x) => x.cpi), confidence)),
  };
}

const estimatorOf = (_ff: FastForward): EstimatorName => 'sampler';
const ESTIMATOR_LABEL: Record<EstimatorName, string> = {
  sampler: "the sampler's estimate, successive-difference interval",
  samplerIid: 'the same estimate, iid interval',
  meanIpc: 'unweighted mean of per-sample IPCs',
  ratio: 'unweighted 1 / mean CPI',
};

function exitText(x: { kind: string; status?: number }): string {
  return x.kind === 'exited' ? `exit ${x.status ?? '?'}` : x.kind;
}

type FullCache = Record<string, FullO3Run>;

function loadCache(file: string | undefined): FullCache {
  if (!file || !existsSync(file)) return {};
  return JSON.parse(readFileSync(file, 'utf8')) as FullCache;
}

async function fullRun(spec: Spec, cache: FullCache, cacheFile: string | undefined): Promise<{ full: FullO3Run; cached: boolean }> {
  const key = `${spec.name} ${spec.args.join(' ')}`;
  const hit = cache[key];
  if (cacheFile && hit) {
    progress(`[sampling] ${key}: full o3 run from ${cacheFile} (cached: not side by side)`);
    return { full: hit, cached: true };
  }
  progress(`[sampling] ${key}: full o3 run…`);
  const full = await runFullO3({ program: workloadPath(spec.name), args: spec.args, env: [], capture: true });
  progress(`[sampling] ${key}: full o3 IPC ${full.ipc.toFixed(4)}, ${full.insts} instructions, ${full.wallSeconds.toFixed(1)} s (${(full.insts / full.wallSeconds / 1e6).toFixed(2)} MIPS)`);
  if (cacheFile) {
    cache[key] = full;
    writeFileAtomic(cacheFile, JSON.stringify(cache, null, 2));
  }
  return { full, cached: false };
}

function sampleOnce(spec: Spec, ff: FastForward, interval: { seconds: number } | { insts: number }, seed: string, samples: number): Promise<SampleRunResult> {
  return runSampling({
    program: workloadPath(spec.name),
    args: spec.args,
    env: [],
    capture: true,
    interval,
    ...(F !== undefined ? { functionalWarmInsts: F } : {}),
    branchWarmInsts: B,
    ...(W !== undefined ? { detailedWarmInsts: W } : {}),
    measureInsts: U,
    samples,
    targetError: ERROR_LIMIT,
    confidence: CONFIDENCE,
    seed,
    fastForward: isAtomic(ff) ? 'atomic' : 'kvm',
    hostRate: ff === 'kvm-rate',
    ...(ff === 'atomic-serial' ? { parallel: false } : {}),
    onWarning: (m) => progress(`[sampling] guest warning: ${m}`),
  });
}

/**
 * Instructions of fast-forward per sample for about TARGET_SAMPLES samples. Each sample also runs
 * its warming + W + U on the JS models; warming is adaptive (F is only its maximum), so this counts
 * its floor: a program whose warming runs longer gets somewhat fewer samples, never back-to-back ones.
 */
function forwardInstsPerSample(insts: number): number {
  return insts / TARGET_SAMPLES - (Math.min(warmingOf('kvm'), MIN_ADAPTIVE_WARM) + detailedWarmOf('kvm') + U);
}

/**
 * The KVM interval: a run with 0 samples (the whole program on KVM) gives the KVM rate; the
 * fast-forward per sample at that rate, at least 1 ms.
 */
async function calibrateKvm(spec: Spec, insts: number): Promise<{ seconds: number; kvmRunSeconds: number; wallSeconds: number; stdout: string }> {
  const t0 = performance.now();
  const r = await sampleOnce(spec, 'kvm', { seconds: 1 }, 'calibration', 0);
  const wallSeconds = (performance.now() - t0) / 1000;
  const kvmRunSeconds = r.result.summary.wholeProgram.kvmHostCycles / r.result.config.hostFreqHz;
  const want = forwardInstsPerSample(insts) / (insts / kvmRunSeconds);
  if (want < MIN_INTERVAL_SECONDS) {
    progress(`[sampling] ${spec.name}: ${TARGET_SAMPLES} samples would need a ${(want * 1e3).toFixed(2)} ms interval; using ${MIN_INTERVAL_SECONDS * 1e3} ms (fewer samples)`);
  }
  return { seconds: Math.max(MIN_INTERVAL_SECONDS, want), kvmRunSeconds, wallSeconds, stdout: r.stdout.toString('latin1') };
}

/** The validation interval of a mode: ~TARGET_SAMPLES samples (KVM: host time from a KVM-only run). */
async function validationInterval(spec: Spec, ff: FastForward, insts: number): Promise<{
  interval: { seconds: number } | { insts: number };
  kvmRunSeconds: number | null;
  calibrationWall: number;
  stdout: string | null;
}> {
  if (ff !== 'kvm') return { interval: { insts: Math.round(insts / TARGET_SAMPLES) }, kvmRunSeconds: null, calibrationWall: 0, stdout: null };
  const cal = await calibrateKvm(spec, insts);
  progress(`[sampling] ${spec.name} ${spec.args.join(' ')}: KVM runs it in ${(cal.kvmRunSeconds * 1e3).toFixed(1)} ms of KVM_RUN; interval ${(cal.seconds * 1e3).toFixed(2)} ms`);
  return { interval: { seconds: cal.seconds }, kvmRunSeconds: cal.kvmRunSeconds, calibrationWall: cal.wallSeconds, stdout: cal.stdout };
}

/**
 * The same validation run, timed only: taken right before the full o3 run, so that each speed-up
 * comes from sampled runs on both sides of it (this host's speed drifts by tens of percent
 * within an hour, enough to move one ratio across 20x).
 */
async function timeStudy(spec: Spec, ff: FastForward, insts: number): Promise<number> {
  const t0 = performance.now();
  const { interval } = await validationInterval(spec, ff, insts);
  await sampleOnce(spec, ff, interval, VALIDATION_SEED, MAX_SAMPLES);
  const wall = (performance.now() - t0) / 1000;
  progress(`[sampling] ${spec.name} ${spec.args.join(' ')} (${ff}): sampled run before the full o3 run: ${wall.toFixed(1)} s`);
  return wall;
}

/** Instructions of a whole run on the atomic CPU (exact; the o3 run retires the same). */
async function countInstructions(spec: Spec): Promise<number> {
  const r = await runProgram({ cpu: 'atomic', program: workloadPath(spec.name), args: spec.args, env: [], capture: true });
  if (r.stats.model !== 'atomic') throw new Error('expected atomic stats');
  return r.stats.instructions;
}

async function study(
  spec: Spec, ff: FastForward, full: FullO3Run, cached: boolean, refStdout: string | null, beforeWall: number | null,
): Promise<{ row: Row; stdout: string }> {
  const key = `${spec.name} ${spec.args.join(' ')}`;
  const t0 = performance.now();
  const { interval, kvmRunSeconds, calibrationWall, stdout: calStdout } = await validationInterval(spec, ff, full.insts);
  const ref = refStdout ?? calStdout;
  const r = await sampleOnce(spec, ff, interval, VALIDATION_SEED, MAX_SAMPLES);
  const afterWall = (performance.now() - t0) / 1000;
  const samplingWall = afterWall - calibrationWall;
  const s = r.result.summary;
  const est = estimators(r.result.samples, CONFIDENCE, isAtomic(ff), s.phases);
  const which = estimatorOf(ff);
  const iv = est[which];
  const sampledWalls = beforeWall === null ? [afterWall] : [beforeWall, afterWall];
  const sampledWall = sampledWalls.reduce((a, b) => a + b, 0) / sampledWalls.length;
  const speedup = full.wallSeconds / sampledWall;
  const err = (x: number) => (x - full.ipc) / full.ipc;
  const keyNames = new Set(r.result.samples.flatMap((x) => Object.keys(x.keyStats)));
  const keyStats: Record<string, number> = {};
  for (const k of keyNames) {
    const v = r.result.samples.map((x) => x.keyStats[k]).filter((x): x is number => x !== undefined);
    keyStats[k] = v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
  }
  const stdout = r.stdout.toString('latin1');
  const row: Row = {
    workload: spec.name,
    args: spec.args,
    fastForward: ff,
    estimator: which,
    fullInsts: full.insts,
    fullCycles: full.cycles,
    fullIpc: full.ipc,
    fullWallSeconds: full.wallSeconds,
    fullCached: cached,
    interval,
    kvmRunSeconds,
    calibrationWallSeconds: calibrationWall,
    samples: s.samples,
    sampledIpc: iv.ipc,
    ipcLow: iv.low,
    ipcHigh: iv.high,
    ipcHalfWidth: iv.halfWidth,
    error: err(iv.ipc),
    ciContainsFull: iv.low <= full.ipc && full.ipc <= iv.high,
    meanIpc: est.meanIpc.ipc,
    meanIpcHalfWidth: est.meanIpc.halfWidth,
    meanIpcError: err(est.meanIpc.ipc),
    ratioIpc: est.ratio.ipc,
    ratioIpcLow: est.ratio.low,
    ratioIpcHigh: est.ratio.high,
    ratioIpcError: err(est.ratio.ipc),
    cvIpc: s.ipc.cv,
    cvCpi: s.cpi.cv,
    samplesNeeded: s.samplesNeeded,
    sampledWallSeconds: sampledWall,
    sampledWallRuns: sampledWalls,
    samplingWallSeconds: samplingWall,
    hostSeconds: s.hostSeconds,
    speedup,
    errorOk: Math.abs(err(iv.ipc)) <= ERROR_LIMIT,
    errorGoal: Math.abs(err(iv.ipc)) <= ERROR_GOAL,
    speedupOk: speedup >= SPEEDUP_GOAL,
    outputMatches: ref === null ? true : stdout === ref,
    exit: r.end.kind === 'exited' ? `exit ${r.end.status}` : r.end.kind,
    fullExit: exitText(full.exit),
    keyStats,
    ...(s.phases ? { phases: s.phases } : {}),
  };
  if (row.fullExit !== 'exit 0' || row.exit !== 'exit 0') progress(`[sampling] ${key}: WARNING: full run ${row.fullExit}, sampled run ${row.exit}`);
  progress(
    `[sampling] ${key} (${ff}): ${s.samples} samples, IPC ${iv.ipc.toFixed(4)} [${iv.low.toFixed(4)}, ${iv.high.toFixed(4)}] vs full ${full.ipc.toFixed(4)}: ` +
      `error ${(row.error * 100).toFixed(2)}% (mean of IPCs ${(row.meanIpcError * 100).toFixed(2)}%, 1/mean CPI ${(row.ratioIpcError * 100).toFixed(2)}%), ` +
      `${sampledWall.toFixed(1)} s, speedup ${speedup.toFixed(1)}×`,
  );
  return { row, stdout };
}

// ------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const tStart = performance.now();
  checkKvm();
  const list = specs();
  checkBuilt(list.map((s) => s.name));
  const cacheFile = process.env.SAMPLING_FULL_CACHE;
  const cache = loadCache(cacheFile);
  const outPrefix = path.resolve(ROOT, process.env.SAMPLING_OUT ?? path.join(RESULTS_DIR, 'sampling'));
  progress(
    `[sampling] ${SIZES} sizes: ${list.map((s) => `${s.name} ${s.args.join(' ')}`).join(', ')}; F ${F ?? 'mode default'}, W ${W ?? 'mode default'}, U ${U}; ~${TARGET_SAMPLES} samples per program; ` +
      `confidence ${CONFIDENCE * 100}%; atomic rows ${ATOMIC ? 'yes' : 'no'}; coverage ${SEEDS} seeds; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
  );

  const rows: Row[] = [];
  const atomicRows: Row[] = [];
  const serialRows: Row[] = [];
  const hostRateRows: Row[] = [];
  const fulls = new Map<string, FullO3Run>();
  for (const spec of list) {
    const modes: FastForward[] = ['kvm', ...(ATOMIC ? (['atomic', 'atomic-serial'] as const) : []), ...(HOST_RATE ? (['kvm-rate'] as const) : [])];
    const before = new Map<FastForward, number>();
    if (!(cacheFile && cache[`${spec.name} ${spec.args.join(' ')}`])) {
      const insts = await countInstructions(spec);
      for (const ff of modes) before.set(ff, await timeStudy(spec, ff, insts));
    }
    const { full, cached } = await fullRun(spec, cache, cacheFile);
    fulls.set(spec.name, full);
    const k = await study(spec, 'kvm', full, cached, null, before.get('kvm') ?? null);
    rows.push(k.row);
    if (ATOMIC) {
      atomicRows.push((await study(spec, 'atomic', full, cached, k.stdout, before.get('atomic') ?? null)).row);
      serialRows.push((await study(spec, 'atomic-serial', full, cached, k.stdout, before.get('atomic-serial') ?? null)).row);
    }
    if (HOST_RATE) hostRateRows.push((await study(spec, 'kvm-rate', full, cached, k.stdout, before.get('kvm-rate') ?? null)).row);
  }

  // ---------------------------------------------------------------------------- coverage
  const covName = process.env.SAMPLING_COVERAGE_WORKLOAD ?? 'qsort';
  const covSpec = list.find((s) => s.name === covName);
  const covRow = (COVERAGE_FF === 'atomic' ? atomicRows : COVERAGE_FF === 'kvm-rate' ? hostRateRows : rows).find((r) => r.workload === covName);
  const covRuns: CoverageRun[] = [];
  let coverage: Record<string, unknown> | null = null;
  if (SEEDS > 0 && covSpec && covRow) {
    const full = fulls.get(covSpec.name)!;
    const interval = covRow.interval;
    const which = estimatorOf('kvm');
    const other: EstimatorName = 'samplerIid';
    const tCov = performance.now();
    const inside = (iv: IpcInterval) => iv.low <= full.ipc && full.ipc <= iv.high;
    for (let i = 0; i < SEEDS; i++) {
      const seed = String(100 + i);
      const t0 = performance.now();
      const r = await sampleOnce(covSpec, COVERAGE_FF, interval, seed, MAX_SAMPLES);
      const wall = (performance.now() - t0) / 1000;
      const e997 = estimators(r.result.samples, CONFIDENCE, COVERAGE_FF === 'atomic', r.result.summary.phases);
      const e95 = estimators(r.result.samples, LOW_CONFIDENCE, COVERAGE_FF === 'atomic', r.result.summary.phases);
      const e68 = estimators(r.result.samples, LOWEST_CONFIDENCE, COVERAGE_FF === 'atomic', r.result.summary.phases);
      const run: CoverageRun = {
        seed,
        samples: r.result.samples.length,
        ipc: e997[which].ipc,
        in997: inside(e997[which]),
        in95: inside(e95[which]),
        in68: inside(e68[which]),
        halfWidth997: e997[which].halfWidth,
        halfWidth95: e95[which].halfWidth,
        halfWidth68: e68[which].halfWidth,
        error: (e997[which].ipc - full.ipc) / full.ipc,
        otherIpc: e997[other].ipc,
        otherIn997: inside(e997[other]),
        otherIn95: inside(e95[other]),
        otherIn68: inside(e68[other]),
        otherError: (e997[other].ipc - full.ipc) / full.ipc,
        wallSeconds: wall,
      };
      covRuns.push(run);
      progress(
        `[sampling] coverage ${covSpec.name} seed ${seed}: ${run.samples} samples, IPC ${run.ipc.toFixed(4)} ± ${run.halfWidth997.toFixed(4)} (95%: ± ${run.halfWidth95.toFixed(4)}), ` +
          `error ${(run.error * 100).toFixed(2)}%, in 99.7% ${run.in997 ? 'yes' : 'no'}, in 95% ${run.in95 ? 'yes' : 'no'}; ${ESTIMATOR_LABEL[other]} ${(run.otherError * 100).toFixed(2)}%; ${wall.toFixed(1)} s`,
      );
    }
    const frac = (f: (r: CoverageRun) => boolean) => covRuns.filter(f).length / covRuns.length;
    const stats = (xs: number[]) => {
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
      return { mean: m, sd, maxAbs: Math.max(...xs.map(Math.abs)) };
    };
    const e = stats(covRuns.map((r) => r.error));
    const eo = stats(covRuns.map((r) => r.otherError));
    coverage = {
      workload: covSpec.name,
      args: covSpec.args,
      fullIpc: full.ipc,
      fastForward: COVERAGE_FF,
      estimator: which,
      otherEstimator: other,
      interval,
      runs: covRuns.length,
      seeds: covRuns.map((r) => r.seed),
      meanSamples: covRuns.reduce((a, r) => a + r.samples, 0) / covRuns.length,
      coverage997: frac((r) => r.in997),
      coverage95: frac((r) => r.in95),
      coverage68: frac((r) => r.in68),
      otherCoverage997: frac((r) => r.otherIn997),
      otherCoverage95: frac((r) => r.otherIn95),
      otherCoverage68: frac((r) => r.otherIn68),
      meanError: e.mean,
      sdError: e.sd,
      maxAbsError: e.maxAbs,
      otherMeanError: eo.mean,
      otherSdError: eo.sd,
      meanRelHalfWidth997: covRuns.reduce((a, r) => a + r.halfWidth997 / r.ipc, 0) / covRuns.length,
      meanRelHalfWidth95: covRuns.reduce((a, r) => a + r.halfWidth95 / r.ipc, 0) / covRuns.length,
      meanRelHalfWidth68: covRuns.reduce((a, r) => a + r.halfWidth68 / r.ipc, 0) / covRuns.length,
      wallSeconds: (performance.now() - tCov) / 1000,
      perRun: covRuns,
    };
  }

  // ---------------------------------------------------------------------------- tables
  const pct = (x: number, d = 2, signed = true) => (Number.isFinite(x) ? `${signed && x >= 0 ? '+' : ''}${(x * 100).toFixed(d)}%` : 'n/a');
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const intervalText = (r: Row) => ('seconds' in r.interval ? `${(r.interval.seconds * 1e3).toFixed(2)} ms` : `${(r.interval.insts / 1e6).toFixed(2)} M insts`);
  const settings =
    `F = functional warming (${F !== undefined ? F.toLocaleString('en-US') : `KVM: adaptive, at most ${warmingOf('kvm').toLocaleString('en-US')}; atomic: caches rebuilt from the memory timestamp record, then ${warmingOf('atomic').toLocaleString('en-US')}`}; the last ${B.toLocaleString('en-US')} also train the branch predictor), W = ${W !== undefined ? W.toLocaleString('en-US') : `${detailedWarmOf('kvm').toLocaleString('en-US')} (KVM) / ${detailedWarmOf('atomic').toLocaleString('en-US')} (atomic)`} detailed warm-up, U = ${U.toLocaleString('en-US')} measured instructions per sample; ` +
    `interval for ~${TARGET_SAMPLES} samples over the whole program (stratified: one sample at a random point of each interval, seed ${VALIDATION_SEED}; KVM seconds at least 1 ms); ${CONFIDENCE * 100}% Student-t intervals`;
  const mainTable = (title: string, rs: Row[], notes: string[]): Table => ({
    title,
    headers: ['workload', 'args', 'insts', 'full IPC', 'sampled IPC ± CI (99.7%)', 'error', 'samples', 'full o3 wall', 'sampled wall', 'speedup', 'error ≤ 3% (≤ 2%)', 'speedup ≥ 20×'],
    align: ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
    rows: rs.map((r) => [
      r.workload,
      r.args.join(' '),
      `${(r.fullInsts / 1e6).toFixed(1)} M`,
      r.fullIpc.toFixed(3),
      `${r.sampledIpc.toFixed(3)} ± ${r.ipcHalfWidth.toFixed(3)}`,
      pct(r.error),
      String(r.samples),
      `${r.fullWallSeconds.toFixed(1)} s${r.fullCached ? ' (cached)' : ''}`,
      r.sampledWallRuns.length > 1 ? `${r.sampledWallSeconds.toFixed(1)} s (${r.sampledWallRuns.map((x) => x.toFixed(1)).join(', ')})` : `${r.sampledWallSeconds.toFixed(1)} s`,
      `${r.speedup.toFixed(1)}×`,
      `${r.errorOk ? 'yes' : 'MISS'} (${r.errorGoal ? 'yes' : 'no'})`,
      r.speedupOk ? 'yes' : 'MISS',
    ]),
    notes,
  });
  const tables: Table[] = [
    mainTable('Sampling validation (`switchsim sample`, KVM fast-forward with --no-host-rate) vs full o3 runs', rows, [
      `settings: ${settings}`,
      'sampled IPC = the mean of per-sample IPCs (summary.ipc, as `switchsim sample` prints it; KVM intervals are host time, so samples fall uniformly in time); ± half the 99.7% interval',
      'error = (sampled − full) / full IPC; sampled wall = the KVM-only calibration run (--no-host-rate rows) + the sampled run (fresh Systems, worker start-up included), timed right before and right after the full o3 run (in brackets) and averaged; full o3 wall = runFullO3 in the same process',
    ]),
  ];
  if (hostRateRows.length) {
    tables.push(
      mainTable('KVM fast-forward with host-rate probes (`--fast-forward kvm`, its default: phase profile, probes, phase-stratified estimate)', hostRateRows, [
        'instruction intervals: the fast-forward runs in 250 µs chunks whose stop rip names the phase, and an instruction clock advances at each phase\'s probed host rate',
        'sampled IPC = Σ Iₚ / Σ Iₚ·CPIₚ over the phases (Iₚ = KVM seconds × probed rate + the samples\' own instructions); log-normal delta-method interval',
      ]),
    );
  }
  if (atomicRows.length) {
    tables.push(
      mainTable('Atomic fast-forward (the default of `switchsim sample`: exact instruction counts, the memory timestamp record, parallel sampling)', atomicRows, [
        'sampled IPC = Σ Iₚ / Σ Iₚ·CPIₚ over the phases, Iₚ exact (the fast-forward counts each block\'s instructions; a block goes to the phase owning its code line); log-normal delta-method interval',
        'same F, W, U and sample count as above; separates warming and sampling error from where KVM places the samples',
        'parallel sampling where the host has 2+ CPUs (as `switchsim sample` does): a worker thread measures each sample on a copy of the guest while the fast-forward goes on',
      ]),
    );
  }
  if (serialRows.length) {
    tables.push(
      mainTable('Atomic fast-forward, serial (`--no-parallel`): the same samples, one thread', serialRows, [
        'the same samples as the parallel rows above (parallel sampling measures exactly what the serial sampler measures); only the wall time differs',
      ]),
    );
  }
  const all = [...rows, ...hostRateRows, ...atomicRows, ...serialRows];
  tables.push({
    title: 'Sampling detail',
    headers: ['workload', 'fast-fwd', 'interval', 'CV(IPC)', 'samples for ±3%', 'CI ∋ full', 'mean of IPCs', 'its error', '1 / mean CPI', 'its error', 'fast-fwd s', 'warming s', 'detailed s', 'other s', 'output ok', 'exit'],
    align: ['l', 'l', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
    rows: all.map((r) => [
      r.workload,
      r.fastForward,
      intervalText(r),
      pct(r.cvIpc, 1, false),
      Number.isFinite(r.samplesNeeded) ? r.samplesNeeded.toLocaleString('en-US') : 'n/a',
      yes(r.ciContainsFull),
      `${r.meanIpc.toFixed(3)} ± ${r.meanIpcHalfWidth.toFixed(3)}`,
      pct(r.meanIpcError),
      `${r.ratioIpc.toFixed(3)} [${r.ratioIpcLow.toFixed(3)}, ${r.ratioIpcHigh.toFixed(3)}]`,
      pct(r.ratioIpcError),
      r.hostSeconds.kvm.toFixed(2),
      r.hostSeconds.warming.toFixed(2),
      r.hostSeconds.detailed.toFixed(2),
      r.hostSeconds.other.toFixed(2),
      yes(r.outputMatches),
      r.exit,
    ]),
    notes: [
      'interval: the strata, one sample each: KVM fast-forward seconds, or instructions (the samples\' own included); samples for ±3%: summary.samplesNeeded (n ≥ (t·cv/ε)² at 99.7%)',
      'mean of IPCs / 1 / mean CPI: both estimators from the same samples, 99.7%; host seconds of the sampled run by phase (summary.hostSeconds)',
      'output ok: the guest stdout equals that of the KVM-only run; exit: the sampled run\'s end',
    ],
  });
  if (coverage) {
    const c = coverage as { workload: string; args: string[]; runs: number; meanSamples: number; coverage997: number; coverage95: number; coverage68: number; otherCoverage997: number; otherCoverage95: number; otherCoverage68: number; meanRelHalfWidth68: number; meanError: number; sdError: number; maxAbsError: number; otherMeanError: number; otherSdError: number; meanRelHalfWidth997: number; meanRelHalfWidth95: number; fullIpc: number; wallSeconds: number; estimator: EstimatorName; otherEstimator: EstimatorName };
    const n = (f: (r: CoverageRun) => boolean) => `${covRuns.filter(f).length}/${c.runs}`;
    tables.push({
      title: `Coverage: ${c.runs} sampled runs (${COVERAGE_FF}) of ${c.workload} ${c.args.join(' ')} with different seeds (full IPC ${c.fullIpc.toFixed(4)})`,
      headers: ['estimator', 'stated confidence', 'CI ∋ full IPC', 'coverage', 'mean relative half-width'],
      align: ['l', 'r', 'r', 'r', 'r'],
      rows: [
        [ESTIMATOR_LABEL[c.estimator], '99.7%', n((r) => r.in997), pct(c.coverage997, 1, false), pct(c.meanRelHalfWidth997, 2, false)],
        [ESTIMATOR_LABEL[c.estimator], '95%', n((r) => r.in95), pct(c.coverage95, 1, false), pct(c.meanRelHalfWidth95, 2, false)],
        [ESTIMATOR_LABEL[c.estimator], '68%', n((r) => r.in68), pct(c.coverage68, 1, false), pct(c.meanRelHalfWidth68, 2, false)],
        [ESTIMATOR_LABEL[c.otherEstimator], '99.7%', n((r) => r.otherIn997), pct(c.otherCoverage997, 1, false), ''],
        [ESTIMATOR_LABEL[c.otherEstimator], '95%', n((r) => r.otherIn95), pct(c.otherCoverage95, 1, false), ''],
        [ESTIMATOR_LABEL[c.otherEstimator], '68%', n((r) => r.otherIn68), pct(c.otherCoverage68, 1, false), ''],
      ],
      notes: [
        `fast-forward ${COVERAGE_FF}, the settings and interval of its validation row; seeds 100–${100 + c.runs - 1}; ${c.meanSamples.toFixed(1)} samples per run on average; ${c.wallSeconds.toFixed(0)} s in all`,
        `error over the runs: ${ESTIMATOR_LABEL[c.estimator]} mean ${pct(c.meanError)}, sd ${pct(c.sdError, 2, false)}, max |error| ${pct(c.maxAbsError, 2, false)}; ` +
          `${ESTIMATOR_LABEL[c.otherEstimator]} mean ${pct(c.otherMeanError)}, sd ${pct(c.otherSdError, 2, false)}`,
        'the 95% and 68% intervals are recomputed from the same samples (t at n − 1 degrees of freedom); compare the sd of the error over the runs with the 68% half-width (≈ one standard error by the formula)',
      ],
    });
  }
  const totalSeconds = (performance.now() - tStart) / 1000;
  const header = `switchsim sampling benchmark — ${new Date().toISOString()}, node ${process.version}, ${os.availableParallelism()} CPUs, load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}; benchmark wall time ${totalSeconds.toFixed(0)} s`;
  process.stdout.write(`\n${header}\n\n${tables.map(renderText).join('\n')}`);

  mkdirSync(path.dirname(outPrefix), { recursive: true });
  const json = {
    generatedAt: new Date().toISOString(),
    node: process.version,
    cpus: os.availableParallelism(),
    loadavg: os.loadavg(),
    sizes: SIZES,
    benchmarkWallSeconds: totalSeconds,
    targetError: ERROR_LIMIT,
    goalError: ERROR_GOAL,
    targetSpeedup: SPEEDUP_GOAL,
    confidence: CONFIDENCE,
    settings: {
      functionalWarmInsts: F ?? { kvm: warmingOf('kvm'), atomic: warmingOf('atomic') },
      warming: { kvm: 'adaptive', atomic: 'record' },
      detailedWarmInsts: W ?? { kvm: detailedWarmOf('kvm'), atomic: detailedWarmOf('atomic') },
      measureInsts: U,
      targetSamples: TARGET_SAMPLES,
      fastForward: 'kvm',
      validationSeed: VALIDATION_SEED,
      estimator: "each row's summary.ipc: KVM (--no-host-rate) rows the mean of per-sample IPCs; KVM host-rate rows the phase-stratified estimate; atomic rows the phase-stratified estimate with exact counts",
    },
    rows,
    atomicRows,
    serialRows,
    hostRateRows,
    coverage,
  };
  writeFileAtomic(`${outPrefix}.json`, JSON.stringify(json, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
  writeFileAtomic(`${outPrefix}.md`, `${header}\n\n${tables.map(renderMarkdown).join('\n')}`);
  process.stdout.write(`\nwrote ${path.relative(ROOT, `${outPrefix}.json`)}, ${path.relative(ROOT, `${outPrefix}.md`)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench sampling: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
