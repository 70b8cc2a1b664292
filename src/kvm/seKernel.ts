/**
 * The syscall-emulation kernel: the few supervisor-only structures the CPU needs so that a
 * CPL3 program can run under KVM and every way out of user mode reaches the host.
 *
 *  - GDT with Linux's selectors (kernel CS 0x10/SS 0x18, user CS 0x33/SS 0x2b) and a TSS,
 *  - IDT whose 256 gates point at CPL0 stubs `push 0 (when the CPU pushes no error code);
 *    push vector; out 0x11, al` on a dedicated exception stack (TSS.RSP0),
 *  - the LSTAR syscall stub, a user-executable page in the SE window holding one store to the
 *    syscall doorbell page (an MMIO exit): the host emulates the syscall and `sysret`.
 *
 * Why a doorbell and not `out`: on the kvm_pvm hosts a CPL3 `syscall` jumps to LSTAR but
 * stays at CPL3 (measured), where `out` is a #GP and supervisor pages cannot be fetched. A
 * store to an unbacked physical page exits to the host at any CPL, so the same stub works on
 * kvm_pvm and on ordinary KVM (where it runs at CPL0 from a user page: no SMEP/SMAP here).
 *
 * CPL0 code is emulated instruction by instruction on this host (~1.5 µs each, KVM-NOTES.md),
 * so each stub is at most three instructions and never returns by itself: the host restores
 * user state directly. Physical pages below KERNEL_RESERVED_PHYS_END belong to this file.
 */
import type { AddressSpace } from '../guest/addressSpace.js';
import { SE_SYSCALL_DOORBELL_PHYS, SE_SYSCALL_DOORBELL_VADDR, SE_SYSCALL_STUB_VADDR } from '../guest/layout.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../guest/pageTables.js';
import type { PhysicalMemory } from '../guest/physmem.js';
import { USER_CS, USER_SS } from '../guest/threadContext.js';

/** Supervisor virtual base of the SE kernel (upper half, canonical, far from anything Linux uses). */
export const KERNEL_VBASE = 0xffff_fe00_0000_0000n;

export const KERNEL_PHYS = {
  gdt: 0x1000,
  idt: 0x2000,
  tss: 0x3000,
  syscallStub: 0x4000,
  exceptionStubs: 0x5000,
  stackBottom: 0x6000,
  stackTop: 0xa000,
  end: 0xa000,
} as const;

export const EXCEPTION_STUB_SIZE = 16;
export const EXCEPTION_PORT = 0x11;

export const KERNEL_CS = 0x10;
export const KERNEL_SS = 0x18;
export const USER32_CS = 0x23;
export const TSS_SELECTOR = 0x40;
export const GDT_ENTRIES = 10;

/** STAR: SYSCALL loads CS from bits 47:32, SYSRET from bits 63:48 (+16 for 64-bit CS, +8 for SS). */
export const STAR = (BigInt(USER32_CS) << 48n) | (BigInt(KERNEL_CS) << 32n);
/** Flags cleared on syscall entry, as Linux does: TF, DF, IF, IOPL, AC, NT. */
export const SFMASK = 0x47700n;

export const MSR = {
  STAR: 0xc0000081,
  LSTAR: 0xc0000082,
  CSTAR: 0xc0000083,
  SFMASK: 0xc0000084,
  FS_BASE: 0xc0000100,
  GS_BASE: 0xc0000101,
  KERNEL_GS_BASE: 0xc0000102,
} as const;

export const CR0_VALUE = 0x8001_0033n; // PG WP NE ET MP PE
export const CR4_VALUE = 0x620n; // OSXMMEXCPT OSFXSR PAE
export const CR4_OSXSAVE = 0x40000n;
export const EFER_SCE = 0x1n;
export const EFER_LME = 0x100n;
export const EFER_LMA = 0x400n;
export const EFER_NXE = 0x800n;

/** Vectors for which the CPU pushes an error code (so the stub must not push a dummy one). */
const HAS_ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

export function kernelVirt(phys: number): bigint {
  return KERNEL_VBASE + BigInt(phys);
}

/** Frame the exception stub leaves on the exception stack, lowest address first. */
export interface ExceptionFrame {
  vector: number;
  errorCode: bigint;
  rip: bigint;
  cs: number;
  rflags: bigint;
  rsp: bigint;
  ss: number;
}
export const EXCEPTION_FRAME_BYTES = 7 * 8;

export function readExceptionFrame(phys: PhysicalMemory, kernelRsp: bigint): ExceptionFrame {
  const at = Number(kernelRsp - KERNEL_VBASE);
  if (at < KERNEL_PHYS.stackBottom || at + EXCEPTION_FRAME_BYTES > KERNEL_PHYS.stackTop) {
    throw new RangeError(`exception frame pointer 0x${kernelRsp.toString(16)} is outside the exception stack`);
  }
  const q = (i: number) => phys.view.getBigUint64(at + i * 8, true);
  return {
    vector: Number(q(0) & 0xffn),
    errorCode: q(1),
    rip: q(2),
    cs: Number(q(3) & 0xffffn),
    rflags: q(4),
    rsp: q(5),
    ss: Number(q(6) & 0xffffn),
  };
}

