/**
 * The CPU models as a System sees them: one interface, so a new model plugs in without touching
 * the switch logic. A model holds the guest only between `takeOverFrom` and `switchOut`; what
 * travels between models is a Handoff (ThreadContext and ProcessState, both msgpack records).
 * Guest memory is shared by all of them and never copied.
 *
 * Model state machine (one line per state below):
 * ```mermaid
 * stateDiagram-v2
 *   [*] --> idle
 *   idle --> active: takeOverFrom
 *   active --> active: run (limit, m5op, syscall)
 *   active --> drained: drain
 *   drained --> active: run
 *   drained --> idle: switchOut
 *   active --> ended: exit / fault
 *   ended --> [*]: close
 *   idle --> [*]: close
 * ```
 * - idle: no guest; the model may keep warm caches and predictor state (o3 does).
 * - active: holds the guest and the execution token; run() executes guest instructions.
 * - drained: nothing in flight (KVM: no KVM_RUN, no pending exit; o3: pipeline empty, all stores
 *   written), the architectural state is exact: ready to switch out.
 * - ended: the guest exited or faulted on this model.
 */
import { decodeThreadContext, encodeThreadContext } from '../guest/contextCodec.js';
import type { GuestFaultReport } from '../guest/faults.js';
import type { M5OpCall } from '../guest/m5ops.js';
import type { Process, ProcessState } from '../guest/process.js';
import { decodeProcessState, encodeProcessState } from '../guest/processCodec.js';
import type { CpuidEntry } from '../kvm/cpuid.js';
import type { Stat } from '../stats.js';
import type { ThreadContext } from '../guest/threadContext.js';
import { AtomicCPU, type AtomicOutcome } from '../detailed/atomicCpu.js';
import { atomicStatsList, type AtomicStats } from '../detailed/runAtomic.js';
import { buildO3Parts } from '../detailed/o3/runO3.js';
import { warmFunctionally } from '../detailed/o3/warming.js';
import type { MemSystem } from '../detailed/o3/mem/hierarchy.js';
import type { BranchPredictorUnit } from '../detailed/o3/bpred/branchUnit.js';
import type { O3Config } from '../detailed/o3/config.js';
import type { O3Cpu } from '../detailed/o3/o3Cpu.js';
import { FunctionalStream } from '../detailed/o3/trace.js';
import { tracingMemory, type TracingMemory } from '../detailed/o3/tracingMemory.js';
import { KvmCpuClient } from '../kvm/client.js';
import { StopRequest } from '../kvm/control.js';
import { kvmStatsList, type KvmStats } from '../kvm/stats.js';
import { InternalError } from '../errors.js';
import { monotonicNs, type CpuModelName, type ExecutionToken, type RunTimeline } from './token.js';

/** What crosses from one model to the next: both records msgpack-encoded. */
export interface Handoff {
  threadContext: Uint8Array;
  processState: Uint8Array;
}

/** How far one run() may go. Every field is optional; with none the run goes to the end. */
export interface RunLimit {
  /** Guest instructions (exact on the JS models; on KVM converted to host time, see KvmModel). */
  insts?: number;
  /** Host seconds. */
  seconds?: number;
  /** Stop after each syscall is served (a switch point with nothing pending). */
  stopAfterSyscall?: boolean;
  /**
   * KVM only: pause this many host seconds after the run starts, timed by a POSIX timer on the
   * vCPU thread (no main-thread or event-loop jitter, sub-millisecond): host-rate probes and
   * profiled fast-forward chunks (sample/hostRate.ts). The JS models ignore it.
   */
  timerSeconds?: number;
  /**
   * o3 only: with `insts`, fetch may run this many instructions past the limit, and they stay
   * in flight at the stop (no drain), so the next run continues with a full pipeline — a
   * detailed warm-up followed by a measured unit with a stats reset between them.
   */
  fetchBeyond?: number;
}

export type ModelOutcome =
  | { kind: 'exited'; status: number }
  | { kind: 'faulted'; report: GuestFaultReport }
  | { kind: 'm5op'; call: M5OpCall }
  | { kind: 'syscall' }
  | { kind: 'limit' };

