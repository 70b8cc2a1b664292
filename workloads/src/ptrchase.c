/*
 * ptrchase: dependent loads through a random single-cycle permutation, the classic
 * memory-latency kernel. The working set is an array of pointers (8 bytes each) in
 * an mmap'd region; Sattolo's algorithm makes the permutation one cycle through every
 * element, so the chase touches the whole working set before repeating.
 *
 *   ptrchase [working_set_bytes=16M] [steps=1000000] [--m5=inst|addr]
 *
 * Self-check: walking exactly n (= elements) steps from element 0 returns to element
 * 0 for the first time, and visits every element once (sum of indices = n(n-1)/2).
 * Prints the index reached after `steps` steps and a checksum of the visited indices
 * (indices, not addresses, so the output does not depend on where mmap put the array).
 */
#include "rt.h"

int main(int argc, char **argv)
{
    roi_init(&argc, argv);
    uint64_t bytes = arg_u64(argc, argv, 1, 16ull << 20);
    uint64_t steps = arg_u64(argc, argv, 2, 1000000);
    uint64_t n = bytes / sizeof(void *);
    CHECK(n >= 2, "working set must hold at least 2 pointers (16 bytes)");
    CHECK(bytes <= (1ull << 34), "working set too large");

    void **arr = sys_mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(!SYS_IS_ERR(arr), "mmap failed");

    /*
     * Sattolo's algorithm on indices stored in the array itself (as uintptr_t), then
     * converted to pointers in place: perm[i] is the successor of i.
     */
    uintptr_t *perm = (uintptr_t *)arr;
    for (uint64_t i = 0; i < n; i++)
        perm[i] = i;
    uint64_t seed = 42;
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = lcg_next64(&seed) % i;  /* j < i, never i itself: one cycle */
        uintptr_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint64_t i = 0; i < n; i++)
        arr[i] = &arr[perm[i]];

    /* Verification walk: one full cycle. */
    void **p = arr;
    uint64_t index_sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t idx = (uint64_t)(p - arr);
        CHECK(i == 0 || idx != 0, "permutation has a cycle shorter than n");
        index_sum += idx;
        p = (void **)*p;
    }
    CHECK(p == arr, "n steps did not return to the start");
    CHECK(index_sum == n * (n - 1) / 2, "cycle does not visit every element");

    /* The measured chase. */
    roi_begin();
    p = arr;
    uint64_t check = 0;
    for (uint64_t s = 0; s < steps; s++) {
        p = (void **)*p;
        check = check * 0x100000001b3ull + (uint64_t)(p - arr);
    }
    roi_end();

    print_kv_u64("elements", n);
    print_kv_u64("steps", steps);
    print_kv_u64("final_index", (uint64_t)(p - arr));
    print_kv_hex("checksum", check, 16);
    print_str("OK\n");
    return 0;
}
