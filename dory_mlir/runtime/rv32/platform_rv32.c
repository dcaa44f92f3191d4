/*
 * dory-mlir rv32 runtime: what the bare-metal program needs around PMSIS -- its name in the
 * messages, the exit status, the hidden-instruction counters, the arenas at the fixed addresses
 * of the memory map and a check of that map.
 */
#include "rv32_internal.h"

#include <semihost.h>
#include <stdlib.h>

const char dory_runtime_name[] = "pmsis-rv32";

uint64_t rv32_hidden;
uint64_t rv32_hide_start;
int rv32_hide_depth;

/* The common runtime's bookkeeping emulates GAP8's hardware (DMA engine, event unit, HyperRAM,
 * allocator checks): hidden from the counts. One hart runs the cores cooperatively, so nothing
 * needs a lock. */
void runtime_enter(void) { rv32_hide_begin(); }

void runtime_leave(void) { rv32_hide_end(); }

uint8_t *platform_arena_memory(memory_level_e level, uint32_t bytes)
{
    (void)bytes; /* rv32_internal.h asserts that every arena fits its region */
    switch (level) {
    case MEMORY_L1:
        return (uint8_t *)RV32_L1_BASE;
    case MEMORY_L2:
        return (uint8_t *)RV32_L2_BASE;
    default:
        return (uint8_t *)RV32_L3_BASE;
    }
}

/* picolibc 1.8's _exit reports every exit to QEMU as a success (SYS_EXIT carries no status
 * on 32-bit targets); SYS_EXIT_EXTENDED carries it, so exit(3), abort() (134) and a failing
 * main reach the shell that runs qemu-system-riscv32. */
void _exit(int status)
{
    sys_semihost_exit_extended((uintptr_t)status);
}

/* The linker script places data, heap and the fabric controller's stack in `ram`; they must
 * end below the L1 arena (Makefile.rv32 passes __ram / __ram_size accordingly). */
extern char __stack[];

__attribute__((constructor)) static void check_memory_map(void)
{
    uintptr_t top = (uintptr_t)__stack;
    if (top < RV32_RAM_BASE || top > RV32_L1_BASE)
        dory_fatal("the program's ram ends at 0x%08lx, outside [0x%08lx, 0x%08lx]: link with "
                   "-Wl,--defsym=__ram=0x%08lx -Wl,--defsym=__ram_size=0x%08lx (see Makefile.rv32)",
                   (unsigned long)top, (unsigned long)RV32_RAM_BASE, (unsigned long)RV32_L1_BASE,
                   (unsigned long)RV32_RAM_BASE, (unsigned long)RV32_REGION);
}
