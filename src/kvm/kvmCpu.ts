/**
 * The KVM fast-forward CPU: runs the guest on the host CPU through KVM_RUN and serves every
 * exit (syscalls, exceptions, m5op MMIO, kicks) on the host. Runs in the worker thread that
 * owns the vCPU; guest memory is the shared physical buffer.
 *
 * vCPU state machine (one line per state below):
 * ```mermaid
 * stateDiagram-v2
 *   [*] --> ready: load program
 *   ready --> running: run
 *   paused --> running: run
 *   running --> paused: kick (quantum, pause)
 *   running --> paused: kick (time limit)
 *   running --> exited: exit / exit_group / m5 exit
 *   running --> faulted: guest exception (signal)
 *   running --> failed: internal error
 *   ready --> ready: setState
 *   paused --> paused: setState
 *   created --> ready: takeOver
 *   switchedOut --> ready: takeOver
 *   ready --> switchedOut: switchOut
 *   paused --> switchedOut: switchOut
 *   switchedOut --> closed: finish
 *   ready --> closed: finish
 *   paused --> closed: finish
 *   exited --> closed: finish
 *   faulted --> closed: finish
 *   failed --> closed: finish
 * ```
 * - created: VM in long mode, no guest yet (a System's worker waits for takeOver here).
 * - ready: program loaded (or taken over), registers set, not run since.
 * - running: inside run(); only the worker's own thread is here (KVM_RUN or an exit handler).
 * - paused: KVM_RUN was interrupted (or stopped at an m5op / served syscall); state is consistent.
 * - switchedOut: the guest was handed to another model; the vCPU holds stale state and must not run.
 * - exited: the guest called exit/exit_group (or m5 exit); the status is final.
 * - faulted: the guest took an exception Linux would turn into a fatal signal.
 * - failed: switchsim hit an internal error; only finish is allowed.
 * - closed: fds released.
 *
 * Lockstep modes (differential testing against the JS cores, src/difftest): with `singleStep`
 * every entry sets TF, the #DB after each instruction comes through the exception stub and run()
 * returns 'stepped' (state 'paused'); a syscall instruction is one step (served, then 'stepped').
 * With `stopAtSyscalls` run() returns 'syscall' right after the syscall instruction (rip =
 * rcx = the next instruction, r11 = the flags) before serving it; the next run() serves it and
 * goes on (in single-step mode: serves it and executes one more instruction, as the atomic CPU's
 * run(1) does).
 */
import { InternalError } from '../errors.js';
import { libc, SIGUSR2, strerror } from '../native/libc.js';
import type { AddressSpace } from '../guest/addressSpace.js';
import { M5OP_PHYS, M5OP_SIZE, SE_SYSCALL_DOORBELL_PHYS, SE_WINDOW_END, SE_WINDOW_START } from '../guest/layout.js';
import { endsGuest, isKnownM5Op, m5ExitStatus, m5opCall, type M5OpCall } from '../guest/m5ops.js';
import type { ExecutionToken } from '../switch/token.js';
import type { Process } from '../guest/process.js';
import type { SyscallThread } from '../guest/syscalls.js';
import { syscallName } from '../guest/syscalls/names.js';
import { Gpr, USER_CS, type ThreadContext } from '../guest/threadContext.js';
import {
  KVM_REG_NAMES,
  readSyncReg,
  readSyncSegmentBase,
  readSyncSreg,
  writeSyncReg,
  writeSyncSegmentBase,
  SYNC_SEGMENT_OFFSET,
  KVM_SEGMENT_LAYOUT,
  type KvmRegName,
} from './abi.js';
import { ControlBlock, StopRequest } from './control.js';
import { describeExit, type KvmExit } from './exits.js';
import { buildFaultReport, type GuestFaultReport } from '../guest/faults.js';
import { KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS } from './ioctls.js';
import { KvmVM, USER_CODE_SEGMENT, USER_DATA_SEGMENT } from './kvmVm.js';
import type { KvmRunOptions, RunOutcome, RunSpan, VcpuStateName } from './protocol.js';
import { EXCEPTION_PORT, readExceptionFrame } from './seKernel.js';
import { emptyKvmStats, type KvmStats } from './stats.js';

