/* fault_ud2: prints a line, then executes ud2. Expected: SIGILL (#UD). */
#include "rt.h"

int main(void)
{
    write_str(STDOUT_FD, "fault_ud2: executing ud2\n");
    __asm__ volatile("ud2");
    write_str(STDOUT_FD, "fault_ud2: still running (no fault)\n");
    return 2;
}
