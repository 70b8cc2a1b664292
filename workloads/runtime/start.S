/*
 * _start for switchsim's freestanding workloads.
 *
 * Linux (and switchsim's SE loader) enters here with:
 *   (%rsp)          argc
 *   8(%rsp)         argv[0] .. argv[argc-1], NULL
 *   then            envp[0] .. , NULL
 *   then            auxv pairs (a_type, a_val) .. , AT_NULL
 * %rsp is 16-byte aligned at entry on Linux, but we align it again so a loader
 * that gets this wrong still gives main() an ABI-conformant stack.
 * %rdx may hold a function for atexit (dynamic loaders); a static program
 * started by the kernel gets 0 there, and we ignore it.
 */
        .text
        .globl  _start
        .type   _start, @function
_start:
        xorl    %ebp, %ebp              /* outermost frame: terminate frame-pointer chains */
        movq    (%rsp), %rdi            /* argc */
        leaq    8(%rsp), %rsi           /* argv */
        leaq    8(%rsi,%rdi,8), %rdx    /* envp = argv + argc + 1 */
        movq    %rdx, rt_environ(%rip)

        /* auxv starts after envp's terminating NULL. */
        movq    %rdx, %rcx
1:      movq    (%rcx), %rax
        addq    $8, %rcx
        testq   %rax, %rax
        jnz     1b
        movq    %rcx, rt_auxv(%rip)

        andq    $-16, %rsp              /* call pushes 8: main sees rsp % 16 == 8, as the ABI requires */
        call    main

        movl    %eax, %edi
        call    exit                    /* flushes buffered stdout, then exit_group; never returns */
        hlt                             /* not reached (would fault at CPL3) */
        .size   _start, . - _start

        .bss
        .balign 8
        .globl  rt_auxv
        .type   rt_auxv, @object
rt_auxv:
        .quad   0
        .size   rt_auxv, 8
        .globl  rt_environ
        .type   rt_environ, @object
rt_environ:
        .quad   0
        .size   rt_environ, 8

        .section .note.GNU-stack, "", @progbits
