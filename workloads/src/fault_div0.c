/*
 * fault_div0: prints a line, then divides by (argc - 1), which is 0 when run without
 * arguments. Expected: SIGFPE (#DE from idiv). With arguments it does not fault and
 * exits 2.
 */
#include "rt.h"

int main(int argc, char **argv)
{
    (void)argv;
    write_str(STDOUT_FD, "fault_div0: dividing by zero\n");
    long num = 1000 + argc;
    long den = argc - 1;
    /*
     * The asm hides both values from the optimiser, so the division is really
     * executed (and not assumed unreachable because dividing by zero is undefined).
     */
    __asm__ volatile("" : "+r"(num), "+r"(den));
    long q = num / den;
    char buf[32];
    size_t n = fmt_i64(buf, q);
    buf[n++] = '\n';
    write_str(STDOUT_FD, "fault_div0: no fault, quotient ");
    write_all(STDOUT_FD, buf, n);
    return 2;
}
