/* auxv lookup, argument parsing and m5op region-of-interest markers; see rt.h. */
#include "rt.h"

uint64_t rt_getauxval(uint64_t type, int *found)
{
    for (uint64_t *a = rt_auxv; a != NULL && a[0] != AT_NULL; a += 2) {
        if (a[0] == type) {
            if (found)
                *found = 1;
            return a[1];
        }
    }
    if (found)
        *found = 0;
    return 0;
}

static __attribute__((noreturn)) void bad_arg(int i, const char *s)
{
    char msg[160];
    size_t n = 0;
    const char *pre = "bad number in argv[";
    memcpy(msg, pre, strlen(pre));
    n += strlen(pre);
    n += fmt_u64(msg + n, (uint64_t)i);
    msg[n++] = ']';
    msg[n++] = ':';
    msg[n++] = ' ';
    size_t len = strlen(s);
    if (len > 100)
        len = 100;
    memcpy(msg + n, s, len);
    n += len;
    msg[n] = 0;
    fail(msg);
}

uint64_t arg_u64(int argc, char **argv, int i, uint64_t def)
{
    if (i >= argc)
        return def;
    const char *s = argv[i];
    const char *p = s;
    uint64_t v = 0;
    int digits = 0;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        for (p += 2;; p++, digits++) {
            unsigned d;
            if (*p >= '0' && *p <= '9')
                d = (unsigned)(*p - '0');
            else if (*p >= 'a' && *p <= 'f')
                d = (unsigned)(*p - 'a' + 10);
            else if (*p >= 'A' && *p <= 'F')
                d = (unsigned)(*p - 'A' + 10);
            else
                break;
            if (v >> 60)
                bad_arg(i, s);
            v = v * 16 + d;
        }
    } else {
        for (; *p >= '0' && *p <= '9'; p++, digits++) {
            uint64_t d = (uint64_t)(*p - '0');
            if (v > (UINT64_MAX - d) / 10)
                bad_arg(i, s);
            v = v * 10 + d;
        }
    }
    if (digits == 0)
        bad_arg(i, s);
    int shift = 0;
    if (*p == 'K' || *p == 'k')
        shift = 10;
    else if (*p == 'M' || *p == 'm')
        shift = 20;
    else if (*p == 'G' || *p == 'g')
        shift = 30;
    if (shift) {
        p++;
        if (v >> (64 - shift))
            bad_arg(i, s);
        v <<= shift;
    }
    if (*p != 0 || v == 0)
        bad_arg(i, s);
    return v;
}

enum { ROI_OFF, ROI_INST, ROI_ADDR };
static int roi_mode = ROI_OFF;

void roi_init(int *argc, char **argv)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--m5=inst") == 0)
            roi_mode = ROI_INST;
        else if (strcmp(argv[i], "--m5=addr") == 0)
            roi_mode = ROI_ADDR;
        else if (strncmp(argv[i], "--m5", 4) == 0)
            fail("unknown m5op form: use --m5=inst or --m5=addr");
        else
            argv[out++] = argv[i];
    }
    argv[out] = NULL;
    *argc = out;
}

void roi_begin(void)
{
    if (roi_mode == ROI_INST) {
        m5_work_begin_inst(0, 0);
        m5_reset_stats_inst(0, 0);
    } else if (roi_mode == ROI_ADDR) {
        m5_work_begin_addr(0, 0);
        m5_reset_stats_addr(0, 0);
    }
}

void roi_end(void)
{
    if (roi_mode == ROI_INST) {
        m5_dump_stats_inst(0, 0);
        m5_work_end_inst(0, 0);
    } else if (roi_mode == ROI_ADDR) {
        m5_dump_stats_addr(0, 0);
        m5_work_end_addr(0, 0);
    }
}
