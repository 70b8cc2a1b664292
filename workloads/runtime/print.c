/* Buffered and unbuffered output for freestanding workloads; see print.h. */
#include "print.h"
#include "mem.h"
#include "sys.h"

#define OUTBUF_SIZE 4096

static char outbuf[OUTBUF_SIZE];
static size_t outlen;

size_t fmt_u64(char *dst, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

size_t fmt_i64(char *dst, int64_t v)
{
    if (v >= 0)
        return fmt_u64(dst, (uint64_t)v);
    dst[0] = '-';
    /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
    return 1 + fmt_u64(dst + 1, 0 - (uint64_t)v);
}

size_t fmt_hex(char *dst, uint64_t v, int width)
{
    static const char digits[] = "0123456789abcdef";
    int n = 1;
    while (n < 16 && (v >> (4 * n)) != 0)
        n++;
    if (width > 16)
        width = 16;
    if (n < width)
        n = width;
    for (int i = 0; i < n; i++)
        dst[i] = digits[(v >> (4 * (n - 1 - i))) & 0xf];
    return (size_t)n;
}

long write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        long r = sys_write(fd, c, len);
        if (r < 0)
            return r;
        if (r == 0)
            return -EINVAL;  /* no progress: give up rather than spin */
        c += r;
        len -= (size_t)r;
    }
    return 0;
}

long write_str(int fd, const char *s)
{
    return write_all(fd, s, strlen(s));
}

void print_flush(void)
{
    if (outlen > 0) {
        write_all(STDOUT_FD, outbuf, outlen);
        outlen = 0;
    }
}

void print_buf(const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        if (outlen == OUTBUF_SIZE)
            print_flush();
        size_t n = OUTBUF_SIZE - outlen;
        if (n > len)
            n = len;
        memcpy(outbuf + outlen, c, n);
        outlen += n;
        c += n;
        len -= n;
    }
}

void print_char(char c)
{
    if (outlen == OUTBUF_SIZE)
        print_flush();
    outbuf[outlen++] = c;
}

void print_str(const char *s)
{
    print_buf(s, strlen(s));
}

void print_u64(uint64_t v)
{
    char tmp[20];
    print_buf(tmp, fmt_u64(tmp, v));
}

void print_i64(int64_t v)
{
    char tmp[21];
    print_buf(tmp, fmt_i64(tmp, v));
}

void print_hex(uint64_t v, int width)
{
    char tmp[16];
    print_buf(tmp, fmt_hex(tmp, v, width));
}

void print_kv_u64(const char *label, uint64_t v)
{
    print_str(label);
    print_char(' ');
    print_u64(v);
    print_char('\n');
}

void print_kv_i64(const char *label, int64_t v)
{
    print_str(label);
    print_char(' ');
    print_i64(v);
    print_char('\n');
}

void print_kv_hex(const char *label, uint64_t v, int width)
{
    print_str(label);
    print_str(" 0x");
    print_hex(v, width);
    print_char('\n');
}

void exit(int code)
{
    print_flush();
    sys_exit_group(code);
}

void fail(const char *msg)
{
    print_flush();
    write_str(STDERR_FD, "FAIL: ");
    write_str(STDERR_FD, msg);
    write_str(STDERR_FD, "\n");
    exit(1);
}
