/**
 * The fixed SE-mode layout, the same on every CPU model (no ASLR, like Linux with
 * `setarch -R`): user addresses are JS numbers below 2^47, kernel addresses bigints.
 */
import { PAGE_SIZE } from './physmem.js';

export { PAGE_SIZE, PAGE_SHIFT } from './physmem.js';

/** First address above user space (Linux TASK_SIZE_MAX for 4-level paging). */
export const USER_TOP = 0x7ffffffff000;
/** The initial stack ends here (Linux STACK_TOP without randomization). */
export const STACK_TOP = 0x7ffffffff000;
/** RLIMIT_STACK: the whole stack is mapped at start (KVM cannot demand-page it for us). */
export const STACK_SIZE = 8 * 1024 * 1024;
/** mmap hands out addresses top-down from here (Linux mmap_base without randomization). */
export const MMAP_BASE = 0x7ffff7fff000;
/** mmap never goes below this (Linux vm.mmap_min_addr). */
export const MMAP_MIN_ADDR = 0x10000;

/** gem5's m5op address window: a load at M5OP_VADDR + (func << 8) runs m5op `func`. */
export const M5OP_VADDR = 0xffff0000;
export const M5OP_SIZE = 0x10000;
/**
 * Physical address behind the m5op window: just above the largest guest RAM, so KVM reports
 * MMIO exits. (Guests on the kvm_pvm hosts fault on physical addresses from 64 GiB up:
 * measured, so MMIO windows stay low.)
 */
export const M5OP_PHYS = 0x1_0000_0000;

/**
 * The SE kernel's user-visible window below the m5op window: the syscall stub page (LSTAR) and
 * the syscall doorbell page, a store to which is an MMIO exit. On kvm_pvm a CPL3 `syscall`
 * jumps to LSTAR without leaving CPL3 (measured), so the stub must be user-executable and must
 * leave the guest without privileged instructions.
 */
export const SE_WINDOW_START = 0xfffe0000;
export const SE_SYSCALL_STUB_VADDR = 0xfffe0000;
export const SE_SYSCALL_DOORBELL_VADDR = 0xfffe1000;
export const SE_SYSCALL_DOORBELL_PHYS = M5OP_PHYS + M5OP_SIZE;
/** End of every address the SE kernel reserves in user space. */
export const SE_WINDOW_END = M5OP_VADDR + M5OP_SIZE;

/** Physical memory below this belongs to the SE kernel (GDT, IDT, TSS, stubs, stacks). */
export const KERNEL_RESERVED_PHYS_END = 0x100000;

export function pageDown(x: number): number {
  return x - (x % PAGE_SIZE);
}

export function pageUp(x: number): number {
  const r = x % PAGE_SIZE;
  return r === 0 ? x : x + (PAGE_SIZE - r);
}

export function isPageAligned(x: number): boolean {
  return x % PAGE_SIZE === 0;
}
