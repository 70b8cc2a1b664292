/**
 * `switchsim sample`: SMARTS/FSA-style sampling on a System of two models.
 *
 * Each sample: fast-forward on KVM (the atomic CPU where there is no KVM) towards a point drawn
 * uniformly by a seeded PRNG from the sample's stratum (stratified sampling: the program is cut
 * into strata one interval long, in instructions or KVM seconds) → switchTo('o3') → (atomic:
 * the L1D and L2 rebuilt from the memory timestamp record) → functional warming F (the
 * functional core runs whole blocks and trains caches, TLBs and the branch predictor:
 * fastWarming.ts) → detailed warm-up W on o3 (stats discarded) → measured unit U on o3, with
 * the pipeline as W left it → switchTo back. With a fixed-length warming (WarmingMode) the unit
 * starts at the point drawn; adaptive warming starts there. Until the sample count or the
 * target relative error of IPC is reached (at least `minSamples`), then the rest of the program
 * runs on the fast-forward model to its end. An exit inside a sample ends the study (the partial
 * sample is dropped); m5ops are passed over.
 */
import { Kvm } from '../kvm/kvm.js';
import type { KvmStats } from '../kvm/stats.js';
import type { GuestFaultReport } from '../guest/faults.js';
import { FastWarmer } from '../detailed/o3/fastWarming.js';
import { exitCodeOf, TIME_LIMIT_EXIT_CODE } from '../run.js';
import type { Stat } from '../stats.js';
import { KVM_ASSUMED_IPC, type AtomicModel, type KvmModel, type ModelOutcome, type O3Model, type RunLimit } from '../switch/models.js';
import { System } from '../switch/system.js';
import { definedFields } from '../defined.js';
import { ConfigError } from '../errors.js';
import { HostRateProbe, PhaseProfile, PhaseTable, UNKNOWN_CODE, type PhaseRate } from './hostRate.js';
import type { Block } from '../detailed/decode.js';
import { MemoryTimestamps } from '../detailed/memoryTimestamps.js';
import { keyStatsOf, measureSample, type SampleParams } from './measure.js';
import { memoryHash, memoryUpdate, SampleWorkerClient, SampleWorkerError, type WorkerSampleOutcome } from './parallel.js';
import { encodeThreadContext } from '../guest/contextCodec.js';
import { PAGE_SIZE } from '../guest/physmem.js';
import { availableParallelism } from 'node:os';

/**
 * Probes measured per phase (the first sizes the others; every window counts in windowRates),
 * attempts per phase before giving up, and probes in all (one traces up to 6M instructions: ~0.3 s).
 */
const PROBES_PER_PHASE = 3;
/**
 * Adaptive functional warming (SampleOptions.warming) runs at least MIN_ADAPTIVE_WARM, and
 * MIN_QUIET_WARM to stop because the L2 went quiet rather than turned over: code with a small
 * working set may next reach data loaded into L2 long before. With 400k for both, qsort 1500000
 * sampled 6–8% slow (L2 misses the full run does not have; atomic, 4 seeds); with 1M, +0.6% ± 3.8%
 * (8 seeds). A chase turns the L2 over within 400k, and its warming is the dearest.
 */
export const MIN_ADAPTIVE_WARM = 400_000;
export const MIN_QUIET_WARM = 1_000_000;
/** Functional warming per sample: its maximum when adaptive, its length when fixed. */
export const DEFAULT_FUNCTIONAL_WARM = 4_000_000;
/**
 * With a timestamp record the caches it rebuilds need no warming: the rest (L1I, TLBs, branch
 * predictor) warm in far less.
 */
export const DEFAULT_RECORD_WARM = 200_000;
/** Detailed warm-up per sample. */
export const DEFAULT_DETAILED_WARM = 20_000;
/**
 * With the caches rebuilt from the record, W only fills the pipeline, MSHRs and prefetchers: W 5k
 * and 20k measured the same units within 0.05% on average (qsort, phases: 6 seeds, ~600 units each;
 * largest single difference 2%).
 */
export const DEFAULT_RECORD_DETAILED_WARM = 5_000;
const MAX_PROBES_PER_PHASE = 5;
/**
 * Parallel sampling: samples posted to the worker and not yet taken back, at most. The fast-forward
 * waits beyond this (each carries its memory pages), and target-error checks lag by as many.
 */
const MAX_IN_FLIGHT = 3;
const MAX_PROBES = 32;
/** --host-rate: KVM fast-forward chunk length between rip samples (= a host-rate probe's runs). */
const PROFILE_CHUNK_SECONDS = 250e-6;
/**
 * Atomic fast-forward: code lines of the phases (PhaseProfile) for the exact-count strata. With
 * 64-byte lines, phases' set-up and chase loops shared a line and one stratum mixed CPIs 1.3 and 24.
 */
const EXACT_LINE_BYTES = 16;
import { estimate, ratioIpcEstimate, samplesNeeded, seededRandom, stratifiedIpcEstimate, type VarianceMethod } from './stats.js';
import type { Estimate, PhaseRecord, SampleRecord, SamplingConfig, SamplingResult, SamplingSummary } from './types.js';

export type FastForwardModel = 'kvm' | 'atomic';

/**
 * How a sample's caches are warmed before its detailed warm-up (SampleOptions.warming):
 * - `record`: the atomic fast-forward keeps a memory timestamp record (memoryTimestamps.ts); each
 *   sample rebuilds the L1D and lower caches from it, then warms functionally for exactly
 *   functionalWarmInsts (L1I, TLBs, branch predictor) ending where its unit's warm-up begins.
 * - `adaptive`: functional warming until the last-level cache has turned over or gone quiet
 *   (FastWarmer), at most functionalWarmInsts. Its length depends on where the sample falls, so
 *   the unit lands later after memory-bound stretches (qsort: +3.9% ± 2.9%, 10 seeds).
 * - `fixed`: exactly functionalWarmInsts.
 */
export type WarmingMode = 'record' | 'adaptive' | 'fixed';

