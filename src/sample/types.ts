/**
 * The data of a sampling study and of the host-to-guest cycle-scaling benchmark: what
 * `switchsim sample` writes (samples.json, samples.csv) and what report.html draws.
 * Plain JSON (numbers, strings, arrays), so files and the report agree.
 */

/** One sample: fast-forward, functional warming, detailed warm-up W, measured unit U. */
export interface SampleRecord {
  index: number;
  /** Host seconds of KVM fast-forward before this sample. */
  fastForwardSeconds: number;
  /** Host cycles of that fast-forward (seconds × host frequency). */
  fastForwardHostCycles: number;
  /** Instructions of functional warming (caches, TLBs, predictor; no timing). */
  functionalWarmInsts: number;
  /** Instructions of detailed warm-up on o3 (stats discarded). */
  detailedWarmInsts: number;
  /** The measured unit on o3. */
  measuredInsts: number;
  measuredCycles: number;
  ipc: number;
  cpi: number;
  /** A few o3 stats of the measured unit (name → value), e.g. L1D miss rate, mispredicts/kinst. */
  keyStats: Record<string, number>;
  /** Host seconds spent on this sample in each model. */
  hostSeconds: { kvm: number; warming: number; detailed: number };
  /** Exact instructions of the fast-forward, when it ran on the atomic CPU (no KVM). */
  fastForwardInsts?: number;
  /** Where the sample started (the rip of its first warming instruction). */
  startRip?: number;
  /**
   * Where its measured unit started (after warming and detailed warm-up): the code whose CPI it
   * measured, which can be another phase's than startRip's (warming runs 1M+ instructions).
   */
  unitRip?: number;
  /**
   * The phase of this sample (hostRate.ts PhaseTable), by its warming's code. The estimate's
   * strata go by the code line of unitRip instead (summary.phases[].sampleIndexes).
   */
  phase?: number;
  /**
   * A host-rate probe taken right after this sample (the first samples of each phase): the
   * instructions KVM executed in it (exact) and its host seconds, or why it missed.
   */
  hostRate?: { insts: number; seconds: number } | { missed: string };
}

/** Mean, spread and Student-t interval of a per-sample metric. */
export interface Estimate {
  mean: number;
  stdDev: number;
  /** Coefficient of variation (stdDev / mean). */
  cv: number;
  /** Confidence level, e.g. 0.997. */
  confidence: number;
  /** Half-width of the interval (t × stdDev / √n). */
  halfWidth: number;
  low: number;
  high: number;
  /** halfWidth / mean. */
  relativeError: number;
}

export interface SamplingSummary {
  samples: number;
  /**
   * How `ipc` estimates the whole program's IPC. Samples placed uniformly in host time (KVM
   * fast-forward: no instruction counter) weight every stretch of time alike, so the plain mean
   * of the per-sample IPCs estimates instructions / cycles; samples placed uniformly in
   * instructions (atomic fast-forward) need the ratio estimator 1 / mean CPI (its interval is the
   * CPI interval inverted; its interval uses the successive-difference variance, stats.ts
   * VarianceMethod). KVM with --host-rate: 'phaseStratified' (see `phases`): each phase's
   * instructions are its KVM seconds × its probed host rate plus its samples' JS instructions,
   * its CPI the mean of its samples' (a sample belongs to the phase owning the code line it
   * started at), IPC = Σ Iₚ / Σ Iₚ·CPIₚ. Atomic fast-forward is 'phaseStratified' too, with exact
   * counts: the fast-forward counts each block's instructions, which go to the phase owning the
   * block's code ('inverseMeanCpi' is then only the fallback with no samples' phases). Absent in
   * older files: 'meanIpc'.
   */
  estimator?: 'meanIpc' | 'inverseMeanCpi' | 'phaseStratified';
  ipc: Estimate;
  cpi: Estimate;
  /** The target relative error asked for (e.g. 0.03), and the samples needed to reach it at this CV. */
  targetError: number;
  samplesNeeded: number;
  /**
   * Whole-program cycles: KVM regions (host cycles × hostFactor) plus the sampled regions
   * (instructions × mean CPI); the interval comes from the CPI interval.
   */
  wholeProgram: {
    cycles: number;
    low: number;
    high: number;
    kvmHostCycles: number;
    hostFactor: number;
    jsInsts: number;
  };
  /** Host seconds per model over the whole study, and in total. */
  hostSeconds: { kvm: number; warming: number; detailed: number; other: number; total: number };
  /** --host-rate: the phases, and the share of KVM time whose phase was guessed (see PhaseProfile). */
  phases?: PhaseRecord[];
  guessedKvmSeconds?: number;
}

