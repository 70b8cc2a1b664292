/*
 * syscall_latency: times N getppid() (110) round trips with rdtsc, around each call, and prints
 * the median, 99th percentile and minimum in TSC ticks. Natively this is the kernel's
 * syscall cost; under switchsim's KVM CPU it is the full exit-emulate-resume round trip.
 * Output is timing, not deterministic: a benchmark workload (kind "bench"), not a test one.
 */
#include "rt.h"

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
    return ((uint64_t)hi << 32) | lo;
}

/* Insertion sort is too slow for 100k samples; a plain heap sort keeps the runtime tiny. */
static void sift(uint64_t *a, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && a[l] > a[m]) m = l;
        if (l + 1 < n && a[l + 1] > a[m]) m = l + 1;
        if (m == i) return;
        uint64_t t = a[i]; a[i] = a[m]; a[m] = t;
        i = m;
    }
}

static void heapsort_u64(uint64_t *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;) sift(a, n, i);
    for (size_t k = n; k-- > 1;) {
        uint64_t t = a[0]; a[0] = a[k]; a[k] = t;
        sift(a, k, 0);
    }
}

int main(int argc, char **argv)
{
    uint64_t n = arg_u64(argc, argv, 1, 20000);
    uint64_t *t = sys_mmap(NULL, n * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(!SYS_IS_ERR(t), "mmap failed");
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t0 = rdtsc();
        syscall0(110); /* getppid: cheap, no side effects */
        t[i] = rdtsc() - t0;
    }
    heapsort_u64(t, n);
    print_kv_u64("calls", n);
    print_kv_u64("p50_ticks", t[n / 2]);
    print_kv_u64("p99_ticks", t[(n * 99) / 100]);
    print_kv_u64("min_ticks", t[0]);
    return 0;
}
