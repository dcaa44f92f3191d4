/*
 * Internals of the bare-metal rv32 platform of the PMSIS runtime (not for generated code); the
 * memory model and the cluster's rules are the common runtime's (../common/runtime_internal.h).
 *
 * Memory map on QEMU's `virt` machine (RAM from 0x80000000, run with -m 128M), fixed so that
 * an address tells its memory level (Makefile.rv32 links with these values):
 *   0x80000000  flash: code and constant data (weights before they are loaded into L3)
 *   0x81000000  ram:   data, bss, the malloc heap and the fabric controller's stack
 *   0x82000000  L1:    DORY_L1_SIZE bytes for pi_cl_l1_malloc, then the 8 cluster stacks
 *   0x83000000  L2:    DORY_L2_SIZE bytes for pi_l2_malloc
 *   0x84000000  L3:    DORY_L3_SIZE bytes, reached only through the pi_ram API (offsets)
 */
#ifndef DORY_RV32_INTERNAL_H
#define DORY_RV32_INTERNAL_H

#include "../common/runtime_internal.h"

#include <stdint.h>

#define RV32_RAM_BASE 0x81000000u
#define RV32_L1_BASE 0x82000000u
#define RV32_L2_BASE 0x83000000u
#define RV32_L3_BASE 0x84000000u
#define RV32_REGION 0x01000000u /* 16 MB for each of ram, L1 and L2 */
#define RV32_L3_REGION 0x04000000u

/* Cluster stacks in L1 (GAP8: core 0 3,500 B, cores 1-7 3,400 B; DESIGN.md section 3). */
#ifndef DORY_STACK_MASTER
#define DORY_STACK_MASTER 3500
#endif
#ifndef DORY_STACK_SLAVE
#define DORY_STACK_SLAVE 3400
#endif
/* A guard zone below every stack: touching it is reported as a stack overflow. */
#define RV32_STACK_GUARD 64
#define RV32_STACK_FILL 0xC5

#define RV32_STACKS_BYTES \
    (DORY_STACK_MASTER + (DORY_CLUSTER_CORES - 1) * DORY_STACK_SLAVE + DORY_CLUSTER_CORES * (RV32_STACK_GUARD + 16))

/* The arenas fit their regions of the memory map. */
_Static_assert(DORY_L1_SIZE + RV32_STACKS_BYTES <= RV32_REGION, "DORY_L1_SIZE out of range");
_Static_assert(DORY_L2_SIZE <= RV32_REGION, "DORY_L2_SIZE out of range");
_Static_assert(DORY_L3_SIZE <= RV32_L3_REGION, "DORY_L3_SIZE out of range");
_Static_assert(DORY_CLUSTER_CORES <= 16, "DORY_CLUSTER_CORES out of range");
_Static_assert(DORY_STACK_MASTER >= 256 && DORY_STACK_SLAVE >= 256, "cluster stacks too small");

/* ------------------------------------------------------------ instruction counting */

/* The 64-bit instruction counter (exact under QEMU -icount shift=0). */
static inline uint64_t rv32_instret(void)
{
    uint32_t hi, lo, hi2;
    do {
        __asm__ volatile("rdinstreth %0" : "=r"(hi));
        __asm__ volatile("rdinstret %0" : "=r"(lo));
        __asm__ volatile("rdinstreth %0" : "=r"(hi2));
    } while (hi != hi2);
    return (uint64_t)hi << 32 | lo;
}

/* Instructions the runtime spends emulating hardware (DMA engine, event unit, HyperRAM,
 * allocator checks) are hidden from the counts: rv32_hide_begin/end bracket them. The depth is
 * global, not per core, on purpose: a context switch happens inside a hidden region and the
 * region is closed by the core that resumes, so the switch itself is hidden too. */
extern uint64_t rv32_hidden;      /* instructions hidden so far */
extern uint64_t rv32_hide_start;  /* counter when the outermost hidden region began */
extern int rv32_hide_depth;

static inline void rv32_hide_begin(void)
{
    if (rv32_hide_depth++ == 0)
        rv32_hide_start = rv32_instret();
}

static inline void rv32_hide_end(void)
{
    if (--rv32_hide_depth == 0)
        rv32_hidden += rv32_instret() - rv32_hide_start;
}

/* The instructions counted so far: the program's minus the hidden ones. */
static inline uint64_t rv32_counted(void) { return rv32_instret() - rv32_hidden; }

/* ------------------------------------------------------------ cluster stacks (cluster_rv32.c) */

/* Highest stack use of each core so far (bytes), for the report; -1 when never run. */
int rv32_stack_high_water(int core);
int rv32_stack_size(int core);

#endif
