/*
 * unknown_syscall: invokes syscall numbers 500 and 1000, which Linux does not define,
 * prints the raw results (expected -38, i.e. -ENOSYS), and carries on: an unknown
 * syscall must not kill the process. Exits 0 if both results are -ENOSYS, else 1.
 */
#include "rt.h"

int main(void)
{
    write_str(STDOUT_FD, "unknown_syscall: calling syscalls 500 and 1000\n");
    /* Flushed after each line, so a test sees how far the program got. */
    long r500 = syscall0(500);
    print_kv_i64("syscall 500 returned", r500);
    print_flush();
    long r1000 = syscall0(1000);
    print_kv_i64("syscall 1000 returned", r1000);
    print_str("continued\n");
    print_flush();
    CHECK(r500 == -ENOSYS && r1000 == -ENOSYS, "unknown syscall did not return -ENOSYS");
    print_str("OK\n");
    return 0;
}
