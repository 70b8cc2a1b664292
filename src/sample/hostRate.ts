/**
 * How fast the host runs the guest in each phase of the program: a KVM probe whose instruction
 * count is known exactly, although this host has no PMU.
 *
 * Samples placed by KVM fall uniformly in host time. Where the host and o3 differ in speed from
 * phase to phase, the plain mean of per-sample IPCs is biased (a phase the host runs slowly gets
 * more samples than its share of instructions). A phase's KVM time × the host's instruction rate
 * in it gives its instructions, and the estimate weights each phase's mean CPI by them
 * (sampler.ts strataRecords, stats.ts stratifiedIpcEstimate). A probe, taken right after a
 * sample's measured unit:
 *
 *   1. The functional core runs up to N instructions from the current state S recording rip + a
 *      GPR fingerprint before each (AtomicCPU.runTraced), with an undo log of every page it
 *      writes (GuestMemory.writeWatch). It serves nothing: it stops at a syscall or m5op. Then
 *      memory, registers and the instruction count go back to S.
 *   2. KVM runs from S for a fixed ~0.25 ms (RunLimit.timerSeconds) and stops at S'. KVM really
 *      executed those instructions from the true state: S' is where the program now is.
 *   3. S' (rip + fingerprint) is looked up in the trace: its index is the exact instruction count;
 *      its host time is the time inside KVM_RUN. Every probe has the same length, so the fixed
 *      cost of entering and leaving KVM_RUN (~35 µs) scales all rates alike and cancels in the
 *      weights.
 *
 * N must cover the probe at the host's top speed (~4 instructions per cycle), which makes a probe
 * cost ~0.3 s of functional execution: too much for every sample. So probes are taken for the
 * first few samples of each phase (PhaseTable: samples grouped by the basic blocks their
 * functional warming ran). The probe's timed run is a window: its instructions per 64-byte code
 * line come from the trace, and its rate goes to the phase that owns most of them (windowRates;
 * a code line belongs to the phase whose samples' warming ran it most, the rule PhaseProfile
 * uses for KVM time). S' is not in the trace when KVM served a syscall, stopped inside a
 * rep-string instruction or read the TSC (the models' clocks differ): the phase is probed again
 * at its next sample.
 */
import type { O3Model, KvmModel, ModelOutcome } from '../switch/models.js';
import type { System } from '../switch/system.js';
import { gprFingerprintOf } from '../detailed/state.js';
import type { ThreadContext } from '../guest/threadContext.js';
import { InternalError } from '../errors.js';

export interface HostRateMeasurement {
  /** Instructions KVM executed in the probe (exact). */
  insts: number;
  /** Host seconds inside KVM_RUN for them. */
  seconds: number;
}

/** A timed probe run and the code it ran: instructions per 64-byte code line (from the trace). */
export interface ProbeWindow extends HostRateMeasurement {
  lines: Map<number, number>;
}

export type ProbeResult =
  /**
   * measurement: the timed run. seconds / stopInsts: KVM_RUN time and instructions of both runs
   * (the guest progressed through both: it is now stopInsts past where the probe started).
   */
  | { kind: 'measured'; measurement: HostRateMeasurement; window: ProbeWindow; tracedInsts: number; seconds: number; stopInsts: number }
  | { kind: 'missed'; reason: string; tracedInsts: number; seconds: number }
  /** The guest ended during the probe (KVM's outcome). */
  | { kind: 'ended'; outcome: ModelOutcome };

/** Warm-up runs of a probe at most (see HostRateProbe.plan). */
const MAX_WARM_RUNS = 12;
/** Fewer instructions than this make a probe too short to time (a kick that hit at once). */
const MIN_PROBE_INSTS = 2_000;

export class HostRateProbe {
  private readonly rips: Float64Array;
  private readonly fps: Int32Array;
  /** Keeps the cache-refill reads from being optimised away. */
  private sink = 0;

  constructor(
    /** Instructions traced when the phase rate is unknown: two 250 µs runs at up to ~12 per ns. */
    readonly traceInsts = 6_000_000,
    /** Host seconds of the timed KVM run (after entering KVM_RUN). */
    readonly probeSeconds = 250e-6,
    /** Host seconds of the untimed KVM run before it, which re-warms the host's caches. */
    readonly warmSeconds = 250e-6,
  ) {
    this.rips = new Float64Array(traceInsts + 1);
    this.fps = new Int32Array(traceInsts + 1);
  }

