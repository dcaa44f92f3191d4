/*
 * The PMSIS subset for the bare-metal rv32 runtime (dory_mlir/runtime/rv32, run under QEMU).
 *
 * The declarations are those of the host runtime, which are the PULP SDK's (DESIGN.md 5a): one
 * header for both, so the same generated source builds for the SDK, the host and rv32. The
 * contract is the common runtime's (dory_mlir/runtime/common: arena budgets, DMA completing at
 * the wait with poisoned destinations, L3 only through the RAM API; the messages have the
 * prefix "pmsis-rv32: "); what differs from the host:
 *  - the arenas sit at fixed addresses (rv32_internal.h), the cluster stacks are in L1 with the
 *    target's sizes (DORY_STACK_MASTER / DORY_STACK_SLAVE) and an overflow is reported;
 *  - the cores of a fork are cooperative threads on the one hart, switched at
 *    pi_cl_team_barrier and at the end of the forked entry;
 *  - the perf counters read instructions (QEMU -icount shift=0: one instruction per cycle).
 */
#ifndef DORY_PMSIS_RV32_H
#define DORY_PMSIS_RV32_H

#include "../host/pmsis.h"

/* This runtime counts instructions (include/dory_perf.h, rv32/perf_rv32.c). */
#define DORY_PERF_INSTRET 1

#endif
