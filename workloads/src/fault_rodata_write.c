/*
 * fault_rodata_write: prints a line, then stores into a const array that the linker
 * put in .rodata (a read-only segment). Expected: SIGSEGV (write to a present,
 * read-only page: a protection fault, not a not-present one).
 */
#include "rt.h"

const uint32_t ro_table[4] = { 11, 22, 33, 44 };

int main(void)
{
    write_str(STDOUT_FD, "fault_rodata_write: writing to .rodata\n");
    /* Casting away const through a volatile pointer: the store is really emitted. */
    volatile uint32_t *p = (volatile uint32_t *)&ro_table[1];
    __asm__ volatile("" : "+r"(p));
    *p = 99;
    write_str(STDOUT_FD, "fault_rodata_write: still running (no fault)\n");
    return 2;
}
