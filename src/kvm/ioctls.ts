/**
 * Every KVM ioctl switchsim issues, in one table built from the kernel's _IO/_IOR/_IOW/_IOWR
 * encoding (asm-generic/ioctl.h), plus the capability numbers, exit reasons and sync-regs flags
 * it uses. Argument sizes come from the struct layouts in abi.ts, so the numbers cannot drift
 * from the structs; the unit test compares them all with <linux/kvm.h>.
 */
import {
  KVM_CPUID2_LAYOUT,
  KVM_FPU_LAYOUT,
  KVM_GUEST_DEBUG_LAYOUT,
  KVM_MSRS_LAYOUT,
  KVM_REGS_LAYOUT,
  KVM_SREGS_LAYOUT,
  KVM_USERSPACE_MEMORY_REGION_LAYOUT,
  KVM_XCRS_LAYOUT,
  KVM_XSAVE_LAYOUT,
} from './abi.js';

export const KVMIO = 0xae;

const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;
const IOC_SIZE_MAX = (1 << 14) - 1;

/** dir:2 | size:14 | type:8 | nr:8, as an unsigned 32-bit number. */
function ioc(dir: number, type: number, nr: number, size: number): number {
  if (size < 0 || size > IOC_SIZE_MAX) throw new RangeError(`ioctl argument size ${size} does not fit in 14 bits`);
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}

export const _IO = (type: number, nr: number): number => ioc(IOC_NONE, type, nr, 0);
export const _IOR = (type: number, nr: number, size: number): number => ioc(IOC_READ, type, nr, size);
export const _IOW = (type: number, nr: number, size: number): number => ioc(IOC_WRITE, type, nr, size);
export const _IOWR = (type: number, nr: number, size: number): number => ioc(IOC_READ | IOC_WRITE, type, nr, size);

/** Which fd of the hierarchy an ioctl is issued on. */
export type KvmFdKind = 'system' | 'vm' | 'vcpu';

export interface KvmIoctl {
  /** The kernel's macro name, used in error messages. */
  readonly name: string;
  readonly request: number;
  readonly fd: KvmFdKind;
  /** The capability that must be present ('basic' = part of API 12). */
  readonly capability: string;
}

const def = (name: string, request: number, fd: KvmFdKind, capability: string): KvmIoctl =>
  Object.freeze({ name, request, fd, capability });

const U64_SIZE = 8;

