/*
 * syscalls: exercises the system calls a simulator's syscall layer must get right,
 * and checks their results. Everything printed is deterministic (no pids, times,
 * addresses or random bytes).
 *
 *   syscalls [lines=2000] [getpid_calls=50000]
 *
 *  - `lines` unbuffered write() calls, one numbered line each;
 *  - brk: query, grow in steps (touching every new page), shrink back;
 *  - mmap: several anonymous mappings of different sizes, filled with a pattern;
 *    every other one munmapped, the rest verified intact; one made read-only with
 *    mprotect and read back;
 *  - getpid (called `getpid_calls` times: the bulk of the run time natively, and pure
 *    syscall round trips under a simulator), clock_gettime, getrandom: sane results.
 */
#include "rt.h"

#define PAGE 4096ul

static void line_out(uint64_t i, uint64_t total)
{
    char buf[64];
    size_t n = 0;
    memcpy(buf, "line ", 5);
    n += 5;
    n += fmt_u64(buf + n, i);
    memcpy(buf + n, " of ", 4);
    n += 4;
    n += fmt_u64(buf + n, total);
    buf[n++] = '\n';
    CHECK(write_all(STDOUT_FD, buf, n) == 0, "write to stdout failed");
}

static void test_brk(void)
{
    unsigned long base = sys_brk(0);
    CHECK(base != 0 && !SYS_IS_ERR(base), "brk(0) returned no break");

    /*
     * Grow in 4 steps of 64 KiB + 100 bytes (deliberately not page multiples), writing
     * a word every 512 bytes of each new range (every new page gets touched), then read
     * everything back.
     */
    unsigned long lo[4], hi[4];
    unsigned long cur = base;
    for (int step = 0; step < 4; step++) {
        unsigned long want = cur + 65536 + 100;
        CHECK(sys_brk(want) == want, "brk grow did not move the break to the requested address");
        lo[step] = (cur + 7) & ~7ul;
        hi[step] = want;
        for (unsigned long a = lo[step]; a + 8 <= hi[step]; a += 512)
            *(volatile uint64_t *)a = a;
        cur = want;
    }
    uint64_t bad = 0;
    for (int step = 0; step < 4; step++) {
        for (unsigned long a = lo[step]; a + 8 <= hi[step]; a += 512)
            bad += *(volatile uint64_t *)a != a;
    }
    CHECK(bad == 0, "memory obtained with brk did not keep its contents");

    /* Shrink back to the start, then grow again: the re-grown memory must be zero. */
    CHECK(sys_brk(base) == base, "brk shrink did not move the break back");
    unsigned long again = sys_brk(base + 3 * PAGE);
    CHECK(again == base + 3 * PAGE, "brk re-grow failed");
    /* Only whole pages past the original break's page are guaranteed fresh (zero). */
    unsigned long fresh = (base + PAGE - 1) & ~(PAGE - 1);
    for (unsigned long a = fresh; a < again; a += 8)
        CHECK(*(volatile uint64_t *)a == 0, "re-grown brk memory is not zero");
    CHECK(sys_brk(base) == base, "final brk shrink failed");

    print_str("brk: grew 4 steps of 65636 bytes, contents kept, shrank, re-grew zeroed: ok\n");
}

