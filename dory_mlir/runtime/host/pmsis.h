/*
 * dory-mlir host implementation of the PMSIS subset used by generated code (DESIGN.md §5a).
 *
 * Generated C calls only the kernel library and the functions declared here.  Names, argument
 * types and return types are those of the PULP SDK's pmsis headers (pmsis/cluster/dma/cl_dma.h,
 * pmsis/cluster/cluster_team/cl_team.h, pmsis/cluster/cluster_sync/fc_to_cl_delegate.h,
 * cl_pmsis_types.h, pmsis_types.h, rtos/malloc, drivers/perf.h, chips/gap8/perf.h and pmsis_bsp
 * bsp/ram.h + bsp/ram/hyperram.h), so one generated source builds with the SDK and, linked with
 * the host runtime (pmsis_host.c and the common runtime, dory_mlir/runtime/common), with gcc on a
 * 64-bit Linux host:
 *
 *   gcc -std=c11 -Wall -Wextra -Werror -O2 -pthread -I dory_mlir/runtime/host \
 *       app.c ... dory_mlir/runtime/host/pmsis_host.c dory_mlir/runtime/common/[a-z]*.c
 *
 * The SDK declares most of these `static inline`; here they are ordinary functions (same
 * prototypes), and the SDK's empty parameter lists `()` are written `(void)`.
 *
 * Host behaviour (the contract a code generator must respect; details in runtime/common/memory.c
 * and pmsis_host.c):
 *  - L1 / L2 are arenas of exactly DORY_L1_SIZE / DORY_L2_SIZE bytes (defaults 64000 / 512000,
 *    -D to override when compiling the runtime) mapped below 2 GiB, so (uint32_t)(uintptr_t)p of
 *    an arena pointer is exact.  Allocations are 8-byte aligned, take round_up(size, 8) bytes of
 *    the budget, and are filled with 0x5A ("uninitialised").  An allocation that does not fit
 *    prints "pmsis-host: L1 allocation of N bytes exceeds the L1 budget (used U of S)" (L2, L3
 *    alike) and exits with status 3.  Freed memory is filled with 0xDE.
 *  - pi_cl_dma_cmd / pi_cl_dma_cmd_2d fill the destination with 0xA5 when issued; the copy
 *    happens in pi_cl_dma_cmd_wait, from the source as it is then.  `loc` must lie in one live L1
 *    allocation and `ext` in one live L2 allocation (globals, stack and malloc memory are not
 *    L2 for the DMA).  pi_cl_ram_read / pi_cl_ram_write behave the same towards L3.
 *  - L3 is a separate heap buffer addressed only by the offsets pi_ram_alloc hands out.
 *  - Any contract violation prints "pmsis-host: ..." to stderr and calls abort().
 */
#ifndef DORY_PMSIS_HOST_H
#define DORY_PMSIS_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Defined so that code can tell this runtime from the SDK (generated code should not need it). */
#define PMSIS_HOST_RUNTIME 1

/* ---------------------------------------------------------------- devices (pmsis_types.h) */

typedef enum {
    PI_DEVICE_UNKWN_TYPE,
    PI_DEVICE_CLUSTER_TYPE,
    PI_DEVICE_HYPERBUS_TYPE,
    PI_DEVICE_SPI_TYPE,
    PI_DEVICE_CPI_TYPE,
    PI_DEVICE_I2C_TYPE,
    PI_DEVICE_GPIO_TYPE,
    PI_DEVICE_PWM_TYPE
} pi_device_e;

struct pi_device_api;
struct pmsis_event_kernel_wrap;
typedef struct pi_task pi_task_t; /* opaque here: no asynchronous task API on the host */

typedef struct pi_device {
    struct pi_device_api *api; /* function pointers (unused on the host) */
    void *config;              /* set by pi_open_from_conf */
    void *data;                /* set when the device is opened */
} pi_device_t;

void pi_open_from_conf(struct pi_device *device, void *conf);

/* ---------------------------------------------------------------- cluster (fc_to_cl_delegate.h) */

