/*
 * phases: a long-running program with distinct phases, so that IPC changes over time and
 * sampling has something to estimate. Each round runs four phases in order:
 *
 *   1. stream   two passes over two uint64 arrays (c[i] = a[i] + 3*b[i], a[i] ^= c[i] >> 1):
 *               unit-stride loads and stores, prefetch-friendly, memory bandwidth bound;
 *   2. chase    dependent loads through a random single-cycle permutation (Sattolo) of
 *               chase_bytes: latency bound, very low IPC; every third round chases twice
 *               as long;
 *   3. branchy  data-dependent branches on LCG values with different work in each arm:
 *               mispredictions, medium IPC;
 *   4. intmath  four independent integer mixing chains (add/xor/shift/rotate/multiply):
 *               high ILP, high IPC, almost no memory traffic; every third round half as long.
 *
 *   phases [rounds=14] [chase_bytes=8M] [unit=32K] [--m5=inst|addr]
 *
 * Per round: stream 2 x 4*unit elements, chase 4*unit steps (8*unit every third round),
 * branchy 8*unit iterations, intmath 8*unit iterations (4*unit every third round).
 * The whole loop over the rounds is the region of interest (setup: array fill and the
 * permutation, checked by one full walk of the cycle).
 *
 * Self-checks: the permutation is one cycle through every element; the branchy arm counts
 * match a branch-free recount; for the manifest's arguments the final checksum is compared
 * with golden values (integer arithmetic only, so every correct x86-64 CPU agrees; the
 * values come from a native run and agree with KVM and the atomic CPU).
 * Output: per-phase checksums and the combined checksum (no addresses), then OK.
 */
#include "rt.h"

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Phase 1: two streaming passes; returns a checksum of what was written. */
static uint64_t phase_stream(uint64_t *a, uint64_t *b, uint64_t *c, uint64_t len, uint64_t round)
{
    uint64_t sum = round;
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t i = 0; i < len; i++) {
            uint64_t v = a[i] + 3 * b[i];
            c[i] = v;
            a[i] ^= v >> 1;
            sum += v;
        }
    }
    return sum;
}

/* Phase 2: pointer chase of `steps` steps starting at *pos; returns a checksum of indices. */
static uint64_t phase_chase(void **arr, void ***pos, uint64_t steps)
{
    void **p = *pos;
    uint64_t check = 0;
    for (uint64_t s = 0; s < steps; s++) {
        p = (void **)*p;
        check = check * 0x100000001b3ull + (uint64_t)(p - arr);
    }
    *pos = p;
    return check;
}

struct branch_counts {
    uint64_t odd, even, low, rot;
    uint64_t bl_top, bl_low;
};

/* Phase 3: data-dependent branches (as in branchy.c); counts in *k. */
static uint64_t phase_branchy(uint64_t *seed, uint64_t iters, struct branch_counts *k)
{
    uint64_t x = 0x243f6a8885a308d3ull ^ *seed;
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t r = lcg_next(seed);
        if (r & 0x80000000u) {
            x += r >> 7;
            if (x & 1) {
                k->odd++;
                x ^= x >> 17;
            } else {
                k->even++;
                x *= 0x2545f4914f6cdd1dull;
            }
        } else if ((r & 0xff) < 0x40) {
            k->low++;
            x ^= (uint64_t)r * 3;
        } else {
            k->rot++;
            x = rotl(x, 1);
        }
        uint64_t t = r >> 31;
        k->bl_top += t;
        k->bl_low += (1 - t) & (uint64_t)((r & 0xff) < 0x40);
    }
    return x;
}

/* Phase 4: four independent mixing chains (instruction-level parallelism). */
static uint64_t phase_intmath(uint64_t iters, uint64_t round)
{
    uint64_t a = 0x0123456789abcdefull + round, b = 0xfedcba9876543210ull;
    uint64_t c = 0x0f1e2d3c4b5a6978ull, d = 0x8796a5b4c3d2e1f0ull ^ round;
    for (uint64_t i = 0; i < iters; i++) {
        a += i ^ 0x9e3779b97f4a7c15ull;
        b ^= rotl(b, 13) + i;
        c = c * 0x5851f42d4c957f2dull + 1;
        d += (d >> 7) ^ i;
        a = rotl(a, 7);
        b += b << 3;
        c ^= c >> 29;
        d *= 0xd6e8feb86659fd93ull;
    }
    return a ^ rotl(b, 16) ^ rotl(c, 32) ^ rotl(d, 48);
}

