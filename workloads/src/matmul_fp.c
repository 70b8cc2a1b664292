/*
 * matmul_fp: C = A * B for N x N matrices of doubles (SSE2 scalar/packed code as gcc
 * emits by default for x86-64; no FMA, no -ffast-math, so the result is bit-exact and
 * the same on every x86-64 CPU). A[i][k] = 1/(i+k+1) (a Hilbert matrix: inexact
 * values, real rounding), B[k][j] = small integers in [-3, 7].
 *
 *   matmul_fp [N=576] [--m5=inst|addr]
 *
 * Self-check: the sum of all elements of C must equal sum_k colsum_A[k] * rowsum_B[k]
 * (an O(N^2) identity) within a rounding tolerance, and a few elements recomputed
 * directly must match exactly (same summation order). Prints the sum's IEEE bits in
 * hex and its value rounded to an integer.
 */
#include "rt.h"

static double *alloc_matrix(uint64_t n)
{
    double *m = sys_mmap(NULL, n * n * sizeof(double), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(!SYS_IS_ERR(m), "mmap failed");
    return m;  /* zero-filled: 0.0 */
}

static double fabs_(double x)
{
    return x < 0 ? -x : x;
}

/* Round half away from zero, without libm. */
static int64_t round_to_i64(double x)
{
    return x < 0 ? -(int64_t)(0.5 - x) : (int64_t)(x + 0.5);
}

int main(int argc, char **argv)
{
    roi_init(&argc, argv);
    uint64_t n = arg_u64(argc, argv, 1, 576);
    CHECK(n <= 2048, "N too large");

    double *a = alloc_matrix(n), *b = alloc_matrix(n), *c = alloc_matrix(n);
    for (uint64_t i = 0; i < n; i++) {
        for (uint64_t k = 0; k < n; k++) {
            a[i * n + k] = 1.0 / (double)(i + k + 1);
            b[i * n + k] = (double)((int64_t)((i * 7 + k * 3) % 11) - 3);
        }
    }

    roi_begin();
    for (uint64_t i = 0; i < n; i++) {
        double *ci = c + i * n;
        for (uint64_t k = 0; k < n; k++) {
            double aik = a[i * n + k];
            const double *bk = b + k * n;
            for (uint64_t j = 0; j < n; j++)
                ci[j] += aik * bk[j];
        }
    }
    roi_end();

    double sum = 0;
    for (uint64_t i = 0; i < n * n; i++)
        sum += c[i];

    /*
     * Expected total: sum_ij C_ij = sum_k (sum_i A_ik) (sum_j B_kj). Each C_ij carries a
     * rounding error of at most about n * eps * sum_k |A_ik B_kj|, so the tolerance is
     * scaled by the absolute mass sum_k colsum|A|[k] * rowsum|B|[k] (plus the error of
     * the final sums, same order).
     */
    double expect = 0, mass = 0;
    for (uint64_t k = 0; k < n; k++) {
        double col = 0, row = 0, rowabs = 0;
        for (uint64_t i = 0; i < n; i++)
            col += a[i * n + k];  /* A is positive: col is also its absolute sum */
        for (uint64_t j = 0; j < n; j++) {
            row += b[k * n + j];
            rowabs += fabs_(b[k * n + j]);
        }
        expect += col * row;
        mass += col * rowabs;
    }
    double tol = 4.0 * (double)(n + 2) * 2.220446049250313e-16 * mass;
    CHECK(fabs_(sum - expect) <= tol, "sum of C differs from sum_k colsum(A)*rowsum(B)");

    /* Spot checks, accumulated in the same k order as the kernel, so exactly equal. */
    const uint64_t spots[3][2] = { { 0, 0 }, { n / 2, n / 3 }, { n - 1, n - 1 } };
    for (int s = 0; s < 3; s++) {
        uint64_t i = spots[s][0], j = spots[s][1];
        double v = 0;
        for (uint64_t k = 0; k < n; k++)
            v += a[i * n + k] * b[k * n + j];
        CHECK(v == c[i * n + j], "spot-checked element of C differs");
    }

    uint64_t bits;
    memcpy(&bits, &sum, sizeof bits);
    print_kv_u64("N", n);
    print_kv_hex("sum_bits", bits, 16);
    print_kv_i64("sum_rounded", round_to_i64(sum));
    print_kv_i64("expect_rounded", round_to_i64(expect));
    print_str("OK\n");
    return 0;
}
