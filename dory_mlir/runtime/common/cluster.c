/*
 * dory-mlir PMSIS runtime: the devices, the cluster task and the team of cores -- the rules
 * every platform enforces; how the cores run is the platform's (platform_run_task,
 * platform_fork, and its pi_cl_team_barrier built on the team count below).
 *
 *  - pi_cluster_send_task_to_cl runs the entry as the cluster controller (core 0) and returns
 *    when it ends; the task must not end with transfers never waited for.
 *  - pi_cl_team_fork runs entry on nb_cores cores (core ids 0..n-1, core 0 is the caller) and
 *    returns after all of them returned; nb_cores 0 reuses the previous fork's size.
 *  - pi_cl_team_barrier detects a mismatch: some cores waiting while the others already left
 *    the fork.
 */
#include "pmsis.h"
#include "runtime_internal.h"

#include <inttypes.h>
#include <string.h>

static int g_cluster_tag; /* &g_cluster_tag is the data of an opened cluster device */
static int g_cluster_open_count;
static int g_task_cores; /* cores of the running cluster task */
static int g_last_fork;  /* team size used by pi_cl_team_fork(0, ...) */

void require_cluster(const char *fn)
{
    if (!platform_in_cluster())
        dory_fatal("%s called outside a cluster task: it is a cluster-side call (from the entry of "
                   "pi_cluster_send_task_to_cl or of pi_cl_team_fork)",
                   fn);
}

void require_cluster_device(struct pi_device *device, const char *fn, int allow_null)
{
    if (!device && allow_null)
        return;
    if (!device || device->data != &g_cluster_tag)
        dory_fatal("%s: the device is not an opened cluster (pi_cluster_open)", fn);
}

void *require_device_config(struct pi_device *device, const char *fn, const char *conf_init)
{
    if (!device || !device->config)
        dory_fatal("%s: the device has no configuration (%s + pi_open_from_conf)", fn, conf_init);
    return device->config;
}

void pi_open_from_conf(struct pi_device *device, void *conf)
{
    if (!device)
        dory_fatal("pi_open_from_conf: device is NULL");
    device->config = conf;
}

void pi_cluster_conf_init(struct pi_cluster_conf *conf)
{
    if (!conf)
        dory_fatal("pi_cluster_conf_init: conf is NULL");
    memset(conf, 0, sizeof *conf);
    conf->device_type = PI_DEVICE_CLUSTER_TYPE;
    conf->id = 0;
    conf->flags = PI_CLUSTER_FLAGS_FORK_BASED;
}

int pi_cluster_open(struct pi_device *device)
{
    const char *fn = "pi_cluster_open";
    runtime_enter();
    struct pi_cluster_conf *conf = require_device_config(device, fn, "pi_cluster_conf_init");
    if (conf->device_type != PI_DEVICE_CLUSTER_TYPE)
        dory_fatal("%s: the device configuration is not a cluster configuration (pi_cluster_conf_init)", fn);
    if (conf->id != 0)
        dory_fatal("%s: cluster id %d does not exist (GAP8 has one cluster, id 0)", fn, conf->id);
    if (platform_in_cluster())
        dory_fatal("%s called from the cluster", fn);
    if (g_cluster_open_count++ == 0) {
        memory_l1_power(1);
        platform_cluster_power(1);
    }
    device->data = &g_cluster_tag;
    runtime_leave();
    return 0;
}

int pi_cluster_close(struct pi_device *device)
{
    const char *fn = "pi_cluster_close";
    runtime_enter();
    require_cluster_device(device, fn, 0);
    if (platform_in_cluster())
        dory_fatal("%s called from the cluster", fn);
    if (g_cluster_open_count <= 0)
        dory_fatal("%s: the cluster is not open", fn);
    if (--g_cluster_open_count == 0) {
        memory_l1_power(0); /* power-down: L1 contents and heap are lost */
        platform_cluster_power(0);
    }
    device->data = NULL;
    runtime_leave();
    return 0;
}

struct pi_cluster_task *pi_cluster_task(struct pi_cluster_task *task, void (*entry)(void *), void *arg)
{
    if (!task)
        dory_fatal("pi_cluster_task: task is NULL");
    memset(task, 0, sizeof *task);
    task->entry = entry;
    task->arg = arg;
    return task;
}

int pi_cluster_send_task_to_cl(struct pi_device *device, struct pi_cluster_task *task)
{
    const char *fn = "pi_cluster_send_task_to_cl";
    runtime_enter();
    require_cluster_device(device, fn, 0);
    if (!task || !task->entry)
        dory_fatal("%s: no task or no task entry", fn);
    if (platform_in_cluster())
        dory_fatal("%s called from the cluster (nested cluster task)", fn);
    if (task->nb_cores < 0 || task->nb_cores > DORY_CLUSTER_CORES)
        dory_fatal("%s: task nb_cores = %d, the cluster has %d cores", fn, task->nb_cores, DORY_CLUSTER_CORES);
    g_task_cores = task->nb_cores ? task->nb_cores : DORY_CLUSTER_CORES;
    g_last_fork = g_task_cores;
    runtime_leave();
    platform_run_task(task);
    runtime_enter();
    memory_check_transfers_done(fn);
    runtime_leave();
    return 0;
}

int pi_cl_cluster_nb_cores(void) { return DORY_CLUSTER_CORES; }

uint32_t pi_core_id(void) { return platform_core(); }

/* ------------------------------------------------------------------------------ team */

void pi_cl_team_fork(int nb_cores, void (*entry)(void *), void *arg)
{
    const char *fn = "pi_cl_team_fork";
    runtime_enter();
    require_cluster(fn);
    if (platform_in_fork())
        dory_fatal("%s called inside a fork (core %" PRIu32 "): nested forks are not supported", fn, platform_core());
    if (!entry)
        dory_fatal("%s: entry is NULL", fn);
    if (nb_cores < 0 || nb_cores > DORY_CLUSTER_CORES)
        dory_fatal("%s: nb_cores = %d, the cluster has %d cores", fn, nb_cores, DORY_CLUSTER_CORES);
    int cores = nb_cores ? nb_cores : g_last_fork;
    if (cores > g_task_cores)
        dory_fatal("%s: fork on %d cores but the cluster task was sent with nb_cores = %d", fn, cores, g_task_cores);
    g_last_fork = cores;
    runtime_leave();
    platform_fork(cores, entry, arg);
}

void team_start(team_count_t *team, int cores)
{
    team->cores = cores;
    team->arrived = 0;
    team->finished = 0;
}

static void team_mismatch(const team_count_t *team)
{
    dory_fatal("pi_cl_team_barrier mismatch: %d core(s) wait in pi_cl_team_barrier while %d core(s) already "
               "returned from the forked entry (every core of the team must execute the same barriers)",
               team->arrived, team->finished);
}

int team_arrive(team_count_t *team)
{
    if (!platform_in_fork())
        dory_fatal("pi_cl_team_barrier called outside pi_cl_team_fork (core %" PRIu32 ")", platform_core());
    if (++team->arrived == team->cores) {
        team->arrived = 0;
        team->gen++;
        return 1;
    }
    if (team->arrived + team->finished == team->cores)
        team_mismatch(team);
    return 0;
}

void team_finish(team_count_t *team)
{
    team->finished++;
    if (team->arrived > 0 && team->arrived + team->finished == team->cores)
        team_mismatch(team);
}
