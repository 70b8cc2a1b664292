/*
 * switchsim workload runtime: everything a freestanding workload includes.
 *
 * Programs define int main(int argc, char **argv, char **envp); start.S calls it
 * and exits with its return value (after flushing buffered stdout).
 */
#ifndef RT_RT_H
#define RT_RT_H

#include <stddef.h>
#include <stdint.h>

#include "m5ops.h"
#include "mem.h"
#include "print.h"
#include "sys.h"

/* Set by _start: the auxiliary vector (after envp's NULL) and envp itself. */
extern uint64_t *rt_auxv;
extern char **rt_environ;

/* auxv types (include/uapi/linux/auxvec.h, arch/x86/include/uapi/asm/auxvec.h). */
#define AT_NULL          0
#define AT_PHDR          3
#define AT_PHENT         4
#define AT_PHNUM         5
#define AT_PAGESZ        6
#define AT_BASE          7
#define AT_FLAGS         8
#define AT_ENTRY         9
#define AT_UID           11
#define AT_EUID          12
#define AT_GID           13
#define AT_EGID          14
#define AT_PLATFORM      15
#define AT_HWCAP         16
#define AT_CLKTCK        17
#define AT_SECURE        23
#define AT_RANDOM        25
#define AT_HWCAP2        26
#define AT_EXECFN        31
#define AT_SYSINFO_EHDR  33

/* Value of auxv entry `type`; *found (if non-NULL) says whether it was present. */
uint64_t rt_getauxval(uint64_t type, int *found);

/*
 * argv[i] as an unsigned number, or def if argc <= i. Accepts decimal or 0x hex,
 * with an optional binary suffix K, M or G (e.g. "64K", "16M"). A malformed or
 * zero value fails the program with a message naming the argument.
 */
uint64_t arg_u64(int argc, char **argv, int i, uint64_t def);

/*
 * Deterministic pseudo-random numbers: Knuth's MMIX 64-bit LCG, returning the high
 * 32 bits (the low bits of a power-of-two LCG are poor).
 */
static inline uint32_t lcg_next(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 32);
}

/* 64 random bits from two steps. */
static inline uint64_t lcg_next64(uint64_t *state)
{
    uint64_t hi = lcg_next(state);
    return (hi << 32) | lcg_next(state);
}

/*
 * Region of interest, marked with gem5 m5ops only when asked.
 * roi_init removes a "--m5=inst" or "--m5=addr" argument from argv (wherever it is)
 * and remembers the form; without it roi_begin/roi_end do nothing, so default runs
 * work natively. With it, roi_begin issues work_begin(0, 0) then reset_stats(0, 0),
 * and roi_end issues dump_stats(0, 0) then work_end(0, 0).
 */
void roi_init(int *argc, char **argv);
void roi_begin(void);
void roi_end(void);

#endif /* RT_RT_H */