typedef enum {
    PI_CLUSTER_FLAGS_FORK_BASED = (0 << 0),
    PI_CLUSTER_FLAGS_TASK_BASED = (1 << 0)
} pi_cluster_flags_e;

struct pi_cluster_conf {
    pi_device_e device_type; /* PI_DEVICE_CLUSTER_TYPE after pi_cluster_conf_init */
    int id;                  /* cluster id: GAP8 has only cluster 0 */
    void *heap_start;        /* reserved */
    uint32_t heap_size;      /* reserved */
    struct pmsis_event_kernel_wrap *event_kernel; /* reserved */
    pi_cluster_flags_e flags;
};

struct pi_cluster_task {
    void (*entry)(void *);     /* run by the cluster controller (core 0) */
    void *arg;
    void *stacks;              /* ignored on the host */
    uint32_t stack_size;       /* ignored on the host */
    uint32_t slave_stack_size; /* ignored on the host */
    int nb_cores;              /* cores available to the task, 0 = all */
    pi_task_t *completion_callback;
    int stack_allocated;
    struct pi_cluster_task *next;
};

void pi_cluster_conf_init(struct pi_cluster_conf *conf);
int pi_cluster_open(struct pi_device *device);
int pi_cluster_close(struct pi_device *device);
struct pi_cluster_task *pi_cluster_task(struct pi_cluster_task *task, void (*entry)(void *), void *arg);
/* Blocking: runs task->entry(task->arg) as the cluster controller and returns 0 when it ends. */
int pi_cluster_send_task_to_cl(struct pi_device *device, struct pi_cluster_task *task);

/* ---------------------------------------------------------------- team (cl_team.h) */

int pi_cl_cluster_nb_cores(void);
/* nb_cores 0 reuses the size of the previous fork of the task (initially the task's nb_cores,
 * i.e. all 8 cores).  Returns when every core has returned from entry. */
void pi_cl_team_fork(int nb_cores, void (*entry)(void *), void *arg);
void pi_cl_team_barrier(void);
/* SDK: `static inline uint32_t pi_core_id()`.  0 on the fabric controller and the cluster
 * controller, 0..nb_cores-1 inside a fork. */
uint32_t pi_core_id(void);

/* ---------------------------------------------------------------- memory (rtos/malloc) */

void *pi_cl_l1_malloc(struct pi_device *device, uint32_t size);
void pi_cl_l1_free(struct pi_device *device, void *chunk, int size);
void *pi_l2_malloc(int size);
void pi_l2_free(void *chunk, int size);

/* ---------------------------------------------------------------- cluster DMA (cl_dma.h) */

typedef enum {
    PI_CL_DMA_DIR_LOC2EXT = 0, /* cluster memory (L1) -> external memory (L2) */
    PI_CL_DMA_DIR_EXT2LOC = 1  /* external memory (L2) -> cluster memory (L1) */
} pi_cl_dma_dir_e;

/* Contents are private to the runtime; keep the structure alive until the wait returns. */
typedef struct pi_cl_dma_cmd_s {
    uint32_t id;
    uint32_t ext;
    uint32_t loc;
    uint32_t size;
    uint32_t stride;
    uint32_t length;
    pi_cl_dma_dir_e dir;
    uint32_t state;
} pi_cl_dma_cmd_t;

/* 1-D copy of `size` bytes between ext (L2) and loc (L1). */
void pi_cl_dma_cmd(uint32_t ext, uint32_t loc, uint32_t size, pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd);
/* 2-D copy: `size` bytes in total, as size/length lines of `length` bytes; in the external (L2)
 * memory line i starts at ext + i*stride, in the cluster (L1) memory the lines are contiguous. */
void pi_cl_dma_cmd_2d(uint32_t ext, uint32_t loc, uint32_t size, uint32_t stride, uint32_t length,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd);
void pi_cl_dma_cmd_wait(pi_cl_dma_cmd_t *cmd);

