/**
 * Where a snippet lives in the tiny guest both CPUs run: one code area, one scratch data page
 * that every generated memory operand points into, and a stack whose pointer starts in the
 * middle so pushes, pops, calls and `leave` stay inside it. The same fixed addresses on KVM and
 * on the JS cores (no layout randomness: a reproducer is just the seed).
 */
export const SNIPPET_CODE_ADDR = 0x40_0000;
export const SNIPPET_CODE_SIZE = 0x2000;
export const SCRATCH_ADDR = 0x60_0000;
export const SCRATCH_SIZE = 0x1000;
export const STACK_ADDR = 0x70_0000;
export const STACK_SIZE = 0x2000;
/** Initial rsp: the middle of the stack area. */
export const STACK_START = STACK_ADDR + STACK_SIZE / 2;
/** Guest memory for the snippet VM: the minimum the guest layer accepts (sparse anyway). */
export const SNIPPET_MEM_SIZE = 16 * 1024 * 1024;
