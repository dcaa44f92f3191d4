/*
 * dory-mlir: the host (x86-64 Linux) platform of the PMSIS runtime (pmsis.h), to run generated
 * code off-target and catch its bugs. The memory model, the transfers and the cluster's rules
 * are the common runtime's (runtime/common: memory.c, cluster.c); this file is what only the
 * host has:
 *
 *   - L1 and L2 are mapped below 2 GiB (mmap MAP_32BIT), so a uint32_t holds an arena address
 *     exactly. Each arena ends at (or < 64 bytes before) a PROT_NONE guard page. L3 is a heap
 *     buffer.
 *   - The cores are threads: pi_cluster_send_task_to_cl runs the entry on the calling thread as
 *     the cluster controller (core 0); pi_cl_team_fork runs entry on nb_cores threads (core 0 is
 *     the caller); pi_cl_team_barrier is a real barrier. One lock guards the runtime's state.
 *   - The perf counters read wall-clock time (pmsis.h).
 *
 * Every contract violation prints "pmsis-host: <function>: <what>" to stderr and aborts; an
 * allocation over budget exits with status 3.
 *
 * Build: gcc -std=c11 -Wall -Wextra -Werror -O2 -pthread -I dory_mlir/runtime/host \
 *            dory_mlir/runtime/host/pmsis_host.c (the .c files of dory_mlir/runtime/common) ...
 *        [-DDORY_L1_SIZE=8000] [-DDORY_L2_SIZE=...] [-DDORY_L3_SIZE=...]
 */
#define _GNU_SOURCE /* MAP_32BIT */

#include "pmsis.h"
#include "../common/runtime_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef DORY_HOST_PERF_HZ
#define DORY_HOST_PERF_HZ 100000000ull
#endif

const char dory_runtime_name[] = "pmsis-host";

/* ------------------------------------------------------------------------------ state of the cores */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* arenas, transfers, devices */

void runtime_enter(void) { pthread_mutex_lock(&g_lock); }

void runtime_leave(void) { pthread_mutex_unlock(&g_lock); }

static _Thread_local uint32_t tls_core;   /* pi_core_id() */
static _Thread_local int tls_in_cluster;  /* running cluster code (controller or team) */
static _Thread_local int tls_in_fork;     /* running inside pi_cl_team_fork */

int platform_in_cluster(void) { return tls_in_cluster; }

int platform_in_fork(void) { return tls_in_fork; }

uint32_t platform_core(void) { return tls_core; }

/* ------------------------------------------------------------------------------ arenas */

/* Maps `cap` bytes below 2 GiB between two PROT_NONE guard pages; the arena ends at most 63
 * bytes before the upper guard page. */
static uint8_t *map_low(const char *name, uint32_t cap)
{
    const uint64_t limit = 0x80000000ull; /* 2 GiB */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t body = ((size_t)cap + page - 1) / page * page;
    size_t total = body + 2 * page;
    void *p = MAP_FAILED;
#ifdef MAP_32BIT
    p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (p != MAP_FAILED && (uint64_t)(uintptr_t)p + total > limit) {
        munmap(p, total);
        p = MAP_FAILED;
    }
#endif
    for (uint64_t hint = 0x10000000ull; p == MAP_FAILED && hint + total <= limit; hint += 0x08000000ull) {
        void *q = mmap((void *)(uintptr_t)hint, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (q == MAP_FAILED)
            continue;
        if ((uint64_t)(uintptr_t)q + total <= limit) {
            p = q;
            break;
        }
        munmap(q, total);
    }
    if (p == MAP_FAILED)
        dory_fatal("cannot map the %s arena (%" PRIu32 " bytes) below 2 GiB (%s); addresses are passed as "
              "uint32_t and must not be truncated",
              name, cap, strerror(errno));
    uint8_t *lo = (uint8_t *)p + page;
    uint8_t *hi = lo + body;
    if (mprotect(p, page, PROT_NONE) != 0 || mprotect(hi, page, PROT_NONE) != 0)
        dory_fatal("cannot protect the guard pages of the %s arena (%s)", name, strerror(errno));
    uint8_t *base = (uint8_t *)((uintptr_t)(hi - cap) & ~(uintptr_t)63);
    if ((uint64_t)(uintptr_t)base + cap > limit || (uint64_t)(uint32_t)(uintptr_t)base != (uintptr_t)base)
        dory_fatal("the %s arena at %p is not addressable with 32 bits", name, (void *)base);
    memset(lo, FILL_FREE, body);
    POISON(lo, body);
    return base;
}

uint8_t *platform_arena_memory(memory_level_e level, uint32_t bytes)
{
    if (level == MEMORY_L3) { /* addressed by offsets only: any host memory will do */
        uint8_t *l3 = malloc(bytes);
        if (!l3)
            dory_fatal("pi_ram_open: cannot allocate %" PRIu32 " bytes of host memory for L3", bytes);
        return l3;
    }
    return map_low(level == MEMORY_L1 ? "L1" : "L2", bytes);
}

/* ------------------------------------------------------------------------------ cluster */

void platform_cluster_power(int on) { (void)on; }

void platform_run_task(struct pi_cluster_task *task)
{
    tls_in_cluster = 1;
    tls_core = 0;
    task->entry(task->arg);
    tls_in_cluster = 0;
    tls_core = 0;
}

/* ------------------------------------------------------------------------------ team */

static struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    team_count_t count;
} g_team = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0, 0, 0, 0}};