/** The guest did something the KVM CPU cannot continue from (triple fault, failed entry…). */
export class KvmGuestStateError extends InternalError {}

/** kvm_regs order → our GPR index (x86 encoding order). */
const KVM_TO_GPR: Record<KvmRegName, number> = {
  rax: Gpr.rax, rbx: Gpr.rbx, rcx: Gpr.rcx, rdx: Gpr.rdx, rsi: Gpr.rsi, rdi: Gpr.rdi, rsp: Gpr.rsp, rbp: Gpr.rbp,
  r8: Gpr.r8, r9: Gpr.r9, r10: Gpr.r10, r11: Gpr.r11, r12: Gpr.r12, r13: Gpr.r13, r14: Gpr.r14, r15: Gpr.r15,
  rip: -1, rflags: -1,
};

const RFLAGS_FIXED = 0x2n;
const RFLAGS_TF = 0x100n;
const RFLAGS_RF = 0x10000n;
const DEBUG_VECTOR = 1;
const DOORBELL = BigInt(SE_SYSCALL_DOORBELL_PHYS);
/**
 * RF (resume flag) is cleared by the CPU after the next instruction; KVM can report it set when
 * KVM_RUN was interrupted around a restarted instruction. It is not program state: a handed-out
 * ThreadContext never carries it (the JS cores would keep it set forever).
 */
/** What SYSRET restores from R11 (Linux: everything but RF and VM), bit 1 forced. */
const SYSRET_RFLAGS_MASK = 0x3c7fd7n;

const UD_VECTOR = 6;

export interface KvmCpuOptions {
  hostFreqHz: number;
  hostFactor: number;
  warn: (message: string) => void;
  /** A System's execution token: checked before every KVM_RUN. */
  token?: ExecutionToken;
}

export class KvmCPU {
  private _state: VcpuStateName = 'created';
  readonly stats: KvmStats;
  private readonly run: DataView;
  private tlbGeneration: number;
  private exitStatus: number | null = null;
  private fault: GuestFaultReport | null = null;
  private readonly warnedM5ops = new Set<number>();
  private readonly thread: SyscallThread;
  /** Set TF on every entry and return 'stepped' after each instruction (lockstep per instruction). */
  singleStep = false;
  /** Return 'syscall' before serving each syscall (lockstep at syscalls). */
  stopAtSyscalls = false;
  /** A syscall stopped at by stopAtSyscalls, served on the next run(). */
  private pendingSyscall = false;
  private runOptions: KvmRunOptions = {};
  /** The guest's rip in kvm_run's synced registers: where a paused run stopped. */
  get rip(): number {
    return Number(readSyncReg(this.run, 'rip'));
  }

  /** The last run's span of host time (for the System's timeline). */
  lastSpan: RunSpan | null = null;
  private guest: Process | null;
  /** Guest clock: ns at the last takeOver plus the KVM_RUN time since (scaled by hostFactor). */
  private clockBaseNs = 0n;
  private clockBaseSeconds = 0;
  /** Set by takeOver: KVM must forget every translation before the next entry. */
  private forceSlotReload = false;

  constructor(
    readonly machine: KvmVM,
    process: Process | null,
    private readonly control: ControlBlock,
    private readonly opts: KvmCpuOptions,
  ) {
    this.guest = process;
    this.stats = emptyKvmStats(opts.hostFreqHz, opts.hostFactor);
    this.run = machine.vcpu.kvmRun;
    this.tlbGeneration = process?.aspace.tlbGeneration ?? -1;
    const run = this.run;
    const nsPerHostSecond = 1e9 * opts.hostFactor;
    this.thread = {
      getFsBase: () => readSyncSegmentBase(run, 'fs'),
      setFsBase: (v) => writeSyncSegmentBase(run, 'fs', v),
      getGsBase: () => readSyncSegmentBase(run, 'gs'),
      setGsBase: (v) => writeSyncSegmentBase(run, 'gs', v),
      // Guest clock = estimated guest cycles at the guest frequency (= host frequency).
      guestTimeNs: () => this.clockBaseNs + BigInt(Math.round((this.stats.hostRunSeconds - this.clockBaseSeconds) * nsPerHostSecond)),
      cpuTimeNs: () => this.clockBaseNs + BigInt(Math.round((this.stats.hostRunSeconds - this.clockBaseSeconds) * nsPerHostSecond)),
    };
  }

