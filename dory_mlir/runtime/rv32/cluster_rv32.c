/*
 * dory-mlir rv32 runtime: how the cluster's cores run on one RISC-V hart -- the cluster task,
 * the forks and the barrier (their rules are the common runtime's, ../common/cluster.c).
 *
 * Each core is a cooperative thread with its own stack in L1 (the target's sizes, a guard zone
 * below each). A core runs until it reaches pi_cl_team_barrier or returns from the forked
 * entry; then the next runnable core in cyclic order resumes (a small context switch saving
 * ra, sp and s0-s11). The core that completes a barrier continues first, so the order of the
 * cores in a phase rotates from barrier to barrier -- code that relies on an order between
 * barriers does not pass by luck. Running the cores one after the other without switching at
 * the barriers would be wrong: generated code shares L1 buffers between phases.
 *
 * The cluster task itself runs as core 0 on core 0's stack (in L1, as on GAP8), and the
 * fabric controller waits for it. Stack use is measured (high-water mark) and a core that
 * writes into its guard zone is reported as a stack overflow.
 */
#include "pmsis.h"
#include "rv32_internal.h"

#include <inttypes.h>
#include <string.h>

#define N DORY_CLUSTER_CORES
#define FC N /* index of the fabric controller's context */

/* ------------------------------------------------------------------------------ context switch */

typedef struct {
    uint32_t ra, sp, s[12];
} context_t;

/* dory_rv32_switch(save, load): stores the running context's ra, sp and s0-s11 into *save and
 * returns into the context *load (the caller-saved registers are dead across the call). */
void dory_rv32_switch(context_t *save, const context_t *load);
__asm__(".text\n"
        ".globl dory_rv32_switch\n"
        ".type dory_rv32_switch, @function\n"
        "dory_rv32_switch:\n"
        "    sw ra, 0(a0)\n    sw sp, 4(a0)\n"
        "    sw s0, 8(a0)\n    sw s1, 12(a0)\n   sw s2, 16(a0)\n   sw s3, 20(a0)\n"
        "    sw s4, 24(a0)\n   sw s5, 28(a0)\n   sw s6, 32(a0)\n   sw s7, 36(a0)\n"
        "    sw s8, 40(a0)\n   sw s9, 44(a0)\n   sw s10, 48(a0)\n  sw s11, 52(a0)\n"
        "    lw ra, 0(a1)\n    lw sp, 4(a1)\n"
        "    lw s0, 8(a1)\n    lw s1, 12(a1)\n   lw s2, 16(a1)\n   lw s3, 20(a1)\n"
        "    lw s4, 24(a1)\n   lw s5, 28(a1)\n   lw s6, 32(a1)\n   lw s7, 36(a1)\n"
        "    lw s8, 40(a1)\n   lw s9, 44(a1)\n   lw s10, 48(a1)\n  lw s11, 52(a1)\n"
        "    ret\n"
        ".size dory_rv32_switch, .-dory_rv32_switch\n");

static context_t g_ctx[N + 1];
static uint32_t g_current = FC;

/* ------------------------------------------------------------------------------ stacks in L1 */

static uint8_t *g_stack_lo[N]; /* lowest byte of each stack (its guard zone is below) */
static int g_high_water[N];

int rv32_stack_size(int core) { return core == 0 ? DORY_STACK_MASTER : DORY_STACK_SLAVE; }

int rv32_stack_high_water(int core) { return core >= 0 && core < N ? g_high_water[core] : -1; }

static uintptr_t stack_top(int core) { return ((uintptr_t)g_stack_lo[core] + rv32_stack_size(core)) & ~(uintptr_t)15; }

/* The stacks follow the L1 arena; they are refilled at each cluster power-up. */
static void stacks_fill(void)
{
    uintptr_t p = (RV32_L1_BASE + DORY_L1_SIZE + 15) & ~(uintptr_t)15;
    for (int k = 0; k < N; k++) {
        memset((void *)p, RV32_STACK_FILL, RV32_STACK_GUARD + rv32_stack_size(k));
        g_stack_lo[k] = (uint8_t *)(p + RV32_STACK_GUARD);
        p = (p + RV32_STACK_GUARD + rv32_stack_size(k) + 15) & ~(uintptr_t)15;
        g_high_water[k] = -1;
    }
}

static void stack_check(int core)
{
    const uint8_t *guard = g_stack_lo[core] - RV32_STACK_GUARD;
    for (int i = 0; i < RV32_STACK_GUARD; i++)
        if (guard[i] != RV32_STACK_FILL)
            dory_fatal("core %d overflowed its %d-byte stack (the guard zone below it was written); the cluster "
                  "stacks have the target's sizes (-DDORY_STACK_MASTER / -DDORY_STACK_SLAVE)",
                  core, rv32_stack_size(core));
}

