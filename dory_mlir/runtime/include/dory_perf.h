/*
 * dory-mlir instruction counts of generated code: per layer and per kernel call.
 *
 * The generated network calls these around every layer and every kernel call. They count
 * only where the runtime's pmsis.h defines DORY_PERF_INSTRET (the rv32 runtime, run under QEMU with
 * `-icount shift=0`, where `rdinstret` is exact and repeatable, DESIGN.md section 7); in the
 * host and PULP SDK builds they are empty macros, so they cost nothing there.
 *
 * What is counted (dory_mlir/runtime/rv32/perf_rv32.c implements it):
 *  - the instructions of every emulated core, summed (the work, not the parallel latency);
 *  - not the runtime's own instructions: on GAP8 the DMA engine, the event unit (barriers) and
 *    the HyperRAM controller are hardware, so the rv32 runtime hides the instructions it spends
 *    emulating them, and those of its allocator and contract checks, which model nothing of
 *    GAP8's cost (a call into the runtime is still counted, as its argument set-up is real);
 *  - per layer: `pre` = network code since the previous layer (L3 -> L2 staging of its
 *    weights; for the first layer also the input copy and the resident-weight loads),
 *    `cluster` = the layer's cluster function (L2 <-> L1 DMA, tile loop, kernels),
 *    `kernels` = inside kernel calls only.
 * The verification code between layers (dory_layer_done) is not counted.
 */
#ifndef DORY_PERF_H
#define DORY_PERF_H

#include "pmsis.h" /* the rv32 runtime's defines DORY_PERF_INSTRET */

#ifdef DORY_PERF_INSTRET

void dory_perf_network_begin(void); /* first statement of the network */
void dory_perf_layer_begin(int layer);
void dory_perf_layer_end(int layer);
void dory_perf_resume(void);        /* after the (uncounted) verification hook of a layer */
void dory_perf_network_end(void);
void dory_perf_kernel_begin(void);  /* around one core's kernel call */
void dory_perf_kernel_end(void);
void dory_perf_report(void);        /* prints the "dory-perf ..." lines (fabric controller) */

#define DORY_PERF_KERNEL(call)    \
    do {                          \
        dory_perf_kernel_begin(); \
        call;                     \
        dory_perf_kernel_end();   \
    } while (0)

#else

#define dory_perf_network_begin() ((void)0)
#define dory_perf_layer_begin(layer) ((void)(layer))
#define dory_perf_layer_end(layer) ((void)(layer))
#define dory_perf_resume() ((void)0)
#define dory_perf_network_end() ((void)0)
#define dory_perf_report() ((void)0)
#define DORY_PERF_KERNEL(call) call

#endif

#endif
