/*
 * Runs recorded kernel test cases on 32-bit RISC-V (qemu-system-riscv32, picolibc with
 * semihosting), see test_rv32_qemu in tests/test_kernels.py.
 *
 * cases.bin (written by the test) holds, as little-endian int64 words:
 *   n_cases, then per case:
 *     n_buffers, then per buffer: size, the bytes (padded to 8);
 *     n_calls, then per call: kernel id and the fields of its parameter struct in
 *       declaration order (pointers as buffer ids, -1 = NULL; rq as a present flag followed
 *       by the requant fields);
 *     the output buffer id, its size and the expected bytes (padded to 8).
 * Every call runs the kernel once per core id 0 .. NUM_CORES-1. Prints one line per case
 * ("case N ok|MISMATCH instret K maxcore M": the instructions of all cores' calls, and the
 * most of one core, the cluster's critical path) and a closing "N passed, M failed" line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmsis.h"
#include "dory_kernels.h"

#ifndef NUM_CORES
#define NUM_CORES 8
#endif

static int current_core;
int pi_core_id(void) { return current_core; }

static FILE *in;
static void *buffers[64];
static int failed_read;

static int64_t rd(void)
{
    int64_t v = 0;
    if (fread(&v, sizeof v, 1, in) != 1)
        failed_read = 1;
    return v;
}

static void *ptr(void)
{
    int64_t id = rd();
    return (id < 0 || id >= 64) ? NULL : buffers[id];
}

static void read_bytes(void *dst, int64_t size)
{
    int64_t padded = (size + 7) / 8 * 8;
    if (size && fread(dst, 1, (size_t)size, in) != (size_t)size)
        failed_read = 1;
    for (int64_t i = size; i < padded; i++)
        (void)fgetc(in);
}

static const dory_requant_t *read_rq(dory_requant_t *r)
{
    if (rd() == 0)
        return NULL;
    r->mul = ptr();
    r->add = ptr();
    r->mul_per_channel = (uint8_t)rd();
    r->add_per_channel = (uint8_t)rd();
    r->const_bits = (uint8_t)rd();
    r->wide = (uint8_t)rd();
    r->trunc = (uint8_t)rd();
    r->shift = (int8_t)rd();
    r->scale = rd();
    r->divisor = rd();
    r->min = (int32_t)rd();
    r->max = (int32_t)rd();
    return r;
}

static void read_conv(dory_conv_t *p, dory_requant_t *r)
{
    p->in = ptr(); p->in_type = (dory_dtype_t)rd();
    p->in_h = (uint16_t)rd(); p->in_w = (uint16_t)rd(); p->in_c = (uint16_t)rd();
    p->weights = ptr(); p->bias = ptr();
    p->out_h = (uint16_t)rd(); p->out_w = (uint16_t)rd(); p->out_c = (uint16_t)rd();
    p->kh = (uint8_t)rd(); p->kw = (uint8_t)rd(); p->sh = (uint8_t)rd(); p->sw = (uint8_t)rd();
    p->dh = (uint8_t)rd(); p->dw = (uint8_t)rd();
    p->pad_t = (uint8_t)rd(); p->pad_l = (uint8_t)rd(); p->pad_b = (uint8_t)rd(); p->pad_r = (uint8_t)rd();
    p->acc = ptr(); p->first_slice = (uint8_t)rd(); p->last_slice = (uint8_t)rd();
    p->rq = read_rq(r); p->out = ptr(); p->out_type = (dory_dtype_t)rd(); p->im2col = ptr();
    p->pad_value = (int16_t)rd();
}

static void read_linear(dory_linear_t *p, dory_requant_t *r)
{
    p->in = ptr(); p->in_type = (dory_dtype_t)rd();
    p->in_c = (uint16_t)rd(); p->out_c = (uint16_t)rd();
    p->weights = ptr(); p->bias = ptr(); p->acc = ptr();
    p->first_slice = (uint8_t)rd(); p->last_slice = (uint8_t)rd();
    p->rq = read_rq(r); p->out = ptr(); p->out_type = (dory_dtype_t)rd();
}

static void read_pool(dory_pool_t *p, dory_requant_t *r)
{
    p->in = ptr(); p->in_type = (dory_dtype_t)rd();
    p->in_h = (uint16_t)rd(); p->in_w = (uint16_t)rd(); p->c = (uint16_t)rd();
    p->out_h = (uint16_t)rd(); p->out_w = (uint16_t)rd();
    p->kh = (uint8_t)rd(); p->kw = (uint8_t)rd(); p->sh = (uint8_t)rd(); p->sw = (uint8_t)rd();
    p->pad_t = (uint8_t)rd(); p->pad_l = (uint8_t)rd(); p->pad_b = (uint8_t)rd(); p->pad_r = (uint8_t)rd();
    p->rq = read_rq(r); p->out = ptr(); p->out_type = (dory_dtype_t)rd();
}

static void read_add(dory_add_t *p, dory_requant_t *r)
{
    p->a = ptr(); p->b = ptr(); p->a_type = (dory_dtype_t)rd(); p->b_type = (dory_dtype_t)rd();
    p->h = (uint16_t)rd(); p->w = (uint16_t)rd(); p->c = (uint16_t)rd();
    p->mul[0] = (int32_t)rd(); p->mul[1] = (int32_t)rd();
    p->add[0] = (int32_t)rd(); p->add[1] = (int32_t)rd();
    p->shift[0] = (uint8_t)rd(); p->shift[1] = (uint8_t)rd();
    p->rq = read_rq(r); p->out = ptr(); p->out_type = (dory_dtype_t)rd();
}

static void read_matmul(dory_matmul_t *p, dory_requant_t *r)
{
    p->a = ptr(); p->b = ptr(); p->a_type = (dory_dtype_t)rd(); p->b_type = (dory_dtype_t)rd();
    p->m = (uint16_t)rd(); p->k = (uint16_t)rd(); p->n = (uint16_t)rd();
    p->acc = ptr(); p->first_slice = (uint8_t)rd(); p->last_slice = (uint8_t)rd();
    p->rq = read_rq(r); p->out = ptr(); p->out_type = (dory_dtype_t)rd();
}

static inline uint32_t instret(void)
{
    uint32_t v;
    __asm__ volatile("rdinstret %0" : "=r"(v));
    return v;
}

int main(void)
{
    in = fopen("cases.bin", "rb");
    if (in == NULL) {
        printf("cannot open cases.bin\n");
        return 1;
    }
    int passed = 0, failed = 0;
    const int64_t n_cases = rd();
    for (int64_t k = 0; k < n_cases && !failed_read; k++) {
        const int64_t n_buffers = rd();
        for (int64_t b = 0; b < n_buffers; b++) {
            const int64_t size = rd();
            buffers[b] = malloc((size_t)(size ? size : 1));
            read_bytes(buffers[b], size);
        }
        const int64_t n_calls = rd();
        uint32_t per_core[NUM_CORES] = {0};
        for (int64_t c = 0; c < n_calls; c++) {
            const int kernel = (int)rd();
            dory_requant_t r;
            dory_conv_t conv;
            dory_linear_t linear;
            dory_pool_t pool;
            dory_add_t add;
            dory_matmul_t matmul;
            if (kernel <= 2)
                read_conv(&conv, &r);
            else if (kernel == 3)
                read_linear(&linear, &r);
            else if (kernel <= 5)
                read_pool(&pool, &r);
            else if (kernel == 6)
                read_add(&add, &r);
            else
                read_matmul(&matmul, &r);
            for (current_core = 0; current_core < NUM_CORES; current_core++) {
                const uint32_t start = instret();
                switch (kernel) {
                case 0: dory_conv2d(&conv); break;
                case 1: dory_pointwise(&conv); break;
                case 2: dory_depthwise(&conv); break;
                case 3: dory_linear(&linear); break;
                case 4: dory_maxpool(&pool); break;
                case 5: dory_sumpool(&pool); break;
                case 6: dory_add(&add); break;
                default: dory_matmul(&matmul); break;
                }
                per_core[current_core] += instret() - start;
            }
        }
        uint32_t instructions = 0, most = 0;
        for (int core = 0; core < NUM_CORES; core++) {
            instructions += per_core[core];
            most = per_core[core] > most ? per_core[core] : most;
        }
        void *out = ptr();
        const int64_t size = rd();
        void *expected = malloc((size_t)(size ? size : 1));
        read_bytes(expected, size);
        const int ok = out != NULL && memcmp(out, expected, (size_t)size) == 0;
        printf("case %d %s instret %lu maxcore %lu\n", (int)k, ok ? "ok" : "MISMATCH",
               (unsigned long)instructions, (unsigned long)most);
        if (ok)
            passed++;
        else
            failed++;
        free(expected);
        for (int64_t b = 0; b < n_buffers; b++)
            free(buffers[b]);
    }
    fclose(in);
    if (failed_read) {
        printf("cases.bin is truncated\n");
        failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
