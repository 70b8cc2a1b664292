/*
 * Plain C versions: simple enough for a JS CPU model to run without special cases
 * (no rep-string instructions, no vector code beyond what gcc chooses at -O2).
 *
 * This file is compiled with -fno-tree-loop-distribute-patterns (see
 * scripts/build-workloads.mjs): without it gcc may recognise the loops below as
 * memset/memcpy and turn them into calls to themselves.
 */
#include "mem.h"

#include <stdint.h>

/* A 64-bit word that may alias any object, so the word loops are valid C. */
typedef uint64_t __attribute__((may_alias)) word_t;

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    /* Word at a time when both pointers are 8-byte aligned: the common case for arrays. */
    if ((((uintptr_t)d | (uintptr_t)s) & 7) == 0) {
        for (; n >= 8; n -= 8, d += 8, s += 8)
            *(word_t *)d = *(const word_t *)s;
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d == s || n == 0)
        return dst;
    if (d < s || d >= s + n)
        return memcpy(dst, src, n);  /* no harmful overlap when copying forwards */
    /* dst overlaps the tail of src: copy backwards. */
    while (n--)
        d[n] = s[n];
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    if (((uintptr_t)d & 7) == 0) {
        uint64_t w = 0x0101010101010101ull * (unsigned char)c;
        for (; n >= 8; n -= 8, d += 8)
            *(word_t *)d = w;
    }
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}

size_t strlen(const char *s)
{
    const char *p = s;
    while (*p)
        p++;
    return (size_t)(p - s);
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n > 0; n--, a++, b++) {
        if (*a != *b || *a == 0)
            return (unsigned char)*a - (unsigned char)*b;
    }
    return 0;
}
