/**
 * Captures the CPUID table the guest sees by running `cpuid` at CPL3 inside the VM (CPL0 would
 * be emulated and answer KVM's table, not the host's). One user page holds
 * `cpuid; mov r8, rcx; syscall`: each leaf costs one syscall round trip (doorbell exit). The page is
 * unmapped again before the program is loaded.
 */
import { AddressSpace } from '../guest/addressSpace.js';
import { allocatePhysicalMemory, MIN_MEM_SIZE, releasePhysicalMemory } from '../guest/physmem.js';
import { Kvm } from './kvm.js';
import { installSeKernel } from './seKernel.js';
import { PROT_EXEC, PROT_READ } from '../guest/pageTables.js';
import { KVM_SYNC_X86_SREGS } from './ioctls.js';
import { enumerateCpuid, type CpuidEntry } from './cpuid.js';
import { describeExit } from './exits.js';
import { KvmVM } from './kvmVm.js';
import { SE_SYSCALL_DOORBELL_PHYS } from '../guest/layout.js';
import { KvmGuestStateError } from './kvmCpu.js';

const CPUID_PROBE = [0x0f, 0xa2, 0x49, 0x89, 0xc8, 0x0f, 0x05]; // cpuid; mov r8, rcx; syscall
const XGETBV_PROBE = [0x0f, 0x01, 0xd0, 0x0f, 0x05]; // xgetbv; syscall

/**
 * Runs a tiny user-mode probe on a temporary page, once per `setup`, until its `syscall` rings
 * the doorbell; returns what `read` takes from the registers. The page is unmapped afterwards.
 */
function withProbe<T>(
  machine: KvmVM,
  aspace: AddressSpace,
  name: string,
  code: readonly number[],
  use: (run: (regs: Partial<Record<'rax' | 'rcx', bigint>>) => void) => T,
): T {
  const page = aspace.mapAnywhere(4096, PROT_READ | PROT_EXEC, 'mmap', `[${name}-probe]`);
  aspace.writeUnchecked(page, Uint8Array.from(code));
  const v = machine.vcpu;
  const run = (regs: Partial<Record<'rax' | 'rcx', bigint>>) => {
    for (const [r, value] of Object.entries(regs)) v.setSyncReg(r as 'rax' | 'rcx', value);
    v.setSyncReg('rip', BigInt(page));
    v.setSyncReg('rflags', 0x202n);
    machine.restoreUserSegments();
    v.markDirty(KVM_SYNC_X86_SREGS);
    let exit = v.run();
    // A signal (profiler, test runner) interrupts KVM_RUN: enter again.
    while (exit.reason === 'intr') {
      v.setImmediateExit(false);
      exit = v.run();
    }
    if (exit.reason !== 'mmio' || exit.physAddr !== BigInt(SE_SYSCALL_DOORBELL_PHYS)) {
      throw new KvmGuestStateError(`${name} probe: unexpected exit ${describeExit(exit)}`);
    }
  };
  try {
    return use(run);
  } finally {
    aspace.unmap(page, 4096);
  }
}

export function captureCpuid(machine: KvmVM, aspace: AddressSpace): CpuidEntry[] {
  const v = machine.vcpu;
  const r32 = (name: 'rax' | 'rbx' | 'r8' | 'rdx') => Number(v.syncReg(name) & 0xffffffffn) >>> 0;
  return withProbe(machine, aspace, 'cpuid', CPUID_PROBE, (run) =>
    enumerateCpuid((leaf, subleaf) => {
      run({ rax: BigInt(leaf), rcx: BigInt(subleaf) });
      return { leaf, subleaf, eax: r32('rax'), ebx: r32('rbx'), ecx: r32('r8'), edx: r32('rdx') };
    }),
  );
}

/**
 * The CPUID table a guest sees on this host, from a small throwaway VM (a few ms), or null
 * where KVM is unavailable. The JS CPUs answer with it so a program sees one CPU throughout.
 */
export interface GuestCpu {
  cpuid: CpuidEntry[];
  /** XCR0 as `xgetbv` reports it in the guest, or null without OSXSAVE. */
  xcr0: bigint | null;
}

export function captureHostCpuid(): GuestCpu | null {
  if (!Kvm.probe().available) return null;
  const phys = allocatePhysicalMemory(MIN_MEM_SIZE, 'mmap');
  try {
    const machine = new KvmVM(phys);
    try {
      const aspace = new AddressSpace(phys);
      installSeKernel(aspace, phys);
      machine.setupLongMode(aspace);
      const cpuid = captureCpuid(machine, aspace);
      return { cpuid, xcr0: captureXcr0(machine, aspace, cpuid) };
    } finally {
      machine.close();
    }
  } finally {
    releasePhysicalMemory(phys);
  }
}

/**
 * XCR0 as the guest reads it with `xgetbv`. On kvm_pvm hosts `xgetbv` is not intercepted and
 * returns the host's XCR0 (measured 0x602e7, beyond CPUID leaf 0xD's 0x2e7), so it is measured,
 * not derived. Null when CPUID does not advertise OSXSAVE (xgetbv would #UD).
 */
export function captureXcr0(machine: KvmVM, aspace: AddressSpace, cpuid: readonly CpuidEntry[]): bigint | null {
  const leaf1 = cpuid.find((e) => e.leaf === 1);
  if (!leaf1 || (leaf1.ecx & (1 << 27)) === 0) return null;
  const v = machine.vcpu;
  return withProbe(machine, aspace, 'xgetbv', XGETBV_PROBE, (run) => {
    run({ rcx: 0n });
    return ((v.syncReg('rdx') & 0xffffffffn) << 32n) | (v.syncReg('rax') & 0xffffffffn);
  });
}
