/*
 * libc_hello: a real static libc program (built with plain `gcc -static -O2` against
 * glibc, and as libc_hello_musl with musl-gcc). Exercises what real programs lean on:
 * libc startup (TLS, IRELATIVE/ifunc resolution, tunables), stdio with floating-point
 * formatting, malloc/realloc/free over the brk and mmap paths, the CPU-dispatched
 * string functions, qsort, snprintf and getenv.
 *
 *   libc_hello [n=1000000]   (musl: workloads.json uses 100000; its qsort is ~10x slower)
 *
 * Prints `AVX2 active: 0|1` (glibc's CPU_FEATURE_ACTIVE(AVX2)), so a test can see
 * whether GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2 steered glibc to its non-AVX2 string
 * functions. Prints getenv("SWITCHSIM_GREETING"), or "(unset)".
 * Self-checks every result; exits 1 with a FAIL line on stderr if one is wrong.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <sys/platform/x86.h>
#endif

static int failures;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "FAIL: %s\n", what);
        failures++;
    }
}

static uint64_t lcg_state = 1;

static uint32_t lcg_next(void)
{
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(lcg_state >> 32);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void test_stdio(void)
{
    double third = 1.0 / 3.0;
    printf("double: %f %.10f %e %g\n", 22.0 / 7.0, third, 6.02214076e23, 0.0001234);
    printf("ints: %d %u %ld %x %05d|%-5d|\n", -42, 42u, 1234567890123L, 0xbeefu, 7, 7);

    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s=%d;%.3f;%c;%5.1f", "answer", 42, 3.14159265, 'z', -2.25);
    check(n == (int)strlen("answer=42;3.142;z; -2.2") && strcmp(buf, "answer=42;3.142;z; -2.2") == 0,
          "snprintf result");
    /* Truncation: returns the length it would have written. */
    char small[8];
    static char ten_digits[] = "0123456789";  /* not const: gcc would warn about the truncation */
    n = snprintf(small, sizeof small, "%s", ten_digits);
    check(n == 10 && strcmp(small, "0123456") == 0, "snprintf truncation");
    printf("snprintf: %s\n", buf);
}

static void test_malloc(void)
{
    /* Sizes from a few bytes to well past glibc's 128 KiB mmap threshold. */
    static const size_t sizes[] = { 1, 7, 16, 24, 100, 1000, 4096, 10000, 65536, 200000, 1 << 20 };
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *blocks[N];
    uint64_t sum = 0;
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(sizes[i]);
        check(blocks[i] != NULL, "malloc returned NULL");
        memset(blocks[i], i + 1, sizes[i]);
    }
    /* Grow every other block with realloc: contents must survive the move. */
    for (int i = 0; i < N; i += 2) {
        unsigned char *p = realloc(blocks[i], sizes[i] * 3 + 5);
        check(p != NULL, "realloc returned NULL");
        /* Sampled (every 61st byte and the last): cheap enough for a slow simulated CPU. */
        int lost = p[sizes[i] - 1] != i + 1;
        for (size_t k = 0; k < sizes[i]; k += 61)
            lost |= p[k] != i + 1;
        check(!lost, "realloc lost contents");
        memset(p + sizes[i], 0xee, sizes[i] * 2 + 5);
        blocks[i] = p;
    }
    for (int i = 0; i < N; i++)
        sum += blocks[i][0] + blocks[i][sizes[i] - 1];
    /* Free in an interleaved order. */
    for (int i = 1; i < N; i += 2)
        free(blocks[i]);
    for (int i = 0; i < N; i += 2)
        free(blocks[i]);

    /* Many small allocations: exercises the tcache/fastbin paths. */
    void *many[1000];
    for (int i = 0; i < 1000; i++) {
        many[i] = malloc((size_t)(i % 50) * 8 + 8);
        check(many[i] != NULL, "small malloc returned NULL");
        memset(many[i], 0x5a, (size_t)(i % 50) * 8 + 8);
    }
    for (int i = 999; i >= 0; i--)
        free(many[i]);
    printf("malloc: %d blocks up to %zu bytes, realloc, 1000 small: sum %llu\n", N, sizes[N - 1],
           (unsigned long long)sum);
}