  /**
   * Runs one probe from o3's current state (pipeline empty). KVM runs the guest afterwards: on
   * return (but 'ended') the system is on KVM, at S'.
   */
  async probe(system: System, o3: O3Model, kvm: KvmModel, knownRate?: number): Promise<ProbeResult> {
    const { warmSeconds, warmRuns, timedSeconds, traceInsts } = this.plan(knownRate);
    const n = this.trace(o3, traceInsts);
    await system.switchTo('kvm');
    // Two runs: the first is not timed. After any pause of the vCPU thread (the trace, a switch)
    // the guest runs slower for a while: ~1.5 ms of extra KVM time per pause for a pointer chase
    // over 8 MiB (caches and TLBs of a descheduled vCPU); the first run absorbs that.
    let total = 0;
    let at0 = 0;
    let measured = 0;
    let seconds = 0;
    for (let run = 0; run <= warmRuns; run++) {
      const timed = run === warmRuns;
      const run0 = (await kvm.client.stats()).hostRunSeconds;
      const out = await system.run({ timerSeconds: timed ? timedSeconds : warmSeconds });
      seconds = (await kvm.client.stats()).hostRunSeconds - run0;
      total += seconds;
      if (out.kind === 'exited' || out.kind === 'faulted') return { kind: 'ended', outcome: out };
      if (out.kind !== 'limit') return this.miss(out.kind === 'm5op' ? 'm5op' : 'syscall', n, total);
      // Only the timed run's two ends need finding (the last warm-up run's end is the first).
      if (run < warmRuns - 1) continue;
      const at = this.find(await kvm.threadContext(), n, at0);
      if (at < 0) return this.miss(n > traceInsts ? 'beyond trace' : 'not in trace', n, total);
      measured = at - at0;
      at0 = at;
    }
    if (measured < MIN_PROBE_INSTS || !(seconds > 0)) return this.miss('too short', n, total);
    const measurement = { insts: measured, seconds };
    return { kind: 'measured', measurement, window: { ...measurement, lines: this.codeLines(at0 - measured, at0) }, tracedInsts: n - 1, seconds: total, stopInsts: at0 };
  }

  /** Instructions per 64-byte code line over trace entries [from, to). */
  private codeLines(from: number, to: number): Map<number, number> {
    const out = new Map<number, number>();
    let line = -1;
    let run = 0;
    for (let j = from; j < to; j++) {
      const l = Math.floor(this.rips[j]! / 64);
      if (l === line) {
        run++;
        continue;
      }
      if (run > 0) out.set(line, (out.get(line) ?? 0) + run);
      line = l;
      run = 1;
    }
    if (run > 0) out.set(line, (out.get(line) ?? 0) + run);
    return out;
  }

  /**
   * A probe's runs and trace length. Both runs are as long as a profiled fast-forward chunk: every
   * exit from KVM_RUN slows the guest for a while after it (~2 ms of extra time per exit for a
   * pointer chase over 8 MiB, ~0.2 ms for branchy code: caches, TLBs and predictors of a vCPU
   * that left the guest), so a rate is only right for time spent in stretches of the same kind.
   * The warm-up run stands for the chunk before. Unknown rate: the whole trace (room for ~6
   * instructions per cycle at 2 GHz); known (an earlier probe of the phase): three times that.
   */
  plan(rate: number | undefined): { warmSeconds: number; warmRuns: number; timedSeconds: number; traceInsts: number } {
    const warmSeconds = this.warmSeconds;
    const timedSeconds = this.probeSeconds;
    if (rate === undefined || !(rate > 0)) return { warmSeconds, warmRuns: 1, timedSeconds, traceInsts: this.traceInsts };
    // As many chunk-long warm-up runs as the trace covers at three times the rate, up to 12
    // (~3 ms: a pointer chase needs ~2 ms to recover from the trace's pause).
    const perRun = 3 * rate * warmSeconds;
    const warmRuns = Math.max(1, Math.min(MAX_WARM_RUNS, Math.floor(this.traceInsts / perRun) - 1));
    return { warmSeconds, warmRuns, timedSeconds, traceInsts: Math.min(this.traceInsts, Math.ceil(perRun * (warmRuns + 1)) + 10_000) };
  }

  private miss(reason: string, entries: number, seconds: number): ProbeResult {
    return { kind: 'missed', reason, tracedInsts: Math.max(0, entries - 1), seconds };
  }