/* ---------------------------------------------------------------- RAM (bsp/ram.h, bsp/ram/hyperram.h) */

typedef struct __pi_ram_api_t pi_ram_api_t;

struct pi_ram_conf {
    pi_ram_api_t *api; /* set by pi_hyperram_conf_init */
};

struct pi_hyperram_conf {
    struct pi_ram_conf ram;
    int hyper_itf;
    int hyper_cs;
    char skip_pads_config;
    int xip_en;
    int ram_start;
    int ram_size;       /* bytes of L3: DORY_L3_SIZE after pi_hyperram_conf_init (may be lowered) */
    uint32_t baudrate;
    int reserve_addr_0; /* 1: address 0 is never handed out (the first 8 bytes are reserved) */
};

/* Contents are private to the runtime; keep the structure alive until the wait returns. */
typedef struct pi_cl_ram_req_s {
    struct pi_device *device;
    void *addr;
    uint32_t pi_ram_addr;
    uint32_t size;
    uint32_t id;
    uint32_t state;
    unsigned char ext2loc;
} pi_cl_ram_req_t;

void pi_hyperram_conf_init(struct pi_hyperram_conf *conf);
int32_t pi_ram_open(struct pi_device *device);
void pi_ram_close(struct pi_device *device);
int pi_ram_alloc(struct pi_device *device, uint32_t *addr, uint32_t size);
int pi_ram_free(struct pi_device *device, uint32_t addr, uint32_t size);
/* Synchronous, fabric-controller side. */
void pi_ram_read(struct pi_device *device, uint32_t pi_ram_addr, void *data, uint32_t size);
void pi_ram_write(struct pi_device *device, uint32_t pi_ram_addr, void *data, uint32_t size);
/* Asynchronous, cluster side; `addr` must lie in one live L2 allocation. */
void pi_cl_ram_read(struct pi_device *device, uint32_t pi_ram_addr, void *addr, uint32_t size,
                    pi_cl_ram_req_t *req);
void pi_cl_ram_read_wait(pi_cl_ram_req_t *req);
void pi_cl_ram_write(struct pi_device *device, uint32_t pi_ram_addr, void *addr, uint32_t size,
                     pi_cl_ram_req_t *req);
void pi_cl_ram_write_wait(pi_cl_ram_req_t *req);

/* ---------------------------------------------------------------- performance counters (perf.h) */

/* GAP8 event identifiers (pmsis/chips/gap8/perf.h).  On the host, PI_PERF_CYCLES,
 * PI_PERF_ACTIVE_CYCLES and PI_PERF_INSTR all read elapsed wall-clock time of a monotonic clock
 * in units of 1/DORY_HOST_PERF_HZ s (default 100 MHz); every other event reads 0.  These are
 * host-only approximations, not GAP8 cycle counts. */
typedef enum {
    PI_PERF_CYCLES = 16,
    PI_PERF_ACTIVE_CYCLES = 0,
    PI_PERF_INSTR = 1,
    PI_PERF_LD_STALL = 2,
    PI_PERF_JR_STALL = 3,
    PI_PERF_IMISS = 4,
    PI_PERF_LD = 5,
    PI_PERF_ST = 6,
    PI_PERF_JUMP = 7,
    PI_PERF_BRANCH = 8,
    PI_PERF_BTAKEN = 9,
    PI_PERF_RVC = 10,
    PI_PERF_LD_EXT = 11,
    PI_PERF_ST_EXT = 12,
    PI_PERF_LD_EXT_CYC = 13,
    PI_PERF_ST_EXT_CYC = 14,
    PI_PERF_TCDM_CONT = 15
} pi_perf_event_e;

/* events is a mask: 1 << PI_PERF_CYCLES | 1 << PI_PERF_INSTR ... */
void pi_perf_conf(unsigned events);
void pi_perf_reset(void);
void pi_perf_start(void);
void pi_perf_stop(void);
unsigned int pi_perf_read(int id);

#ifdef __cplusplus
}
#endif

#endif /* DORY_PMSIS_HOST_H */
