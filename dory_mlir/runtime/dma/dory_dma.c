/* dory-mlir DMA helper: see dory_dma.h. */
#include "dory_dma.h"

#include <stddef.h>

void dory_dma_done(dory_dma_t *token) { token->kind = 0; }

static uint32_t address(const void *p) { return (uint32_t)(uintptr_t)p; }

/* One 2-D (or 1-D when the lines are contiguous) transfer of `lines` lines of `length`
 * bytes, `stride` bytes apart in L2 and contiguous in L1. */
static void transfer(uint8_t *ext, uint8_t *loc, int lines, int length, int stride, pi_cl_dma_dir_e dir,
                     pi_cl_dma_cmd_t *cmd) {
    if (lines == 1 || stride == length) {
        pi_cl_dma_cmd(address(ext), address(loc), (uint32_t)(lines * length), dir, cmd);
    } else {
        pi_cl_dma_cmd_2d(address(ext), address(loc), (uint32_t)(lines * length), (uint32_t)stride,
                         (uint32_t)length, dir, cmd);
    }
}

void dory_dma_copy(void *ext, void *loc, int d0, int d1, int d2, int ext_s0, int ext_s1, int elem,
                   pi_cl_dma_dir_e dir, dory_dma_t *token) {
    uint8_t *e = (uint8_t *)ext, *l = (uint8_t *)loc;
    int row = d1 * d2 * elem;
    token->kind = 1;
    if (d2 == ext_s1) {
        /* each of the d0 rows is contiguous in L2 */
        transfer(e, l, d0, row, ext_s0 * elem, dir, &token->cmd);
    } else if (d1 * ext_s1 == ext_s0) {
        /* the rows follow each other: d0 * d1 lines of d2 elements */
        transfer(e, l, d0 * d1, d2 * elem, ext_s1 * elem, dir, &token->cmd);
    } else {
        for (int i = 0; i < d0; i++) {
            transfer(e + (size_t)i * ext_s0 * elem, l + (size_t)i * row, d1, d2 * elem, ext_s1 * elem, dir, &token->cmd);
            if (i + 1 < d0) pi_cl_dma_cmd_wait(&token->cmd);
        }
    }
}

void dory_dma_gather(void *ext, void *loc, int d0, int d1, int d2, int ext_s0, int ext_s1, int ext_s2, int elem,
                     pi_cl_dma_dir_e dir, dory_dma_t *token) {
    uint8_t *e = (uint8_t *)ext, *l = (uint8_t *)loc;
    token->kind = 1;
    for (int i = 0; i < d0; i++) {
        for (int j = 0; j < d1; j++) {
            if (i + j > 0) pi_cl_dma_cmd_wait(&token->cmd);
            transfer(e + ((size_t)i * ext_s0 + (size_t)j * ext_s1) * elem, l + ((size_t)i * d1 + j) * d2 * elem, d2,
                     elem, ext_s2 * elem, dir, &token->cmd);
        }
    }
}

void dory_ram_copy(struct pi_device *ram, uint32_t ram_addr, void *l2, int bytes, int to_l2, dory_dma_t *token) {
    if (to_l2) {
        token->kind = 2;
        pi_cl_ram_read(ram, ram_addr, l2, (uint32_t)bytes, &token->req);
    } else {
        token->kind = 3;
        pi_cl_ram_write(ram, ram_addr, l2, (uint32_t)bytes, &token->req);
    }
}

void dory_dma_wait(dory_dma_t *token) {
    if (token->kind == 1) pi_cl_dma_cmd_wait(&token->cmd);
    if (token->kind == 2) pi_cl_ram_read_wait(&token->req);
    if (token->kind == 3) pi_cl_ram_write_wait(&token->req);
    token->kind = 0;
}
