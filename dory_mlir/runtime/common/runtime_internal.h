/*
 * Internals of the PMSIS runtimes (not for generated code): what the host runtime
 * (runtime/host) and the bare-metal rv32 runtime (runtime/rv32) share, and the few hooks
 * each platform implements for it.
 *
 * runtime/common holds the GAP8 contract, written once: the L1 / L2 / L3 memory model (arenas,
 * allocation, budgets), the checked transfers between the levels (cluster DMA, cluster RAM
 * requests) with L3 emulated, the devices and the cluster task's and team's rules. A platform
 * adds how its cores run (host: threads; rv32: cooperative contexts on one hart), where its
 * arenas are (host: mmap below 2 GiB; rv32: fixed addresses), its perf counters and its exit.
 *
 * The common sources include "pmsis.h" from the platform's folder (-Iruntime/host or
 * -Iruntime/rv32), so each build compiles the sources of runtime/common with its platform's.
 */
#ifndef DORY_RUNTIME_INTERNAL_H
#define DORY_RUNTIME_INTERNAL_H

#include "runtime_config.h"

#include <stdint.h>

struct pi_device;
struct pi_cluster_task;

/* Exit status of an allocation that exceeds its budget (abort() is for contract violations). */
#define DORY_EXIT_BUDGET 3

#define POISON_INFLIGHT 0xA5 /* destination of a transfer not waited yet */
#define FILL_ALLOC 0x5A      /* freshly allocated (uninitialised) memory */
#define FILL_FREE 0xDE       /* freed / never allocated arena memory */

/* ------------------------------------------------------------------------------ AddressSanitizer */

/* Under -fsanitize=address the free space of the arenas is poisoned, so a kernel that overruns
 * its buffer into free arena space is reported by ASan. */
#if defined(__SANITIZE_ADDRESS__)
#define DORY_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DORY_ASAN 1
#endif
#endif

#ifdef DORY_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* ------------------------------------------------------------------------------ diagnostics */

/* The platform's name, the prefix of every message of the runtime ("pmsis-host"). */
extern const char dory_runtime_name[];

/* Prints "<dory_runtime_name>: <message>" to stderr and stops the program with abort(). */
void dory_fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* ------------------------------------------------------------------------------ hooks of the platform */

/* Bracket every entry into the runtime's bookkeeping (arenas, transfers, devices); never held
 * while user code runs. Host: the runtime's lock (cores are threads). rv32: the instructions
 * in between are the hardware's work on GAP8 and hidden from the counts (nestable). */
void runtime_enter(void);
void runtime_leave(void);

typedef enum { MEMORY_L1 = 1, MEMORY_L2 = 2, MEMORY_L3 = 3 } memory_level_e;

/* `bytes` bytes of memory for the arena of `level`, asked for once and kept for the program's
 * life; (uint32_t)(uintptr_t) of an L1 or L2 address must be exact. */
uint8_t *platform_arena_memory(memory_level_e level, uint32_t bytes);

int platform_in_cluster(void); /* running cluster code (the task or a fork) */
int platform_in_fork(void);
uint32_t platform_core(void);  /* current core id (0 on the fabric controller) */

/* At the cluster's power-up (on = 1) and power-down, after L1 was emptied. */
void platform_cluster_power(int on);

/* Runs task->entry(task->arg) as the cluster controller (core 0) and returns when it ends. */
void platform_run_task(struct pi_cluster_task *task);

/* Runs entry(arg) on cores 0..cores-1 (the caller is core 0), returns when all returned. */
void platform_fork(int cores, void (*entry)(void *), void *arg);

/* ------------------------------------------------------------------------------ common, for the platforms */

/* Fails unless running cluster code. */
void require_cluster(const char *fn);
/* The configuration of a device being opened; fails without one (`conf_init` names its maker). */
void *require_device_config(struct pi_device *device, const char *fn, const char *conf_init);
/* Fails unless `device` is an opened cluster (or NULL when allow_null). */
void require_cluster_device(struct pi_device *device, const char *fn, int allow_null);

/* L1 exists while the cluster is powered: each power-up and power-down empties its heap. */
void memory_l1_power(int on);

/* Fails if a transfer of the ended cluster task was never waited for. */
void memory_check_transfers_done(const char *fn);

/* The count of a fork's barrier, the same rule for threads and cooperative cores: every core of
 * the team executes the same barriers. The platform serialises the calls and does the waiting. */
typedef struct {
    int cores;    /* team size */
    int arrived;  /* cores waiting in the current barrier */
    int finished; /* cores returned from the entry */
    unsigned gen; /* barriers completed */
} team_count_t;

void team_start(team_count_t *team, int cores);
/* A core reaches the barrier: 1 when it completes it (gen advances, the others may go on), 0
 * when it must wait until gen changes. */
int team_arrive(team_count_t *team);
/* A core returned from the forked entry. */
void team_finish(team_count_t *team);

#endif