  get state(): VcpuStateName {
    return this._state;
  }

  get process(): Process {
    if (!this.guest) throw new KvmGuestStateError(`no guest process (vCPU state ${this._state})`);
    return this.guest;
  }

  get aspace(): AddressSpace {
    return this.process.aspace;
  }

  /**
   * Becomes the running model (gem5: takeOverFrom): the process (already adopted from the other
   * model's ProcessState) and its registers. Another model may have changed page tables behind
   * KVM's back, so translations are dropped unless nothing was unmapped since KVM last ran.
   */
  takeOver(process: Process, tc: ThreadContext, firstTime: boolean): void {
    if (this._state !== 'created' && this._state !== 'switchedOut' && this._state !== 'ready' && this._state !== 'paused') {
      throw new KvmGuestStateError(`takeOver in state ${this._state}`);
    }
    this.guest = process;
    this.clockBaseNs = process.guestTimeNs;
    this.clockBaseSeconds = this.stats.hostRunSeconds;
    this.pendingSyscall = false;
    this.exitStatus = null;
    this.fault = null;
    if (firstTime) this.forceSlotReload = true;
    this.updateKvmState(tc);
    this._state = 'ready';
  }

  /** Hands the guest over (gem5: switchOut): its registers now; the caller snapshots the process. */
  switchOut(): ThreadContext {
    if (this._state !== 'ready' && this._state !== 'paused') throw new KvmGuestStateError(`switchOut in state ${this._state}`);
    if (this.pendingSyscall) throw new KvmGuestStateError('switchOut with a syscall pending (stopAtSyscalls)');
    const tc = this.updateThreadContext();
    this.syncGuestTime();
    this._state = 'switchedOut';
    return tc;
  }

  /** Writes the guest clock into the process (before its state is snapshot for a handoff). */
  syncGuestTime(): void {
    if (this.guest) this.guest.guestTimeNs = this.thread.guestTimeNs();
  }

  /** Whether a guest process is attached (after load or a first takeOver). */
  get hasProcess(): boolean {
    return this.guest !== null;
  }

  /** Loads a ThreadContext into the vCPU (gem5: updateKvmState). The sync block becomes authoritative. */
  updateKvmState(tc: ThreadContext): void {
    const v = this.machine.vcpu;
    // Start from the sync block (authoritative since setup) so unmodelled fields (cr*, tr, gdt…) stay.
    const regs = v.syncRegs();
    for (const name of KVM_REG_NAMES) {
      const gi = KVM_TO_GPR[name];
      if (gi >= 0) regs[name] = tc.gpr[gi]!;
    }
    regs.rip = tc.rip;
    regs.rflags = tc.rflags | RFLAGS_FIXED;
    v.setSyncRegs(regs);
    const sregs = v.syncSregs();
    const cr3 = BigInt(this.aspace.cr3);
    // Only when something changed: loading SREGS makes KVM rebuild its shadow paging, and the
    // guest then runs ~1.7 ms slower after every switch (measured on kvm_pvm).
    const unchanged =
      sregs.fs.base === tc.fsBase && sregs.gs.base === tc.gsBase && sregs.cr3 === cr3 &&
      sregs.cs.selector === USER_CODE_SEGMENT.selector && sregs.ss.selector === USER_DATA_SEGMENT.selector;
    if (!unchanged) {
      sregs.fs.base = tc.fsBase;
      sregs.gs.base = tc.gsBase;
      sregs.cr3 = cr3;
      v.setSyncSregs(sregs);
      this.machine.restoreUserSegments();
    }
    v.setXsaveLegacy({
      fcw: tc.x87.fcw, fsw: tc.x87.fsw, ftw: tc.x87.ftw, fop: tc.x87.fop, fip: tc.x87.fip, fdp: tc.x87.fdp,
      mxcsr: tc.mxcsr, st: widenSt(tc.x87.st), xmm: tc.xmm,
    });
    if (this._state === 'created') this._state = 'ready';
  }