export const KVM_IOCTL = Object.freeze({
  // --- /dev/kvm
  /** basic: must return 12. */
  GET_API_VERSION: def('KVM_GET_API_VERSION', _IO(KVMIO, 0x00), 'system', 'basic'),
  /** basic: returns a VM fd. */
  CREATE_VM: def('KVM_CREATE_VM', _IO(KVMIO, 0x01), 'system', 'basic'),
  /** basic (on a VM fd: KVM_CAP_CHECK_EXTENSION_VM). */
  CHECK_EXTENSION: def('KVM_CHECK_EXTENSION', _IO(KVMIO, 0x03), 'system', 'basic'),
  /** basic: size of the kvm_run mapping of a vCPU fd. */
  GET_VCPU_MMAP_SIZE: def('KVM_GET_VCPU_MMAP_SIZE', _IO(KVMIO, 0x04), 'system', 'basic'),
  /** KVM_CAP_EXT_CPUID. */
  GET_SUPPORTED_CPUID: def('KVM_GET_SUPPORTED_CPUID', _IOWR(KVMIO, 0x05, KVM_CPUID2_LAYOUT.size), 'system', 'KVM_CAP_EXT_CPUID'),
  // --- VM fd
  /** basic: returns a vCPU fd. */
  CREATE_VCPU: def('KVM_CREATE_VCPU', _IO(KVMIO, 0x41), 'vm', 'basic'),
  /** KVM_CAP_USER_MEMORY. */
  SET_USER_MEMORY_REGION: def(
    'KVM_SET_USER_MEMORY_REGION',
    _IOW(KVMIO, 0x46, KVM_USERSPACE_MEMORY_REGION_LAYOUT.size),
    'vm',
    'KVM_CAP_USER_MEMORY',
  ),
  /** KVM_CAP_SET_TSS_ADDR. */
  SET_TSS_ADDR: def('KVM_SET_TSS_ADDR', _IO(KVMIO, 0x47), 'vm', 'KVM_CAP_SET_TSS_ADDR'),
  /** KVM_CAP_SET_IDENTITY_MAP_ADDR. */
  SET_IDENTITY_MAP_ADDR: def('KVM_SET_IDENTITY_MAP_ADDR', _IOW(KVMIO, 0x48, U64_SIZE), 'vm', 'KVM_CAP_SET_IDENTITY_MAP_ADDR'),
  // --- vCPU fd
  /** basic. */
  RUN: def('KVM_RUN', _IO(KVMIO, 0x80), 'vcpu', 'basic'),
  /** basic. */
  GET_REGS: def('KVM_GET_REGS', _IOR(KVMIO, 0x81, KVM_REGS_LAYOUT.size), 'vcpu', 'basic'),
  /** basic. */
  SET_REGS: def('KVM_SET_REGS', _IOW(KVMIO, 0x82, KVM_REGS_LAYOUT.size), 'vcpu', 'basic'),
  /** basic. */
  GET_SREGS: def('KVM_GET_SREGS', _IOR(KVMIO, 0x83, KVM_SREGS_LAYOUT.size), 'vcpu', 'basic'),
  /** basic. */
  SET_SREGS: def('KVM_SET_SREGS', _IOW(KVMIO, 0x84, KVM_SREGS_LAYOUT.size), 'vcpu', 'basic'),
  /** basic. */
  GET_MSRS: def('KVM_GET_MSRS', _IOWR(KVMIO, 0x88, KVM_MSRS_LAYOUT.size), 'vcpu', 'basic'),
  /** basic. */
  SET_MSRS: def('KVM_SET_MSRS', _IOW(KVMIO, 0x89, KVM_MSRS_LAYOUT.size), 'vcpu', 'basic'),
  /** basic. */
  GET_FPU: def('KVM_GET_FPU', _IOR(KVMIO, 0x8c, KVM_FPU_LAYOUT.size), 'vcpu', 'basic'),
  /** basic. */
  SET_FPU: def('KVM_SET_FPU', _IOW(KVMIO, 0x8d, KVM_FPU_LAYOUT.size), 'vcpu', 'basic'),
  /** KVM_CAP_EXT_CPUID. */
  SET_CPUID2: def('KVM_SET_CPUID2', _IOW(KVMIO, 0x90, KVM_CPUID2_LAYOUT.size), 'vcpu', 'KVM_CAP_EXT_CPUID'),
  /** KVM_CAP_SET_GUEST_DEBUG. */
  SET_GUEST_DEBUG: def('KVM_SET_GUEST_DEBUG', _IOW(KVMIO, 0x9b, KVM_GUEST_DEBUG_LAYOUT.size), 'vcpu', 'KVM_CAP_SET_GUEST_DEBUG'),
  /** KVM_CAP_XSAVE. */
  GET_XSAVE: def('KVM_GET_XSAVE', _IOR(KVMIO, 0xa4, KVM_XSAVE_LAYOUT.size), 'vcpu', 'KVM_CAP_XSAVE'),
  /** KVM_CAP_XSAVE. */
  SET_XSAVE: def('KVM_SET_XSAVE', _IOW(KVMIO, 0xa5, KVM_XSAVE_LAYOUT.size), 'vcpu', 'KVM_CAP_XSAVE'),
  /** KVM_CAP_XCRS. */
  GET_XCRS: def('KVM_GET_XCRS', _IOR(KVMIO, 0xa6, KVM_XCRS_LAYOUT.size), 'vcpu', 'KVM_CAP_XCRS'),
  /** KVM_CAP_XCRS. */
  SET_XCRS: def('KVM_SET_XCRS', _IOW(KVMIO, 0xa7, KVM_XCRS_LAYOUT.size), 'vcpu', 'KVM_CAP_XCRS'),
} satisfies Record<string, KvmIoctl>);