static void test_mmap(void)
{
    enum { NMAP = 8 };
    static const size_t sizes[NMAP] = { 1, 2, 3, 5, 8, 16, 64, 256 };  /* pages */
    uint8_t *maps[NMAP];
    uint64_t total_pages = 0;

    for (int m = 0; m < NMAP; m++) {
        size_t len = sizes[m] * PAGE;
        maps[m] = sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(!SYS_IS_ERR(maps[m]), "anonymous mmap failed");
        CHECK(((uintptr_t)maps[m] & (PAGE - 1)) == 0, "mmap returned an unaligned address");
        CHECK(maps[m][0] == 0 && maps[m][len - 1] == 0, "fresh anonymous mapping is not zero");
        for (size_t off = 0; off < len; off += 64)
            maps[m][off] = (uint8_t)(m * 31 + off / 64);
        total_pages += sizes[m];
    }

    /* munmap the odd ones, then check the survivors are untouched. */
    for (int m = 1; m < NMAP; m += 2)
        CHECK(sys_munmap(maps[m], sizes[m] * PAGE) == 0, "munmap failed");
    for (int m = 0; m < NMAP; m += 2) {
        for (size_t off = 0; off < sizes[m] * PAGE; off += 64)
            CHECK(maps[m][off] == (uint8_t)(m * 31 + off / 64), "mapping lost its contents after a munmap");
    }

    /* mprotect the largest survivor read-only; reading must still work. */
    int ro = NMAP - 2;
    CHECK(sys_mprotect(maps[ro], sizes[ro] * PAGE, PROT_READ) == 0, "mprotect PROT_READ failed");
    uint64_t sum = 0;
    for (size_t off = 0; off < sizes[ro] * PAGE; off += 64)
        sum += maps[ro][off];
    uint64_t want = 0;
    for (size_t off = 0; off < sizes[ro] * PAGE; off += 64)
        want += (uint8_t)(ro * 31 + off / 64);
    CHECK(sum == want, "read-only mapping reads back wrong");

    /* A mapping can be grown afterwards and reuses nothing still mapped. */
    uint8_t *big = sys_mmap(NULL, 1024 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(!SYS_IS_ERR(big), "large anonymous mmap failed");
    for (size_t off = 0; off < 1024 * PAGE; off += PAGE)
        big[off] = 1;
    for (int m = 0; m < NMAP; m += 2)
        CHECK(maps[m] + sizes[m] * PAGE <= big || maps[m] >= big + 1024 * PAGE, "new mapping overlaps a live one");
    CHECK(sys_munmap(big, 1024 * PAGE) == 0, "munmap of the large mapping failed");
    for (int m = 0; m < NMAP; m += 2)
        CHECK(sys_munmap(maps[m], sizes[m] * PAGE) == 0, "final munmap failed");

    print_str("mmap: ");
    print_u64(NMAP);
    print_str(" mappings (");
    print_u64(total_pages);
    print_str(" pages) + 1024 pages, munmap/mprotect/readback: ok\n");
    print_kv_u64("mmap_readonly_sum", sum);
}

static void test_misc(uint64_t getpid_calls)
{
    long pid = sys_getpid();
    CHECK(pid > 0, "getpid returned a non-positive pid");
    for (uint64_t i = 0; i < getpid_calls; i++)
        CHECK(sys_getpid() == pid, "getpid changed between calls");
    print_kv_u64("getpid_calls", getpid_calls + 1);

    struct rt_timespec t0, t1, rt;
    CHECK(sys_clock_gettime(CLOCK_MONOTONIC, &t0) == 0, "clock_gettime(MONOTONIC) failed");
    CHECK(sys_clock_gettime(CLOCK_MONOTONIC, &t1) == 0, "clock_gettime(MONOTONIC) failed");
    CHECK(sys_clock_gettime(CLOCK_REALTIME, &rt) == 0, "clock_gettime(REALTIME) failed");
    CHECK(t0.tv_nsec >= 0 && t0.tv_nsec < 1000000000 && t1.tv_nsec >= 0 && t1.tv_nsec < 1000000000 &&
              rt.tv_nsec >= 0 && rt.tv_nsec < 1000000000,
          "clock_gettime returned tv_nsec out of range");
    CHECK(t0.tv_sec >= 0 && rt.tv_sec >= 0, "clock_gettime returned a negative time");
    CHECK(t1.tv_sec > t0.tv_sec || (t1.tv_sec == t0.tv_sec && t1.tv_nsec >= t0.tv_nsec),
          "CLOCK_MONOTONIC went backwards");
    print_str("clock_gettime: ok\n");

    uint8_t rnd[64];
    memset(rnd, 0, sizeof rnd);
    CHECK(sys_getrandom(rnd, sizeof rnd, 0) == (long)sizeof rnd, "getrandom did not fill the buffer");
    int nonzero = 0;
    for (size_t i = 0; i < sizeof rnd; i++)
        nonzero |= rnd[i];
    CHECK(nonzero, "getrandom returned 64 zero bytes");
    print_str("getrandom: ok\n");

    /* Error paths: raw results are negative errnos. */
    CHECK(sys_write(-1, "x", 1) == -EBADF, "write to fd -1 did not fail with EBADF");
    CHECK(sys_munmap((void *)0x1001, PAGE) == -EINVAL, "munmap of an unaligned address did not fail with EINVAL");
    print_str("error returns: ok\n");
}

int main(int argc, char **argv)
{
    uint64_t lines = arg_u64(argc, argv, 1, 2000);
    uint64_t getpid_calls = arg_u64(argc, argv, 2, 50000);

    for (uint64_t i = 1; i <= lines; i++)
        line_out(i, lines);

    test_brk();
    test_mmap();
    test_misc(getpid_calls);
    print_str("OK\n");
    return 0;
}
