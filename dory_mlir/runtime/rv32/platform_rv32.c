/*
 * dory-mlir rv32 runtime: what the bare-metal program needs around PMSIS -- the exit status,
 * the fatal-error path, the hidden-instruction counters and a check of the memory map.
 */
#include "rv32_internal.h"

#include <semihost.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

uint64_t rv32_hidden;
uint64_t rv32_hide_start;
int rv32_hide_depth;

/* picolibc 1.8's _exit reports every exit to QEMU as a success (SYS_EXIT carries no status
 * on 32-bit targets); SYS_EXIT_EXTENDED carries it, so exit(3), abort() (134) and a failing
 * main reach the shell that runs qemu-system-riscv32. */
void _exit(int status)
{
    sys_semihost_exit_extended((uintptr_t)status);
}

void rv32_fatal(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("pmsis-rv32: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

/* The linker script places data, heap and the fabric controller's stack in `ram`; they must
 * end below the L1 arena (Makefile.rv32 passes __ram / __ram_size accordingly). */
extern char __stack[];

__attribute__((constructor)) static void check_memory_map(void)
{
    uintptr_t top = (uintptr_t)__stack;
    if (top < RV32_RAM_BASE || top > RV32_L1_BASE)
        rv32_fatal("the program's ram ends at 0x%08lx, outside [0x%08lx, 0x%08lx]: link with "
                   "-Wl,--defsym=__ram=0x%08lx -Wl,--defsym=__ram_size=0x%08lx (see Makefile.rv32)",
                   (unsigned long)top, (unsigned long)RV32_RAM_BASE, (unsigned long)RV32_L1_BASE,
                   (unsigned long)RV32_RAM_BASE, (unsigned long)RV32_REGION);
}