export type ModelState = 'idle' | 'active' | 'drained' | 'ended';

export interface CpuModel {
  readonly name: CpuModelName;
  readonly state: ModelState;
  /** Whether instruction counts (and so `insts` limits) are exact. */
  readonly exactInstructions: boolean;
  /** gem5 takeOverFrom: become the running model from another's handoff. */
  takeOverFrom(h: Handoff): Promise<void>;
  run(limit: RunLimit): Promise<ModelOutcome>;
  /** gem5 drain: finish everything in flight; afterwards the architectural state is exact. */
  drain(): Promise<void>;
  /** gem5 switchOut: give the guest up (only when drained). */
  switchOut(): Promise<Handoff>;
  /** Guest instructions executed on this model so far (KVM: not counted, 0). */
  instructions(): number;
  /** The architectural state now (drained or ended: exact). */
  threadContext(): Promise<ThreadContext>;
  /** The process state now, msgpack (drained or ended); the model keeps the guest. */
  processState(): Promise<Uint8Array>;
  stats(): Promise<Stat[]>;
  resetStats(): Promise<void>;
  close(): Promise<void>;
}

/** A model was asked for something its state does not allow: a bug in the driver. */
export class ModelStateError extends InternalError {
  constructor(model: string, action: string, state: string) {
    super(`${model} CPU: ${action} is not allowed in state '${state}'`);
  }
}

/** Things every JS model shares with the System. */
export interface JsModelContext {
  /** The main thread's guest process (adopts each handoff in place). */
  process: Process;
  cpuid: readonly CpuidEntry[];
  xcr0: bigint | null;
  freqHz: number;
  token: ExecutionToken;
  timeline: RunTimeline;
  warn: (message: string) => void;
}

const ATOMIC_SLICE = 1_000_000;

/** The process's state with the guest clock as the functional core has advanced it. */
function snapshotWithClock(ctx: JsModelContext, cpu: AtomicCPU): ProcessState {
  ctx.process.guestTimeNs = cpu.guestTimeNs();
  return ctx.process.snapshot();
}

/**
 * A JS model takes a handoff: the main thread's process adopts the state in place, the
 * functional core the registers and the guest clock. Another model may have written code or
 * changed mappings: decoded code stays only if the pages it came from are unchanged (returned).
 */
function takeJsHandoff(ctx: JsModelContext, cpu: AtomicCPU, h: Handoff, fingerprint: ReadonlyMap<number, number> | null): boolean {
  const p = ctx.process;
  p.adopt(decodeProcessState(h.processState, p.aspace.phys.size, p.aspace));
  const kept = cpu.revalidateCode(fingerprint);
  cpu.setThreadContext(decodeThreadContext(h.threadContext));
  cpu.startClock(p.guestTimeNs);
  return kept;
}

/** A JS model's handoff: its functional core's registers and the main thread's process. */
function jsHandoff(ctx: JsModelContext, cpu: AtomicCPU): Handoff {
  return { threadContext: encodeThreadContext(cpu.getThreadContext()), processState: encodeProcessState(snapshotWithClock(ctx, cpu)) };
}
const O3_SLICE = 20_000;

function endOf(out: AtomicOutcome): ModelOutcome | null {
  switch (out.kind) {
    case 'exited':
    case 'faulted':
    case 'm5op':
      return out;
    default:
      return null;
  }
}

/** The functional CPU (gem5 AtomicSimpleCPU): exact instruction counts, one cycle each. */
export class AtomicModel implements CpuModel {
  readonly name = 'atomic' as const;
  readonly exactInstructions = true;
  private _state: ModelState = 'idle';
  readonly cpu: AtomicCPU;
  private statsBase = { instructions: 0, syscalls: 0, hostSeconds: 0 };
  /** The code pages' fingerprint at the last switchOut (see AtomicCPU.revalidateCode). */
  private codeFingerprint: Map<number, number> | null = null;
  private hostSeconds = 0;

  constructor(private readonly ctx: JsModelContext) {
    this.cpu = new AtomicCPU({
      aspace: ctx.process.aspace,
      process: ctx.process,
      cpuid: ctx.cpuid,
      freqHz: ctx.freqHz,
      warn: ctx.warn,
      token: { token: ctx.token, model: 'atomic' },
      ...(ctx.xcr0 != null ? { xcr0: ctx.xcr0 } : {}),
    });
  }

