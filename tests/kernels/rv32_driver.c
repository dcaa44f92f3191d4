/*
 * Runs recorded kernel test cases on 32-bit RISC-V (qemu-system-riscv32, picolibc with
 * semihosting): tests/test_kernels.py (test_rv32_qemu) and bench/kernels_rv32.py.
 *
 * cases.bin (written by tests/test_kernels.py: Recorder) holds, as little-endian int64 words:
 *   n_cases, then per case:
 *     n_buffers, then per buffer: size, the bytes (padded to 8);
 *     n_calls, then per call: the kernel's number in the table (kernel_table.h, generated from
 *       dory_mlir/kernel_abi.py) and the fields of its argument struct in declaration order, each
 *       value one word (pointers as buffer ids, -1 = NULL; an array field one word per element;
 *       the requant pointer as a present flag followed by the fields of dory_requant_t);
 *     the output buffer id, its size and the expected bytes (padded to 8).
 * The structs are filled from the table, so every kernel of the table runs here without code of
 * its own. Every call runs the kernel once per core id 0 .. NUM_CORES-1. Prints one line per case
 * ("case N ok|MISMATCH instret K maxcore M": the instructions of all cores' calls, and the most
 * of one core, the cluster's critical path) and a closing "N passed, M failed" line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmsis.h"
#include "dory_kernels.h"
#include "kernel_table.h"

#ifndef NUM_CORES
#define NUM_CORES 8
#endif

#define MAX_BUFFERS 64

static int current_core;
int pi_core_id(void) { return current_core; }

static FILE *in;
static void *buffers[MAX_BUFFERS];
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
    return (id < 0 || id >= MAX_BUFFERS) ? NULL : buffers[id];
}

static void read_bytes(void *dst, int64_t size)
{
    int64_t padded = (size + 7) / 8 * 8;
    if (size && fread(dst, 1, (size_t)size, in) != (size_t)size)
        failed_read = 1;
    for (int64_t i = size; i < padded; i++)
        (void)fgetc(in);
}

/* The fields f[0 .. n-1] of a struct at `s` from the recorded words; the requant a field points
 * to is read into *rq. Stored with memcpy: `s` is untyped storage. */
static void read_fields(unsigned char *s, const dt_field_t *f, int n, dory_requant_t *rq)
{
    for (int i = 0; i < n; i++) {
        unsigned char *at = s + f[i].offset;
        for (int c = 0; c < f[i].count; c++) {
            const int64_t v = f[i].kind == DT_POINTER || f[i].kind == DT_REQUANT ? 0 : rd();
#define STORE(T) do { const T x = (T)v; memcpy(at + c * sizeof x, &x, sizeof x); } while (0)
            switch (f[i].kind) {
            case DT_U8: STORE(uint8_t); break;
            case DT_I8: STORE(int8_t); break;
            case DT_U16: STORE(uint16_t); break;
            case DT_I16: STORE(int16_t); break;
            case DT_I32: STORE(int32_t); break;
            case DT_I64: STORE(int64_t); break;
            case DT_DTYPE: STORE(dory_dtype_t); break;
            case DT_POINTER: {
                void *p = ptr();
                memcpy(at, &p, sizeof p);
                break;
            }
            default: { /* DT_REQUANT */
                const dory_requant_t *p = NULL;
                if (rd() != 0) {
                    read_fields((unsigned char *)rq, DT_REQUANT_FIELDS, DT_N_REQUANT_FIELDS, NULL);
                    p = rq;
                }
                memcpy(at, &p, sizeof p);
                break;
            }
            }
#undef STORE
        }
    }
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
        if (n_buffers > MAX_BUFFERS) {
            printf("case %d has %d buffers (at most %d)\n", (int)k, (int)n_buffers, MAX_BUFFERS);
            return 1;
        }
        for (int64_t b = 0; b < n_buffers; b++) {
            const int64_t size = rd();
            buffers[b] = malloc((size_t)(size ? size : 1));
            read_bytes(buffers[b], size);
        }
        const int64_t n_calls = rd();
        uint32_t per_core[NUM_CORES] = {0};
        for (int64_t c = 0; c < n_calls && !failed_read; c++) {
            const int64_t number = rd();
            if (number < 0 || number >= DT_N_KERNELS) {
                printf("case %d calls kernel %d: not in the table (%d kernels)\n", (int)k, (int)number, DT_N_KERNELS);
                return 1;
            }
            const dt_kernel_t *kernel = &DT_KERNELS[number];
            dory_requant_t *rq = malloc(sizeof *rq);
            unsigned char *params = malloc(kernel->size); /* untyped: filled field by field */
            memset(params, 0, kernel->size);
            read_fields(params, kernel->fields, kernel->n_fields, rq);
            for (current_core = 0; current_core < NUM_CORES; current_core++) {
                const uint32_t start = instret();
                kernel->call(params);
                per_core[current_core] += instret() - start;
            }
            free(params);
            free(rq);
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
