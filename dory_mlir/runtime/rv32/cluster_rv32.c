/*
 * dory-mlir rv32 runtime: the cluster -- devices, the cluster task, the team of cores and its
 * barrier -- on one RISC-V hart.
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
 * writes into its guard zone is reported as a stack overflow. Contract violations are those
 * of the host runtime (pmsis_host.c) with the prefix "pmsis-rv32: ".
 */
#include "pmsis.h"
#include "rv32_internal.h"

#include <inttypes.h>
#include <string.h>

#define fatal rv32_fatal
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
            fatal("core %d overflowed its %d-byte stack (the guard zone below it was written); the cluster "
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

/* ------------------------------------------------------------------------------ devices, cluster */

static int g_cluster_tag;
static int g_cluster_open_count;
static int g_in_cluster;
static int g_task_cores;
static int g_last_fork;
static struct pi_cluster_task *g_task;

int rv32_in_cluster(void) { return g_in_cluster; }

uint32_t rv32_core(void) { return g_current == FC ? 0 : g_current; }

uint32_t pi_core_id(void) { return g_current == FC ? 0 : g_current; }

int pi_cl_cluster_nb_cores(void) { return N; }

void pi_open_from_conf(struct pi_device *device, void *conf)
{
    if (!device)
        fatal("pi_open_from_conf: device is NULL");
    device->config = conf;
}

void pi_cluster_conf_init(struct pi_cluster_conf *conf)
{
    if (!conf)
        fatal("pi_cluster_conf_init: conf is NULL");
    memset(conf, 0, sizeof *conf);
    conf->device_type = PI_DEVICE_CLUSTER_TYPE;
    conf->flags = PI_CLUSTER_FLAGS_FORK_BASED;
}

int pi_cluster_open(struct pi_device *device)
{
    rv32_hide_begin();
    if (!device || !device->config)
        fatal("pi_cluster_open: the device has no configuration (pi_cluster_conf_init + pi_open_from_conf)");
    struct pi_cluster_conf *conf = device->config;
    if (conf->device_type != PI_DEVICE_CLUSTER_TYPE)
        fatal("pi_cluster_open: the device configuration is not a cluster configuration (pi_cluster_conf_init)");
    if (conf->id != 0)
        fatal("pi_cluster_open: cluster id %d does not exist (GAP8 has one cluster, id 0)", conf->id);
    if (g_in_cluster)
        fatal("pi_cluster_open called from the cluster");
    if (g_cluster_open_count++ == 0) {
        rv32_l1_power(1);
        stacks_fill();
    }
    device->data = &g_cluster_tag;
    rv32_hide_end();
    return 0;
}

void rv32_require_cluster_device(struct pi_device *device, const char *fn, int allow_null)
{
    if (!device && allow_null)
        return;
    if (!device || device->data != &g_cluster_tag)
        fatal("%s: the device is not an opened cluster (pi_cluster_open)", fn);
}

int pi_cluster_close(struct pi_device *device)
{
    rv32_hide_begin();
    rv32_require_cluster_device(device, "pi_cluster_close", 0);
    if (g_in_cluster)
        fatal("pi_cluster_close called from the cluster");
    if (g_cluster_open_count <= 0)
        fatal("pi_cluster_close: the cluster is not open");
    if (--g_cluster_open_count == 0)
        rv32_l1_power(0);
    device->data = NULL;
    rv32_hide_end();
    return 0;
}

struct pi_cluster_task *pi_cluster_task(struct pi_cluster_task *task, void (*entry)(void *), void *arg)
{
    if (!task)
        fatal("pi_cluster_task: task is NULL");
    memset(task, 0, sizeof *task);
    task->entry = entry;
    task->arg = arg;
    return task;
}

/* Core 0 starts the task here, on its own stack (entered through dory_rv32_switch). */
static void task_start(void)
{
    rv32_hide_end(); /* the switch into the task was hidden by pi_cluster_send_task_to_cl */
    g_task->entry(g_task->arg);
    rv32_hide_begin();
    g_current = FC;
    dory_rv32_switch(&g_ctx[0], &g_ctx[FC]); /* never resumed */
    fatal("the cluster task was resumed after its end");
}

static void context_start(int core, void (*start)(void))
{
    memset(&g_ctx[core], 0, sizeof g_ctx[core]);
    g_ctx[core].ra = (uint32_t)(uintptr_t)start;
    g_ctx[core].sp = (uint32_t)stack_top(core);
}

int pi_cluster_send_task_to_cl(struct pi_device *device, struct pi_cluster_task *task)
{
    const char *fn = "pi_cluster_send_task_to_cl";
    rv32_hide_begin();
    rv32_require_cluster_device(device, fn, 0);
    if (!task || !task->entry)
        fatal("%s: no task or no task entry", fn);
    if (g_in_cluster)
        fatal("%s called from the cluster (nested cluster task)", fn);
    if (task->nb_cores < 0 || task->nb_cores > N)
        fatal("%s: task nb_cores = %d, the cluster has %d cores", fn, task->nb_cores, N);
    g_task_cores = task->nb_cores ? task->nb_cores : N;
    g_last_fork = g_task_cores;
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
    rv32_check_transfers_done(fn);
    rv32_hide_end();
    return 0;
}

/* ------------------------------------------------------------------------------ team */

enum { IDLE, RUNNING, READY, WAITING, JOINING, DONE };

static struct {
    int n, arrived, finished;
    unsigned gen;
    void (*entry)(void *);
    void *arg;
    int in_fork;
    uint8_t state[N];
    unsigned wait_gen[N];
} g_team;

int rv32_in_fork(void) { return g_team.in_fork; }

static int runnable(int core)
{
    switch (g_team.state[core]) {
    case READY:
        return 1;
    case WAITING:
        return g_team.wait_gen[core] != g_team.gen;
    case JOINING:
        return g_team.finished == g_team.n;
    default:
        return 0;
    }
}

/* The current core cannot go on: resume the next runnable core in cyclic order. Returns when
 * some core switches back to this one. Called inside a hidden region. */
static void yield_from(int me)
{
    for (int k = 1; k <= g_team.n; k++) {
        int next = (me + k) % g_team.n;
        if (next != me && runnable(next)) {
            stack_check(me);
            g_team.state[next] = RUNNING;
            g_current = (uint32_t)next;
            dory_rv32_switch(&g_ctx[me], &g_ctx[next]);
            return;
        }
    }
    fatal("pi_cl_team_barrier: no core of the team can run (core %d waits, %d arrived, %d finished)", me,
          g_team.arrived, g_team.finished);
}

static void team_mismatch(void)
{
    fatal("pi_cl_team_barrier mismatch: %d core(s) wait in pi_cl_team_barrier while %d core(s) already "
          "returned from the forked entry (every core of the team must execute the same barriers)",
          g_team.arrived, g_team.finished);
}

static void team_finish(void)
{
    g_team.finished++;
    if (g_team.arrived > 0 && g_team.arrived + g_team.finished == g_team.n)
        team_mismatch();
}

/* Cores 1..n-1 start here, on their own stacks. */
static void core_start(void)
{
    int me = (int)g_current;
    rv32_hide_end(); /* the switch to this core was hidden by yield_from */
    g_team.entry(g_team.arg);
    rv32_hide_begin();
    team_finish();
    g_team.state[me] = DONE;
    yield_from(me); /* never resumed */
    fatal("core %d was resumed after returning from the forked entry", me);
}

void pi_cl_team_barrier(void)
{
    rv32_hide_begin();
    if (!g_team.in_fork)
        fatal("pi_cl_team_barrier called outside pi_cl_team_fork (core %" PRIu32 ")", rv32_core());
    int me = (int)g_current;
    unsigned gen = g_team.gen;
    if (++g_team.arrived == g_team.n) {
        g_team.arrived = 0; /* the last core releases the others and goes on first */
        g_team.gen++;
    } else {
        if (g_team.arrived + g_team.finished == g_team.n)
            team_mismatch();
        g_team.state[me] = WAITING;
        g_team.wait_gen[me] = gen;
        yield_from(me);
    }
    rv32_hide_end();
}

void pi_cl_team_fork(int nb_cores, void (*entry)(void *), void *arg)
{
    const char *fn = "pi_cl_team_fork";
    rv32_hide_begin();
    if (!g_in_cluster)
        fatal("%s called outside a cluster task: it is a cluster-side call (from the entry of "
              "pi_cluster_send_task_to_cl or of pi_cl_team_fork)",
              fn);
    if (g_team.in_fork)
        fatal("%s called inside a fork (core %" PRIu32 "): nested forks are not supported", fn, rv32_core());
    if (!entry)
        fatal("%s: entry is NULL", fn);
    if (nb_cores < 0 || nb_cores > N)
        fatal("%s: nb_cores = %d, the cluster has %d cores", fn, nb_cores, N);
    int n = nb_cores ? nb_cores : g_last_fork;
    if (n > g_task_cores)
        fatal("%s: fork on %d cores but the cluster task was sent with nb_cores = %d", fn, n, g_task_cores);
    g_last_fork = n;
    g_team.n = n;
    g_team.arrived = 0;
    g_team.finished = 0;
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
    team_finish();
    if (g_team.finished < n) {
        g_team.state[0] = JOINING;
        yield_from(0);
    }
    g_team.state[0] = RUNNING;
    g_team.in_fork = 0;
    for (int k = 0; k < n; k++)
        stack_check(k);
    rv32_hide_end();
}
