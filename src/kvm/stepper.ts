/**
 * The KVM CPU on the calling thread, one instruction or one syscall at a time: the oracle side
 * of lockstep differential testing (src/difftest/lockstep.ts).
 *
 * - `stepInstruction()`: TF single-step (KvmCPU.singleStep). Each #DB reaches the host through
 *   the exception stub; a `rep` string instruction traps after every iteration, so the stepper
 *   keeps stepping while rip stays on it and returns once the whole instruction is done, as a JS
 *   core counts it. A `pushf` under TF pushes TF=1: the stepper clears that bit in the pushed
 *   word, so memory holds what an untraced run would have written. A syscall is one step.
 * - `runToSyscall()`: native speed up to the next syscall instruction (KvmCPU.stopAtSyscalls);
 *   the state returned is just after the syscall instruction (rip = rcx = next instruction,
 *   r11 = rflags, rax = number), before the SE kernel serves it; the next call serves it.
 *
 * The ThreadContexts returned never show TF or RF (they are the stepper's, not the program's).
 */
import { readFileSync } from 'node:fs';
import { AddressSpace } from '../guest/addressSpace.js';
import type { GuestFaultReport } from '../guest/faults.js';
import { allocatePhysicalMemory, releasePhysicalMemory, type PhysicalMemory } from '../guest/physmem.js';
import { Process, type GuestIO } from '../guest/process.js';
import { type ThreadContext } from '../guest/threadContext.js';
import { readSyncReg } from './abi.js';
import { ControlBlock } from './control.js';
import { hwcapFromCpuid, type CpuidEntry } from './cpuid.js';
import { captureCpuid, captureXcr0 } from './cpuidProbe.js';
import { KvmCPU, KvmGuestStateError } from './kvmCpu.js';
import { KvmVM } from './kvmVm.js';
import type { RunOutcome } from './protocol.js';
import { installSeKernel } from './seKernel.js';

export type StepResult =
  | { kind: 'stepped'; context: ThreadContext }
  | { kind: 'syscall'; nr: number; context: ThreadContext }
  | { kind: 'exited'; status: number }
  | { kind: 'faulted'; report: GuestFaultReport; context: ThreadContext };

const TF_RF = 0x100n | 0x10000n;
/** A rep loop that has not left its instruction after this many traps is a bug, not a loop. */
const MAX_REP_ITERATIONS = 1 << 24;

/** What the bytes at rip say about the single-step quirks (prefixes skipped). */
function stepQuirks(code: Uint8Array): { repString: boolean; pushf: boolean } {
  let rep = false;
  let i = 0;
  for (; i < code.length; i++) {
    const b = code[i]!;
    if (b === 0xf2 || b === 0xf3) rep = true;
    else if (!(b === 0x66 || b === 0x67 || b === 0xf0 || b === 0x2e || b === 0x36 || b === 0x3e || b === 0x26 || b === 0x64 || b === 0x65 || (b >= 0x40 && b <= 0x4f))) break;
  }
  const op = code[i];
  const stringOp = op !== undefined && ((op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf) || (op >= 0x6c && op <= 0x6f));
  return { repString: rep && stringOp, pushf: op === 0x9c };
}

export class KvmStepper {
  /** #DB traps taken (a rep instruction takes one per iteration). */
  traps = 0;
  /** Whole instructions stepped (a syscall counts as one). */
  instructions = 0;
  /** Syscalls stopped at by runToSyscall(). */
  syscalls = 0;

  /** x87/SSE state of the last context() (KVM_GET_XSAVE costs ~8 µs a step). */
  private fpu: Pick<ThreadContext, 'xmm' | 'mxcsr' | 'x87'> | null = null;

  constructor(readonly cpu: KvmCPU) {}

  /**
   * The vCPU's architectural state (TF/RF stripped). `fpu: false` reuses the x87/SSE state of
   * the previous call: for a caller that knows the last instruction did not touch it.
   */
  context(opts: { fpu?: boolean } = {}): ThreadContext {
    const fpu = this.fpu;
    let tc: ThreadContext;
    if (opts.fpu === false && fpu) {
      tc = { ...this.cpu.updateThreadContextGprs(), xmm: fpu.xmm, mxcsr: fpu.mxcsr, x87: fpu.x87 };
    } else {
      tc = this.cpu.updateThreadContext();
      this.fpu = { xmm: tc.xmm, mxcsr: tc.mxcsr, x87: tc.x87 };
    }
    tc.rflags &= ~TF_RF;
    return tc;
  }

  private rip(): bigint {
    return readSyncReg(this.cpu.machine.vcpu.kvmRun, 'rip');
  }

  private codeAt(rip: bigint): Uint8Array {
    const out: number[] = [];
    const aspace = this.cpu.aspace;
    for (let i = 0; i < 15; i++) {
      try {
        out.push(aspace.phys.bytes[aspace.translate(Number(rip) + i, 'exec')]!);
      } catch {
        break;
      }
    }
    return Uint8Array.from(out);
  }

  private finish(outcome: RunOutcome): StepResult | null {
    switch (outcome.kind) {
      case 'exited':
        return outcome;
      case 'faulted':
        return { kind: 'faulted', report: outcome.report, context: this.context() };
      case 'syscall':
        this.syscalls++;
        return { kind: 'syscall', nr: outcome.nr, context: this.context() };
      case 'stepped':
      case 'm5op': // the m5op instruction completed: a step like any other
        return null;
      case 'paused':
      case 'stopped':
      case 'syscallDone':
        throw new KvmGuestStateError(`lockstep run was stopped (${outcome.kind}): nothing here asks it to`);
    }
  }