static void test_strings(int n)
{
    /* A long string with a repeating but not block-aligned pattern. */
    char *s = malloc((size_t)n + 1);
    char *t = malloc((size_t)n + 64);
    check(s && t, "malloc for strings");
    for (int i = 0; i < n; i++)
        s[i] = (char)('a' + (i * 7 + i / 13) % 26);
    s[n] = 0;
    check(strlen(s) == (size_t)n, "strlen of the long string");

    /* memcpy at every small misalignment and many lengths, checked with memcmp. */
    int bad = 0;
    int maxlen = n - 17 < 300 ? n - 17 : 300;  /* stays inside s (n + 1) and t (n + 64) */
    for (int off = 0; off < 16; off++) {
        for (int len = 0; len < maxlen; len += 7) {
            memcpy(t + off, s + (off * 3) % 17, (size_t)len);
            bad += memcmp(t + off, s + (off * 3) % 17, (size_t)len) != 0;
        }
    }
    check(bad == 0, "memcpy/memcmp at odd offsets");

    /* strcmp: equal, then a difference at positions spread over the string. */
    memcpy(t, s, (size_t)n + 1);
    check(strcmp(s, t) == 0, "strcmp of equal strings");
    int order = 0;
    for (int pos = 0; pos < n; pos += n / 37 + 1) {
        char saved = t[pos];
        t[pos] = (char)(saved + 1);
        order += strcmp(s, t) < 0;
        t[pos] = 0;  /* t is now a proper prefix of s */
        order += strcmp(s, t) > 0;
        t[pos] = saved;
    }
    check(order == 2 * ((n - 1) / (n / 37 + 1) + 1), "strcmp ordering");
    const char *q = strchr(s, 'q');
    const char *found = strstr(s, "xyz");
    printf("strings: strlen %zu, strchr('q') at %ld, strstr(\"xyz\") %s, strcmp checks %d\n", strlen(s),
           q ? (long)(q - s) : -1L, found ? "found" : "absent", order);
    free(s);
    free(t);
}

static void test_qsort(int n)
{
    int *a = malloc(sizeof(int) * (size_t)n);
    check(a != NULL, "malloc for qsort");
    for (int i = 0; i < n; i++)
        a[i] = (int)(lcg_next() % 1000000) - 500000;
    qsort(a, (size_t)n, sizeof(int), cmp_int);
    int sorted = 1;
    uint64_t h = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && a[i - 1] > a[i])
            sorted = 0;
        h = h * 31 + (uint32_t)a[i];
    }
    check(sorted, "qsort result is not sorted");
    printf("qsort: n %d min %d median %d max %d hash %016llx\n", n, a[0], a[n / 2], a[n - 1],
           (unsigned long long)h);
    free(a);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000000;
    if (n < 100)
        n = 100;

#if defined(__GLIBC__)
    printf("libc: glibc %d.%d\n", __GLIBC__, __GLIBC_MINOR__);
#else
    printf("libc: not glibc\n");
#endif
    const char *greeting = getenv("SWITCHSIM_GREETING");
    printf("hello from libc_hello, SWITCHSIM_GREETING=%s\n", greeting ? greeting : "(unset)");

    test_stdio();
    test_malloc();
    test_strings(n);
    test_qsort(n);

#if defined(__GLIBC__)
    printf("AVX2 active: %d\n", CPU_FEATURE_ACTIVE(AVX2) ? 1 : 0);
#else
    printf("AVX2 active: n/a\n");
#endif
    if (failures) {
        printf("%d self-check(s) failed\n", failures);
        return 1;
    }
    printf("OK\n");
    return 0;
}
