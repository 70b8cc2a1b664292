/**
 * Runs instruction snippets on the host CPU through KVM: the oracle side of the random
 * differential test. One VM is built once and reused for every snippet; a run rewrites the
 * code, scratch and stack areas (no mapping changes, so no memory-slot reload), loads the
 * registers through the sync-regs block and x87/SSE state through one KVM_SET_XSAVE, and runs
 * until the first exception. A snippet ends in `ud2`, so a normal end is a #UD at its last
 * instruction; any other exception (#DE, #PF, #GP…) is a result too, which the JS core must
 * reproduce. The final registers come from the exception frame (rip, rsp, rflags) and the sync
 * block (the other GPRs: the stub only pushes), x87/SSE state from KVM_GET_XSAVE.
 */
import { AddressSpace } from '../guest/addressSpace.js';
import { allocatePhysicalMemory, releasePhysicalMemory, type PhysicalMemory } from '../guest/physmem.js';
import { Gpr, THREAD_CONTEXT_VERSION, USER_CS, USER_SS, type ThreadContext } from '../guest/threadContext.js';
import {
  decodeXsaveLegacy,
  encodeXsaveLegacy,
  readSyncReg,
  readSyncSegmentBase,
  readSyncSreg,
  writeSyncReg,
  writeSyncSegmentBase,
  type KvmRegName,
} from '../kvm/abi.js';
import { captureCpuid, captureXcr0 } from '../kvm/cpuidProbe.js';
import type { CpuidEntry } from '../kvm/cpuid.js';
import { describeExit } from '../kvm/exits.js';
import { KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS } from '../kvm/ioctls.js';
import { KvmGuestStateError } from '../kvm/kvmCpu.js';
import { KvmVM } from '../kvm/kvmVm.js';
import { EXCEPTION_PORT, installSeKernel, readExceptionFrame } from '../kvm/seKernel.js';
import { SNIPPET_MEM_SIZE } from './layout.js';
import { SnippetMemory, type SnippetInput, type SnippetResult } from './snippetMemory.js';

/** kvm_regs names in our GPR order (x86 encoding order). */
const GPR_KVM_NAMES: readonly KvmRegName[] = [
  'rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
];
const RFLAGS_FIXED = 0x2n;

export class KvmSnippetRunner {
  readonly memory: SnippetMemory;
  /** The CPUID table the guest sees (captured in-guest): what the JS core must answer. */
  readonly cpuid: CpuidEntry[];
  /** XCR0 as `xgetbv` reads it in the guest (null without OSXSAVE). */
  readonly xcr0: bigint | null;
  private readonly xsave: Uint8Array;
  private closed = false;
  /** KVM_RUN calls made (one per snippet). */
  runs = 0;

  private constructor(
    readonly phys: PhysicalMemory,
    readonly aspace: AddressSpace,
    readonly machine: KvmVM,
  ) {
    installSeKernel(aspace, phys);
    machine.setupLongMode(aspace);
    this.cpuid = captureCpuid(machine, aspace);
    this.xcr0 = captureXcr0(machine, aspace, this.cpuid);
    this.memory = new SnippetMemory(aspace);
    // The probes unmapped their pages: make KVM forget every translation once.
    machine.reloadMemorySlot();
    this.xsave = machine.vcpu.getXsave();
  }

  /** Builds the snippet VM (needs /dev/kvm). */
  static create(): KvmSnippetRunner {
    const phys = allocatePhysicalMemory(SNIPPET_MEM_SIZE, 'mmap');
    let machine: KvmVM | undefined;
    try {
      machine = new KvmVM(phys);
      return new KvmSnippetRunner(phys, new AddressSpace(phys), machine);
    } catch (e) {
      machine?.close();
      releasePhysicalMemory(phys);
      throw e;
    }
  }

  /** Loads the snippet and its state, runs it to its first exception, returns the final state. */
  run(input: SnippetInput): SnippetResult {
    if (this.closed) throw new KvmGuestStateError('snippet runner is closed');
    this.memory.load(input);
    const tc = input.context;
    const vcpu = this.machine.vcpu;
    const run = vcpu.kvmRun;
    for (let i = 0; i < 16; i++) writeSyncReg(run, GPR_KVM_NAMES[i]!, tc.gpr[i]!);
    writeSyncReg(run, 'rip', tc.rip);
    writeSyncReg(run, 'rflags', tc.rflags | RFLAGS_FIXED);
    writeSyncSegmentBase(run, 'fs', tc.fsBase);
    writeSyncSegmentBase(run, 'gs', tc.gsBase);
    this.machine.restoreUserSegments();
    vcpu.markDirty(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
    const x = tc.x87;
    encodeXsaveLegacy(this.xsave, {
      fcw: x.fcw, fsw: x.fsw, ftw: x.ftw, fop: x.fop, fip: x.fip, fdp: x.fdp,
      mxcsr: tc.mxcsr, st: widenSt(x.st), xmm: tc.xmm,
    });
    vcpu.setXsave(this.xsave);

    let exit = vcpu.run();
    // A signal (a profiler's, a test runner's) interrupts KVM_RUN: just enter again.
    while (exit.reason === 'intr') {
      vcpu.setImmediateExit(false);
      exit = vcpu.run();
    }
    this.runs++;
    if (exit.reason !== 'io' || exit.port !== EXCEPTION_PORT) {
      throw new KvmGuestStateError(
        `snippet did not end in an exception: ${describeExit(exit)} at rip 0x${readSyncReg(run, 'rip').toString(16)}`,
      );
    }
    const frame = readExceptionFrame(this.phys, readSyncReg(run, 'rsp'));
    const image = vcpu.getXsave();
    this.xsave.set(image);
    const fpu = decodeXsaveLegacy(image);
    const gpr = GPR_KVM_NAMES.map((n) => readSyncReg(run, n));
    gpr[Gpr.rsp] = frame.rsp;
    const context: ThreadContext = {
      version: THREAD_CONTEXT_VERSION,
      gpr,
      rip: frame.rip,
      rflags: frame.rflags,
      fsBase: readSyncSegmentBase(run, 'fs'),
      gsBase: readSyncSegmentBase(run, 'gs'),
      seg: { cs: USER_CS, ss: USER_SS, ds: 0, es: 0, fs: 0, gs: 0 },
      xmm: fpu.xmm,
      mxcsr: fpu.mxcsr,
      x87: { fcw: fpu.fcw, fsw: fpu.fsw, ftw: fpu.ftw, fop: fpu.fop, fip: fpu.fip, fdp: fpu.fdp, st: narrowSt(fpu.st) },
    };
    return {
      end: {
        vector: frame.vector,
        errorCode: Number(frame.errorCode),
        rip: frame.rip,
        faultAddress: frame.vector === 14 ? readSyncSreg(run, 'cr2') : 0n,
      },
      final: { context, scratch: this.memory.readScratch(), stack: this.memory.readStack() },
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.machine.close();
    releasePhysicalMemory(this.phys);
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
