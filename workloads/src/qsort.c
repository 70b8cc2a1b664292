/*
 * qsort: quicksort (own implementation: median-of-three, Hoare partition, insertion
 * sort for short ranges, recursion on the smaller side so the stack stays O(log n))
 * of n LCG-generated 32-bit ints in an mmap'd buffer.
 *
 *   qsort [n=1000000] [--m5=inst|addr]
 *
 * Self-check: the result is sorted, and an order-independent checksum of the values
 * (sum and xor of a per-value hash) is unchanged, so nothing was lost or duplicated.
 * Prints the order-dependent checksum of the sorted array and a few order statistics.
 */
#include "rt.h"

static void insertion_sort(int32_t *a, long lo, long hi)
{
    for (long i = lo + 1; i <= hi; i++) {
        int32_t v = a[i];
        long j = i - 1;
        while (j >= lo && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static inline void swap(int32_t *a, long i, long j)
{
    int32_t t = a[i];
    a[i] = a[j];
    a[j] = t;
}

static void quicksort(int32_t *a, long lo, long hi)
{
    while (hi - lo > 16) {
        /* Median of three as the pivot: sorted input does not degrade to O(n^2). */
        long mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo])
            swap(a, mid, lo);
        if (a[hi] < a[lo])
            swap(a, hi, lo);
        if (a[hi] < a[mid])
            swap(a, hi, mid);
        int32_t pivot = a[mid];

        /* Hoare partition: afterwards a[lo..j] <= pivot <= a[j+1..hi]. */
        long i = lo - 1, j = hi + 1;
        for (;;) {
            do
                i++;
            while (a[i] < pivot);
            do
                j--;
            while (a[j] > pivot);
            if (i >= j)
                break;
            swap(a, i, j);
        }

        /* Recurse into the smaller half, loop on the larger one. */
        if (j - lo < hi - j) {
            quicksort(a, lo, j);
            lo = j + 1;
        } else {
            quicksort(a, j + 1, hi);
            hi = j;
        }
    }
    insertion_sort(a, lo, hi);
}

/* A per-value hash for the multiset checksum (odd multiplier: a bijection on 64 bits). */
static inline uint64_t vhash(int32_t v)
{
    uint64_t x = (uint64_t)(uint32_t)v * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

int main(int argc, char **argv)
{
    roi_init(&argc, argv);
    uint64_t n = arg_u64(argc, argv, 1, 1000000);
    CHECK(n <= (1ull << 28), "n too large");

    size_t bytes = (size_t)n * sizeof(int32_t);
    int32_t *a = sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(!SYS_IS_ERR(a), "mmap failed");

    uint64_t seed = 12345;
    uint64_t sum_before = 0, xor_before = 0;
    for (uint64_t i = 0; i < n; i++) {
        a[i] = (int32_t)lcg_next(&seed);
        sum_before += vhash(a[i]);
        xor_before ^= vhash(a[i]);
    }

    roi_begin();
    quicksort(a, 0, (long)n - 1);
    roi_end();

    uint64_t sum_after = 0, xor_after = 0, ordered = 0;
    for (uint64_t i = 0; i < n; i++) {
        CHECK(i == 0 || a[i - 1] <= a[i], "array is not sorted");
        sum_after += vhash(a[i]);
        xor_after ^= vhash(a[i]);
        ordered = ordered * 31 + (uint32_t)a[i];  /* depends on the order */
    }
    CHECK(sum_after == sum_before && xor_after == xor_before, "sorted array is not a permutation of the input");

    print_kv_u64("n", n);
    print_kv_i64("min", a[0]);
    print_kv_i64("median", a[n / 2]);
    print_kv_i64("max", a[n - 1]);
    print_kv_hex("checksum", ordered, 16);
    print_str("OK\n");
    return 0;
}