  get state(): ModelState {
    return this._state;
  }

  takeOverFrom(h: Handoff): Promise<void> {
    if (this._state !== 'idle') throw new ModelStateError('atomic', 'takeOverFrom', this._state);
    takeJsHandoff(this.ctx, this.cpu, h, this.codeFingerprint);
    this._state = 'active';
    return Promise.resolve();
  }

  run(limit: RunLimit): Promise<ModelOutcome> {
    if (this._state !== 'active' && this._state !== 'drained') throw new ModelStateError('atomic', 'run', this._state);
    this._state = 'active';
    const cpu = this.cpu;
    const t0 = performance.now();
    const startNs = monotonicNs();
    const deadline = limit.seconds !== undefined ? t0 + limit.seconds * 1000 : Infinity;
    const stopAt = limit.insts !== undefined ? cpu.instructions + limit.insts : Infinity;
    cpu.stopAtSyscalls = limit.stopAfterSyscall === true;
    let result: ModelOutcome | undefined;
    try {
      while (!result) {
        const budget = Math.min(ATOMIC_SLICE, stopAt - cpu.instructions);
        if (budget <= 0) {
          result = { kind: 'limit' };
          break;
        }
        this.ctx.token.check('atomic');
        const out = cpu.run(budget);
        if (out.kind === 'syscall') {
          const served = cpu.run(0); // serves it; executes nothing more
          result = endOf(served) ?? { kind: 'syscall' };
          break;
        }
        result = endOf(out) ?? undefined;
        if (!result && performance.now() >= deadline) result = { kind: 'limit' };
      }
    } finally {
      cpu.stopAtSyscalls = false;
      this.hostSeconds += (performance.now() - t0) / 1000;
      this.ctx.timeline.add({ model: 'atomic', startNs, endNs: monotonicNs() });
    }
    if (result.kind === 'exited' || result.kind === 'faulted') this._state = 'ended';
    return Promise.resolve(result);
  }

  drain(): Promise<void> {
    // Nothing is ever in flight between two instructions of the atomic CPU.
    if (this._state === 'active') this._state = 'drained';
    return Promise.resolve();
  }

  switchOut(): Promise<Handoff> {
    if (this._state !== 'drained') throw new ModelStateError('atomic', 'switchOut', this._state);
    const h = jsHandoff(this.ctx, this.cpu);
    this.codeFingerprint = this.cpu.codeFingerprint();
    this._state = 'idle';
    return Promise.resolve(h);
  }

  instructions(): number {
    return this.cpu.instructions;
  }

  threadContext(): Promise<ThreadContext> {
    return Promise.resolve(this.cpu.getThreadContext());
  }

  processState(): Promise<Uint8Array> {
    return Promise.resolve(encodeProcessState(snapshotWithClock(this.ctx, this.cpu)));
  }

  private current(): AtomicStats {
    const b = this.statsBase;
    return {
      model: 'atomic',
      instructions: this.cpu.instructions - b.instructions,
      hostSeconds: this.hostSeconds - b.hostSeconds,
      freqHz: this.ctx.freqHz,
      syscalls: this.cpu.syscalls - b.syscalls,
      syscallsByName: {},
    };
  }

  stats(): Promise<Stat[]> {
    return Promise.resolve(atomicStatsList(this.current(), 'system.atomic_cpu'));
  }

  resetStats(): Promise<void> {
    this.statsBase = { instructions: this.cpu.instructions, syscalls: this.cpu.syscalls, hostSeconds: this.hostSeconds };
    return Promise.resolve();
  }

  close(): Promise<void> {
    this._state = 'idle';
    return Promise.resolve();
  }
}

/**
 * The detailed out-of-order CPU. Its caches, TLBs and branch predictor keep their contents while
 * it is switched out (gem5: drained caches stay warm). Instruction limits are exact: the
 * functional stream hands out exactly that many instructions, then the pipeline empties.
 */
