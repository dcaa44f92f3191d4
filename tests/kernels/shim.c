/*
 * Host test shim of the kernel library (tests/test_kernels.py): pi_core_id() from a global
 * variable, and a runner that calls a kernel once per core id in a given order. Kernels
 * have no synchronization inside, so running the cores one after the other (in any
 * order) is a faithful schedule of a team fork followed by a barrier.
 */
#include <stddef.h>

#include "pmsis.h"
#include "dory_kernels.h"

#ifndef NUM_CORES
#define NUM_CORES 8
#endif

static int current_core;

int pi_core_id(void) { return current_core; }

int dory_test_num_cores(void) { return NUM_CORES; }

enum { K_CONV2D, K_POINTWISE, K_DEPTHWISE, K_LINEAR, K_MAXPOOL, K_SUMPOOL, K_ADD, K_MATMUL };

/* Runs `kernel` for the core ids order[0..n-1]; returns -1 for an unknown kernel. */
int dory_test_run(int kernel, const void *params, const int *order, int n)
{
    for (int i = 0; i < n; i++) {
        current_core = order[i];
        switch (kernel) {
        case K_CONV2D: dory_conv2d((const dory_conv_t *)params); break;
        case K_POINTWISE: dory_pointwise((const dory_conv_t *)params); break;
        case K_DEPTHWISE: dory_depthwise((const dory_conv_t *)params); break;
        case K_LINEAR: dory_linear((const dory_linear_t *)params); break;
        case K_MAXPOOL: dory_maxpool((const dory_pool_t *)params); break;
        case K_SUMPOOL: dory_sumpool((const dory_pool_t *)params); break;
        case K_ADD: dory_add((const dory_add_t *)params); break;
        case K_MATMUL: dory_matmul((const dory_matmul_t *)params); break;
        default: return -1;
        }
    }
    current_core = 0;
    return 0;
}

/* dory_test_layout(), the layout of the argument structs, is generated from the kernel table
 * (tests/test_kernels.py: layout_source). */
