/*
 * Raw Linux x86-64 system calls for freestanding workloads.
 *
 * Every wrapper returns the kernel's raw result: a negative errno on failure
 * (e.g. -38 for ENOSYS), never -1 with errno. The syscall instruction clobbers
 * rcx (return rip) and r11 (saved rflags); the kernel preserves everything else.
 */
#ifndef RT_SYS_H
#define RT_SYS_H

#include <stddef.h>
#include <stdint.h>

/* Syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
#define SYS_read            0
#define SYS_write           1
#define SYS_close           3
#define SYS_lseek           8
#define SYS_mmap            9
#define SYS_mprotect        10
#define SYS_munmap          11
#define SYS_brk             12
#define SYS_getpid          39
#define SYS_exit            60
#define SYS_uname           63
#define SYS_clock_gettime   228
#define SYS_exit_group      231
#define SYS_openat          257
#define SYS_getrandom       318

#define AT_FDCWD            (-100)
#define O_RDONLY            0
#define O_WRONLY            1
#define O_RDWR              2
#define O_CREAT             0100
#define O_TRUNC             01000
#define SEEK_SET            0
#define SEEK_CUR            1
#define SEEK_END            2

#define PROT_NONE           0
#define PROT_READ           1
#define PROT_WRITE          2
#define PROT_EXEC           4
#define MAP_SHARED          0x01
#define MAP_PRIVATE         0x02
#define MAP_FIXED           0x10
#define MAP_ANONYMOUS       0x20

#define CLOCK_REALTIME      0
#define CLOCK_MONOTONIC     1

#define ENOENT              2
#define EBADF               9
#define ENOMEM              12
#define EFAULT              14
#define EINVAL              22
#define ENOSYS              38

/* A raw result in [-4095, -1] is an error; anything else (e.g. an mmap address) is success. */
#define SYS_IS_ERR(r)       ((unsigned long)(r) > (unsigned long)-4096L)

struct rt_timespec {
    long tv_sec;
    long tv_nsec;
};

struct rt_utsname {
    char sysname[65];
    char nodename[65];
    char release[65];
    char version[65];
    char machine[65];
    char domainname[65];
};

static inline long syscall0(long n)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n) : "rcx", "r11", "memory");
    return r;
}

static inline long syscall1(long n, long a1)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a1) : "rcx", "r11", "memory");
    return r;
}

static inline long syscall2(long n, long a1, long a2)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a1), "S"(a2) : "rcx", "r11", "memory");
    return r;
}

static inline long syscall3(long n, long a1, long a2, long a3)
{
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(n), "D"(a1), "S"(a2), "d"(a3)
                     : "rcx", "r11", "memory");
    return r;
}

/* Arguments 4-6 go in r10, r8, r9 (r10, not rcx: syscall overwrites rcx). */
static inline long syscall4(long n, long a1, long a2, long a3, long a4)
{
    long r;
    register long r10 __asm__("r10") = a4;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10)
                     : "rcx", "r11", "memory");
    return r;
}

static inline long syscall5(long n, long a1, long a2, long a3, long a4, long a5)
{
    long r;
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return r;
}

static inline long syscall6(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
    long r;
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return r;
}

static inline long sys_read(int fd, void *buf, size_t len)
{
    return syscall3(SYS_read, fd, (long)buf, (long)len);
}

static inline long sys_write(int fd, const void *buf, size_t len)
{
    return syscall3(SYS_write, fd, (long)buf, (long)len);
}

static inline long sys_openat(int dirfd, const char *path, int flags, int mode)
{
    return syscall4(SYS_openat, dirfd, (long)path, flags, mode);
}

static inline long sys_close(int fd)
{
    return syscall1(SYS_close, fd);
}

static inline long sys_lseek(int fd, long off, int whence)
{
    return syscall3(SYS_lseek, fd, off, whence);
}

/* The raw brk returns the new break on success and the old one on failure; brk(0) queries it. */
static inline unsigned long sys_brk(unsigned long addr)
{
    return (unsigned long)syscall1(SYS_brk, (long)addr);
}

static inline void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
    return (void *)syscall6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, off);
}

static inline long sys_munmap(void *addr, size_t len)
{
    return syscall2(SYS_munmap, (long)addr, (long)len);
}

static inline long sys_mprotect(void *addr, size_t len, int prot)
{
    return syscall3(SYS_mprotect, (long)addr, (long)len, prot);
}

static inline long sys_getpid(void)
{
    return syscall0(SYS_getpid);
}

static inline long sys_clock_gettime(int clk, struct rt_timespec *ts)
{
    return syscall2(SYS_clock_gettime, clk, (long)ts);
}

static inline long sys_getrandom(void *buf, size_t len, unsigned flags)
{
    return syscall3(SYS_getrandom, (long)buf, (long)len, flags);
}

static inline long sys_uname(struct rt_utsname *u)
{
    return syscall1(SYS_uname, (long)u);
}

static inline __attribute__((noreturn)) void sys_exit_group(int code)
{
    for (;;)
        syscall1(SYS_exit_group, code);
}

#endif /* RT_SYS_H */