export interface SampleOptions {
  program: string;
  args: string[];
  argv0?: string;
  env?: string[];
  /** The guest's getrandom / AT_RANDOM seed (not the sampling seed). */
  guestSeed?: bigint;
  glibcBaseline?: boolean;
  memSize?: number;
  allowRead?: string[];
  hostFreqHz?: number;
  hostFactor?: number;
  o3Config?: string;
  capture?: boolean;
  /**
   * The stratum of each sample (one sample starts at a random point of each): instructions, the
   * sample's own included (KVM without host-rate probes: host time at 1 IPC), or KVM seconds of
   * fast-forward.
   */
  interval: { seconds: number } | { insts: number };
  /** Functional warming per sample (default: DEFAULT_RECORD_WARM with `record`, else DEFAULT_FUNCTIONAL_WARM). */
  functionalWarmInsts?: number;
  /** Of the functional warming, the last this-many also train the branch predictor (default: all). */
  branchWarmInsts?: number;
  /** Default: `record` with atomic fast-forward, `adaptive` on KVM (which cannot record accesses). */
  warming?: WarmingMode;
  /** Default: DEFAULT_RECORD_DETAILED_WARM with `record`, else DEFAULT_DETAILED_WARM. */
  detailedWarmInsts?: number;
  measureInsts: number;
  /** A fixed sample count, or null: sample until the target error (at least minSamples). */
  samples: number | null;
  targetError: number;
  confidence: number;
  /** Minimum samples before the target-error rule may stop (default 8). */
  minSamples?: number;
  /** Upper bound on samples with the target-error rule (default 10000). */
  maxSamples?: number;
  /** Seeds the sample points within their strata. */
  seed: string;
  /** Stop after this many wall seconds (exit code 124). */
  maxSeconds?: number;
  /** Default: kvm when /dev/kvm can be opened, else atomic. */
  fastForward?: FastForwardModel;
  /**
   * KVM (default: on): probe the host's instruction rate in each phase, run instruction intervals
   * on a clock at those rates and estimate IPC phase by phase (hostRate.ts, strataRecords). Off:
   * intervals are host time and IPC is the mean of per-sample IPCs (--no-host-rate).
   */
  hostRate?: boolean;
  /**
   * Measure samples in a worker thread while the fast-forward goes on (parallel.ts). Default: on
   * with atomic fast-forward and record warming where the host has more than one CPU.
   */
  parallel?: boolean;
  /**
   * Parallel sampling, for tests: the worker hashes its copy of guest memory after taking over each
   * sample, and a hash different from the fast-forward's at that point is an internal error.
   */
  verifyParallel?: boolean;
  onSample?: (rec: SampleRecord, summary: SamplingSummary) => void;
  onInfo?: (message: string) => void;
  onWarning?: (message: string) => void;
}

export type SampleEnd =
  | { kind: 'exited'; status: number }
  | { kind: 'faulted'; report: GuestFaultReport }
  | { kind: 'timeLimit'; seconds: number };

export interface SampleRunResult {
  result: SamplingResult;
  end: SampleEnd;
  exitCode: number;
  /** The study's summary as gem5-style stats (stats.txt / stats.json). */
  stats: Stat[];
  /** Notes for the user (how instructions map to time on KVM, the fast-forward model, …). */
  notes: string[];
  /** Whether the sampling rule was met (false: the program ended first). */
  reachedTarget: boolean;
  /** A sample started but the program ended inside it (dropped). */
  partialDropped: boolean;
  stdout: Buffer;
  stderr: Buffer;
  wallSeconds: number;
  /** --host-rate: the phases' code and the fast-forward's rip profile (diagnostics). */
  profile?: PhaseProfile;
}

export type Estimator = NonNullable<SamplingSummary['estimator']>;

/** A phase's host rate from its probes' rates (in probe order): the first only sizes the later ones (short warm-up: likely low). */
function meanRate(all: readonly number[]): number {
  const l = all.length > 1 ? all.slice(1) : all;
  return l.reduce((a, b) => a + b, 0) / l.length;
}

function phaseSamples(samples: readonly SampleRecord[], p: PhaseRecord): SampleRecord[] {
  return p.sampleIndexes ? p.sampleIndexes.map((i) => samples[i]!) : samples.filter((s) => s.phase === p.phase);
}

/** A measured unit's instructions (block start → instructions) by the phase owning their code; unowned code left out. */
function phaseMix(code: ReadonlyMap<number, number>, profile: PhaseProfile): Map<number, number> {
  const by = new Map<number, number>();
  for (const [start, n] of code) {
    const g = profile.phaseOf(start);
    if (g !== undefined) by.set(g, (by.get(g) ?? 0) + n);
  }
  return by;
}

function mostOf(by: ReadonlyMap<number, number>): number | undefined {
  let best: number | undefined;
  let most = 0;
  for (const [g, n] of by) if (n > most) [best, most] = [g, n];
  return best;
}

/** A phase's units running this share of their instructions in another phase's code merge the two (exactStrataRecords). */
const MERGE_SHARE = 0.25;

/**
 * Phases whose units run each other's code, merged (union-find): the map from a phase to its
 * group. Two phases of the warming's block vectors can split one loop's code lines between them
 * (qsort: memory-bound and cache-resident partitions run the same loop), and then which of the
 * two a unit falls in says nothing about its CPI (qsort seed 102: +7.9% with the split, −1.9% as
 * one stratum). A unit that straddles the end of a phase does not merge it: the share is over all
 * of a phase's units.
 */
function mergedPhases(unitPhase: readonly number[], mix: readonly (ReadonlyMap<number, number> | null)[]): (g: number) => number {
  const total = new Map<number, number>();
  const cross = new Map<number, Map<number, number>>();
  unitPhase.forEach((p, i) => {
    const m = mix[i];
    if (!m) return;
    for (const [g, n] of m) {
      total.set(p, (total.get(p) ?? 0) + n);
      if (g === p) continue;
      const c = cross.get(p) ?? new Map<number, number>();
      c.set(g, (c.get(g) ?? 0) + n);
      cross.set(p, c);
    }
  });
  const parent = new Map<number, number>();
  const root = (g: number): number => {
    let r = g;
    while (parent.has(r)) r = parent.get(r)!;
    return r;
  };
  for (const [p, c] of cross) {
    for (const [g, n] of c) {
      if (n < MERGE_SHARE * total.get(p)!) continue;
      const [a, b] = [root(p), root(g)];
      if (a !== b) parent.set(Math.max(a, b), Math.min(a, b));
    }
  }
  return root;
}

/** The phase owning the code line a sample's measured unit started at (older records: the sample's start), else its own phase. */
function codeOwner(s: SampleRecord, profile: PhaseProfile): number | undefined {
  const rip = s.unitRip ?? s.startRip;
  return (rip !== undefined ? profile.phaseOf(rip) : undefined) ?? s.phase;
}

/**
 * The strata of a --host-rate study's estimate. A sample belongs to the phase that owns the code
 * line its measured unit started at (codeOwner): the rule that gives KVM time to phases (PhaseProfile), so samples and time
 * are split alike (a phase of the warming's block vector can share its code with another, and
 * then its KVM time went to the other). A phase owning time but no sample's start takes the
 * samples whose warming made them its own. Rates: from the probe windows
 * (windowRates); a phase no window ran borrows the median rate at ±50%. Empty without windows.
 */