  /** Step 1: the traced, undone pre-run. Returns the trace entries recorded. */
  private trace(o3: O3Model, traceInsts: number): number {
    const cpu = o3.cpu;
    const mem = cpu.mem;
    const bytes = mem.bytes;
    const saved = cpu.getThreadContext();
    const inst0 = cpu.s.instructions;
    const undo = new Map<number, Uint8Array>();
    const touched = new Set<number>();
    mem.flushTlb();
    mem.writeWatch = (page) => {
      if (!undo.has(page)) undo.set(page, bytes.slice(page, page + 4096));
    };
    mem.readWatch = (page) => touched.add(page);
    // The detailed CPU's memory records every access for its pipeline: keep that list empty.
    const tm = mem as { count?: number };
    const clearTrace = typeof tm.count === 'number' ? () => (tm.count = 0) : null;
    const hook = cpu.blockHook;
    cpu.blockHook = clearTrace;
    let n: number;
    try {
      n = cpu.runTraced(traceInsts, this.rips, this.fps);
    } finally {
      cpu.blockHook = hook;
      mem.writeWatch = null;
      mem.readWatch = null;
      for (const [page, old] of undo) bytes.set(old, page);
      // The trace (tens of MB) pushed the guest's data out of the host's caches: read back every
      // line of the pages it touched, so that KVM's probe meets them in the shared last-level
      // cache as it would have in an undisturbed run.
      for (const page of undo.keys()) touched.add(page);
      let x = 0;
      for (const page of touched) for (let o = 0; o < 4096; o += 64) x ^= bytes[page + o]!;
      this.sink ^= x;
      mem.flushTlb();
      cpu.setThreadContext(saved);
      cpu.s.instructions = inst0;
      if (clearTrace) clearTrace();
    }
    return n;
  }

  /** Step 3: the index (from `from` on) of a KVM stop in the trace (its instruction count), or -1. */
  private find(tc: ThreadContext, entries: number, from: number): number {
    const rip = Number(tc.rip);
    const fp = gprFingerprintOf(tc.gpr);
    const rips = this.rips;
    const fps = this.fps;
    for (let j = from; j < entries; j++) if (rips[j] === rip && fps[j] === fp) return j;
    return -1;
  }
}

/**
 * Where KVM spends its time, by phase: the fast-forward runs in chunks of about a millisecond
 * and the rip it stops at names the phase (the phase whose samples' warming ran that 64-byte
 * code line most), like a sampling profiler. Chunks in code no sample's warming ran go with the phase of
 * the chunk before them (the first ones with the next known one).
 */
export class PhaseProfile {
  /** Code line → phase → instructions the phase's warming ran in it. */
  private readonly lines = new Map<number, Map<number, number>>();
  private readonly chunks: { rip: number; seconds: number }[] = [];
  private readonly windows: ProbeWindow[] = [];

  constructor(
    /**
     * Bytes of code per owned line. Probe windows count 64-byte lines, so host rates need 64;
     * exact counts (atomic) use finer lines: two loops sharing a 64-byte line then stay apart.
     */
    readonly lineBytes = 64,
  ) {}

  /** The code a phase's sample ran: its warming's blocks and the instructions run in each. */
  addCode(phase: number, blocks: Iterable<[{ start: number; end: number }, number]>): void {
    for (const [b, n] of blocks) {
      for (let l = Math.floor(b.start / this.lineBytes); l <= Math.floor((Math.max(b.end, b.start + 1) - 1) / this.lineBytes); l++) {
        let m = this.lines.get(l);
        if (!m) this.lines.set(l, (m = new Map()));
        m.set(phase, (m.get(phase) ?? 0) + n);
      }
    }
  }

  /** The phase whose samples ran the code at `rip` most; undefined for code no sample ran. */
  phaseOf(rip: number): number | undefined {
    return this.phaseOfLine(Math.floor(rip / this.lineBytes));
  }

  /** A probe's timed run: where the phases' host rates come from (windowRates). */
  addWindow(w: ProbeWindow): void {
    if (this.lineBytes !== 64) throw new InternalError(`PhaseProfile: probe windows count 64-byte lines, not ${this.lineBytes}`);
    this.windows.push(w);
  }

  /** The phases' host rates from the probe windows so far (windowRates). */
  rates(): Map<number, PhaseRate> {
    return windowRates(this.windows, (line) => this.phaseOfLine(line) ?? UNKNOWN_CODE);
  }

  private phaseOfLine(line: number): number | undefined {
    const m = this.lines.get(line);
    if (!m) return undefined;
    let best: number | undefined;
    let most = -1;
    for (const [p, n] of m) if (n > most) [best, most] = [p, n];
    return best;
  }

  /** A fast-forward chunk of `seconds` that stopped at `rip`. */
  noteChunk(rip: number, seconds: number): void {
    this.chunks.push({ rip, seconds });
  }