void pi_cl_team_barrier(void)
{
    pthread_mutex_lock(&g_team.m);
    unsigned gen = g_team.count.gen;
    if (team_arrive(&g_team.count))
        pthread_cond_broadcast(&g_team.c);
    else
        while (gen == g_team.count.gen)
            pthread_cond_wait(&g_team.c, &g_team.m);
    pthread_mutex_unlock(&g_team.m);
}

static void core_finish(void)
{
    pthread_mutex_lock(&g_team.m);
    team_finish(&g_team.count);
    pthread_mutex_unlock(&g_team.m);
}

static struct {
    pthread_mutex_t m;
    pthread_cond_t job_cv, done_cv;
    int started;   /* worker threads exist */
    unsigned gen;  /* fork number */
    void (*entry)(void *);
    void *arg;
    int n;         /* team size of the current fork */
    int done;      /* workers (cores 1..n-1) that returned from entry */
} g_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL, NULL, 0, 0};

static unsigned g_worker_seen[DORY_CLUSTER_CORES];

static void *pool_worker(void *p)
{
    const uint32_t id = (uint32_t)(uintptr_t)p;
    pthread_mutex_lock(&g_pool.m);
    unsigned seen = g_worker_seen[id];
    for (;;) {
        while (g_pool.gen == seen)
            pthread_cond_wait(&g_pool.job_cv, &g_pool.m);
        seen = g_pool.gen;
        if ((int)id >= g_pool.n)
            continue; /* not in this team */
        void (*entry)(void *) = g_pool.entry;
        void *arg = g_pool.arg;
        pthread_mutex_unlock(&g_pool.m);
        tls_in_cluster = 1;
        tls_in_fork = 1;
        tls_core = id;
        entry(arg);
        core_finish();
        tls_in_fork = 0;
        tls_in_cluster = 0;
        tls_core = 0;
        pthread_mutex_lock(&g_pool.m);
        if (++g_pool.done == g_pool.n - 1)
            pthread_cond_signal(&g_pool.done_cv);
    }
    return NULL;
}

static void pool_start(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 1; i < DORY_CLUSTER_CORES; i++) {
        pthread_t th;
        g_worker_seen[i] = g_pool.gen;
        int err = pthread_create(&th, &attr, pool_worker, (void *)(uintptr_t)i);
        if (err)
            dory_fatal("pi_cl_team_fork: cannot start the thread of core %d (%s)", i, strerror(err));
    }
    pthread_attr_destroy(&attr);
    g_pool.started = 1;
}

void platform_fork(int n, void (*entry)(void *), void *arg)
{
    pthread_mutex_lock(&g_team.m);
    team_start(&g_team.count, n);
    pthread_mutex_unlock(&g_team.m);

    if (n > 1) {
        pthread_mutex_lock(&g_pool.m);
        if (!g_pool.started)
            pool_start();
        g_pool.entry = entry;
        g_pool.arg = arg;
        g_pool.n = n;
        g_pool.done = 0;
        g_pool.gen++;
        pthread_cond_broadcast(&g_pool.job_cv);
        pthread_mutex_unlock(&g_pool.m);
    }
    tls_in_fork = 1;
    tls_core = 0;
    entry(arg);
    core_finish();
    if (n > 1) {
        pthread_mutex_lock(&g_pool.m);
        while (g_pool.done < n - 1)
            pthread_cond_wait(&g_pool.done_cv, &g_pool.m);
        pthread_mutex_unlock(&g_pool.m);
    }
    tls_in_fork = 0;
    tls_core = 0;
}

/* ------------------------------------------------------------------------------ performance counters */

static struct {
    pthread_mutex_t m;
    unsigned events;
    int running;
    uint64_t acc_ns, start_ns;
} g_perf = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void pi_perf_conf(unsigned events)
{
    pthread_mutex_lock(&g_perf.m);
    g_perf.events = events;
    pthread_mutex_unlock(&g_perf.m);
}

void pi_perf_reset(void)
{
    pthread_mutex_lock(&g_perf.m);
    g_perf.acc_ns = 0;
    if (g_perf.running)
        g_perf.start_ns = now_ns();
    pthread_mutex_unlock(&g_perf.m);
}

void pi_perf_start(void)
{
    pthread_mutex_lock(&g_perf.m);
    if (!g_perf.running) {
        g_perf.running = 1;
        g_perf.start_ns = now_ns();
    }
    pthread_mutex_unlock(&g_perf.m);
}

void pi_perf_stop(void)
{
    pthread_mutex_lock(&g_perf.m);
    if (g_perf.running) {
        g_perf.acc_ns += now_ns() - g_perf.start_ns;
        g_perf.running = 0;
    }
    pthread_mutex_unlock(&g_perf.m);
}

unsigned int pi_perf_read(int id)
{
    if (id != PI_PERF_CYCLES && id != PI_PERF_ACTIVE_CYCLES && id != PI_PERF_INSTR)
        return 0;
    pthread_mutex_lock(&g_perf.m);
    uint64_t ns = g_perf.acc_ns + (g_perf.running ? now_ns() - g_perf.start_ns : 0);
    pthread_mutex_unlock(&g_perf.m);
    uint64_t ticks = ns / 1000000000ull * DORY_HOST_PERF_HZ + ns % 1000000000ull * DORY_HOST_PERF_HZ / 1000000000ull;
    return (unsigned int)ticks;
}