export function strataRecords(
  samples: readonly SampleRecord[],
  profile: PhaseProfile,
  kvmRunSeconds: number,
  by: ReturnType<PhaseProfile['secondsByPhase']> = profile.secondsByPhase(),
): PhaseRecord[] {
  const probed = profile.rates();
  probed.delete(UNKNOWN_CODE);
  if (probed.size === 0) return [];
  const rates = [...probed.values()].map((f) => f.rate).sort((a, b) => a - b);
  const median = rates[Math.floor((rates.length - 1) / 2)]!;
  const spanTotal = [...by.seconds.values()].reduce((a, b) => a + b, 0);
  const scale = spanTotal > 0 ? kvmRunSeconds / spanTotal : 0;
  const members = new Map<number, number[]>();
  const owner = samples.map((s) => codeOwner(s, profile));
  samples.forEach((_, i) => {
    const g = owner[i];
    if (g === undefined) return;
    const l = members.get(g) ?? [];
    l.push(i);
    members.set(g, l);
  });
  for (const g of by.seconds.keys()) {
    if (members.has(g)) continue;
    const own = samples.flatMap((s, i) => (s.phase === g ? [i] : []));
    if (own.length > 0) members.set(g, own);
  }
  return [...members.keys()].sort((a, b) => a - b).map((phase) => {
    const idx = members.get(phase)!;
    const mine = idx.map((i) => samples[i]!);
    const f = probed.get(phase);
    // A sample's own instructions count once, in its own stratum (not where it stands in).
    const jsInsts = samples.reduce((a, s, i) => (owner[i] === phase ? a + s.functionalWarmInsts + s.detailedWarmInsts + s.measuredInsts : a), 0);
    const secs = (by.seconds.get(phase) ?? 0) * scale;
    return {
      phase,
      samples: mine.length,
      cpi: mine.reduce((a, s) => a + s.cpi, 0) / mine.length,
      kvmSeconds: secs,
      rate: f?.rate ?? null,
      probes: f?.windows ?? 0,
      rateRelError: f ? f.relError : 0.5,
      insts: secs * (f?.rate ?? median) + jsInsts,
      jsInsts,
      sampleIndexes: idx,
    };
  });
}

/**
 * The strata of an atomic fast-forward's estimate: exact instruction counts. The fast-forward and
 * the samples' functional warming counted the instructions of every block they ran (the samples'
 * detailed instructions go to their unit's stratum); a block's instructions go to the phase owning
 * its first code line (PhaseProfile: the phase whose samples' warming ran that line most), and a
 * sample belongs to the phase owning most of the instructions its measured unit ran (`unitCode`:
 * sample index → block start → instructions; else the line its unit started at, codeOwner). A
 * unit that starts at the end of one loop may run the next one: phases seed 103 gave a shuffle's
 * 6.3M instructions (CPI 1.2) the CPI 22 of a unit that started in its last line, −12%. Code no
 * sample's warming ran (UNKNOWN_CODE) takes the mean CPI of all the samples. Empty without samples.
 */
export function exactStrataRecords(
  samples: readonly SampleRecord[],
  profile: PhaseProfile,
  blockInsts: Iterable<readonly [{ start: number }, number]>,
  unitCode?: ReadonlyMap<number, ReadonlyMap<number, number>>,
): PhaseRecord[] {
  if (samples.length === 0) return [];
  // Each unit's instructions by the phase owning their code, and the phase owning most of them.
  const mix = samples.map((_, i) => {
    const code = unitCode?.get(i);
    return code ? phaseMix(code, profile) : null;
  });
  const unitPhase = samples.map((s, i) => mostOf(mix[i] ?? new Map()) ?? codeOwner(s, profile) ?? UNKNOWN_CODE);
  const group = mergedPhases(unitPhase, mix);
  const ffInsts = new Map<number, number>();
  for (const [b, n] of blockInsts) {
    const g = group(profile.phaseOf(b.start) ?? UNKNOWN_CODE);
    ffInsts.set(g, (ffInsts.get(g) ?? 0) + n);
  }
  const owner = unitPhase.map(group);
  const members = new Map<number, number[]>();
  owner.forEach((g, i) => {
    const l = members.get(g);
    if (l) l.push(i);
    else members.set(g, [i]);
  });
  // Code no unit ran (only warming did) was not measured: all the samples stand in. Not the samples
  // whose warming's phase it is: their units may have run other code (phases seed 102: a chase
  // unit's CPI 24 given to 6.3M instructions of a shuffle at CPI 1.2, −14%).
  const borrowed = new Set<number>();
  for (const g of ffInsts.keys()) {
    if (members.has(g)) continue;
    borrowed.add(g);
    members.set(g, samples.map((_, i) => i));
  }
  return [...members.keys()].sort((a, b) => a - b).map((phase) => {
    const idx = members.get(phase)!;
    const mine = idx.map((i) => samples[i]!);
    // A sample's detailed instructions count once, in its unit's stratum (its warming is in the block counts).
    const jsInsts = samples.reduce((a, s, i) => (owner[i] === phase ? a + s.detailedWarmInsts + s.measuredInsts : a), 0);
    return {
      phase,
      samples: mine.length,
      cpi: mine.reduce((a, s) => a + s.cpi, 0) / mine.length,
      kvmSeconds: 0,
      rate: null,
      probes: 0,
      rateRelError: 0,
      insts: (ffInsts.get(phase) ?? 0) + jsInsts,
      jsInsts,
      sampleIndexes: idx,
      ...(borrowed.has(phase) ? { borrowed: true } : {}),
    };
  });
}

/** The instructions each sample stands for on the atomic CPU: its exact interval plus its own. */
export function sampleWeights(samples: readonly SampleRecord[]): number[] {
  return samples.map((s) => (s.fastForwardInsts ?? 0) + s.functionalWarmInsts + s.detailedWarmInsts + s.measuredInsts);
}

/** Which estimator fits where the samples fell (see SamplingSummary.estimator). */
export function estimatorFor(instructionUniform: boolean, phases?: readonly PhaseRecord[]): Estimator {
  if (phases && phases.length > 0) return 'phaseStratified';
  return instructionUniform ? 'inverseMeanCpi' : 'meanIpc';
}

/**
 * The whole-program IPC from the samples (SamplingSummary.estimator): uniform in instructions
 * (atomic) → instruction-weighted 1 / mean CPI; KVM with --host-rate phases → the phase-stratified
 * estimate; KVM without → the mean of the IPCs (right only where the host's speed tracks o3's).
 */
export function ipcEstimate(samples: readonly SampleRecord[], confidence: number, instructionUniform: boolean, method: VarianceMethod = 'successive', phases?: readonly PhaseRecord[]): Estimate {
  const which = estimatorFor(instructionUniform, phases);
  if (which === 'meanIpc') return estimate(samples.map((s) => s.ipc), confidence);
  if (which === 'phaseStratified') {
    return stratifiedIpcEstimate(
      phases!.map((p) => ({ insts: p.insts, cpis: phaseSamples(samples, p).map((s) => s.cpi), instsRelError: p.rateRelError * ((p.insts - p.jsInsts) / p.insts), ...(p.borrowed ? { borrowed: true } : {}) })),
      confidence,
    );
  }
  return ratioIpcEstimate(samples.map((s) => s.cpi), sampleWeights(samples), confidence, method);
}