export class O3Model implements CpuModel {
  readonly name = 'o3' as const;
  readonly exactInstructions = true;
  private _state: ModelState = 'idle';
  readonly cpu: AtomicCPU;
  readonly stream: FunctionalStream;
  readonly o3: O3Cpu;
  readonly memSystem: MemSystem;
  readonly bpred: BranchPredictorUnit;
  private committed = 0;
  /** The code pages' fingerprint at the last switchOut (see AtomicCPU.revalidateCode). */
  private codeFingerprint: Map<number, number> | null = null;
    /** Instructions executed by functional warming (no timing; counted apart from committed). */
  warmedInsts = 0;
  private hostSeconds = 0;
  private hostSecondsBase = 0;

  constructor(private readonly ctx: JsModelContext, config: O3Config) {
    let tracing: TracingMemory | undefined;
    this.cpu = new AtomicCPU({
      aspace: ctx.process.aspace,
      process: ctx.process,
      cpuid: ctx.cpuid,
      freqHz: ctx.freqHz,
      warn: ctx.warn,
      memory: (a) => (tracing = tracingMemory(a)),
      token: { token: ctx.token, model: 'o3' },
      ...(ctx.xcr0 != null ? { xcr0: ctx.xcr0 } : {}),
    });
    this.stream = new FunctionalStream(this.cpu, tracing!);
    const parts = buildO3Parts(config, this.stream);
    this.o3 = parts.o3;
    this.memSystem = parts.mem;
    this.bpred = parts.bpred;
  }

  get state(): ModelState {
    return this._state;
  }

  takeOverFrom(h: Handoff): Promise<void> {
    if (this._state !== 'idle') throw new ModelStateError('o3', 'takeOverFrom', this._state);
    if (!takeJsHandoff(this.ctx, this.cpu, h, this.codeFingerprint)) this.stream.invalidate();
    this.o3.resume();
    this._state = 'active';
    return Promise.resolve();
  }

  run(limit: RunLimit): Promise<ModelOutcome> {
    if (this._state !== 'active' && this._state !== 'drained') throw new ModelStateError('o3', 'run', this._state);
    if (this._state === 'drained') this.o3.resume();
    this._state = 'active';
    const o3 = this.o3;
    const stream = this.stream;
    const t0 = performance.now();
    const startNs = monotonicNs();
    const deadline = limit.seconds !== undefined ? t0 + limit.seconds * 1000 : Infinity;
    // Fetch exactly up to the limit: the pipeline then drains there by itself.
    const fetchedTarget = limit.insts !== undefined ? this.committed + limit.insts : Infinity;
    const beyond = fetchedTarget === Infinity ? 0 : Math.max(0, limit.fetchBeyond ?? 0);
    stream.limitFetch(fetchedTarget === Infinity ? Infinity : fetchedTarget + beyond - this.committed - this.inFlight());
    stream.stopAfterSyscall = limit.stopAfterSyscall === true;
    let result: ModelOutcome | undefined;
    try {
      while (!result) {
        this.ctx.token.check('o3');
        // Committing stops exactly at the target when younger instructions stay in flight.
        const r = o3.run(beyond > 0 ? Math.min(O3_SLICE, fetchedTarget - this.committed) : O3_SLICE);
        this.committed += r.insts;
        if (beyond > 0 && this.committed >= fetchedTarget) {
          result = { kind: 'limit' };
        } else if (o3.done) {
          const end = stream.outcome;
          if (end && (end.kind === 'exited' || end.kind === 'faulted')) result = end;
          else if (stream.pendingM5op) result = { kind: 'm5op', call: stream.takeM5op()! };
          else if (stream.takeSyscallStop()) result = { kind: 'syscall' };
          else if (this.committed >= fetchedTarget) result = { kind: 'limit' };
          else throw new InternalError(`o3: pipeline empty with no reason to stop (committed ${this.committed})`);
        } else if (performance.now() >= deadline) {
          result = { kind: 'limit' };
        }
      }
    } finally {
      stream.stopAfterSyscall = false;
      stream.limitFetch(Infinity);
      this.hostSeconds += (performance.now() - t0) / 1000;
      this.ctx.timeline.add({ model: 'o3', startNs, endNs: monotonicNs() });
    }
    if (result.kind === 'exited' || result.kind === 'faulted') this._state = 'ended';
    return Promise.resolve(result);
  }

