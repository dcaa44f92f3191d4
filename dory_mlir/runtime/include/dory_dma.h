/*
 * dory-mlir DMA helper: the `dma.copy` of the IR (a 1-, 2- or 3-D block, strided on the
 * L2 side, dense on the L1 side) on the PMSIS cluster DMA, and L3 <-> L2 copies through
 * the cluster RAM API. One copy is one token (`dory_dma_t`); `dory_dma_wait` completes it.
 *
 * A block whose rows are contiguous runs as one 1-D or 2-D transfer. A 3-D block whose
 * rows are not contiguous (channels and columns both tiled) is one 2-D transfer per row:
 * all rows but the last complete before the call returns, the last flies.
 */
#ifndef DORY_DMA_H
#define DORY_DMA_H

#include <stdint.h>

#include "pmsis.h"

typedef struct {
    int kind;                 /* 0: completed, 1: cluster DMA, 2: RAM read (L3 -> L2), 3: RAM write */
    pi_cl_dma_cmd_t cmd;
    pi_cl_ram_req_t req;
} dory_dma_t;

/* A token of no transfer. */
void dory_dma_done(dory_dma_t *token);

/* Copies a block of d0 x d1 x d2 elements of `elem` bytes between L2 (`ext`, strides
 * ext_s0, ext_s1 in elements, innermost stride 1) and dense L1 (`loc`). */
void dory_dma_copy(void *ext, void *loc, int d0, int d1, int d2, int ext_s0, int ext_s1, int elem,
                   pi_cl_dma_dir_e dir, dory_dma_t *token);

/* The same with an innermost L2 stride ext_s2 other than 1: every line of d2 elements is one 2-D
 * transfer of d2 chunks of `elem` bytes (a transpose whose features are a column of its input); all
 * lines but the last complete before the call returns, the last flies. */
void dory_dma_gather(void *ext, void *loc, int d0, int d1, int d2, int ext_s0, int ext_s1, int ext_s2, int elem,
                     pi_cl_dma_dir_e dir, dory_dma_t *token);

/* L3 (`ram_addr`) <-> L2 (`l2`) copy of `bytes`, from the cluster. */
void dory_ram_copy(struct pi_device *ram, uint32_t ram_addr, void *l2, int bytes, int to_l2, dory_dma_t *token);

void dory_dma_wait(dory_dma_t *token);

/* The bytes the transfers moved since the previous call (or the start), per direction, printed
 * as one line `dma layer N l2_l1 B l1_l2 B l3_l2 B l2_l3 B` and reset: the generated network
 * calls it after each layer, so a layer's line includes the L3 -> L2 staging before it. The
 * project's runtimes (host and rv32, runtime/common/memory.c) count every cluster-DMA transfer
 * and cluster RAM request at its issue; elsewhere (the PULP SDK) it does nothing. */
#ifdef PMSIS_HOST_RUNTIME
void dory_dma_count_layer(int layer);
#else
#define dory_dma_count_layer(layer) ((void)(layer))
#endif

#endif