static const struct {
    uint64_t rounds, chase_bytes, unit;
    uint64_t expect;
} golden[] = {
    { 3, 48ull << 10, 1ull << 10, 0x83073541d0825ce4ull }, /* testArgs */
    { 14, 8ull << 20, 32ull << 10, 0x321cb534a801806aull }, /* default args */
};

int main(int argc, char **argv)
{
    roi_init(&argc, argv);
    uint64_t rounds = arg_u64(argc, argv, 1, 14);
    uint64_t chase_bytes = arg_u64(argc, argv, 2, 8ull << 20);
    uint64_t unit = arg_u64(argc, argv, 3, 32ull << 10);
    uint64_t n = chase_bytes / sizeof(void *);
    uint64_t len = 4 * unit;
    CHECK(n >= 2, "chase working set must hold at least 2 pointers (16 bytes)");
    CHECK(chase_bytes <= (1ull << 32) && unit <= (1ull << 26), "sizes too large");

    /* Setup: stream arrays and the chase permutation (as in ptrchase.c). */
    uint64_t *a = sys_mmap(NULL, 3 * len * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(!SYS_IS_ERR(a), "mmap of the stream arrays failed");
    uint64_t *b = a + len, *c = b + len;
    uint64_t seed = 2024;
    for (uint64_t i = 0; i < len; i++) {
        a[i] = lcg_next64(&seed);
        b[i] = i * 0x9e3779b97f4a7c15ull;
    }
    void **arr = sys_mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(!SYS_IS_ERR(arr), "mmap of the chase array failed");
    uintptr_t *perm = (uintptr_t *)arr;
    for (uint64_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = lcg_next64(&seed) % i; /* Sattolo: j < i, one cycle */
        uintptr_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint64_t i = 0; i < n; i++)
        arr[i] = &arr[perm[i]];
    void **p = arr;
    uint64_t index_sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t idx = (uint64_t)(p - arr);
        CHECK(i == 0 || idx != 0, "permutation has a cycle shorter than n");
        index_sum += idx;
        p = (void **)*p;
    }
    CHECK(p == arr && index_sum == n * (n - 1) / 2, "permutation is not one cycle through every element");

    roi_begin();
    uint64_t s_stream = 0, s_chase = 0, s_branchy = 0, s_intmath = 0;
    uint64_t bseed = 99;
    struct branch_counts k = { 0, 0, 0, 0, 0, 0 };
    uint64_t branch_iters = 0;
    for (uint64_t r = 0; r < rounds; r++) {
        int third = r % 3 == 2;
        s_stream = rotl(s_stream, 5) ^ phase_stream(a, b, c, len, r);
        s_chase = rotl(s_chase, 5) ^ phase_chase(arr, &p, third ? 8 * unit : 4 * unit);
        s_branchy = rotl(s_branchy, 5) ^ phase_branchy(&bseed, 8 * unit, &k);
        branch_iters += 8 * unit;
        s_intmath = rotl(s_intmath, 5) ^ phase_intmath(third ? 4 * unit : 8 * unit, r);
    }
    roi_end();

    CHECK(k.odd + k.even + k.low + k.rot == branch_iters, "branch counts do not add up");
    CHECK(k.odd + k.even == k.bl_top && k.low == k.bl_low, "branch counts differ from the branch-free recount");
    uint64_t sum = s_stream ^ rotl(s_chase, 16) ^ rotl(s_branchy, 32) ^ rotl(s_intmath, 48);

    print_kv_u64("rounds", rounds);
    print_kv_u64("chase_elements", n);
    print_kv_u64("unit", unit);
    print_kv_hex("stream", s_stream, 16);
    print_kv_hex("chase", s_chase, 16);
    print_kv_u64("chase_index", (uint64_t)(p - arr));
    print_kv_hex("branchy", s_branchy, 16);
    print_kv_u64("branch_odd", k.odd);
    print_kv_u64("branch_even", k.even);
    print_kv_u64("branch_low", k.low);
    print_kv_u64("branch_rot", k.rot);
    print_kv_hex("intmath", s_intmath, 16);
    print_kv_hex("checksum", sum, 16);
    int checked = 0;
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
        if (golden[i].rounds == rounds && golden[i].chase_bytes == chase_bytes && golden[i].unit == unit) {
            CHECK(sum == golden[i].expect, "checksum differs from the golden value");
            checked = 1;
        }
    }
    print_str(checked ? "golden: match\n" : "golden: none\n");
    print_str("OK\n");
    return 0;
}