function summarize(samples: readonly SampleRecord[], opts: SampleOptions, acc: Accounting, freqHz: number, hostFactor: number, totalSeconds: number, instructionUniform: boolean, strata: Strata | null): SamplingSummary {
  const phases = strata?.phases;
  const guessed = strata?.guessed ?? 0;
  const ipc = ipcEstimate(samples, opts.confidence, instructionUniform, 'successive', phases);
  const cpi = estimate(samples.map((s) => s.cpi), opts.confidence);
  const kvmHostCycles = acc.kvmRunSeconds * freqHz;
  const js = acc.jsInsts;
  const base = kvmHostCycles * hostFactor;
  const ffSeconds = acc.kvmSeconds + acc.probeSeconds;
  const other = Math.max(0, totalSeconds - ffSeconds - acc.warmingSeconds - acc.detailedSeconds);
  return {
    samples: samples.length,
    estimator: estimatorFor(instructionUniform, phases),
    ipc,
    cpi,
    targetError: opts.targetError,
    samplesNeeded: samples.length >= 2 ? samplesNeeded(ipc.cv, opts.targetError, opts.confidence) : NaN,
    wholeProgram: {
      cycles: base + js * cpi.mean,
      low: base + js * cpi.low,
      high: base + js * cpi.high,
      kvmHostCycles,
      hostFactor,
      jsInsts: js,
    },
    ...(phases ? { phases, guessedKvmSeconds: guessed } : {}),
    hostSeconds: { kvm: ffSeconds, warming: acc.warmingSeconds, detailed: acc.detailedSeconds, other, total: totalSeconds },
  };
}

/** The strata of the estimate and the KVM seconds whose phase was guessed (SamplingSummary). */
interface Strata {
  phases: PhaseRecord[];
  guessed: number;
}

interface Accounting {
  /** KVM_RUN host seconds (the guest's time) of every fast-forward, the tail included. */
  kvmRunSeconds: number;
  /** Wall seconds of fast-forwarding (KVM or atomic), host-rate probes included. */
  kvmSeconds: number;
  warmingSeconds: number;
  detailedSeconds: number;
  /** Host-rate probes (tracing, KVM run, switches). */
  probeSeconds: number;
  /** Instructions executed on the JS models (atomic fast-forward, warming, o3). */
  jsInsts: number;
}

/** One fast-forward: `progress` is how far it went in its limit's unit (instructions or seconds). */
interface ForwardResult {
  ok: boolean;
  runSeconds: number;
  insts: number;
  seconds: number;
  progress: number;
}