  /**
   * Executes exactly one instruction on KVM and returns the state after it (or the exit, the
   * fault with the state at the faulting instruction, or — with `stopAtSyscalls` — 'syscall'
   * after a syscall instruction, before it is served; the following call serves it and executes
   * the next instruction, like the atomic CPU's run(1)).
   */
  stepInstruction(opts: { stopAtSyscalls?: boolean; fpu?: boolean } = {}): StepResult {
    const cpu = this.cpu;
    cpu.singleStep = true;
    cpu.stopAtSyscalls = opts.stopAtSyscalls ?? false;
    try {
      const rip0 = this.rip();
      const quirks = stepQuirks(this.codeAt(rip0));
      for (let n = 0; ; n++) {
        const outcome = cpu.runUntilStop();
        if (outcome.kind === 'stepped') this.traps++;
        const done = this.finish(outcome);
        if (done) {
          if (done.kind !== 'faulted') this.instructions++; // (a faulting instruction did not complete)
          return done;
        }
        if (quirks.repString && this.rip() === rip0) {
          if (n > MAX_REP_ITERATIONS) throw new KvmGuestStateError(`rep instruction at 0x${rip0.toString(16)} did not finish`);
          continue;
        }
        if (quirks.pushf) this.clearPushedTf();
        this.instructions++;
        return { kind: 'stepped', context: this.context({ fpu: opts.fpu ?? true }) };
      }
    } finally {
      cpu.singleStep = false;
    }
  }

  /** Runs at native speed to the next syscall (stopped before it is served), exit or fault. */
  runToSyscall(): StepResult {
    const cpu = this.cpu;
    cpu.singleStep = false;
    cpu.stopAtSyscalls = true;
    try {
      for (;;) {
        const done = this.finish(cpu.runUntilStop());
        if (done) return done;
      }
    } finally {
      cpu.stopAtSyscalls = false;
    }
  }

  /** pushf under TF pushed TF=1; the program must see what it would have pushed untraced. */
  private clearPushedTf(): void {
    const rsp = Number(readSyncReg(this.cpu.machine.vcpu.kvmRun, 'rsp'));
    const aspace = this.cpu.aspace;
    const p = aspace.translate(rsp + 1, 'write');
    aspace.phys.bytes[p] = aspace.phys.bytes[p]! & ~1;
  }
}

export interface InProcessKvmOptions {
  /** Host path of a static x86-64 ELF. */
  program: string;
  argv: string[];
  envp: string[];
  allowRead?: string[];
  cwd?: string;
  seed?: bigint;
  memSize?: number;
  io: GuestIO;
  warn?: (message: string) => void;
  hostFreqHz?: number;
  /** Wraps the loaded process before the CPU gets it (e.g. difftest's deterministic clock). */
  wrapProcess?: (p: Process) => Process;
}

/** A KVM CPU with its program loaded, on this thread (what the worker does in boot()). */
export interface InProcessKvm {
  cpu: KvmCPU;
  stepper: KvmStepper;
  process: Process;
  phys: PhysicalMemory;
  /** CPUID as the guest sees it (captured in-guest): the table the JS cores must answer. */
  cpuid: CpuidEntry[];
  /** XCR0 as `xgetbv` reads it in the guest (null without OSXSAVE). */
  xcr0: bigint | null;
  /** The state at the program's entry point. */
  initial: ThreadContext;
  close(): void;
}

export function bootKvmInProcess(opts: InProcessKvmOptions): InProcessKvm {
  const phys = allocatePhysicalMemory(opts.memSize ?? 256 * 1024 * 1024, 'mmap');
  let machine: KvmVM | undefined;
  try {
    machine = new KvmVM(phys);
    const aspace = new AddressSpace(phys);
    installSeKernel(aspace, phys);
    machine.setupLongMode(aspace);
    const cpuid = captureCpuid(machine, aspace);
    const xcr0 = captureXcr0(machine, aspace, cpuid);
    const warn = opts.warn ?? (() => {});
    const { process, context } = Process.load(phys, readFileSync(opts.program), {
      exePath: opts.program,
      argv: opts.argv,
      envp: opts.envp,
      allowRead: opts.allowRead ?? [],
      cwd: opts.cwd ?? '/',
      seed: opts.seed ?? 0n,
      hwcap: hwcapFromCpuid(cpuid),
      hwcap2: 0,
      io: opts.io,
      warn,
      aspace,
    });
    const cpu = new KvmCPU(machine, opts.wrapProcess ? opts.wrapProcess(process) : process, new ControlBlock(), {
      hostFreqHz: opts.hostFreqHz ?? 1e9,
      hostFactor: 1,
      warn,
    });
    cpu.updateKvmState(context);
    const m = machine;
    return {
      cpu,
      stepper: new KvmStepper(cpu),
      process,
      phys,
      cpuid,
      xcr0,
      initial: context,
      close: () => {
        m.close();
        releasePhysicalMemory(phys);
      },
    };
  } catch (e) {
    machine?.close();
    releasePhysicalMemory(phys);
    throw e;
  }
}
