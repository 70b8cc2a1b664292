/* libc_hello built against musl (musl-gcc -static): the same program as libc_hello. */
#include "libc_hello.c"
