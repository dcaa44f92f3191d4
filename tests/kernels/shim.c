/*
 * Host test shim of the kernel library (tests/test_kernels.py): pi_core_id() from a global
 * variable, and a runner that calls a kernel of the table (kernel_table.h, generated from
 * dory_mlir/kernel_abi.py) once per core id in a given order. Kernels
 * have no synchronization inside, so running the cores one after the other (in any
 * order) is a faithful schedule of a team fork followed by a barrier.
 */
#include <stddef.h>

#include "pmsis.h"
#include "dory_kernels.h"
#include "kernel_table.h"

#ifndef NUM_CORES
#define NUM_CORES 8
#endif

static int current_core;

int pi_core_id(void) { return current_core; }

int dory_test_num_cores(void) { return NUM_CORES; }

/* Runs kernel number `kernel` of the table (kernel_table.h) for the core ids order[0..n-1];
 * returns -1 for an unknown kernel. */
int dory_test_run(int kernel, const void *params, const int *order, int n)
{
    if (kernel < 0 || kernel >= DT_N_KERNELS)
        return -1;
    for (int i = 0; i < n; i++) {
        current_core = order[i];
        DT_KERNELS[kernel].call(params);
    }
    current_core = 0;
    return 0;
}

/* dory_test_layout(), the layout of the argument structs, is generated from the kernel table
 * (tests/test_kernels.py: layout_source). */