  /** Seconds per phase, and the seconds of chunks whose phase had to be guessed. */
  secondsByPhase(): { seconds: Map<number, number>; guessed: number } {
    const out = new Map<number, number>();
    const phases = this.chunks.map((c) => this.phaseOf(c.rip));
    let guessed = 0;
    let prev: number | undefined = phases.find((p) => p !== undefined);
    for (let i = 0; i < this.chunks.length; i++) {
      let p = phases[i];
      if (p === undefined) {
        guessed += this.chunks[i]!.seconds;
        p = prev;
      }
      prev = p;
      if (p !== undefined) out.set(p, (out.get(p) ?? 0) + this.chunks[i]!.seconds);
    }
    return { seconds: out, guessed };
  }

  get chunkCount(): number {
    return this.chunks.length;
  }
}

/** The group of code lines no sample's warming ran, in windowRates. */
export const UNKNOWN_CODE = -1;

export interface PhaseRate {
  /** Instructions per KVM_RUN second. */
  rate: number;
  /** Its relative standard error. */
  relError: number;
  /** Probe windows that ran mostly its code. */
  windows: number;
}

/**
 * Each phase's host rate from the probe windows: a window's rate (instructions / KVM_RUN seconds)
 * goes to the phase that ran most of its instructions (by the owners of the code lines it ran), and
 * a phase's rate is the mean of its windows'. Its relative standard error is their spread / √k,
 * or, with one window, the pooled relative spread of the phases with several (±30% when none has).
 * Unlike a rate given to the phase of the sample before the probe, a window that ran into other
 * code counts where it ran. (A least-squares split of mixed windows was tried: a 64-byte line can
 * hold the ends of two loops, and one such window drove a phase's fitted rate to the bound.)
 */
export function windowRates(windows: readonly ProbeWindow[], groupOf: (line: number) => number): Map<number, PhaseRate> {
  const byGroup = new Map<number, number[]>();
  for (const w of windows) {
    if (!(w.seconds > 0) || w.insts <= 0) continue;
    const mix = new Map<number, number>();
    for (const [line, n] of w.lines) {
      const g = groupOf(line);
      mix.set(g, (mix.get(g) ?? 0) + n);
    }
    let best = UNKNOWN_CODE;
    let most = -1;
    for (const [g, n] of mix) if (n > most) [best, most] = [g, n];
    const l = byGroup.get(best) ?? [];
    l.push(w.insts / w.seconds);
    byGroup.set(best, l);
  }
  const stats = [...byGroup].map(([g, l]) => {
    const m = l.reduce((a, b) => a + b, 0) / l.length;
    const relVar = l.length > 1 ? l.reduce((a, r) => a + (r - m) ** 2, 0) / (l.length - 1) / (m * m) : NaN;
    return { g, m, k: l.length, relVar };
  });
  let num = 0;
  let den = 0;
  for (const x of stats) {
    if (x.k < 2) continue;
    num += (x.k - 1) * x.relVar;
    den += x.k - 1;
  }
  const pooled = den > 0 ? num / den : PRIOR_REL_VAR;
  return new Map(stats.map((x) => [x.g, { rate: x.m, relError: Math.sqrt((x.k > 1 ? x.relVar : pooled) / x.k), windows: x.k }] as const));
}

/** A rate's relative variance when no phase has two windows to tell it (±30%). */
const PRIOR_REL_VAR = 0.09;

/**
 * Phases: samples grouped by the code their functional warming ran (a basic-block vector, as in
 * SimPoint: instructions per block start, normalised). A sample joins the first phase whose
 * leader's vector is within L1 distance `threshold` (0 = same code in the same proportions,
 * 2 = disjoint code); else it leads a new phase.
 */
export class PhaseTable {
  private readonly leaders: Map<number, number>[] = [];
  constructor(readonly threshold = 0.6) {}

  /** The phase of a sample with this block vector (block start → instructions). */
  classify(bbv: ReadonlyMap<number, number>): number {
    const v = normalise(bbv);
    for (let i = 0; i < this.leaders.length; i++) if (l1(v, this.leaders[i]!) <= this.threshold) return i;
    this.leaders.push(v);
    return this.leaders.length - 1;
  }

  get count(): number {
    return this.leaders.length;
  }
}

function normalise(bbv: ReadonlyMap<number, number>): Map<number, number> {
  let total = 0;
  for (const n of bbv.values()) total += n;
  const out = new Map<number, number>();
  if (total > 0) for (const [k, n] of bbv) out.set(k, n / total);
  return out;
}

function l1(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): number {
  let d = 0;
  for (const [k, x] of a) d += Math.abs(x - (b.get(k) ?? 0));
  for (const [k, y] of b) if (!a.has(k)) d += y;
  return d;
}