export async function runSampling(opts: SampleOptions): Promise<SampleRunResult> {
  const t0 = performance.now();
  const since = () => (performance.now() - t0) / 1000;
  // Atomic by default: it counts instructions exactly and keeps the record. KVM cannot count them
  // without a PMU (none here): its placement and weights are estimates, off by up to ~10%.
  const ff: FastForwardModel = opts.fastForward ?? 'atomic';
  if (ff === 'kvm') {
    const probe = Kvm.probe();
    if (!probe.available) throw new ConfigError('--fast-forward', `kvm needs a usable /dev/kvm: ${probe.reason}`);
  }
  const warming: WarmingMode = opts.warming ?? (ff === 'atomic' ? 'record' : 'adaptive');
  if (warming === 'record' && ff !== 'atomic') {
    throw new ConfigError('--warming', 'record needs --fast-forward atomic: KVM cannot record the guest\'s memory accesses');
  }
  const warmInsts = opts.functionalWarmInsts ?? (warming === 'record' ? DEFAULT_RECORD_WARM : DEFAULT_FUNCTIONAL_WARM);
  const branchInsts = Math.min(opts.branchWarmInsts ?? warmInsts, warmInsts);
  const detailedWarm = opts.detailedWarmInsts ?? (warming === 'record' ? DEFAULT_RECORD_DETAILED_WARM : DEFAULT_DETAILED_WARM);
  const params: SampleParams = {
    warmInsts,
    branchInsts,
    adaptive: warming === 'adaptive' ? { minInsts: Math.min(MIN_ADAPTIVE_WARM, warmInsts), minQuietInsts: Math.min(MIN_QUIET_WARM, warmInsts) } : null,
    detailedWarm,
    measureInsts: opts.measureInsts,
  };
  const canParallel = ff === 'atomic' && warming === 'record';
  if (opts.parallel === true && !canParallel) {
    throw new ConfigError('--parallel', 'needs --fast-forward atomic with --warming record (the worker takes each sample\'s caches from the record)');
  }
  const parallel = canParallel && (opts.parallel ?? availableParallelism() > 1);
  const notes: string[] = [];
  const system = await System.create({
    models: [ff, 'o3'],
    program: opts.program,
    args: opts.args,
    ...definedFields({
      argv0: opts.argv0, env: opts.env, seed: opts.guestSeed, glibcBaseline: opts.glibcBaseline, memSize: opts.memSize,
      hostFreqHz: opts.hostFreqHz, hostFactor: opts.hostFactor, o3Config: opts.o3Config, onWarning: opts.onWarning, onInfo: opts.onInfo,
    }),
    allowRead: opts.allowRead ?? [],
    ...(opts.capture ? { capture: true } : {}),
  });
  const freqHz = system.freqHz;
  const hostFactor = system.hostFactor;
  // The worker loads its copy of the program while the fast-forward starts.
  const poolStarting = parallel
    ? SampleWorkerClient.start({
        program: opts.program,
        args: opts.args,
        ...definedFields({ argv0: opts.argv0, env: opts.env, glibcBaseline: opts.glibcBaseline, o3Config: opts.o3Config }),
        ...(opts.guestSeed !== undefined ? { guestSeed: opts.guestSeed.toString() } : {}),
        memSize: system.phys.size,
        allowRead: opts.allowRead ?? [],
        hostFreqHz: freqHz,
        hostFactor,
        params,
      })
    : null;
  if (parallel) {
    notes.push(
      'parallel sampling: a worker thread measures each sample on its own copy of the guest (memory, registers, process state, the record) while the fast-forward goes on; ' +
        'the host seconds of fast-forward, warming and detailed simulation overlap',
    );
  }
  if (ff === 'kvm' && opts.hostRate !== false) {
    notes.push(
      `fast-forward on KVM in 250 µs chunks; this host has no PMU, so KVM cannot count guest instructions: instruction intervals run on a clock that ` +
        `advances at each phase's probed host rate (1 instruction per host cycle at ${(freqHz / 1e9).toFixed(2)} GHz until a phase is probed), and IPC is ` +
        `estimated phase by phase (summary.phases); whole-program cycles still scale KVM host cycles by the host factor (${hostFactor})`,
    );
  } else if (ff === 'kvm') {
    notes.push(
      `fast-forward on KVM; this host has no PMU, so KVM cannot count guest instructions: fast-forward lengths are host time, ` +
        `instruction intervals are converted at ${KVM_ASSUMED_IPC} instruction per host cycle at ${(freqHz / 1e9).toFixed(2)} GHz, ` +
        `and KVM regions enter the whole-program estimate as host cycles × host factor (${hostFactor})`,
    );
  } else {
    notes.push(
      `fast-forward on the atomic CPU (${opts.fastForward === 'atomic' ? '--fast-forward atomic' : 'the default'}): exact instruction counts, slower than KVM (--fast-forward kvm); its instructions enter the whole-program estimate at the sampled mean CPI`,
    );
  }
  if (warming === 'record') {
    notes.push(
      `warming: the fast-forward keeps a memory timestamp record (each line's last access); every sample rebuilds the L1D and L2 from it, then warms L1I, TLBs and the branch predictor functionally for ${warmInsts} instructions; the unit starts at the point drawn`,
    );
  }
  const config: SamplingConfig = {
    program: opts.program,
    args: opts.args,
    interval: opts.interval,
    functionalWarmInsts: warmInsts,
    ...(opts.branchWarmInsts !== undefined ? { branchWarmInsts: opts.branchWarmInsts } : {}),
    warming,
    detailedWarmInsts: detailedWarm,
    measureInsts: opts.measureInsts,
    samples: opts.samples,
    targetError: opts.targetError,
    confidence: opts.confidence,
    seed: opts.seed,
    o3Config: opts.o3Config ?? null,
    hostFreqHz: freqHz,
    hostFactor,
    fastForwardModel: ff,
    ...(parallel ? { parallel: true } : {}),
    minSamples: opts.minSamples ?? 8,
  };
  const minSamples = opts.minSamples ?? 8;
  const maxSamples = opts.samples ?? opts.maxSamples ?? 10_000;
  const rng = seededRandom(opts.seed);
  const acc: Accounting = { kvmRunSeconds: 0, kvmSeconds: 0, warmingSeconds: 0, detailedSeconds: 0, probeSeconds: 0, jsInsts: 0 };
  const samples: SampleRecord[] = [];
  let end: SampleEnd | null = null;
  let partialDropped = false;
  let reachedTarget = false;

  const timeLeft = () => (opts.maxSeconds !== undefined ? opts.maxSeconds - since() : Infinity);
  // KVM with host-rate probes (the default): where the fast-forward spends its time, by phase.
  const profile = ff === 'kvm' && opts.hostRate !== false ? new PhaseProfile() : null;
  // Atomic: the phases' code (as for KVM, in 16-byte lines) and the fast-forward's exact instructions per block.
  const codeProfile = profile ?? (ff === 'atomic' ? new PhaseProfile(EXACT_LINE_BYTES) : null);
  const ffBlocks: Block[] | null = ff === 'atomic' ? [] : null;
  /** Atomic: the code each sample's measured unit ran (sample index → block start → instructions). */
  const unitCode = ff === 'atomic' ? new Map<number, Map<number, number>>() : null;
  /**
   * The strata as things stand. A sample's summary and the next stop-rule check see the same
   * samples and fast-forward, so they share one computation (keyed on what changes it).
   */
  let strataCache: { key: string; strata: Strata | null } | null = null;
  const strataNow = (): Strata | null => {
    const key = `${samples.length} ${acc.jsInsts} ${acc.kvmRunSeconds}`;
    if (strataCache?.key === key) return strataCache.strata;
    let strata: Strata | null = null;
    // Chunk spans include a little host work per exit: strataRecords scales them to the KVM_RUN seconds.
    if (profile) {
      const by = profile.secondsByPhase();
      strata = { phases: strataRecords(samples, profile, acc.kvmRunSeconds, by), guessed: by.guessed };
    } else if (codeProfile && ffBlocks) strata = { phases: exactStrataRecords(samples, codeProfile, ffBlocks.map((b) => [b, b.counted] as const), unitCode ?? undefined), guessed: 0 };
    strataCache = { key, strata };
    return strata;
  };
  // Samples are placed by stratified random sampling along an axis: instructions where they are
  // counted (atomic, or the host-rate instruction clock), else fast-forward seconds. The axis is cut
  // into strata one interval long and each sample starts at a uniformly random point of its own
  // stratum. Unlike intervals jittered one after another (whose sample positions drift like a
  // random walk), every stratum gets exactly one sample, so long-range structure (phases, the big
  // early partitions of a sort) is sampled in proportion instead of by chance.
  const axisIsInsts = 'insts' in opts.interval && (ff === 'atomic' || profile !== null);
  const stratumSize =
    'seconds' in opts.interval ? opts.interval.seconds : axisIsInsts ? opts.interval.insts : opts.interval.insts / (freqHz * KVM_ASSUMED_IPC);
  let position = 0;
  let stratum = 0;
  /** Instructions a sample runs before its measured unit when that is fixed (0: adaptive warming). */
  const lead = warming === 'adaptive' ? 0 : warmInsts + detailedWarm;
  if (axisIsInsts && 'insts' in opts.interval) {
    const sampleMin = Math.min(warming === 'adaptive' ? MIN_ADAPTIVE_WARM : warmInsts, warmInsts) + detailedWarm + opts.measureInsts;
    if (opts.interval.insts < sampleMin) {
      notes.push(`the interval (${opts.interval.insts} instructions, the samples' own included) is shorter than one sample (at least ${sampleMin}): samples run back to back`);
    }
  }
  const kvmRunSeconds = async (): Promise<number> => {
    if (ff !== 'kvm') return 0;
    const s: KvmStats = await (system.model('kvm') as KvmModel).client.stats();
    return s.hostRunSeconds;
  };
  /** Ends the study on exit/fault; true when the run must stop. */
  const ended = (out: ModelOutcome): boolean => {
    if (out.kind === 'exited') end = { kind: 'exited', status: out.status };
    else if (out.kind === 'faulted') end = { kind: 'faulted', report: out.report };
    return end !== null;
  };
  /**
   * Fast-forwards within `limit` (null: to the end), passing over m5ops and stopping early at
   * the wall limit. Returns false when the guest ended or time ran out.
   */
  const fastForward = async (limit: { seconds: number } | { insts: number } | null, countBlocks = true): Promise<ForwardResult> => {
    const m = system.model(ff);
    const run0 = await kvmRunSeconds();
    const insts0 = m.instructions();
    // The interval starts now, after the stats round trip (it can take longer than a short interval).
    const tStart = since();
    let ok = true;
    const atomicCpu = ffBlocks ? (m as AtomicModel).cpu : null;
    if (atomicCpu) atomicCpu.countedBlocks = countBlocks ? ffBlocks : null;
    try {
      for (let first = true; ; first = false) {
        const l: RunLimit = {};
        if (limit && 'insts' in limit) {
          const left = limit.insts - (m.instructions() - insts0);
          if (left <= 0) break;
          l.insts = left;
        } else if (limit) {
          const left = limit.seconds - (since() - tStart);
          if (left <= 0 && !first) break;
          l.seconds = Math.max(left, 1e-5);
        }
        const tl = timeLeft();
        if (tl <= 0) {
          end = { kind: 'timeLimit', seconds: opts.maxSeconds! };
          ok = false;
          break;
        }
        if (tl !== Infinity) l.seconds = Math.min(l.seconds ?? Infinity, tl);
        const out = await system.run(l);
        if (ended(out)) {
          ok = false;
          break;
        }
        if (out.kind === 'limit' && !limit && timeLeft() > 0) continue;
        // A 'limit' stop before the interval's time is up (a stale kick) just runs on: the loop
        // ends when the wall-clock interval is over.
      }
    } finally {
      if (atomicCpu) atomicCpu.countedBlocks = null;
    }
    const runSeconds = (await kvmRunSeconds()) - run0;
    const insts = m.instructions() - insts0;
    const seconds = since() - tStart;
    acc.kvmRunSeconds += runSeconds;
    acc.kvmSeconds += seconds;
    acc.jsInsts += insts;
    return { ok, runSeconds, insts, seconds, progress: limit && 'insts' in limit ? insts : seconds };
  };
  /** Probed host rates of each phase (instructions per KVM_RUN second), in probe order. */
  const measuredRates = new Map<number, number[]>();
  /** A phase's probed rate (by the phase of the sample before each probe): sizes its next probe; the clock's fallback. */
  const phaseRate = (p: number): number | undefined => {
    const l = measuredRates.get(p);
    return l && l.length > 0 ? meanRate(l) : undefined;
  };
  /**
   * --host-rate fast-forward on KVM: timed chunks (≤ 1 ms); the rip each stops at names its phase
   * (PhaseProfile), and an instruction clock advances by the chunk's KVM seconds × that phase's
   * probed rate (1 instruction per cycle where not known yet). Stops when the clock reaches
   * `limit.insts` (samples then fall about uniformly in instructions whatever the phases' host
   * speeds), after `limit.seconds` of KVM time, or in code no sample has run — a phase the study
   * has not seen, sampled at once (once a quarter of the interval has passed). null: to the end.
   */
  const profiledForward = async (limit: { seconds: number } | { insts: number } | null, profile: PhaseProfile): Promise<ForwardResult> => {
    const kvm = system.model('kvm') as KvmModel;
    const run0 = await kvmRunSeconds();
    const tStart = since();
    const atOne = freqHz * KVM_ASSUMED_IPC;
    let ok = true;
    let run = 0;
    let clock = 0;
    for (;;) {
      const tl = timeLeft();
      if (tl <= 0) {
        end = { kind: 'timeLimit', seconds: opts.maxSeconds! };
        ok = false;
        break;
      }
      // Fixed-length chunks: each exit slows the guest for a while after it, and the probes measure
      // rates over stretches of this same length (HostRateProbe.plan).
      const chunk = PROFILE_CHUNK_SECONDS;
      const out = await system.run({ timerSeconds: Math.min(chunk, tl) });
      if (ended(out)) {
        ok = false;
        break;
      }
      const span = kvm.client.lastSpan;
      const dt = span ? (span.endNs - span.startNs) / 1e9 : chunk;
      run += dt;
      const rip = kvm.client.lastRip ?? Number((await kvm.threadContext()).rip);
      profile.noteChunk(rip, dt);
      currentPhase = profile.phaseOf(rip);
      clock += ((currentPhase !== undefined ? (probedRates.get(currentPhase)?.rate ?? phaseRate(currentPhase)) : undefined) ?? atOne) * dt;
      if (!limit) continue;
      const done = 'insts' in limit ? clock / limit.insts : run / limit.seconds;
      if (done >= 1 || (currentPhase === undefined && samples.length > 0 && done >= 0.25)) break;
    }
    const runSeconds = (await kvmRunSeconds()) - run0;
    const seconds = since() - tStart;
    acc.kvmRunSeconds += runSeconds;
    acc.kvmSeconds += seconds;
    return { ok, runSeconds, insts: 0, seconds, progress: limit && 'insts' in limit ? clock : run };
  };
  /** The phase the last profiled chunk stopped in (undefined: not known, or none yet). */
  let currentPhase: number | undefined;
  /** The phases' host rates from the probe windows (windowRates; updated after each probe). */
  let probedRates = new Map<number, PhaseRate>();

  /** Parallel sampling: the worker measuring samples while the fast-forward goes on (parallel.ts). */
  let pool: SampleWorkerClient | null = null;
  const enough = (): boolean => {
    if ((pool?.posted ?? samples.length) >= maxSamples) return true;
    if (opts.samples !== null) return false;
    if (samples.length < Math.max(2, minSamples)) return false;
    // The estimate the summary reports (strata included), so a study stops when its interval is narrow enough.
    return ipcEstimate(samples, opts.confidence, ff === 'atomic', 'successive', strataNow()?.phases).relativeError <= opts.targetError;
  };

  try {
    await system.start(ff);
    const o3 = system.model('o3') as O3Model;
    const warmer = new FastWarmer(o3.cpu, o3.memSystem, o3.bpred);
    // Every data access from here on, fast-forward and samples alike, goes into the record.
    const record = warming === 'record' ? new MemoryTimestamps() : null;
    if (record) {
      (system.model('atomic') as AtomicModel).cpu.mem.recordTimestamps(record);
      o3.cpu.mem.recordTimestamps(record);
    }
    const prober = ff === 'kvm' && profile ? new HostRateProbe() : null;
    const phases = new PhaseTable();
    /** A measured sample as a record (its phase and probe are added by the caller). */
    const newRecord = (f: ForwardResult, m: { startRip: number; unitRip: number; warmInsts: number; warmingSeconds: number; detailedSeconds: number }, k: ReturnType<typeof keyStatsOf>): SampleRecord => {
      const rec: SampleRecord = {
        index: samples.length,
        startRip: m.startRip,
        unitRip: m.unitRip,
        fastForwardSeconds: ff === 'kvm' ? f.runSeconds : f.seconds,
        fastForwardHostCycles: ff === 'kvm' ? f.runSeconds * freqHz : 0,
        functionalWarmInsts: m.warmInsts,
        detailedWarmInsts: detailedWarm,
        measuredInsts: k.insts,
        measuredCycles: k.cycles,
        ipc: k.insts / k.cycles,
        cpi: k.cycles / k.insts,
        keyStats: k.keyStats,
        hostSeconds: { kvm: f.seconds, warming: m.warmingSeconds, detailed: m.detailedSeconds },
      };
      if (ff === 'atomic') rec.fastForwardInsts = f.insts;
      return rec;
    };
    /** The sample's phase, from its warming's basic blocks; their code joins the phase's. */
    const classify = (rec: SampleRecord, bbv: Iterable<[{ start: number; end: number }, number]>): number => {
      if (!codeProfile) return -1;
      const blocks = [...bbv];
      const phase = phases.classify(new Map(blocks.map(([b, n]) => [b.start, n] as const)));
      rec.phase = phase;
      currentPhase = phase;
      codeProfile.addCode(phase, blocks);
      return phase;
    };
    const addSample = (rec: SampleRecord): void => {
      samples.push(rec);
      opts.onSample?.(rec, summarize(samples, opts, acc, freqHz, hostFactor, since(), ff === 'atomic', strataNow()));
    };
    // Parallel: samples posted to the worker, oldest first, with the fast-forward that led to each.
    const inFlight: { f: ForwardResult; hash: string | undefined; outcome: Promise<WorkerSampleOutcome>; settled: boolean }[] = [];
    let lastSyscalls = -1;
    let lastMapGeneration = -1;
    /** Parallel: samples that carried all of memory, and the pages sent in all. */
    let fullCopies = 0;
    let pagesSent = 0;
    if (parallel && record) {
      pool = await poolStarting!;
      // From now on the record's changes go to the worker: the fast-forward's own side never rebuilds.
      o3.cpu.mem.recordTimestamps(null);
    }
    /** Takes the oldest posted sample's outcome (waiting for it) into the study. */
    const takeOldest = async (): Promise<void> => {
      const p = inFlight.shift()!;
      const o = await p.outcome;
      if (o.kind === 'ended') {
        partialDropped = true;
        return;
      }
      if (p.hash !== undefined && o.stateHash !== p.hash) {
        throw new SampleWorkerError(`sample ${samples.length}: the worker's copy of guest memory differs from the fast-forward's (${o.stateHash} against ${p.hash})`);
      }
      acc.warmingSeconds += o.warmingSeconds + o.syncSeconds;
      acc.detailedSeconds += o.detailedSeconds;
      const rec = newRecord(p.f, o, { cycles: o.cycles, insts: o.insts, keyStats: o.keyStats });
      if (unitCode) unitCode.set(samples.length, new Map(o.unitCode));
      classify(rec, o.bbv.map(([start, end, n]): [{ start: number; end: number }, number] => [{ start, end }, n]));
      addSample(rec);
    };
    const takeSettled = async (): Promise<void> => {
      while (inFlight[0]?.settled) await takeOldest();
    };
    const probeTries = new Map<number, number>();
    let probesTaken = 0;
    while (!end && !enough()) {
      // 1. Fast-forward to a uniformly random point of the next stratum (one interval long).
      const target = (stratum + rng()) * stratumSize;
      stratum++;
      // With a fixed warming the unit itself starts at the point drawn (the warming and the warm-up
      // run up to it); adaptive warming starts there instead (its length is not known before).
      const distance = Math.max(target - (axisIsInsts ? lead : 0) - position, 0);
      const limit = axisIsInsts ? { insts: Math.max(1, Math.round(distance)) } : { seconds: distance };
      const f = profile && ff === 'kvm' ? await profiledForward(limit, profile) : await fastForward(limit);
      position += f.progress;
      if (!f.ok) break;
      if (pool && record) {
        // 2'. Parallel: the worker takes the state from here and measures the sample, while the
        //     fast-forward runs the sample's own instructions and goes on.
        const am = system.model('atomic') as AtomicModel;
        const handoff = { threadContext: encodeThreadContext(await am.threadContext()), processState: await am.processState() };
        const delta = record.takeDelta();
        // A syscall may have written anywhere (read(), getrandom, clock_gettime) or changed the
        // mappings (mmap, brk): then all of memory goes. write() and the like read it only.
        const aspace = system.process.aspace;
        const full = system.process.memoryWritingSyscalls !== lastSyscalls || aspace.mapGeneration !== lastMapGeneration;
        lastSyscalls = system.process.memoryWritingSyscalls;
        lastMapGeneration = aspace.mapGeneration;
        const memory = memoryUpdate(system.phys.bytes, aspace.highWater, full ? null : delta.dirty);
        if (full) fullCopies++;
        pagesSent += memory.bytes.length / PAGE_SIZE;
        const hash = opts.verifyParallel ? memoryHash(system.phys.bytes, aspace.highWater) : undefined;
        const item = { f, hash, outcome: pool.measure(handoff, memory, delta, codeProfile !== null, hash !== undefined), settled: false };
        item.outcome.then(() => void (item.settled = true), () => void (item.settled = true));
        inFlight.push(item);
        // The warming's instructions count by code like the serial sampler's; W and U do not
        // (exactStrataRecords counts them by the unit's code).
        const a = await fastForward({ insts: warmInsts });
        position += a.progress;
        if (!a.ok) break;
        const b = await fastForward({ insts: detailedWarm + opts.measureInsts }, false);
        position += b.progress;
        if (!b.ok) break;
        await takeSettled();
        while (inFlight.length >= MAX_IN_FLIGHT) await takeOldest();
        continue;
      }
      // 2. To the detailed model: functional warming (its basic-block vector gives the phase),
      //    detailed warm-up W, measured unit U (measure.ts).
      const tw0 = performance.now();
      await system.switchTo('o3');
      const bbv = new Map<Block, number>();
      // Atomic: the code the unit runs decides its stratum (exactStrataRecords).
      const code = unitCode ? new Map<number, number>() : null;
      // Atomic: warming instructions count by code like the fast-forward's (they may run another phase's code than the unit).
      const m = await measureSample(system, o3, warmer, record, params, { ...(codeProfile ? { bbv } : {}), countedBlocks: ffBlocks, ...(code ? { unitCode: code } : {}) }, tw0);
      acc.warmingSeconds += m.warmingSeconds;
      acc.detailedSeconds += m.detailedSeconds;
      if (m.kind === 'ended') {
        acc.jsInsts += m.insts;
        ended(m.outcome);
        partialDropped = true;
        break;
      }
      if (code) unitCode!.set(samples.length, code);
      acc.jsInsts += m.warmInsts + m.o3Insts;
      if (axisIsInsts) position += m.warmInsts + m.o3Insts;
      const rec = newRecord(f, m, keyStatsOf(m.stats));
      // 4. Back to fast-forwarding (not timed into the sample: switches count as "other"); the
      //    first samples of a phase probe the host's speed on the way (hostRate.ts).
      let endedInProbe = false;
      let phase = -1;
      if (codeProfile) phase = classify(rec, bbv);
      if (prober) {
        const tries = probeTries.get(phase) ?? 0;
        if ((measuredRates.get(phase)?.length ?? 0) < PROBES_PER_PHASE && tries < MAX_PROBES_PER_PHASE && probesTaken < MAX_PROBES) {
          probeTries.set(phase, tries + 1);
          probesTaken++;
          const tp0 = performance.now();
          const p = await prober.probe(system, o3, system.model('kvm') as KvmModel, phaseRate(phase));
          acc.probeSeconds += (performance.now() - tp0) / 1000;
          if (p.kind === 'ended') {
            ended(p.outcome);
            endedInProbe = true;
          } else {
            if (p.kind === 'measured') {
              rec.hostRate = p.measurement;
              const got = measuredRates.get(phase) ?? [];
              got.push(p.measurement.insts / p.measurement.seconds);
              measuredRates.set(phase, got);
              profile!.addWindow(p.window);
              if (axisIsInsts) position += p.stopInsts;
              probedRates = profile!.rates();
            } else rec.hostRate = { missed: p.reason };
            acc.kvmRunSeconds += p.seconds;
            // The probe's runs moved the guest on like fast-forward chunks: their time goes where they stopped.
            profile!.noteChunk(Number((await (system.model('kvm') as KvmModel).threadContext()).rip), p.seconds);
          }
        }
      }
      if (!endedInProbe) await system.switchTo(ff);
      addSample(rec);
    }
    if (!end) {
      reachedTarget = true;
      // The rest of the program at full speed.
      if (profile && ff === 'kvm') await profiledForward(null, profile);
      else await fastForward(null);
    }
    while (inFlight.length > 0) await takeOldest();
    if (pool) {
      notes.push(
        `parallel sampling: ${fullCopies} of ${pool.posted} samples carried all of guest memory (the first, and those after a syscall that may write it or change its mappings); ` +
          `${pagesSent} pages of 4 KiB were sent in all`,
      );
    }
    if (!end) end = { kind: 'timeLimit', seconds: opts.maxSeconds ?? 0 };
    const finalEnd: SampleEnd = end;
    const wall = since();
    const summary = summarize(samples, opts, acc, freqHz, hostFactor, wall, ff === 'atomic', strataNow());
    const result: SamplingResult = { config, samples, summary };
    const { stdout, stderr } = system.output();
    const exitCode = finalEnd.kind === 'timeLimit' ? TIME_LIMIT_EXIT_CODE : exitCodeOf(finalEnd);
    return { result, end: finalEnd, exitCode, stats: summaryStats(result), notes, reachedTarget, partialDropped, stdout, stderr, wallSeconds: wall, ...(profile ? { profile } : {}) };
  } finally {
    await pool?.close();
    poolStarting?.catch(() => {});
    await system.close();
  }
}