/** One phase of a --host-rate study (sample/hostRate.ts): what the stratified estimate uses. */
export interface PhaseRecord {
  phase: number;
  samples: number;
  /** Mean CPI of its samples. */
  cpi: number;
  /** KVM_RUN seconds attributed to it (the rip profile of the fast-forward chunks and probe runs). */
  kvmSeconds: number;
  /** Host instruction rate (instructions per KVM_RUN second): the mean of its probe windows', else null. */
  rate: number | null;
  /** Probe windows that ran mostly its code. */
  probes: number;
  /** Relative standard error of `rate`: its windows' spread / √windows (one window: pooled; no window: 0.5). */
  rateRelError: number;
  /** Instructions it stands for: kvmSeconds × rate (the median phase rate when null) + jsInsts; atomic: exact. */
  insts: number;
  /** Instructions its samples ran on the JS models (warming, warm-up, unit; atomic: warm-up and unit, warming being in the block counts). */
  jsInsts: number;
  /**
   * The samples (indexes) whose mean CPI it takes; absent: those whose `phase` it is. A phase that
   * owns KVM time but no sample's start takes the samples its warming claimed, which then stand
   * in two phases.
   */
  sampleIndexes?: number[];
  /** Its samples are other phases' (it owns time or code but no sample): see stats.ts Stratum.borrowed. */
  borrowed?: boolean;
}

export interface SamplingConfig {
  program: string;
  args: string[];
  interval: { seconds: number } | { insts: number };
  functionalWarmInsts: number;
  /** The last this-many of the functional warming also train the branch predictor (absent: all). */
  branchWarmInsts?: number;
  /** How caches were warmed (sampler.ts WarmingMode); absent in older files: adaptive. */
  warming?: 'record' | 'adaptive' | 'fixed';
  detailedWarmInsts: number;
  measureInsts: number;
  samples: number | null;
  targetError: number;
  confidence: number;
  seed: string;
  o3Config: string | null;
  hostFreqHz: number;
  hostFactor: number;
  /** The fast-forward model: kvm, or atomic where there is no KVM (or when asked for). */
  fastForwardModel?: 'kvm' | 'atomic';
  /** Samples measured in a worker thread while the fast-forward went on (parallel.ts); absent: serial. */
  parallel?: boolean;
  /** Minimum samples before the target-error rule may stop. */
  minSamples?: number;
}

/** One row of the host-to-guest cycle-scaling table (a workload's region). */
export interface ScalingRow {
  workload: string;
  region: string;
  /** Exact instructions of the region (atomic CPU). */
  insts: number;
  /** KVM host time of the region and the cycles it stands for. */
  hostSeconds: number;
  hostCycles: number;
  hostCpi: number;
  /** o3 cycles and CPI of the same region (host-like config). */
  o3Cycles: number;
  o3Cpi: number;
  /** o3 cycles / host cycles: this region's hostFactor. */
  hostFactor: number;
  /** Relative error of guest cycles estimated with the global factor, and with the workload's own. */
  errorGlobal: number;
  errorPerWorkload: number;
}

export interface ScalingTable {
  hostFreqHz: number;
  /** The one factor fitted over every row (least squares through the origin). */
  globalFactor: number;
  rows: ScalingRow[];
}

export interface SamplingResult {
  config: SamplingConfig;
  samples: SampleRecord[];
  summary: SamplingSummary;
  /** The cycle-scaling table, when the report includes one. */
  scaling?: ScalingTable;
  /** Validation against a full o3 run, when one was done. */
  validation?: { fullIpc: number; fullWallSeconds: number; sampledWallSeconds: number; error: number; speedup: number };
}
