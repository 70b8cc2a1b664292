/*
 * munmap_touch: maps a page, writes and reads it, unmaps it, prints "unmapped",
 * then reads it again. Expected: SIGSEGV (the page is gone: a simulator must drop
 * unmapped pages from its page tables/TLBs, not keep serving stale memory).
 */
#include "rt.h"

int main(void)
{
    volatile uint64_t *p = sys_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(!SYS_IS_ERR(p), "mmap failed");
    p[0] = 0x1234;
    p[511] = 0x5678;
    CHECK(p[0] == 0x1234 && p[511] == 0x5678, "mapped page did not keep its contents");
    write_str(STDOUT_FD, "mapped and written\n");
    CHECK(sys_munmap((void *)p, 4096) == 0, "munmap failed");
    write_str(STDOUT_FD, "unmapped\n");
    uint64_t v = p[0];  /* volatile: really loads */
    write_str(STDOUT_FD, "munmap_touch: still running (no fault)\n");
    return v == 0x1234 ? 2 : 3;
}
