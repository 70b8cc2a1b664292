/*
 * gem5 pseudo-instructions ("m5ops") for x86-64 guests, compatible with gem5's
 * include/gem5/asm/generic/m5ops.h and util/m5/src/abi/x86/, so a program annotated
 * for gem5 behaves the same under switchsim (on KVM and on every JS CPU model).
 *
 * Two calling forms, both with arguments in rdi, rsi and the result in rax:
 *  - instruction form: the two bytes 0F 04 followed by the 16-bit function number.
 *    0F 04 is not a valid x86 opcode: natively (and under KVM, where switchsim's
 *    exception stub catches the #UD) it raises #UD -> SIGILL.
 *  - address form: an 8-byte load from 0xFFFF0000 + (func << 8). gem5's m5 utility
 *    mmaps that physical range into the process; switchsim decodes a guest access
 *    to that virtual address (an MMIO exit under KVM). Natively nothing is mapped
 *    there -> SIGSEGV.
 *
 * So m5ops fault when a program runs natively: workloads call them only when asked
 * (the --m5=inst / --m5=addr flag, see rt.h), never in their default runs.
 */
#ifndef RT_M5OPS_H
#define RT_M5OPS_H

#include <stdint.h>

/* gem5 function numbers. */
#define M5OP_EXIT               0x21
#define M5OP_FAIL               0x22
#define M5OP_RESET_STATS        0x40
#define M5OP_DUMP_STATS         0x41
#define M5OP_DUMP_RESET_STATS   0x42
#define M5OP_CHECKPOINT         0x43
#define M5OP_SWITCH_CPU         0x52
#define M5OP_WORK_BEGIN         0x5a
#define M5OP_WORK_END           0x5b

/* Base virtual address of the address form (gem5's M5OP_ADDR on x86). */
#define M5OP_ADDR_BASE          0xFFFF0000ul

/*
 * Instruction form. func must be a compile-time constant (it is encoded in the
 * instruction). Only rax is written; gem5 and switchsim leave other registers alone,
 * and "memory" keeps the compiler from moving loads/stores across the op.
 */
#define M5OP_INST(func, a0, a1)                                                 \
    __extension__({                                                             \
        uint64_t m5_ret_;                                                       \
        __asm__ volatile(".byte 0x0f, 0x04\n\t.word %c3"                        \
                         : "=a"(m5_ret_)                                        \
                         : "D"((uint64_t)(a0)), "S"((uint64_t)(a1)), "i"(func)  \
                         : "memory");                                           \
        m5_ret_;                                                                \
    })

/*
 * Address form: the load is written in asm (not a C volatile load) because the
 * arguments must be in rdi and rsi at the moment of the access.
 */
#define M5OP_ADDR(func, a0, a1)                                                 \
    __extension__({                                                             \
        uint64_t m5_ret_;                                                       \
        __asm__ volatile("movq (%3), %0"                                        \
                         : "=a"(m5_ret_)                                        \
                         : "D"((uint64_t)(a0)), "S"((uint64_t)(a1)),            \
                           "r"(M5OP_ADDR_BASE + ((uint64_t)(func) << 8))        \
                         : "memory");                                           \
        m5_ret_;                                                                \
    })

/*
 * Named ops, one pair per function: m5_<op>_inst and m5_<op>_addr.
 * Argument meanings follow gem5: exit(delay_ns), fail(delay_ns, code),
 * reset_stats / dump_stats / dump_reset_stats / checkpoint(delay_ns, period_ns),
 * switch_cpu(), work_begin / work_end(work_id, thread_id).
 */
#define M5OP_DEFINE(name, func)                                                  \
    static inline uint64_t m5_##name##_inst(uint64_t a0, uint64_t a1)            \
    {                                                                            \
        return M5OP_INST(func, a0, a1);                                          \
    }                                                                            \
    static inline uint64_t m5_##name##_addr(uint64_t a0, uint64_t a1)            \
    {                                                                            \
        return M5OP_ADDR(func, a0, a1);                                          \
    }

M5OP_DEFINE(exit, M5OP_EXIT)
M5OP_DEFINE(fail, M5OP_FAIL)
M5OP_DEFINE(reset_stats, M5OP_RESET_STATS)
M5OP_DEFINE(dump_stats, M5OP_DUMP_STATS)
M5OP_DEFINE(dump_reset_stats, M5OP_DUMP_RESET_STATS)
M5OP_DEFINE(checkpoint, M5OP_CHECKPOINT)
M5OP_DEFINE(switch_cpu, M5OP_SWITCH_CPU)
M5OP_DEFINE(work_begin, M5OP_WORK_BEGIN)
M5OP_DEFINE(work_end, M5OP_WORK_END)

#undef M5OP_DEFINE

#endif /* RT_M5OPS_H */