static void stack_measure(int core)
{
    const uint8_t *p = g_stack_lo[core];
    const uint8_t *top = (const uint8_t *)stack_top(core);
    while (p < top && *p == RV32_STACK_FILL)
        p++;
    int used = (int)(top - p);
    if (used > g_high_water[core])
        g_high_water[core] = used;
}

/* ------------------------------------------------------------------------------ cluster task */

static int g_in_cluster;
static struct pi_cluster_task *g_task;

int platform_in_cluster(void) { return g_in_cluster; }

uint32_t platform_core(void) { return g_current == FC ? 0 : g_current; }

/* The stacks are in L1: they are refilled at each power-up. */
void platform_cluster_power(int on)
{
    if (on)
        stacks_fill();
}

/* Core 0 starts the task here, on its own stack (entered through dory_rv32_switch). */
static void task_start(void)
{
    rv32_hide_end(); /* the switch into the task was hidden by platform_run_task */
    g_task->entry(g_task->arg);
    rv32_hide_begin();
    g_current = FC;
    dory_rv32_switch(&g_ctx[0], &g_ctx[FC]); /* never resumed */
    dory_fatal("the cluster task was resumed after its end");
}

static void context_start(int core, void (*start)(void))
{
    memset(&g_ctx[core], 0, sizeof g_ctx[core]);
    g_ctx[core].ra = (uint32_t)(uintptr_t)start;
    g_ctx[core].sp = (uint32_t)stack_top(core);
}

void platform_run_task(struct pi_cluster_task *task)
{
    rv32_hide_begin();
    g_task = task;
    g_in_cluster = 1;
    context_start(0, task_start);
    g_current = 0;
    dory_rv32_switch(&g_ctx[FC], &g_ctx[0]);
    g_in_cluster = 0;
    for (int k = 0; k < N; k++) {
        stack_check(k);
        stack_measure(k);
    }
    rv32_hide_end();
}

/* ------------------------------------------------------------------------------ team */

enum { IDLE, RUNNING, READY, WAITING, JOINING, DONE };

static struct {
    team_count_t count;
    void (*entry)(void *);
    void *arg;
    int in_fork;
    uint8_t state[N];
    unsigned wait_gen[N];
} g_team;

int platform_in_fork(void) { return g_team.in_fork; }

static int runnable(int core)
{
    switch (g_team.state[core]) {
    case READY:
        return 1;
    case WAITING:
        return g_team.wait_gen[core] != g_team.count.gen;
    case JOINING:
        return g_team.count.finished == g_team.count.cores;
    default:
        return 0;
    }
}

/* The current core cannot go on: resume the next runnable core in cyclic order. Returns when
 * some core switches back to this one. Called inside a hidden region. */
static void yield_from(int me)
{
    for (int k = 1; k <= g_team.count.cores; k++) {
        int next = (me + k) % g_team.count.cores;
        if (next != me && runnable(next)) {
            stack_check(me);
            g_team.state[next] = RUNNING;
            g_current = (uint32_t)next;
            dory_rv32_switch(&g_ctx[me], &g_ctx[next]);
            return;
        }
    }
    dory_fatal("pi_cl_team_barrier: no core of the team can run (core %d waits, %d arrived, %d finished)", me,
               g_team.count.arrived, g_team.count.finished);
}

/* Cores 1..n-1 start here, on their own stacks. */
static void core_start(void)
{
    int me = (int)g_current;
    rv32_hide_end(); /* the switch to this core was hidden by yield_from */
    g_team.entry(g_team.arg);
    rv32_hide_begin();
    team_finish(&g_team.count);
    g_team.state[me] = DONE;
    yield_from(me); /* never resumed */
    dory_fatal("core %d was resumed after returning from the forked entry", me);
}

void pi_cl_team_barrier(void)
{
    rv32_hide_begin();
    int me = (int)g_current;
    unsigned gen = g_team.count.gen;
    if (!team_arrive(&g_team.count)) { /* the core completing the barrier goes on first */
        g_team.state[me] = WAITING;
        g_team.wait_gen[me] = gen;
        yield_from(me);
    }
    rv32_hide_end();
}

void platform_fork(int n, void (*entry)(void *), void *arg)
{
    rv32_hide_begin();
    team_start(&g_team.count, n);
    g_team.entry = entry;
    g_team.arg = arg;
    g_team.in_fork = 1;
    g_team.state[0] = RUNNING;
    for (int k = 1; k < N; k++) {
        g_team.state[k] = k < n ? READY : IDLE;
        if (k < n)
            context_start(k, core_start);
    }
    rv32_hide_end();
    entry(arg); /* core 0 is the caller */
    rv32_hide_begin();
    team_finish(&g_team.count);
    if (g_team.count.finished < n) {
        g_team.state[0] = JOINING;
        yield_from(0);
    }
    g_team.state[0] = RUNNING;
    g_team.in_fork = 0;
    for (int k = 0; k < n; k++)
        stack_check(k);
    rv32_hide_end();
}
