/*
 * spin: prints "spinning", then loops forever without system calls. For testing
 * timeouts, instruction limits and interrupting a running CPU (e.g. a KVM vCPU that
 * never exits on its own). Never exits: the runner has to stop it.
 */
#include "rt.h"

int main(void)
{
    write_str(STDOUT_FD, "spinning\n");
    uint64_t x = 0;
    for (;;) {
        x++;
        /* Keeps the loop (and x) alive: an empty infinite loop could be folded away. */
        __asm__ volatile("" : "+r"(x));
    }
}
