/*
 * Output for freestanding workloads.
 *
 * Two paths:
 *  - buffered stdout (print_*): collected in a 4 KiB buffer that is written out
 *    when full, by print_flush(), and by exit() (also on return from main).
 *    Nothing is flushed at a newline, so a compute kernel costs one write() per
 *    4 KiB of output. A program that may die from a signal must print_flush()
 *    first, or its output is lost.
 *  - unbuffered (write_all, write_str): one write() per call, straight to an fd.
 *    Call print_flush() first if buffered output must come before it.
 * The fmt_* helpers format into a caller's buffer, for building unbuffered lines.
 */
#ifndef RT_PRINT_H
#define RT_PRINT_H

#include <stddef.h>
#include <stdint.h>

#define STDIN_FD  0
#define STDOUT_FD 1
#define STDERR_FD 2

/* Formatting into a buffer; each returns the number of chars written (no NUL added). */
size_t fmt_u64(char *dst, uint64_t v);                    /* at most 20 chars */
size_t fmt_i64(char *dst, int64_t v);                     /* at most 20 chars */
size_t fmt_hex(char *dst, uint64_t v, int width);         /* lowercase, no "0x"; zero-padded to width
                                                             digits (width 0: as many as needed) */

/* Buffered stdout. */
void print_char(char c);
void print_buf(const void *p, size_t len);
void print_str(const char *s);
void print_u64(uint64_t v);
void print_i64(int64_t v);
void print_hex(uint64_t v, int width);                    /* as fmt_hex, no "0x" */
void print_flush(void);

/* "label value\n" conveniences, the usual line shape of a result. */
void print_kv_u64(const char *label, uint64_t v);
void print_kv_i64(const char *label, int64_t v);
void print_kv_hex(const char *label, uint64_t v, int width);  /* "label 0x<hex>\n" */

/* Unbuffered. write_all retries short writes; returns 0 or a negative errno. */
long write_all(int fd, const void *p, size_t len);
long write_str(int fd, const char *s);

/* Flush stdout and exit_group(code). Also what _start calls with main's return value. */
__attribute__((noreturn)) void exit(int code);

/* Flush stdout, print "FAIL: msg\n" to stderr and exit(1): a self-check failed. */
__attribute__((noreturn)) void fail(const char *msg);

/* fail(msg) unless cond holds. */
#define CHECK(cond, msg) do { if (!(cond)) fail(msg); } while (0)

#endif /* RT_PRINT_H */
