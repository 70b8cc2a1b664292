/**
 * How fast the host runs the guest in each phase of the program: a KVM probe whose instruction
 * count is known exactly, although this host has no PMU.
 *
 * Samples placed by KVM fall uniformly in host time. Where the host and o3 differ in speed from
 * phase to phase, the plain mean of per-sample IPCs is biased (a phase the host runs slowly gets
 * more samples than its share of instructions). Weighting each sample by the host's instruction
 * rate in its phase removes that bias: interval i holds rate_i × T instructions (stats.ts
 * ratioIpcEstimate). A probe, taken right after a sample's measured unit:
 *
 *   1. The functional core runs up to N instructions from the current state S recording rip + a
 *      GPR fingerprint before each (AtomicCPU.runTraced), with an undo log of every page it
 *      writes (GuestMemory.writeWatch). It serves nothing: it stops at a syscall or m5op. Then
 *      memory, registers and the instruction count go back to S.
 *   2. KVM runs from S for a fixed ~0.25 ms (RunLimit.probeSeconds) and stops at S'. KVM really
 *      executed those instructions from the true state: S' is where the program now is.
 *   3. S' (rip + fingerprint) is looked up in the trace: its index is the exact instruction count;
 *      its host time is the time inside KVM_RUN. Every probe has the same length, so the fixed
 *      cost of entering and leaving KVM_RUN (~35 µs) scales all rates alike and cancels in the
 *      weights.
 *
 * N must cover the probe at the host's top speed (~4 instructions per cycle), which makes a probe
 * cost ~0.2 s of functional execution: too much for every sample. So probes are taken once per
 * phase (PhaseTable: samples grouped by the basic blocks their functional warming ran) and each
 * sample takes its phase's rate. S' is not in the trace when KVM served a syscall, stopped inside a
 * rep-string instruction or read the TSC (the models' clocks differ): the phase is probed again
 * at its next sample.
 */
import type { O3Model, KvmModel, ModelOutcome } from '../switch/models.js';
import type { System } from '../switch/system.js';
import { gprFingerprintOf } from '../detailed/state.js';
import type { ThreadContext } from '../guest/threadContext.js';

export interface HostRateMeasurement {
  /** Instructions KVM executed in the probe (exact). */
  insts: number;
  /** Host seconds inside KVM_RUN for them. */
  seconds: number;
}

export type ProbeResult =
  | { kind: 'measured'; measurement: HostRateMeasurement; tracedInsts: number }
  | { kind: 'missed'; reason: string; tracedInsts: number; seconds: number }
  /** The guest ended during the probe (KVM's outcome). */
  | { kind: 'ended'; outcome: ModelOutcome };

/** Fewer instructions than this make a probe too short to time (a kick that hit at once). */
const MIN_PROBE_INSTS = 2_000;

export class HostRateProbe {
  private readonly rips: Float64Array;
  private readonly fps: Int32Array;
  /** Probes measured / missed, by reason. */
  measured = 0;
  readonly missed: Record<string, number> = {};
  /** Host seconds spent in the traced pre-runs. */
  tracingSeconds = 0;

  constructor(
    /** Instructions traced: enough for the probe at 4 instructions per cycle at 4 GHz. */
    readonly traceInsts = 4_000_000,
    /** Host seconds KVM runs per probe (after entering KVM_RUN). */
    readonly probeSeconds = 250e-6,
  ) {
    this.rips = new Float64Array(traceInsts + 1);
    this.fps = new Int32Array(traceInsts + 1);
  }

  /**
   * Runs one probe from o3's current state (pipeline empty). KVM runs the guest afterwards: on
   * return (but 'ended') the system is on KVM, at S'.
   */
  async probe(system: System, o3: O3Model, kvm: KvmModel): Promise<ProbeResult> {
    const t0 = performance.now();
    const n = this.trace(o3);
    this.tracingSeconds += (performance.now() - t0) / 1000;
    await system.switchTo('kvm');
    const run0 = (await kvm.client.stats()).hostRunSeconds;
    const out = await system.run({ probeSeconds: this.probeSeconds });
    const seconds = (await kvm.client.stats()).hostRunSeconds - run0;
    if (out.kind === 'exited' || out.kind === 'faulted') return { kind: 'ended', outcome: out };
    if (out.kind !== 'limit') return this.miss(out.kind === 'm5op' ? 'm5op' : 'syscall', n, seconds);
    const at = this.find(await kvm.threadContext(), n);
    if (at < 0) return this.miss(n > this.traceInsts ? 'beyond trace' : 'not in trace', n, seconds);
    if (at < MIN_PROBE_INSTS || !(seconds > 0)) return this.miss('too short', n, seconds);
    this.measured++;
    return { kind: 'measured', measurement: { insts: at, seconds }, tracedInsts: n - 1 };
  }

  private miss(reason: string, entries: number, seconds: number): ProbeResult {
    this.missed[reason] = (this.missed[reason] ?? 0) + 1;
    return { kind: 'missed', reason, tracedInsts: Math.max(0, entries - 1), seconds };
  }

  /** Step 1: the traced, undone pre-run. Returns the trace entries recorded. */
  private trace(o3: O3Model): number {
    const cpu = o3.cpu;
    const mem = cpu.mem;
    const bytes = mem.bytes;
    const saved = cpu.getThreadContext();
    const inst0 = cpu.s.instructions;
    const undo = new Map<number, Uint8Array>();
    mem.flushTlb();
    mem.writeWatch = (page) => {
      if (!undo.has(page)) undo.set(page, bytes.slice(page, page + 4096));
    };
    // The detailed CPU's memory records every access for its pipeline: keep that list empty.
    const tm = mem as { count?: number };
    const clearTrace = typeof tm.count === 'number' ? () => (tm.count = 0) : null;
    const hook = cpu.blockHook;
    cpu.blockHook = clearTrace;
    let n: number;
    try {
      n = cpu.runTraced(this.traceInsts, this.rips, this.fps);
    } finally {
      cpu.blockHook = hook;
      mem.writeWatch = null;
      for (const [page, old] of undo) bytes.set(old, page);
      mem.flushTlb();
      cpu.setThreadContext(saved);
      cpu.s.instructions = inst0;
      if (clearTrace) clearTrace();
    }
    return n;
  }

  /** Step 3: the index of S' in the trace (its instruction count), or -1. */
  private find(tc: ThreadContext, entries: number): number {
    const rip = Number(tc.rip);
    const fp = gprFingerprintOf(tc.gpr);
    const rips = this.rips;
    const fps = this.fps;
    for (let j = 0; j < entries; j++) if (rips[j] === rip && fps[j] === fp) return j;
    return -1;
  }
}

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
