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

/* sizeof and the offset of every field of the API structs, in declaration order, so the
 * test's ctypes mirrors are checked against the compiler's layout. */
#define SIZE(T) out[n++] = sizeof(T)
#define OFF(T, f) out[n++] = offsetof(T, f)
int dory_test_layout(size_t *out)
{
    int n = 0;
    SIZE(dory_requant_t);
    OFF(dory_requant_t, mul); OFF(dory_requant_t, add); OFF(dory_requant_t, mul_per_channel);
    OFF(dory_requant_t, add_per_channel); OFF(dory_requant_t, const_bits); OFF(dory_requant_t, wide);
    OFF(dory_requant_t, trunc); OFF(dory_requant_t, shift); OFF(dory_requant_t, scale);
    OFF(dory_requant_t, divisor); OFF(dory_requant_t, min); OFF(dory_requant_t, max);
    SIZE(dory_conv_t);
    OFF(dory_conv_t, in); OFF(dory_conv_t, in_type); OFF(dory_conv_t, in_h); OFF(dory_conv_t, in_w);
    OFF(dory_conv_t, in_c); OFF(dory_conv_t, weights); OFF(dory_conv_t, bias); OFF(dory_conv_t, out_h);
    OFF(dory_conv_t, out_w); OFF(dory_conv_t, out_c); OFF(dory_conv_t, kh); OFF(dory_conv_t, kw);
    OFF(dory_conv_t, sh); OFF(dory_conv_t, sw); OFF(dory_conv_t, dh); OFF(dory_conv_t, dw);
    OFF(dory_conv_t, pad_t); OFF(dory_conv_t, pad_l); OFF(dory_conv_t, pad_b); OFF(dory_conv_t, pad_r);
    OFF(dory_conv_t, acc); OFF(dory_conv_t, first_slice); OFF(dory_conv_t, last_slice); OFF(dory_conv_t, rq);
    OFF(dory_conv_t, out); OFF(dory_conv_t, out_type); OFF(dory_conv_t, im2col);
    OFF(dory_conv_t, pad_value);
    SIZE(dory_linear_t);
    OFF(dory_linear_t, in); OFF(dory_linear_t, in_type); OFF(dory_linear_t, in_c); OFF(dory_linear_t, out_c);
    OFF(dory_linear_t, weights); OFF(dory_linear_t, bias); OFF(dory_linear_t, acc);
    OFF(dory_linear_t, first_slice); OFF(dory_linear_t, last_slice); OFF(dory_linear_t, rq);
    OFF(dory_linear_t, out); OFF(dory_linear_t, out_type);
    SIZE(dory_pool_t);
    OFF(dory_pool_t, in); OFF(dory_pool_t, in_type); OFF(dory_pool_t, in_h); OFF(dory_pool_t, in_w);
    OFF(dory_pool_t, c); OFF(dory_pool_t, out_h); OFF(dory_pool_t, out_w); OFF(dory_pool_t, kh);
    OFF(dory_pool_t, kw); OFF(dory_pool_t, sh); OFF(dory_pool_t, sw); OFF(dory_pool_t, pad_t);
    OFF(dory_pool_t, pad_l); OFF(dory_pool_t, pad_b); OFF(dory_pool_t, pad_r); OFF(dory_pool_t, rq);
    OFF(dory_pool_t, out); OFF(dory_pool_t, out_type);
    SIZE(dory_add_t);
    OFF(dory_add_t, a); OFF(dory_add_t, b); OFF(dory_add_t, a_type); OFF(dory_add_t, b_type);
    OFF(dory_add_t, h); OFF(dory_add_t, w); OFF(dory_add_t, c); OFF(dory_add_t, mul);
    OFF(dory_add_t, add); OFF(dory_add_t, shift); OFF(dory_add_t, rq); OFF(dory_add_t, out);
    OFF(dory_add_t, out_type);
    SIZE(dory_matmul_t);
    OFF(dory_matmul_t, a); OFF(dory_matmul_t, b); OFF(dory_matmul_t, a_type); OFF(dory_matmul_t, b_type);
    OFF(dory_matmul_t, m); OFF(dory_matmul_t, k); OFF(dory_matmul_t, n); OFF(dory_matmul_t, acc);
    OFF(dory_matmul_t, first_slice); OFF(dory_matmul_t, last_slice); OFF(dory_matmul_t, rq);
    OFF(dory_matmul_t, out); OFF(dory_matmul_t, out_type);
    return n;
}
