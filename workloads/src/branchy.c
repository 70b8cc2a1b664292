/*
 * branchy: branch-predictor food. Two phases:
 *  1. binary searches for LCG-drawn keys in a sorted table (strictly increasing
 *     values built from random gaps, so no sort is needed); half the keys are drawn
 *     from the table, half are arbitrary (mostly absent). The search loop's branches
 *     depend on the data and are unpredictable.
 *  2. a chain of data-dependent branches on LCG values, with different work in each
 *     arm (so gcc cannot turn them into conditional moves).
 *
 *   branchy [searches=1000000] [branch_iters=4000000] [--m5=inst|addr]
 *
 * Self-checks: every key drawn from the table is found at its own index; every
 * result of a search is consistent (found => table[i] == key; not found => the key
 * falls between table[i-1] and table[i]); in phase 2 the arm counts add up and match
 * counts recomputed without branches.
 */
#include "rt.h"

#define TABLE_SIZE 4096  /* 32 KiB of uint64: L1/L2-resident, so branches dominate */

static uint64_t table[TABLE_SIZE];

/* Index of key, or -(insertion point) - 1 if absent (like Java's binarySearch). */
static long search(uint64_t key)
{
    long lo = 0, hi = TABLE_SIZE - 1;
    while (lo <= hi) {
        long mid = (lo + hi) >> 1;
        uint64_t v = table[mid];
        if (v < key)
            lo = mid + 1;
        else if (v > key)
            hi = mid - 1;
        else
            return mid;
    }
    return -lo - 1;
}

int main(int argc, char **argv)
{
    roi_init(&argc, argv);
    uint64_t searches = arg_u64(argc, argv, 1, 1000000);
    uint64_t iters = arg_u64(argc, argv, 2, 4000000);

    uint64_t seed = 7;
    uint64_t v = 0;
    for (int i = 0; i < TABLE_SIZE; i++) {
        v += 1 + (lcg_next(&seed) & 0xffff);  /* random gap >= 1: strictly increasing */
        table[i] = v;
    }
    uint64_t top = v;

    roi_begin();

    /* Phase 1: binary searches. */
    uint64_t found = 0, absent = 0, pos_sum = 0;
    for (uint64_t q = 0; q < searches; q++) {
        uint32_t r = lcg_next(&seed);
        uint64_t key;
        long want = -1;
        if (r & 1) {
            want = (long)((r >> 1) % TABLE_SIZE);
            key = table[want];
        } else {
            key = lcg_next64(&seed) % (top + 1000);
        }
        long i = search(key);
        if (i >= 0) {
            CHECK(table[i] == key, "search returned a wrong index");
            CHECK(want < 0 || i == want, "key from the table found at the wrong index");
            found++;
            pos_sum += (uint64_t)i;
        } else {
            long ins = -i - 1;
            CHECK(want < 0, "key from the table was not found");
            CHECK(ins == 0 || table[ins - 1] < key, "insertion point too far right");
            CHECK(ins == TABLE_SIZE || table[ins] > key, "insertion point too far left");
            absent++;
            pos_sum += (uint64_t)ins * 3;
        }
    }

    /* Phase 2: data-dependent branches. */
    uint64_t x = 0x243f6a8885a308d3ull;
    uint64_t c_odd = 0, c_even = 0, c_low = 0, c_rot = 0;
    uint64_t bl_top = 0, bl_low = 0;  /* branch-free recount */
    uint64_t seed2 = 99;
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t r = lcg_next(&seed2);
        if (r & 0x80000000u) {
            x += r >> 7;
            if (x & 1) {
                c_odd++;
                x ^= x >> 17;
            } else {
                c_even++;
                x *= 0x2545f4914f6cdd1dull;
            }
        } else if ((r & 0xff) < 0x40) {
            c_low++;
            x ^= (uint64_t)r * 3;
        } else {
            c_rot++;
            x = (x << 1) | (x >> 63);
        }
        /* Same classification by arithmetic. */
        uint64_t t = r >> 31;
        bl_top += t;
        bl_low += (1 - t) & (uint64_t)((r & 0xff) < 0x40);
    }

    roi_end();

    CHECK(found + absent == searches, "search counts do not add up");
    CHECK(c_odd + c_even + c_low + c_rot == iters, "branch counts do not add up");
    CHECK(c_odd + c_even == bl_top && c_low == bl_low, "branch counts differ from the branch-free recount");

    print_kv_u64("searches", searches);
    print_kv_u64("found", found);
    print_kv_u64("absent", absent);
    print_kv_u64("position_sum", pos_sum);
    print_kv_u64("branch_iters", iters);
    print_kv_u64("odd", c_odd);
    print_kv_u64("even", c_even);
    print_kv_u64("low", c_low);
    print_kv_u64("rot", c_rot);
    print_kv_hex("state", x, 16);
    print_str("OK\n");
    return 0;
}
