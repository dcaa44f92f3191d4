/*
 * The build-time configuration of the PMSIS runtimes (runtime/common, host, rv32): the memory
 * budgets (the generated Makefiles pass the tiler's as -D) and the hardware's limits. Code that
 * must agree with the runtime it is linked with (its tests) includes this header.
 */
#ifndef DORY_RUNTIME_CONFIG_H
#define DORY_RUNTIME_CONFIG_H

#ifndef DORY_L1_SIZE
#define DORY_L1_SIZE 64000
#endif
#ifndef DORY_L2_SIZE
#define DORY_L2_SIZE 512000
#endif
#ifndef DORY_L3_SIZE
#define DORY_L3_SIZE 8388608
#endif
#ifndef DORY_CLUSTER_CORES
#define DORY_CLUSTER_CORES 8
#endif
#ifndef DORY_ALLOC_ALIGN
#define DORY_ALLOC_ALIGN 8
#endif
/* Transfers in flight at once (the cluster DMA tracks transfers with a few HW counters). */
#ifndef DORY_DMA_MAX_PENDING
#define DORY_DMA_MAX_PENDING 16
#endif
#ifndef DORY_RAM_MAX_PENDING
#define DORY_RAM_MAX_PENDING 64
#endif
/* Largest size / stride / length of one DMA command: the GAP8 runtimes pass them as 16-bit
 * values (CL_DMA_COMMON's uint16_t size, `unsigned short` 2-D arguments), larger ones would be
 * truncated on the chip. */
#ifndef DORY_DMA_MAX_FIELD
#define DORY_DMA_MAX_FIELD 65535u
#endif

_Static_assert(DORY_L1_SIZE > 0 && DORY_L1_SIZE <= 0x20000000, "DORY_L1_SIZE out of range");
_Static_assert(DORY_L2_SIZE > 0 && DORY_L2_SIZE <= 0x20000000, "DORY_L2_SIZE out of range");
_Static_assert(DORY_L3_SIZE > 8 && DORY_L3_SIZE <= 0x7fffffff, "DORY_L3_SIZE out of range");
_Static_assert(DORY_CLUSTER_CORES >= 1 && DORY_CLUSTER_CORES <= 64, "DORY_CLUSTER_CORES out of range");
_Static_assert((DORY_ALLOC_ALIGN & (DORY_ALLOC_ALIGN - 1)) == 0 && DORY_ALLOC_ALIGN <= 64,
               "DORY_ALLOC_ALIGN must be a power of two <= 64");

#endif
