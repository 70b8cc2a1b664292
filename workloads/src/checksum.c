/*
 * checksum: an integer mixing loop (add, xor, shifts, rotate, multiply) over a
 * 64-bit state. Almost no memory traffic: it measures the core's integer pipeline.
 *
 *   checksum [iterations=50000000] [--m5=inst|addr]
 *
 * Self-check: for the iteration counts in workloads.json the result is compared with
 * golden values (computed by an independent Python model of mix() and confirmed by a
 * native run; integer arithmetic, so every correct x86-64 CPU agrees bit for bit).
 * Other counts are only reported ("golden: none").
 */
#include "rt.h"

/* The loop body; each step depends on the previous one, so it cannot be vectorised. */
static uint64_t mix(uint64_t iters)
{
    uint64_t a = 0x0123456789abcdefull;
    uint64_t b = 0xfedcba9876543210ull;
    for (uint64_t i = 0; i < iters; i++) {
        a += i ^ b;
        b ^= a >> 7;
        a = (a << 13) | (a >> 51);
        b += a * 0x9e3779b97f4a7c15ull;
        a ^= b << 3;
    }
    return a ^ b;
}

static const struct {
    uint64_t iters;
    uint64_t expect;
} golden[] = {
    { 100000, 0x78b7655cda7a3bcaull },    /* testArgs */
    { 50000000, 0x98a446d49ef476f9ull },  /* default args */
};

int main(int argc, char **argv)
{
    roi_init(&argc, argv);
    uint64_t iters = arg_u64(argc, argv, 1, 50000000);

    roi_begin();
    uint64_t sum = mix(iters);
    roi_end();

    print_kv_u64("iterations", iters);
    print_kv_hex("checksum", sum, 16);
    int checked = 0;
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
        if (golden[i].iters == iters) {
            CHECK(sum == golden[i].expect, "checksum differs from the golden value");
            checked = 1;
        }
    }
    print_str(checked ? "golden: match\n" : "golden: none\n");
    print_str("OK\n");
    return 0;
}
