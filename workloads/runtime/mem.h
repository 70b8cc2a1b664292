/*
 * memcpy/memset/memmove/memcmp and a few string helpers for freestanding workloads.
 * gcc emits calls to the mem* functions for struct copies and large initialisers even
 * with -ffreestanding -fno-builtin, so every program links these.
 */
#ifndef RT_MEM_H
#define RT_MEM_H

#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif /* RT_MEM_H */