  /**
   * The integer part of updateThreadContext (GPRs, rip, rflags, segments) from the sync block,
   * without the KVM_GET_XSAVE ioctl; for per-instruction lockstep, which reads x87/SSE state
   * only after instructions that can change it.
   */
  updateThreadContextGprs(): Omit<ThreadContext, 'xmm' | 'mxcsr' | 'x87'> {
    const run = this.run;
    const gpr = new Array<bigint>(16);
    for (const name of KVM_REG_NAMES) {
      const gi = KVM_TO_GPR[name];
      if (gi >= 0) gpr[gi] = readSyncReg(run, name);
    }
    const seg = (name: 'cs' | 'ss' | 'ds' | 'es' | 'fs' | 'gs') =>
      run.getUint16(SYNC_SEGMENT_OFFSET[name] + KVM_SEGMENT_LAYOUT.selector, true);
    return {
      version: 1,
      gpr,
      rip: readSyncReg(run, 'rip'),
      rflags: readSyncReg(run, 'rflags') & ~RFLAGS_RF,
      fsBase: readSyncSegmentBase(run, 'fs'),
      gsBase: readSyncSegmentBase(run, 'gs'),
      seg: { cs: seg('cs'), ss: seg('ss'), ds: seg('ds'), es: seg('es'), fs: seg('fs'), gs: seg('gs') },
    };
  }

  /** Reads the vCPU's architectural state into a ThreadContext (gem5: updateThreadContext). */
  updateThreadContext(): ThreadContext {
    const run = this.run;
    const gpr = new Array<bigint>(16);
    for (const name of KVM_REG_NAMES) {
      const gi = KVM_TO_GPR[name];
      if (gi >= 0) gpr[gi] = readSyncReg(run, name);
    }
    const fpu = this.machine.vcpu.getXsaveLegacy();
    const seg = (name: 'cs' | 'ss' | 'ds' | 'es' | 'fs' | 'gs') =>
      run.getUint16(SYNC_SEGMENT_OFFSET[name] + KVM_SEGMENT_LAYOUT.selector, true);
    return {
      version: 1,
      gpr,
      rip: readSyncReg(run, 'rip'),
      rflags: readSyncReg(run, 'rflags') & ~RFLAGS_RF,
      fsBase: readSyncSegmentBase(run, 'fs'),
      gsBase: readSyncSegmentBase(run, 'gs'),
      seg: { cs: seg('cs'), ss: seg('ss'), ds: seg('ds'), es: seg('es'), fs: seg('fs'), gs: seg('gs') },
      xmm: fpu.xmm.slice(),
      mxcsr: fpu.mxcsr,
      x87: { fcw: fpu.fcw, fsw: fpu.fsw, ftw: fpu.ftw, fop: fpu.fop, fip: fpu.fip, fdp: fpu.fdp, st: narrowSt(fpu.st) },
    };
  }

  get exitCode(): number | null {
    return this.exitStatus;
  }

  /** Runs until the guest exits, faults, or the main thread asks it to stop. */
  runUntilStop(options: KvmRunOptions = {}): RunOutcome {
    if (this._state !== 'ready' && this._state !== 'paused') {
      throw new KvmGuestStateError(`run in state ${this._state}`);
    }
    const after = options.stopAfterSeconds;
    if (after !== undefined && !(Number.isFinite(after) && after > 0)) {
      throw new KvmGuestStateError(`run: stopAfterSeconds must be a positive number of seconds (got ${after})`);
    }
    this.opts.token?.check('kvm');
    // A pause that raced the end of the previous run must not end this one at once.
    if (this.control.dropStalePause()) this.machine.vcpu.setImmediateExit(false);
    this._state = 'running';
    this.runOptions = options;
    this.deferredStop = StopRequest.None;
    if (options.stopAfterSeconds !== undefined) this.armRunTimer(options.stopAfterSeconds);
    const vcpu = this.machine.vcpu;
    const stats = this.stats;
    const exits = stats.exits;
    const startNs = Number(process.hrtime.bigint());
    this.lastSpan = null;
    try {
      if (this.pendingSyscall) {
        this.pendingSyscall = false;
        const outcome = this.serveSyscall();
        if (outcome) return outcome;
      }
      for (;;) {
        const tf = process.hrtime.bigint();
        // The slot reload is host work on the guest's behalf: count it as emulation time.
        if (this.flushTlbIfNeeded()) stats.hostEmulationSeconds += Number(process.hrtime.bigint() - tf) / 1e9;
        if (this.singleStep) this.armSingleStep();
        this.opts.token?.check('kvm');
        const t0 = process.hrtime.bigint();
        const exit = vcpu.run();
        const t1 = process.hrtime.bigint();
        stats.hostRunSeconds += Number(t1 - t0) / 1e9;
        stats.runs++;
        exits[exit.reason] = (exits[exit.reason] ?? 0) + 1;
        const outcome = this.handleExit(exit);
        stats.hostEmulationSeconds += Number(process.hrtime.bigint() - t1) / 1e9;
        if (outcome) return outcome;
      }
    } catch (e) {
      this._state = 'failed';
      throw e;
    } finally {
      // Disarm whether or not the deadline was reached: the timer re-fires every 100 µs until then.
      if (this.runTimerArmed) this.disarmRunTimer();
      this.lastSpan = { startNs, endNs: Number(process.hrtime.bigint()) };
    }
  }