function segmentDescriptor(access: number, flags: number): bigint {
  // base 0, limit 0xfffff (ignored in long mode except for data segments with G=1)
  return (0xffffn) | (BigInt(access) << 40n) | (BigInt((flags << 4) | 0xf) << 48n);
}

/** Writes GDT, IDT, TSS and stubs into guest physical memory and maps them supervisor-only. */
export function installSeKernel(aspace: AddressSpace, phys: PhysicalMemory): void {
  const dv = phys.view;
  phys.bytes.fill(0, KERNEL_PHYS.gdt, KERNEL_PHYS.end);

  // GDT, accessed bits preset so the CPU never writes to it.
  const gdt = [
    0n,
    0n, // 0x08: unused (Linux's 32-bit kernel CS)
    segmentDescriptor(0x9b, 0xa), // 0x10 kernel code64: P, DPL0, code exec/read/accessed; G, L
    segmentDescriptor(0x93, 0xc), // 0x18 kernel data
    segmentDescriptor(0xfb, 0xc), // 0x23 user code32
    segmentDescriptor(0xf3, 0xc), // 0x2b user data
    segmentDescriptor(0xfb, 0xa), // 0x33 user code64
    0n,
  ];
  gdt.forEach((d, i) => dv.setBigUint64(KERNEL_PHYS.gdt + i * 8, d, true));
  // 0x40: 64-bit TSS descriptor (16 bytes), type 0xB busy, as KVM's TR says.
  const tssBase = kernelVirt(KERNEL_PHYS.tss);
  const tssLo =
    0x67n |
    ((tssBase & 0xffffffn) << 16n) |
    (0x8bn << 40n) |
    (((tssBase >> 24n) & 0xffn) << 56n);
  dv.setBigUint64(KERNEL_PHYS.gdt + 8 * 8, tssLo, true);
  dv.setBigUint64(KERNEL_PHYS.gdt + 9 * 8, (tssBase >> 32n) & 0xffffffffn, true);

  // TSS: RSP0 = top of the exception stack; no I/O bitmap (offset = limit + 1).
  dv.setBigUint64(KERNEL_PHYS.tss + 4, kernelVirt(KERNEL_PHYS.stackTop), true);
  dv.setUint16(KERNEL_PHYS.tss + 102, 0x68, true);

  // Syscall stub: movabs [doorbell], al; ud2 (never reached: the host emulates sysret).
  const doorbell = new DataView(new ArrayBuffer(8));
  doorbell.setBigUint64(0, BigInt(SE_SYSCALL_DOORBELL_VADDR), true);
  phys.bytes.set([0xa2, ...new Uint8Array(doorbell.buffer), 0x0f, 0x0b], KERNEL_PHYS.syscallStub);
  aspace.mapIo(SE_SYSCALL_STUB_VADDR, KERNEL_PHYS.syscallStub, 4096, PROT_READ | PROT_EXEC, '[se-syscall-stub]');
  aspace.mapIo(SE_SYSCALL_DOORBELL_VADDR, SE_SYSCALL_DOORBELL_PHYS, 4096, PROT_READ | PROT_WRITE, '[se-syscall-doorbell]');

  // Exception stubs and IDT gates for all 256 vectors.
  for (let v = 0; v < 256; v++) {
    const stub = KERNEL_PHYS.exceptionStubs + v * EXCEPTION_STUB_SIZE;
    const code: number[] = [];
    if (!HAS_ERROR_CODE.has(v)) code.push(0x6a, 0x00); // push 0
    code.push(0x68, v & 0xff, 0, 0, 0); // push imm32 vector (imm8 would sign-extend ≥ 0x80)
    code.push(0xe6, EXCEPTION_PORT, 0x0f, 0x0b); // out 0x11, al; ud2
    phys.bytes.set(code, stub);
    const handler = kernelVirt(stub);
    // int3 and into may be raised from user mode on purpose (DPL 3), the rest only by the CPU.
    const dpl = v === 3 || v === 4 ? 3n : 0n;
    const typeAttr = 0x8en | (dpl << 5n); // P, interrupt gate
    const lo =
      (handler & 0xffffn) |
      (BigInt(KERNEL_CS) << 16n) |
      (typeAttr << 40n) |
      (((handler >> 16n) & 0xffffn) << 48n);
    dv.setBigUint64(KERNEL_PHYS.idt + v * 16, lo, true);
    dv.setBigUint64(KERNEL_PHYS.idt + v * 16 + 8, (handler >> 32n) & 0xffffffffn, true);
  }

  // Supervisor-only: descriptor tables, TSS, exception stubs and stack (the syscall stub page
  // is mapped here too but only its user alias above is used).
  aspace.mapKernel(kernelVirt(KERNEL_PHYS.gdt), KERNEL_PHYS.gdt, KERNEL_PHYS.end - KERNEL_PHYS.gdt, PROT_READ | PROT_WRITE | PROT_EXEC);
}

export const KERNEL_DESCRIPTORS = {
  gdtBase: kernelVirt(KERNEL_PHYS.gdt),
  gdtLimit: GDT_ENTRIES * 8 - 1,
  idtBase: kernelVirt(KERNEL_PHYS.idt),
  idtLimit: 256 * 16 - 1,
  tssBase: kernelVirt(KERNEL_PHYS.tss),
  lstar: BigInt(SE_SYSCALL_STUB_VADDR),
  userCs: USER_CS,
  userSs: USER_SS,
} as const;