/** The study as gem5-style stats: every value with its description. */
export function summaryStats(r: SamplingResult): Stat[] {
  const s = r.summary;
  const c = r.config;
  const p = 'sampling';
  const conf = `${(c.confidence * 100).toFixed(1)}%`;
  const out: Stat[] = [
    { name: `${p}.samples`, value: s.samples, desc: 'Samples measured (fast-forward, functional warming, detailed warm-up, measured unit)', unit: 'Count' },
    { name: `${p}.functionalWarmInsts`, value: c.functionalWarmInsts, desc: 'Functional warming per sample (caches, TLBs, branch predictor; no timing)', unit: 'Count' },
    { name: `${p}.detailedWarmInsts`, value: c.detailedWarmInsts, desc: 'Detailed warm-up per sample on o3 (stats discarded)', unit: 'Count' },
    { name: `${p}.measureInsts`, value: c.measureInsts, desc: 'Measured unit per sample on o3', unit: 'Count' },
  ];
  for (const [metric, e] of [['ipc', s.ipc], ['cpi', s.cpi]] as const) {
    const u = metric === 'ipc' ? 'Count/Cycle' : 'Cycle/Count';
    out.push(
      { name: `${p}.${metric}.mean`, value: e.mean, desc: `Mean ${metric.toUpperCase()} over the samples`, unit: u },
      { name: `${p}.${metric}.stdDev`, value: e.stdDev, desc: `Sample standard deviation of ${metric.toUpperCase()} (n - 1)`, unit: u },
      { name: `${p}.${metric}.cv`, value: e.cv, desc: `Coefficient of variation of ${metric.toUpperCase()} (stdDev / mean)`, unit: 'Ratio' },
      { name: `${p}.${metric}.halfWidth`, value: e.halfWidth, desc: `Half-width of the ${conf} Student-t interval of the mean ${metric.toUpperCase()}`, unit: u },
      { name: `${p}.${metric}.low`, value: e.low, desc: `Low end of the ${conf} interval of the mean ${metric.toUpperCase()}`, unit: u },
      { name: `${p}.${metric}.high`, value: e.high, desc: `High end of the ${conf} interval of the mean ${metric.toUpperCase()}`, unit: u },
      { name: `${p}.${metric}.relativeError`, value: e.relativeError, desc: `Half-width / mean of ${metric.toUpperCase()}`, unit: 'Ratio' },
    );
  }
  out.push(
    { name: `${p}.confidence`, value: c.confidence, desc: 'Confidence level of the intervals', unit: 'Ratio' },
    { name: `${p}.targetError`, value: s.targetError, desc: 'Target relative error of the mean IPC', unit: 'Ratio' },
    { name: `${p}.samplesNeeded`, value: s.samplesNeeded, desc: 'Samples needed for the target error at this CV: n >= (t * cv / target)^2', unit: 'Count' },
    { name: `${p}.wholeProgram.cycles`, value: s.wholeProgram.cycles, desc: 'Whole-program cycles: KVM host cycles x host factor + JS-model instructions x mean CPI', unit: 'Cycle' },
    { name: `${p}.wholeProgram.low`, value: s.wholeProgram.low, desc: 'Whole-program cycles, low end (from the CPI interval)', unit: 'Cycle' },
    { name: `${p}.wholeProgram.high`, value: s.wholeProgram.high, desc: 'Whole-program cycles, high end (from the CPI interval)', unit: 'Cycle' },
    { name: `${p}.wholeProgram.kvmHostCycles`, value: s.wholeProgram.kvmHostCycles, desc: 'Host cycles inside KVM_RUN over the whole run (host seconds x host frequency)', unit: 'Cycle' },
    { name: `${p}.wholeProgram.hostFactor`, value: s.wholeProgram.hostFactor, desc: 'Guest cycles per host cycle applied to the KVM regions' },
    { name: `${p}.wholeProgram.jsInsts`, value: s.wholeProgram.jsInsts, desc: 'Instructions executed on the JS models (warming, o3, atomic fast-forward)', unit: 'Count' },
    { name: `${p}.hostFreqHz`, value: c.hostFreqHz, desc: 'Host clock used to convert host time to cycles', unit: 'Hz' },
  );
  const keys = new Set<string>();
  for (const smp of r.samples) for (const k of Object.keys(smp.keyStats)) keys.add(k);
  for (const k of [...keys].sort()) {
    const vals = r.samples.map((x) => x.keyStats[k]).filter((v): v is number => v !== undefined);
    out.push({ name: `${p}.keyStats.${k}.mean`, value: vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : 0, desc: `Mean over the samples of the measured units' ${k}` });
  }
  for (const [k, v] of Object.entries(s.hostSeconds)) {
    out.push({ name: `${p}.hostSeconds.${k}`, value: v, desc: `Host seconds: ${k === 'kvm' ? 'fast-forwarding (host-rate probes included)' : k === 'warming' ? 'functional warming (incl. the switch to o3)' : k === 'detailed' ? 'detailed warm-up and measurement on o3' : k === 'other' ? 'setup, switches back, writing' : 'the whole study'}`, unit: 's' });
  }
  return out;
}
