/*
 * fault_null: prints a line, then loads from address 0. Expected: SIGSEGV
 * (a page fault at address 0; a simulator should report fault address 0).
 */
#include "rt.h"

int main(void)
{
    write_str(STDOUT_FD, "fault_null: loading from address 0\n");
    volatile int *p = NULL;
    /*
     * Hide the constant from the optimiser: at -O2 gcc would replace a visible NULL
     * dereference with ud2 (-fisolate-erroneous-paths-dereference), giving SIGILL.
     */
    __asm__ volatile("" : "+r"(p));
    int v = *p;
    write_str(STDOUT_FD, "fault_null: still running (no fault)\n");
    return v == 0 ? 2 : 3;
}
