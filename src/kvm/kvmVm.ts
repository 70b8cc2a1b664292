/**
 * A KVM virtual machine set up for syscall emulation: one memory slot over the shared guest
 * physical memory, one vCPU in 64-bit long mode at CPL3 with the SE kernel's descriptor
 * tables, syscall MSRs and sync regs. Owns the fds; `close()` releases them.
 */
import type { AddressSpace } from '../guest/addressSpace.js';
import type { PhysicalMemory } from '../guest/physmem.js';
import { USER_CS, USER_SS } from '../guest/threadContext.js';
import { KVM_SEGMENT_CODEC, SYNC_SEGMENT_OFFSET, type KvmSegment, type KvmSregs } from './abi.js';
import { KvmCapabilityError } from './errors.js';
import { KVM_CAP, KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS } from './ioctls.js';
import { Kvm, type VcpuFd, type VmFd } from './kvm.js';
import {
  CR0_VALUE,
  CR4_OSXSAVE,
  CR4_VALUE,
  EFER_LMA,
  EFER_LME,
  EFER_NXE,
  EFER_SCE,
  KERNEL_DESCRIPTORS,
  MSR,
  SFMASK,
  STAR,
  TSS_SELECTOR,
} from './seKernel.js';

/** 64-bit user code segment, as the CPU holds it after SYSRET (CPL3). */
export const USER_CODE_SEGMENT: Readonly<KvmSegment> = Object.freeze({
  base: 0n, limit: 0xffffffff, selector: USER_CS, type: 11, present: 1, dpl: 3, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0,
});
/** User data/stack segment (CPL3). */
export const USER_DATA_SEGMENT: Readonly<KvmSegment> = Object.freeze({
  base: 0n, limit: 0xffffffff, selector: USER_SS, type: 3, present: 1, dpl: 3, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0,
});

export class KvmVM {
  readonly kvm: Kvm;
  readonly vm: VmFd;
  readonly vcpu: VcpuFd;
  private closed = false;

  constructor(readonly phys: PhysicalMemory) {
    if (phys.handle.kind !== 'mmap') throw new TypeError('KVM needs guest memory from mmap, not a SharedArrayBuffer');
    this.kvm = Kvm.open();
    try {
      this.kvm.requireExtension(KVM_CAP.SYNC_REGS, 'syscall round trips without GET/SET ioctls');
      this.kvm.requireExtension(KVM_CAP.IMMEDIATE_EXIT, 'kicking a running vCPU for time quanta');
      this.vm = this.kvm.createVm();
      this.vm.setUserMemoryRegion(0, 0n, phys.size, phys.handle.address);
      this.vcpu = this.vm.createVcpu(0);
    } catch (e) {
      this.kvm.close();
      throw e;
    }
  }

  /**
   * Presents the host's CPU to the guest, as `-cpu host` does: KVM_SET_CPUID2 with everything
   * KVM supports. CPUID is intercepted on these hosts (a vCPU without a table answers zeros),
   * so without this a program would see no features at all. Returns the XCR0 to enable.
   */
  private presentHostCpu(): bigint {
    // KVM_GET_SUPPORTED_CPUID reports the APIC ID of whichever host CPU ran the ioctl (leaf 1
    // EBX[31:24], x2APIC ID in leaves 0xB/0x1F EDX); as QEMU does, present this vCPU's (0) instead,
    // so the guest (glibc keeps leaf 1 in memory) sees the same CPU on every run.
    const supported = this.kvm.supportedCpuid().map((e) =>
      e.function === 1 ? { ...e, ebx: e.ebx & 0x00ffffff } : e.function === 0xb || e.function === 0x1f ? { ...e, edx: 0 } : e,
    );
    this.vcpu.setCpuid2(supported);
    // XSAVE leaf 0xD.0 lists the XCR0 bits KVM supports (host XCR0 ∩ KVM's); leaf 1's XSAVE bit
    // in the supported table is not reliable on kvm_pvm (measured clear while the guest sees it).
    const xsave = supported.find((e) => e.function === 0xd && e.index === 0);
    if (!xsave || (xsave.eax & 3) !== 3) return 0n;
    return BigInt(xsave.eax >>> 0) | (BigInt(xsave.edx >>> 0) << 32n);
  }

  /** Puts the vCPU in 64-bit long mode at CPL3 with the SE kernel's tables and `aspace`'s page tables. */
  setupLongMode(aspace: AddressSpace): void {
    const v = this.vcpu;
    const xcr0 = this.presentHostCpu();
    const sregs: KvmSregs = v.getSregs();
    sregs.cs = { ...USER_CODE_SEGMENT };
    sregs.ss = { ...USER_DATA_SEGMENT };
    for (const name of ['ds', 'es', 'fs', 'gs'] as const) sregs[name] = { ...USER_DATA_SEGMENT, selector: 0 };
    sregs.tr = {
      base: KERNEL_DESCRIPTORS.tssBase, limit: 0x67, selector: TSS_SELECTOR, type: 11, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0,
    };
    sregs.ldt = { base: 0n, limit: 0, selector: 0, type: 2, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1 };
    sregs.gdt = { base: KERNEL_DESCRIPTORS.gdtBase, limit: KERNEL_DESCRIPTORS.gdtLimit };
    sregs.idt = { base: KERNEL_DESCRIPTORS.idtBase, limit: KERNEL_DESCRIPTORS.idtLimit };
    sregs.cr0 = CR0_VALUE;
    sregs.cr3 = BigInt(aspace.cr3);
    sregs.cr4 = xcr0 ? CR4_VALUE | CR4_OSXSAVE : CR4_VALUE;
    sregs.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    v.setSregs(sregs);
    // Same XSAVE features as the host's Linux enables (x87, SSE, AVX, …) so AVX code runs as natively.
    if (xcr0) v.setXcrs([{ xcr: 0, value: xcr0 }]);
    v.setMsrs([
      { index: MSR.STAR, data: STAR },
      { index: MSR.LSTAR, data: KERNEL_DESCRIPTORS.lstar },
      { index: MSR.CSTAR, data: KERNEL_DESCRIPTORS.lstar },
      { index: MSR.SFMASK, data: SFMASK },
      { index: MSR.KERNEL_GS_BASE, data: 0n },
    ]);
    const got = v.getSregs();
    if ((got.efer & EFER_NXE) === 0n) {
      throw new KvmCapabilityError('EFER.NXE', 'non-executable pages (the page tables use NX)', 0);
    }
    v.enableSyncRegs(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
    // From here on the sync block is the authoritative copy: fill it before the first run.
    v.setSyncRegs(v.getRegs());
    v.setSyncSregs(v.getSregs());
  }

  /** Writes CS and SS of the sync sregs block back to user mode (what SYSRET/IRET would do). */
  restoreUserSegments(): void {
    const run = this.vcpu.kvmRun;
    KVM_SEGMENT_CODEC.encode(run, SYNC_SEGMENT_OFFSET.cs, USER_CODE_SEGMENT);
    KVM_SEGMENT_CODEC.encode(run, SYNC_SEGMENT_OFFSET.ss, USER_DATA_SEGMENT);
  }

  /** Deletes and re-adds the memory slot: KVM drops every shadow page and translation built from guest memory. */
  reloadMemorySlot(): void {
    if (this.phys.handle.kind !== 'mmap') return;
    this.vm.setUserMemoryRegion(0, 0n, 0, this.phys.handle.address);
    this.vm.setUserMemoryRegion(0, 0n, this.phys.size, this.phys.handle.address);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.vm.close();
    this.kvm.close();
  }
}