  /**
   * Functional warming (gem5: before a detailed region): the functional core executes `insts`
   * instructions with no timing while they train the caches, TLBs and branch predictor. Only
   * with the pipeline empty (after takeOverFrom or drain). Returns the instructions executed
   * (fewer if the guest ended or stopped at an m5op: see `stream.outcome` / `stream.pendingM5op`).
   */
  warm(insts: number): number {
    if (this._state !== 'active' && this._state !== 'drained') throw new ModelStateError('o3', 'warm', this._state);
    if (this.inFlight() !== 0) throw new InternalError('o3: functional warming with instructions in flight');
    this.ctx.token.check('o3');
    const startNs = monotonicNs();
    this.stream.limitFetch(insts);
    const n = warmFunctionally(this.stream, this.memSystem, this.bpred, insts);
    this.stream.limitFetch(Infinity);
    this.warmedInsts += n;
    // Warming instructions never enter the pipeline: count them as done for the fetch accounting.
    this.committed += n;
    this.ctx.timeline.add({ model: 'o3', startNs, endNs: monotonicNs() });
    return n;
  }

  drain(): Promise<void> {
    if (this._state !== 'active' && this._state !== 'drained') return Promise.resolve();
    this.ctx.token.check('o3');
    const startNs = monotonicNs();
    const r = this.o3.drain();
    this.committed += r.insts;
    this.ctx.timeline.add({ model: 'o3', startNs, endNs: monotonicNs() });
    if (!this.o3.isDrained) throw new InternalError('o3: drain() returned with instructions in flight');
    this._state = 'drained';
    return Promise.resolve();
  }

  switchOut(): Promise<Handoff> {
    if (this._state !== 'drained') throw new ModelStateError('o3', 'switchOut', this._state);
    const h = jsHandoff(this.ctx, this.cpu);
    this.codeFingerprint = this.cpu.codeFingerprint();
    this._state = 'idle';
    return Promise.resolve(h);
  }

  instructions(): number {
    return this.committed;
  }

  threadContext(): Promise<ThreadContext> {
    return Promise.resolve(this.cpu.getThreadContext());
  }

  processState(): Promise<Uint8Array> {
    return Promise.resolve(encodeProcessState(snapshotWithClock(this.ctx, this.cpu)));
  }

  /** The rip of the next instruction to commit: the functional core's when nothing is in flight. */
  nextCommitRip(): number {
    const pc = this.o3.commitStage.nextPc;
    return this.inFlight() === 0 || pc < 0 ? this.cpu.s.rip : pc;
  }

  /** Instructions taken from the stream but not committed yet (handedOut counts from construction, like committed). */
  private inFlight(): number {
    return this.stream.handedOut - this.committed;
  }

  stats(): Promise<Stat[]> {
    const list = this.o3.stats().map((s) => (s.name.startsWith('system.cpu.') ? { ...s, name: `system.o3_cpu.${s.name.slice(11)}` } : s));
    list.push({ name: 'system.o3_cpu.hostSeconds', value: this.hostSeconds - this.hostSecondsBase, desc: 'Host seconds spent in the o3 model', unit: 's' });
    return Promise.resolve(list);
  }

  resetStats(): Promise<void> {
    this.o3.resetStats();
    this.hostSecondsBase = this.hostSeconds;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this._state = 'idle';
    return Promise.resolve();
  }
}

/** Instructions per host cycle assumed when a KVM run is limited by instructions (no PMU here). */
export const KVM_ASSUMED_IPC = 1;

/**
 * The KVM CPU in its worker thread. Instruction limits become host time at KVM_ASSUMED_IPC and
 * the host frequency: this host has no PMU, so KVM cannot count guest instructions.
 */
export class KvmModel implements CpuModel {
  readonly name = 'kvm' as const;
  readonly exactInstructions = false;
  private _state: ModelState = 'idle';
  private statsBase: KvmStats | null = null;

  constructor(
    readonly client: KvmCpuClient,
    private readonly freqHz: number,
    private readonly timeline: RunTimeline,
  ) {}

