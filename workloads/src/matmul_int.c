/*
 * matmul_int: C = A * B for N x N matrices of uint32 (wrapping arithmetic), i-k-j
 * loop order so the inner loop streams rows of B and C.
 *
 *   matmul_int [N=640] [--m5=inst|addr]
 *
 * Self-check (Freivalds): for a pseudo-random vector x, C*x must equal A*(B*x). The
 * identity holds exactly in wrapping (mod 2^32) arithmetic and costs O(N^2).
 */
#include "rt.h"

static uint32_t *alloc_matrix(uint64_t n)
{
    uint32_t *m = sys_mmap(NULL, n * n * sizeof(uint32_t), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(!SYS_IS_ERR(m), "mmap failed");
    return m;  /* fresh anonymous memory is zero: C starts at 0 */
}

/* y = M * x */
static void matvec(const uint32_t *m, const uint32_t *x, uint32_t *y, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint32_t s = 0;
        for (uint64_t k = 0; k < n; k++)
            s += m[i * n + k] * x[k];
        y[i] = s;
    }
}

int main(int argc, char **argv)
{
    roi_init(&argc, argv);
    uint64_t n = arg_u64(argc, argv, 1, 640);
    CHECK(n <= 4096, "N too large");

    uint32_t *a = alloc_matrix(n), *b = alloc_matrix(n), *c = alloc_matrix(n);
    uint64_t seed = 2024;
    for (uint64_t i = 0; i < n * n; i++) {
        a[i] = lcg_next(&seed) & 0xffff;
        b[i] = lcg_next(&seed) & 0xffff;
    }

    roi_begin();
    for (uint64_t i = 0; i < n; i++) {
        uint32_t *ci = c + i * n;
        for (uint64_t k = 0; k < n; k++) {
            uint32_t aik = a[i * n + k];
            const uint32_t *bk = b + k * n;
            for (uint64_t j = 0; j < n; j++)
                ci[j] += aik * bk[j];
        }
    }
    roi_end();

    /* Freivalds check. Vectors live in one more mapping (4 vectors of n). */
    uint32_t *v = sys_mmap(NULL, 4 * n * sizeof(uint32_t), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(!SYS_IS_ERR(v), "mmap failed");
    uint32_t *x = v, *bx = v + n, *abx = v + 2 * n, *cx = v + 3 * n;
    for (uint64_t i = 0; i < n; i++)
        x[i] = lcg_next(&seed);
    matvec(b, x, bx, n);
    matvec(a, bx, abx, n);
    matvec(c, x, cx, n);
    CHECK(memcmp(abx, cx, n * sizeof(uint32_t)) == 0, "C*x != A*(B*x): product is wrong");

    uint64_t sum = 0, mixed = 0;
    for (uint64_t i = 0; i < n * n; i++) {
        sum += c[i];
        mixed = (mixed ^ c[i]) * 0x100000001b3ull;  /* FNV-style, order-dependent */
    }
    print_kv_u64("N", n);
    print_kv_u64("sum", sum);
    print_kv_u64("c[0][0]", c[0]);
    print_kv_u64("c[N-1][N-1]", c[n * n - 1]);
    print_kv_hex("checksum", mixed, 16);
    print_str("OK\n");
    return 0;
}