export type KvmIoctlName = keyof typeof KVM_IOCTL;

/** KVM_CHECK_EXTENSION arguments switchsim asks about. */
export const KVM_CAP = Object.freeze({
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  NR_MEMSLOTS: 10,
  SET_GUEST_DEBUG: 23,
  SET_IDENTITY_MAP_ADDR: 37,
  INTERNAL_ERROR_DATA: 40,
  VCPU_EVENTS: 41,
  XSAVE: 55,
  XCRS: 56,
  MAX_VCPUS: 66,
  /** Returns the KVM_SYNC_X86_* bits this host supports. */
  SYNC_REGS: 74,
  READONLY_MEM: 81,
  CHECK_EXTENSION_VM: 105,
  IMMEDIATE_EXIT: 136,
  GET_MSR_FEATURES: 153,
  /** Returns the kvm_xsave size KVM_GET_XSAVE2 needs (>= 4096). */
  XSAVE2: 208,
});

export type KvmCapName = keyof typeof KVM_CAP;

/** 'KVM_CAP_SYNC_REGS' for 74; `KVM_CAP_<n>` for numbers not in the table. */
export function kvmCapName(cap: number): string {
  for (const [name, value] of Object.entries(KVM_CAP)) if (value === cap) return `KVM_CAP_${name}`;
  return `KVM_CAP_${cap}`;
}

/** kvm_run.exit_reason values. */
export const KVM_EXIT = Object.freeze({
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  S390_SIEIC: 13,
  S390_RESET: 14,
  DCR: 15,
  NMI: 16,
  INTERNAL_ERROR: 17,
  OSI: 18,
  PAPR_HCALL: 19,
  S390_UCONTROL: 20,
  WATCHDOG: 21,
  S390_TSCH: 22,
  EPR: 23,
  SYSTEM_EVENT: 24,
  S390_STSI: 25,
  IOAPIC_EOI: 26,
  HYPERV: 27,
  ARM_NISV: 28,
  X86_RDMSR: 29,
  X86_WRMSR: 30,
  DIRTY_RING_FULL: 31,
  AP_RESET_HOLD: 32,
  X86_BUS_LOCK: 33,
  XEN: 34,
  RISCV_SBI: 35,
  RISCV_CSR: 36,
  NOTIFY: 37,
});

/** 'KVM_EXIT_IO' for 2; undefined for a number the header does not define. */
export function kvmExitName(reason: number): string | undefined {
  for (const [name, value] of Object.entries(KVM_EXIT)) if (value === reason) return `KVM_EXIT_${name}`;
  return undefined;
}

export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

/** kvm_run.internal.suberror values. */
export const KVM_INTERNAL_ERROR = Object.freeze({
  EMULATION: 1,
  SIMUL_EX: 2,
  DELIVERY_EV: 3,
  UNEXPECTED_EXIT_REASON: 4,
});

/** kvm_run.system_event.type values. */
export const KVM_SYSTEM_EVENT = Object.freeze({
  SHUTDOWN: 1,
  RESET: 2,
  CRASH: 3,
  WAKEUP: 4,
  SUSPEND: 5,
  SEV_TERM: 6,
});

/** kvm_run.kvm_valid_regs / kvm_dirty_regs bits (KVM_CAP_SYNC_REGS). */
export const KVM_SYNC_X86_REGS = 1;
export const KVM_SYNC_X86_SREGS = 2;
export const KVM_SYNC_X86_EVENTS = 4;

/** kvm_userspace_memory_region.flags. */
export const KVM_MEM_LOG_DIRTY_PAGES = 1;
export const KVM_MEM_READONLY = 2;

export const KVM_API_VERSION = 12;
