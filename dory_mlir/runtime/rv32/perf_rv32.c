/*
 * dory-mlir rv32 runtime: instruction counts -- the dory_perf API of generated code
 * (include/dory_perf.h) and the PMSIS perf counters -- from `rdinstret`, minus the
 * instructions the runtime hides (rv32_internal.h).
 *
 * dory_perf_report() prints, for dory_mlir/backend/rv32.py (dory-verify) and bench/rv32.py to parse:
 *   dory-perf layer L pre P cluster C kernels K calls N busiest B   (one line per layer, in layer order;
 *                                                       B: the kernel instructions of the core that ran most)
 *   dory-perf tail T                                        (network code after the last layer)
 *   dory-perf hidden H                                      (runtime instructions not counted)
 *   dory-perf stack core I used U of S                      (bytes, high-water mark)
 */
#include "pmsis.h"
#include "dory_perf.h"
#include "rv32_internal.h"

#include <inttypes.h>
#include <stdio.h>

#ifndef DORY_PERF_MAX_LAYERS
#define DORY_PERF_MAX_LAYERS 1024
#endif

typedef struct {
    uint64_t pre, cluster, kernels, calls, busiest;
    int seen;
} layer_count_t;

static layer_count_t g_layers[DORY_PERF_MAX_LAYERS];
static uint64_t g_mark;         /* start of the current stretch of network code */
static uint64_t g_layer_start;  /* counter at dory_perf_layer_begin */
static uint64_t g_kernel_start;
static uint64_t g_kernels, g_calls; /* inside kernel calls, every core, since the start */
static uint64_t g_kernels_at_layer, g_calls_at_layer;
/* Per core, inside kernel calls: the busiest core's share of a layer is what the tiler's cost model
 * estimates (tiling/cost.py), compared by bench/rv32.py. */
static uint64_t g_core_kernels[DORY_CLUSTER_CORES], g_core_kernels_at_layer[DORY_CLUSTER_CORES];
static uint64_t g_tail;
static int g_in_kernel, g_current_layer = -1;

static layer_count_t *layer_slot(int layer, const char *fn)
{
    if (layer < 0 || layer >= DORY_PERF_MAX_LAYERS)
        dory_fatal("%s: layer %d outside [0, %d) (-DDORY_PERF_MAX_LAYERS)", fn, layer, DORY_PERF_MAX_LAYERS);
    return &g_layers[layer];
}

/* Each function hides its own bookkeeping and reads the counter last (begin) or first (end),
 * so what it measures is the code between the calls. */
void dory_perf_network_begin(void) { g_mark = rv32_counted(); }

void dory_perf_layer_begin(int layer)
{
    uint64_t now = rv32_counted();
    rv32_hide_begin();
    layer_count_t *slot = layer_slot(layer, "dory_perf_layer_begin");
    if (g_current_layer >= 0)
        dory_fatal("dory_perf_layer_begin(%d) inside layer %d", layer, g_current_layer);
    slot->pre += now - g_mark;
    slot->seen = 1;
    g_current_layer = layer;
    g_kernels_at_layer = g_kernels;
    g_calls_at_layer = g_calls;
    for (int k = 0; k < DORY_CLUSTER_CORES; k++)
        g_core_kernels_at_layer[k] = g_core_kernels[k];
    rv32_hide_end();
    g_layer_start = rv32_counted();
}

void dory_perf_layer_end(int layer)
{
    uint64_t now = rv32_counted();
    rv32_hide_begin();
    layer_count_t *slot = layer_slot(layer, "dory_perf_layer_end");
    if (g_current_layer != layer)
        dory_fatal("dory_perf_layer_end(%d) without dory_perf_layer_begin(%d)", layer, layer);
    slot->cluster += now - g_layer_start;
    slot->kernels += g_kernels - g_kernels_at_layer;
    slot->calls += g_calls - g_calls_at_layer;
    uint64_t busiest = 0;
    for (int k = 0; k < DORY_CLUSTER_CORES; k++)
        if (g_core_kernels[k] - g_core_kernels_at_layer[k] > busiest)
            busiest = g_core_kernels[k] - g_core_kernels_at_layer[k];
    slot->busiest += busiest;
    g_current_layer = -1;
    rv32_hide_end();
}

void dory_perf_resume(void) { g_mark = rv32_counted(); }

void dory_perf_network_end(void) { g_tail += rv32_counted() - g_mark; }

/* Kernels run to completion on one core (they contain no barrier), so one start suffices. */
void dory_perf_kernel_begin(void)
{
    rv32_hide_begin();
    if (g_in_kernel)
        dory_fatal("dory_perf_kernel_begin on core %" PRIu32 ": a kernel call did not end (a barrier inside a "
                   "kernel?)",
                   platform_core());
    g_in_kernel = 1;
    rv32_hide_end();
    g_kernel_start = rv32_counted();
}

void dory_perf_kernel_end(void)
{
    uint64_t now = rv32_counted();
    rv32_hide_begin();
    g_kernels += now - g_kernel_start;
    g_core_kernels[platform_core() % DORY_CLUSTER_CORES] += now - g_kernel_start;
    g_calls++;
    g_in_kernel = 0;
    rv32_hide_end();
}

void dory_perf_report(void)
{
    rv32_hide_begin();
    for (int i = 0; i < DORY_PERF_MAX_LAYERS; i++)
        if (g_layers[i].seen)
            printf("dory-perf layer %d pre %" PRIu64 " cluster %" PRIu64 " kernels %" PRIu64 " calls %" PRIu64
                   " busiest %" PRIu64 "\n",
                   i, g_layers[i].pre, g_layers[i].cluster, g_layers[i].kernels, g_layers[i].calls, g_layers[i].busiest);
    printf("dory-perf tail %" PRIu64 "\n", g_tail);
    for (int k = 0; k < DORY_CLUSTER_CORES; k++)
        printf("dory-perf stack core %d used %d of %d\n", k, rv32_stack_high_water(k), rv32_stack_size(k));
    printf("dory-perf hidden %" PRIu64 "\n", rv32_hidden);
    rv32_hide_end();
}

/* ------------------------------------------------------------------------------ PMSIS perf counters */

/* Cycles, active cycles and instructions all read the counted instructions: under QEMU with
 * -icount shift=0 every instruction takes one cycle. Other events read 0. */
static struct {
    unsigned events;
    int running;
    uint64_t acc, start;
} g_perf;

void pi_perf_conf(unsigned events) { g_perf.events = events; }

void pi_perf_reset(void)
{
    g_perf.acc = 0;
    if (g_perf.running)
        g_perf.start = rv32_counted();
}

void pi_perf_start(void)
{
    if (!g_perf.running) {
        g_perf.running = 1;
        g_perf.start = rv32_counted();
    }
}

void pi_perf_stop(void)
{
    if (g_perf.running) {
        g_perf.acc += rv32_counted() - g_perf.start;
        g_perf.running = 0;
    }
}

unsigned int pi_perf_read(int id)
{
    if (id != PI_PERF_CYCLES && id != PI_PERF_ACTIVE_CYCLES && id != PI_PERF_INSTR)
        return 0;
    return (unsigned int)(g_perf.acc + (g_perf.running ? rv32_counted() - g_perf.start : 0));
}
