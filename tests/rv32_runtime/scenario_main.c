/*
 * Runs one scenario on the rv32 runtime under QEMU (tests/test_rv32.py): those of
 * tests/host_runtime/runtime_checks.c (compiled with -Dmain=checks_main), which the rv32 runtime
 * must pass or stop exactly as the host runtime does, and the rv32-only ones below.
 * QEMU's semihosting command line is the kernel's file name followed by `-append`'s text, so the
 * scenario is the last argument.
 */
#include "pmsis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int checks_main(int argc, char **argv);

/* The checks count team members with __atomic_fetch_add (host cores are threads); rv32imc has
 * no A extension, so gcc calls libatomic, which picolibc does not ship. The emulated cores are
 * cooperative threads on one hart without interrupts: a plain read-modify-write is atomic. */
unsigned int __atomic_fetch_add_4(volatile void *ptr, unsigned int value, int order);
unsigned int __atomic_fetch_add_4(volatile void *ptr, unsigned int value, int order)
{
    (void)order;
    volatile unsigned int *p = ptr;
    unsigned int old = *p;
    *p = old + value;
    return old;
}

static struct pi_device cluster;

static void run_on_cluster(void (*entry)(void *), void *arg)
{
    struct pi_cluster_conf conf;
    struct pi_cluster_task task;
    pi_cluster_conf_init(&conf);
    pi_open_from_conf(&cluster, &conf);
    if (pi_cluster_open(&cluster))
        exit(1);
    pi_cluster_send_task_to_cl(&cluster, pi_cluster_task(&task, entry, arg));
}

/* ------------------------------------------------------------------ stack overflow */

/* More than the 3,400 bytes of a slave core's stack. */
static __attribute__((noinline)) void deep(void)
{
    volatile unsigned char buf[3420];
    for (unsigned i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)i;
}

static void overflow_fork(void *arg)
{
    (void)arg;
    if (pi_core_id() == 3)
        deep();
}

static void overflow_entry(void *arg) { pi_cl_team_fork(8, overflow_fork, arg); }

/* ------------------------------------------------------------------ order of the cores */

enum { PHASES = 4 };
static int g_order[PHASES][8], g_seen[PHASES];

static void order_fork(void *arg)
{
    (void)arg;
    int id = (int)pi_core_id();
    for (int phase = 0; phase < PHASES; phase++) {
        g_order[phase][g_seen[phase]++] = id;
        pi_cl_team_barrier();
        if (g_seen[phase] != 8) { /* a barrier lets no core through before all arrived */
            printf("FAIL core %d left barrier %d after %d arrivals\n", id, phase, g_seen[phase]);
            exit(1);
        }
    }
}

static void order_entry(void *arg) { pi_cl_team_fork(8, order_fork, arg); }

/* ------------------------------------------------------------------ hidden instructions */

typedef struct {
    uint8_t *l2, *l1;
    unsigned counted[2];
} hidden_t;

static volatile uint32_t g_sizes[2] = {64, 60000}; /* volatile: the same code for both sizes */

static void hidden_entry(void *arg)
{
    hidden_t *h = arg;
    for (int i = 0; i < 2; i++) {
        pi_cl_dma_cmd_t cmd;
        unsigned before = pi_perf_read(PI_PERF_INSTR);
        pi_cl_dma_cmd((uint32_t)(uintptr_t)h->l2, (uint32_t)(uintptr_t)h->l1, g_sizes[i], PI_CL_DMA_DIR_EXT2LOC, &cmd);
        pi_cl_dma_cmd_wait(&cmd);
        h->counted[i] = pi_perf_read(PI_PERF_INSTR) - before;
    }
}

/* ------------------------------------------------------------------ L3 is not memory */

static void l3_deref(void)
{
    struct pi_device ram;
    struct pi_hyperram_conf conf;
    pi_hyperram_conf_init(&conf);
    pi_open_from_conf(&ram, &conf);
    pi_ram_open(&ram);
    uint32_t addr;
    pi_ram_alloc(&ram, &addr, 64);
    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)addr; /* bug: an L3 address used as a pointer */
    printf("read %d\n", *p);
}

int main(int argc, char **argv)
{
    const char *name = argv[argc - 1];
    if (strcmp(name, "rv32_l3_deref") == 0) {
        l3_deref();
        printf("FAIL: an L3 address was readable as memory\n");
        return 1;
    }
    if (strcmp(name, "rv32_stack_overflow") == 0) {
        run_on_cluster(overflow_entry, NULL);
        printf("FAIL: the stack overflow was not reported\n");
        return 1;
    }
    if (strcmp(name, "rv32_order") == 0) {
        run_on_cluster(order_entry, NULL);
        for (int phase = 0; phase < PHASES; phase++) {
            printf("phase %d order", phase);
            for (int k = 0; k < 8; k++)
                printf(" %d", g_order[phase][k]);
            printf("\n");
        }
        printf("PASS rv32_order\n");
        return 0;
    }
    if (strcmp(name, "rv32_hidden") == 0) {
        hidden_t h;
        h.l2 = pi_l2_malloc(60000);
        pi_perf_conf(1u << PI_PERF_INSTR);
        pi_perf_start();
        struct pi_cluster_conf conf;
        pi_cluster_conf_init(&conf);
        pi_open_from_conf(&cluster, &conf);
        pi_cluster_open(&cluster);
        h.l1 = pi_cl_l1_malloc(&cluster, 60000);
        struct pi_cluster_task task;
        pi_cluster_send_task_to_cl(&cluster, pi_cluster_task(&task, hidden_entry, &h));
        printf("counted %u for 64 B, %u for 60000 B\n", h.counted[0], h.counted[1]);
        printf("PASS rv32_hidden\n");
        return 0;
    }
    char *args[2] = {argv[0], (char *)name};
    return checks_main(2, args);
}