  get state(): ModelState {
    return this._state;
  }

  async takeOverFrom(h: Handoff): Promise<void> {
    if (this._state !== 'idle') throw new ModelStateError('kvm', 'takeOverFrom', this._state);
    await this.client.takeOver(h.threadContext, h.processState);
    this._state = 'active';
  }

  async run(limit: RunLimit): Promise<ModelOutcome> {
    if (this._state !== 'active' && this._state !== 'drained') throw new ModelStateError('kvm', 'run', this._state);
    this._state = 'active';
    const timed = limit.timerSeconds !== undefined;
    let seconds = timed ? Infinity : limit.seconds ?? Infinity;
    if (limit.insts !== undefined && !timed) seconds = Math.min(seconds, limit.insts / (this.freqHz * KVM_ASSUMED_IPC));
    const c = this.client;
    let timer: NodeJS.Timeout | undefined;
    if (seconds !== Infinity) {
      const ms = Math.max(0, seconds * 1000);
      // Kick once the worker is inside its run loop (a kick before would be dropped as stale).
      timer = setTimeout(function kick() {
        if (c.isRunning) c.kick(StopRequest.Pause);
        timer = setTimeout(kick, 1); // the run may not have started yet, or a kick raced an exit
      }, ms);
    }
    let out;
    try {
      if (timed) out = await c.run({ stopAfterSeconds: limit.timerSeconds! });
      else out = await c.run(limit.stopAfterSyscall ? { stopAfterSyscall: true } : undefined);
    } finally {
      clearTimeout(timer);
      if (c.lastSpan) this.timeline.add({ model: 'kvm', startNs: c.lastSpan.startNs, endNs: c.lastSpan.endNs });
    }
    switch (out.kind) {
      case 'exited':
      case 'faulted':
        this._state = 'ended';
        return out;
      case 'm5op':
        return out;
      case 'syscallDone':
        return { kind: 'syscall' };
      case 'paused':
      case 'stopped':
        return { kind: 'limit' };
      default:
        throw new InternalError(`KVM run ended unexpectedly: ${out.kind}`);
    }
  }

  drain(): Promise<void> {
    // Between runs the worker is in its message loop: no KVM_RUN in flight, every exit served
    // (an m5op access is completed before run() returns).
    if (this._state === 'active') this._state = 'drained';
    return Promise.resolve();
  }

  async switchOut(): Promise<Handoff> {
    if (this._state !== 'drained') throw new ModelStateError('kvm', 'switchOut', this._state);
    const h = await this.client.switchOut();
    this._state = 'idle';
    return h;
  }

  /** Not counted: this host has no PMU. */
  instructions(): number {
    return 0;
  }

  threadContext(): Promise<ThreadContext> {
    return this.client.getState();
  }

  processState(): Promise<Uint8Array> {
    return this.client.getProcessState();
  }

  async stats(): Promise<Stat[]> {
    const s = await this.client.stats();
    const b = this.statsBase;
    const d: KvmStats = b
      ? {
          ...s,
          hostRunSeconds: s.hostRunSeconds - b.hostRunSeconds,
          hostEmulationSeconds: s.hostEmulationSeconds - b.hostEmulationSeconds,
          runs: s.runs - b.runs,
          syscalls: s.syscalls - b.syscalls,
          kicks: s.kicks - b.kicks,
          tlbFlushes: s.tlbFlushes - b.tlbFlushes,
          exits: diffCounts(s.exits, b.exits),
          syscallsByName: diffCounts(s.syscallsByName, b.syscallsByName),
          m5ops: diffCounts(s.m5ops, b.m5ops),
        }
      : s;
    return kvmStatsList(d, 'system.kvm_cpu');
  }

  async resetStats(): Promise<void> {
    this.statsBase = await this.client.stats();
  }

  async close(): Promise<void> {
    try {
      await this.client.finish();
    } catch {
      await this.client.terminate();
    }
    this._state = 'idle';
  }
}

function diffCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(a)) if (v - (b[k] ?? 0) !== 0) out[k] = v - (b[k] ?? 0);
  return out;
}