  /** Serves one exit; returns an outcome when run() must return. */
  private handleExit(exit: KvmExit): RunOutcome | null {
    switch (exit.reason) {
      case 'io':
        if (exit.port === EXCEPTION_PORT) return this.exception();
        throw new KvmGuestStateError(`unexpected I/O exit: ${describeExit(exit)} at rip 0x${readSyncReg(this.run, 'rip').toString(16)}`);
      case 'intr': {
        this.machine.vcpu.setImmediateExit(false);
        let req = this.control.takeStop();
        if (req === StopRequest.None && this.runTimerDeadlineNs !== null && process.hrtime.bigint() >= this.runTimerDeadlineNs) {
          req = StopRequest.Pause; // the run's own timer (stopAfterSeconds)
          this.runTimerDeadlineNs = null;
        }
        if (req === StopRequest.None) return null; // a stray signal: go on
        this.stats.kicks++;
        if (!this.atUserInstruction()) {
          // Kicked inside the SE kernel's syscall stub or an exception stub: the state is not a
          // user one. Finish the syscall (or exception) first and stop right after it.
          this.deferredStop = req;
          return null;
        }
        return this.stopFor(req);
      }
      case 'mmio':
        if (exit.physAddr === DOORBELL) return this.syscall();
        return this.mmio(exit);
      case 'shutdown':
        throw new KvmGuestStateError(`the vCPU triple-faulted (KVM_EXIT_SHUTDOWN) at rip 0x${readSyncReg(this.run, 'rip').toString(16)}`);
      default:
        throw new KvmGuestStateError(`unexpected KVM exit: ${describeExit(exit)} at rip 0x${readSyncReg(this.run, 'rip').toString(16)}`);
    }
  }

