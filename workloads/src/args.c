/*
 * args: prints what the loader put on the initial stack: argc, argv, envp and selected
 * auxv entries, so a test can compare a simulator's process setup with Linux's. Only
 * values that are the same in two runs of the same command are printed (no stack
 * addresses, no AT_RANDOM bytes).
 *
 *   env -i A=1 B=2 args x y
 *
 * Self-checks: argv[argc] and the envp terminator are NULL; AT_PHDR points at this
 * program's own program headers (the ELF header the linker placed at __ehdr_start,
 * plus e_phoff) and AT_PHNUM/AT_PHENT agree with that header.
 */
#include "rt.h"

/* The parts of Elf64_Ehdr we read. */
struct elf64_ehdr {
    unsigned char e_ident[16];
    uint16_t e_type, e_machine;
    uint32_t e_version;
    uint64_t e_entry, e_phoff, e_shoff;
    uint32_t e_flags;
    uint16_t e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
};

/* Defined by the linker: the ELF header when it is inside a loaded segment. */
extern const struct elf64_ehdr __ehdr_start;
extern void _start(void);

static void print_aux_dec(const char *name, uint64_t type)
{
    int found;
    uint64_t v = rt_getauxval(type, &found);
    print_str(name);
    if (found) {
        print_char(' ');
        print_u64(v);
        print_char('\n');
    } else {
        print_str(" absent\n");
    }
}

int main(int argc, char **argv, char **envp)
{
    CHECK(argv[argc] == NULL, "argv is not NULL-terminated at argv[argc]");
    CHECK(envp == rt_environ, "envp passed to main differs from the one _start found");

    print_kv_u64("argc", (uint64_t)argc);
    for (int i = 0; i < argc; i++) {
        print_str("argv[");
        print_u64((uint64_t)i);
        print_str("] ");
        print_str(argv[i]);
        print_char('\n');
    }
    int nenv = 0;
    for (; envp[nenv] != NULL; nenv++) {
        print_str("envp[");
        print_u64((uint64_t)nenv);
        print_str("] ");
        print_str(envp[nenv]);
        print_char('\n');
    }
    print_kv_u64("envc", (uint64_t)nenv);
    CHECK((uint64_t *)&envp[nenv + 1] == rt_auxv, "auxv does not follow envp's NULL");

    print_aux_dec("AT_PAGESZ", AT_PAGESZ);
    print_aux_dec("AT_PHNUM", AT_PHNUM);
    print_aux_dec("AT_PHENT", AT_PHENT);

    int found;
    uint64_t entry = rt_getauxval(AT_ENTRY, &found);
    print_kv_u64("AT_ENTRY_is_start", found && entry == (uint64_t)(uintptr_t)&_start);

    uint64_t phdr = rt_getauxval(AT_PHDR, &found);
    CHECK(found, "AT_PHDR is missing");
    print_kv_hex("AT_PHDR", phdr, 0);
    const struct elf64_ehdr *eh = &__ehdr_start;
    CHECK(phdr == (uint64_t)(uintptr_t)eh + eh->e_phoff, "AT_PHDR does not point at this program's headers");
    CHECK(rt_getauxval(AT_PHNUM, NULL) == eh->e_phnum, "AT_PHNUM differs from e_phnum");
    CHECK(rt_getauxval(AT_PHENT, NULL) == eh->e_phentsize, "AT_PHENT differs from e_phentsize");
    print_str("AT_PHDR_matches_ehdr 1\n");

    print_aux_dec("AT_CLKTCK", AT_CLKTCK);

    uint64_t plat = rt_getauxval(AT_PLATFORM, &found);
    print_str("AT_PLATFORM ");
    print_str(found && plat ? (const char *)(uintptr_t)plat : "absent");
    print_char('\n');

    uint64_t hwcap = rt_getauxval(AT_HWCAP, &found);
    if (found)
        print_kv_hex("AT_HWCAP", hwcap, 8);
    else
        print_str("AT_HWCAP absent\n");

    uint64_t rnd = rt_getauxval(AT_RANDOM, &found);
    print_kv_u64("AT_RANDOM_nonnull", found && rnd != 0);

    print_aux_dec("AT_UID", AT_UID);
    print_aux_dec("AT_EUID", AT_EUID);
    print_aux_dec("AT_GID", AT_GID);
    print_aux_dec("AT_EGID", AT_EGID);
    print_str("OK\n");
    return 0;
}