  private syscall(): RunOutcome | null {
    const run = this.run;
    // TF in the saved flags is ours (single-step), not the program's.
    if (this.singleStep) writeSyncReg(run, 'r11', readSyncReg(run, 'r11') & ~RFLAGS_TF);
    if (this.stopAtSyscalls) {
      // Present the state right after the syscall instruction: user rip and flags, CPL3.
      writeSyncReg(run, 'rip', readSyncReg(run, 'rcx'));
      writeSyncReg(run, 'rflags', (readSyncReg(run, 'r11') & SYSRET_RFLAGS_MASK) | RFLAGS_FIXED);
      this.machine.restoreUserSegments();
      this.machine.vcpu.markDirty(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
      this.pendingSyscall = true;
      this._state = 'paused';
      return { kind: 'syscall', nr: Number(readSyncReg(run, 'rax')) };
    }
    return this.syscallInline();
  }

  /**
   * Sets TF for the next user instruction. Only at a user-mode resume point: a signal can
   * interrupt KVM_RUN while the vCPU is inside an exception stub (CPL0), which must just go on.
   */
  private armSingleStep(): void {
    const run = this.run;
    const rflags = readSyncReg(run, 'rflags');
    if ((rflags & RFLAGS_TF) !== 0n) return;
    if (run.getUint16(SYNC_SEGMENT_OFFSET.cs + KVM_SEGMENT_LAYOUT.selector, true) !== USER_CS) return;
    writeSyncReg(run, 'rflags', rflags | RFLAGS_TF);
    this.machine.vcpu.markDirty(KVM_SYNC_X86_REGS);
  }

  /** A kick that arrived inside a stub, honoured once the guest is back at a user instruction. */
  private deferredStop: StopRequest = StopRequest.None;

  private stopFor(req: StopRequest): RunOutcome {
    this._state = 'paused';
    return req === StopRequest.TimeLimit ? { kind: 'stopped', reason: 'timeLimit' } : { kind: 'paused' };
  }

  /** Whether the vCPU is at a user-mode instruction of the program (not in the SE stubs). */
  private atUserInstruction(): boolean {
    const run = this.run;
    if (run.getUint16(SYNC_SEGMENT_OFFSET.cs + KVM_SEGMENT_LAYOUT.selector, true) !== USER_CS) return false;
    const rip = readSyncReg(run, 'rip');
    return rip < BigInt(SE_WINDOW_START) || rip >= BigInt(SE_WINDOW_END);
  }

  /** After an exit that returned to a user instruction: a deferred kick stops the run now. */
  private takeDeferredStop(): RunOutcome | null {
    const req = this.deferredStop;
    if (req === StopRequest.None) return null;
    this.deferredStop = StopRequest.None;
    return this.stopFor(req);
  }

  /** Serves the syscall the guest just made; in single-step mode that ends the step. */
  private syscallInline(): RunOutcome | null {
    const nr = Number(readSyncReg(this.run, 'rax'));
    const outcome = this.serveSyscall();
    if (outcome) return outcome;
    if (this.singleStep) {
      this._state = 'paused';
      return { kind: 'stepped' };
    }
    if (this.runOptions.stopAfterSyscall) {
      this.deferredStop = StopRequest.None;
      this._state = 'paused';
      return { kind: 'syscallDone', nr };
    }
    return this.takeDeferredStop();
  }

  /** Emulates the syscall in the sync block's registers, then SYSRET. */
  private serveSyscall(): RunOutcome | null {
    const run = this.run;
    const nr = Number(readSyncReg(run, 'rax'));
    const args = [
      readSyncReg(run, 'rdi'), readSyncReg(run, 'rsi'), readSyncReg(run, 'rdx'),
      readSyncReg(run, 'r10'), readSyncReg(run, 'r8'), readSyncReg(run, 'r9'),
    ];
    const stats = this.stats;
    stats.syscalls++;
    const name = syscallName(nr) ?? `syscall_${nr}`;
    stats.syscallsByName[name] = (stats.syscallsByName[name] ?? 0) + 1;
    const result = this.process.syscall(this.thread, nr, args);
    if (result.kind === 'exit') {
      // The final state is the user's right after the syscall instruction (as on the JS models),
      // not the SE kernel's doorbell stub: rip = rcx, rflags = r11, CPL3 segments.
      writeSyncReg(run, 'rip', readSyncReg(run, 'rcx'));
      writeSyncReg(run, 'rflags', (readSyncReg(run, 'r11') & SYSRET_RFLAGS_MASK) | RFLAGS_FIXED);
      this.machine.restoreUserSegments();
      this.machine.vcpu.markDirty(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
      this.exitStatus = result.status;
      this._state = 'exited';
      return { kind: 'exited', status: result.status };
    }
    // SYSRET: rip = rcx, rflags = r11, back to CPL3.
    writeSyncReg(run, 'rax', result.value);
    writeSyncReg(run, 'rip', readSyncReg(run, 'rcx'));
    writeSyncReg(run, 'rflags', (readSyncReg(run, 'r11') & SYSRET_RFLAGS_MASK) | RFLAGS_FIXED);
    this.machine.restoreUserSegments();
    this.machine.vcpu.markDirty(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
    return null;
  }

  private exception(): RunOutcome | null {
    const run = this.run;
    const frame = readExceptionFrame(this.aspace.phys, readSyncReg(run, 'rsp'));
    if (frame.vector === UD_VECTOR) {
      const code = this.codeBytesAt(frame.rip);
      if (code[0] === 0x0f && code[1] === 0x04 && code.length >= 4) return this.m5opInstruction(frame, code[2]! | (code[3]! << 8));
    }
    if (frame.vector === DEBUG_VECTOR && this.singleStep) {
      // Our single-step trap: resume from the frame (TF is set again on the next entry).
      writeSyncReg(run, 'rip', frame.rip);
      writeSyncReg(run, 'rsp', frame.rsp);
      writeSyncReg(run, 'rflags', (frame.rflags & ~(RFLAGS_TF | RFLAGS_RF)) | RFLAGS_FIXED);
      this.machine.restoreUserSegments();
      this.machine.vcpu.markDirty(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
      this._state = 'paused';
      return { kind: 'stepped' };
    }
    const cr2 = readSyncSreg(run, 'cr2');
    // Put the user state back as the exception found it, so a report or getState sees it.
    writeSyncReg(run, 'rip', frame.rip);
    writeSyncReg(run, 'rsp', frame.rsp);
    writeSyncReg(run, 'rflags', (this.singleStep ? frame.rflags & ~RFLAGS_TF : frame.rflags) | RFLAGS_FIXED);
    this.machine.restoreUserSegments();
    this.machine.vcpu.markDirty(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
    const report = buildFaultReport(frame.vector, frame.errorCode, frame.rip, cr2, this.codeBytesAt(frame.rip));
    this.fault = report;
    this._state = 'faulted';
    return { kind: 'faulted', report };
  }

  /**
   * gem5's magic instruction (0F 04 imm16) raised #UD: complete it here (rax = 0, rip past its
   * four bytes, the user state back from the exception frame), then act as for the address form.
   */
  private m5opInstruction(frame: { rip: bigint; rsp: bigint; rflags: bigint }, func: number): RunOutcome | null {
    const run = this.run;
    writeSyncReg(run, 'rip', frame.rip + 4n);
    writeSyncReg(run, 'rsp', frame.rsp);
    writeSyncReg(run, 'rflags', (frame.rflags & ~(this.singleStep ? RFLAGS_TF : 0n)) | RFLAGS_FIXED);
    writeSyncReg(run, 'rax', 0n);
    this.machine.restoreUserSegments();
    this.machine.vcpu.markDirty(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
    return this.m5op(func, 'inst');
  }

  /**
   * gem5's address-based m5ops: an access to M5OP_VADDR + (func << 8) is an MMIO exit here. The
   * load reads 0. KVM finishes the instruction only on the next KVM_RUN; one with immediate_exit
   * set completes it without running anything more (KVM API: "complete pending operations"),
   * so the state a driver sees at the stop is after the instruction.
   */
  private mmio(exit: Extract<KvmExit, { reason: 'mmio' }>): RunOutcome | null {
    const offset = exit.physAddr - BigInt(M5OP_PHYS);
    if (offset < 0n || offset >= BigInt(M5OP_SIZE)) {
      throw new KvmGuestStateError(`MMIO access to unknown physical address 0x${exit.physAddr.toString(16)}`);
    }
    const func = Number(offset >> 8n);
    if (!exit.isWrite) exit.data.fill(0);
    if (endsGuest(func) || !isKnownM5Op(func)) return this.m5op(func, 'addr');
    const vcpu = this.machine.vcpu;
    vcpu.setImmediateExit(true);
    const done = vcpu.run();
    vcpu.setImmediateExit(false);
    this.stats.runs++;
    if (done.reason !== 'intr') {
      throw new KvmGuestStateError(`completing an m5op access: expected EINTR from KVM_RUN, got ${describeExit(done)}`);
    }
    return this.m5op(func, 'addr');
  }

  /** One m5op, either form: exit/fail end the guest, others stop run() with the call. */
  private m5op(func: number, form: 'inst' | 'addr'): RunOutcome | null {
    const run = this.run;
    const call: M5OpCall = m5opCall(func, [readSyncReg(run, 'rdi'), readSyncReg(run, 'rsi')], form);
    this.stats.m5ops[call.name] = (this.stats.m5ops[call.name] ?? 0) + 1;
    if (endsGuest(func)) {
      this.exitStatus = m5ExitStatus(func, call.args);
      this._state = 'exited';
      return { kind: 'exited', status: this.exitStatus };
    }
    if (!isKnownM5Op(func)) {
      if (!this.warnedM5ops.has(func)) {
        this.warnedM5ops.add(func);
        this.opts.warn(`unknown m5op 0x${func.toString(16)} (${form} form) at rip 0x${readSyncReg(run, 'rip').toString(16)}: ignored`);
      }
      return this.takeDeferredStop();
    }
    this._state = 'paused';
    return { kind: 'm5op', call };
  }

  private codeBytesAt(rip: bigint): Uint8Array {
    const out: number[] = [];
    if (rip >= 1n << 47n) return new Uint8Array(0);
    const base = Number(rip);
    for (let i = 0; i < 15; i++) {
      try {
        const p = this.aspace.translate(base + i, 'read');
        out.push(this.aspace.phys.bytes[p]!);
      } catch {
        break;
      }
    }
    return Uint8Array.from(out);
  }

  /**
   * After a mapping was removed or downgraded, KVM must forget its translations. The host writes
   * page tables behind KVM's back (its write tracking only sees guest writes), so neither a CR3
   * reload nor a TLB flush is enough on these shadow-paging hosts: reloading the memory slot
   * drops every shadow page (measured ~0.15–0.35 ms, plus refaults). Batched: once per run entry.
   */
  private flushTlbIfNeeded(): boolean {
    const gen = this.aspace.tlbGeneration;
    if (gen === this.tlbGeneration && !this.forceSlotReload) return false;
    this.forceSlotReload = false;
    this.tlbGeneration = gen;
    this.machine.reloadMemorySlot();
    this.stats.tlbFlushes++;
    return true;
  }

  get lastFault(): GuestFaultReport | null {
    return this.fault;
  }

  /** Whether `run` is allowed now. */
  get runnable(): boolean {
    return this._state === 'ready' || this._state === 'paused';
  }

  allowsSetState(): boolean {
    return this._state === 'ready' || this._state === 'paused';
  }

  /** The vCPU thread's POSIX timer for stopAfterSeconds (created on first use), and its deadline. */
  private runTimer = -1;
  private runTimerDeadlineNs: bigint | null = null;
  /** The POSIX timer is set (it stays set after its deadline until disarmed). */
  private runTimerArmed = false;

  private armRunTimer(seconds: number): void {
    const c = libc();
    if (this.runTimer < 0) {
      this.runTimer = c.threadTimerCreate(c.gettid(), SIGUSR2);
      if (this.runTimer < 0) throw new InternalError(`timer_create for the vCPU thread failed: ${strerror(c.errno())}`);
    }
    const ns = Math.max(1000, Math.round(seconds * 1e9));
    this.runTimerDeadlineNs = process.hrtime.bigint() + BigInt(ns);
    // Then every 100 µs: a signal that lands while the thread is outside KVM_RUN (serving a
    // syscall, reloading the memory slot) is lost, and the next one must still stop the run.
    if (c.timerArm(this.runTimer, ns, 100_000) !== 0) throw new InternalError(`timer_settime failed: ${strerror(c.errno())}`);
    this.runTimerArmed = true;
  }

  private disarmRunTimer(): void {
    this.runTimerDeadlineNs = null;
    this.runTimerArmed = false;
    libc().timerArm(this.runTimer, 0);
  }

  close(): void {
    if (this.runTimer >= 0) libc().timerDelete(this.runTimer);
    this.runTimer = -1;
    this.guest?.close();
    this.machine.close();
    this._state = 'closed';
  }
}

/** ThreadContext keeps st(i) as 10 bytes; FXSAVE slots are 16. */
function widenSt(st: Uint8Array): Uint8Array {
  const out = new Uint8Array(128);
  for (let i = 0; i < 8; i++) out.set(st.subarray(i * 10, i * 10 + 10), i * 16);
  return out;
}

function narrowSt(st: Uint8Array): Uint8Array {
  const out = new Uint8Array(80);
  for (let i = 0; i < 8; i++) out.set(st.subarray(i * 16, i * 16 + 10), i * 10);
  return out;
}

export function isKvmGuestStateError(e: unknown): e is KvmGuestStateError {
  return e instanceof KvmGuestStateError;
}
