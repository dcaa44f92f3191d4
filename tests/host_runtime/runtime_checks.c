/*
 * Scenarios exercising the host PMSIS runtime (dory_mlir/runtime/host).  Run as
 *     runtime_checks <scenario>
 * A passing positive scenario prints "PASS <scenario>" and returns 0; a failed check prints
 * "FAIL ..." and returns 1.  Negative scenarios do something illegal and expect the runtime to
 * stop the process (the pytest driver checks exit status and message).
 */
#include "pmsis.h"
/* The budgets the runtime is built with (found through -I of the platform's runtime folder). */
#include "../common/runtime_config.h"

#include <stdlib.h>
#include <string.h>

#define POISON 0xA5
#define A(p) ((uint32_t)(uintptr_t)(p))

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                       \
            fflush(stdout);                                                              \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static struct pi_device cluster_dev;
static struct pi_cluster_conf cluster_conf;
static struct pi_device ram_dev;
static struct pi_hyperram_conf ram_conf;

static void open_cluster(void)
{
    pi_cluster_conf_init(&cluster_conf);
    cluster_conf.id = 0;
    pi_open_from_conf(&cluster_dev, &cluster_conf);
    CHECK(pi_cluster_open(&cluster_dev) == 0);
}

static void open_ram(void)
{
    pi_hyperram_conf_init(&ram_conf);
    pi_open_from_conf(&ram_dev, &ram_conf);
    CHECK(pi_ram_open(&ram_dev) == 0);
}

static void run_cluster(void (*entry)(void *), void *arg)
{
    struct pi_cluster_task task;
    pi_cluster_task(&task, entry, arg);
    CHECK(pi_cluster_send_task_to_cl(&cluster_dev, &task) == 0);
}

static int all_equal(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + 7 * i + (i >> 3));
}

/* ------------------------------------------------------------------ addresses */

static void sc_address32(void)
{
    open_cluster();
    uint8_t *l1 = pi_cl_l1_malloc(&cluster_dev, 100);
    uint8_t *l1b = pi_cl_l1_malloc(NULL, 3);
    uint8_t *l2 = pi_l2_malloc(100);
    CHECK(l1 && l1b && l2);
    CHECK((uintptr_t)l1 < 0x80000000u && (uintptr_t)l2 < 0x80000000u);
    CHECK((uintptr_t)A(l1) == (uintptr_t)l1);
    CHECK((uintptr_t)A(l2) == (uintptr_t)l2);
    CHECK(((uintptr_t)l1 % 8) == 0 && ((uintptr_t)l1b % 8) == 0 && ((uintptr_t)l2 % 8) == 0);
    CHECK(all_equal(l1, 100, 0x5A)); /* fresh allocations are "uninitialised" */
    pi_cl_l1_free(&cluster_dev, l1, 100);
    pi_cl_l1_free(NULL, l1b, 3);
    pi_l2_free(l2, 100);
    CHECK(pi_cl_cluster_nb_cores() == 8);
    CHECK(pi_core_id() == 0);
    CHECK(pi_cluster_close(&cluster_dev) == 0);
}

/* ------------------------------------------------------------------ budgets */

static void sc_l1_full(void)
{
    /* the whole budget is usable, freed memory is reusable */
    open_cluster();
    for (int round = 0; round < 3; round++) {
        void *p = pi_cl_l1_malloc(&cluster_dev, DORY_L1_SIZE);
        CHECK(p != NULL);
        pi_cl_l1_free(&cluster_dev, p, DORY_L1_SIZE);
    }
    void *a = pi_cl_l1_malloc(&cluster_dev, DORY_L1_SIZE / 2);
    void *b = pi_cl_l1_malloc(&cluster_dev, DORY_L1_SIZE / 2);
    CHECK(a && b);
    pi_cl_l1_free(&cluster_dev, a, DORY_L1_SIZE / 2);
    pi_cl_l1_free(&cluster_dev, b, DORY_L1_SIZE / 2);
    pi_cluster_close(&cluster_dev);
}

static void sc_l1_over(void)
{
    open_cluster();
    void *p = pi_cl_l1_malloc(&cluster_dev, DORY_L1_SIZE - 1000);
    CHECK(p != NULL);
    printf("allocated %d\n", DORY_L1_SIZE - 1000);
    fflush(stdout);
    (void)pi_cl_l1_malloc(&cluster_dev, 1001 + 8); /* does not fit */
    printf("FAIL: the allocation past the L1 budget returned\n");
    exit(1);
}

static void sc_l1_over_single(void)
{
    open_cluster();
    (void)pi_cl_l1_malloc(&cluster_dev, DORY_L1_SIZE + 1);
    printf("FAIL: the allocation past the L1 budget returned\n");
    exit(1);
}

static void sc_l2_over(void)
{
    void *p = pi_l2_malloc(DORY_L2_SIZE);
    CHECK(p != NULL);
    (void)pi_l2_malloc(1);
    printf("FAIL: the allocation past the L2 budget returned\n");
    exit(1);
}

static void sc_l1_closed(void)
{
    (void)pi_cl_l1_malloc(NULL, 16); /* no cluster open */
    printf("FAIL: L1 allocated without an open cluster\n");
    exit(1);
}

static void sc_free_size_mismatch(void)
{
    open_cluster();
    void *p = pi_cl_l1_malloc(&cluster_dev, 64);
    pi_cl_l1_free(&cluster_dev, p, 32);
    printf("FAIL: free with a wrong size returned\n");
    exit(1);
}

static void sc_double_free(void)
{
    void *p = pi_l2_malloc(64);
    pi_l2_free(p, 64);
    pi_l2_free(p, 64);
    printf("FAIL: double free returned\n");
    exit(1);
}

/* ------------------------------------------------------------------ DMA */

typedef struct {
    uint8_t *l2_src, *l2_dst, *l1;
    uint32_t n;
} dma_args_t;

static void dma1d_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    /* L2 -> L1 */
    pi_cl_dma_cmd(A(a->l2_src), A(a->l1), a->n, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    CHECK(all_equal(a->l1, a->n, POISON)); /* destination holds poison until the wait */
    pi_cl_dma_cmd_wait(&cmd);
    CHECK(memcmp(a->l1, a->l2_src, a->n) == 0);
    /* L1 -> L2 */
    for (uint32_t i = 0; i < a->n; i++)
        a->l1[i] ^= 0x3C;
    pi_cl_dma_cmd(A(a->l2_dst), A(a->l1), a->n, PI_CL_DMA_DIR_LOC2EXT, &cmd);
    CHECK(all_equal(a->l2_dst, a->n, POISON));
    pi_cl_dma_cmd_wait(&cmd);
    CHECK(memcmp(a->l2_dst, a->l1, a->n) == 0);
    for (uint32_t i = 0; i < a->n; i++)
        CHECK(a->l2_dst[i] == (uint8_t)(a->l2_src[i] ^ 0x3C));
    /* a command structure can be reused once waited for */
    pi_cl_dma_cmd(A(a->l2_src + 1), A(a->l1 + 2), a->n - 3, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    pi_cl_dma_cmd_wait(&cmd);
    CHECK(memcmp(a->l1 + 2, a->l2_src + 1, a->n - 3) == 0);
}

static void sc_dma1d(void)
{
    open_cluster();
    dma_args_t a;
    a.n = 1000;
    a.l2_src = pi_l2_malloc((int)a.n);
    a.l2_dst = pi_l2_malloc((int)a.n);
    a.l1 = pi_cl_l1_malloc(&cluster_dev, a.n);
    fill(a.l2_src, a.n, 3);
    memset(a.l2_dst, 0, a.n);
    run_cluster(dma1d_entry, &a);
    pi_cluster_close(&cluster_dev);
}

enum { ROWS = 10, COLS = 32, R0 = 2, NR = 6, C0 = 4, NC = 12 };

static void dma2d_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    /* L2 [ROWS][COLS] sub-matrix rows R0..R0+NR, cols C0..C0+NC -> L1 [NR][NC] contiguous */
    pi_cl_dma_cmd_2d(A(a->l2_src + R0 * COLS + C0), A(a->l1), NR * NC, COLS, NC, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    CHECK(all_equal(a->l1, NR * NC, POISON));
    pi_cl_dma_cmd_wait(&cmd);
    for (int r = 0; r < NR; r++)
        for (int c = 0; c < NC; c++)
            CHECK(a->l1[r * NC + c] == a->l2_src[(R0 + r) * COLS + C0 + c]);
    /* L1 [NR][NC] -> L2 dst [ROWS][COLS] at (R0, C0): only the rectangle is written */
    for (int i = 0; i < NR * NC; i++)
        a->l1[i] = (uint8_t)(200 + i);
    pi_cl_dma_cmd_2d(A(a->l2_dst + R0 * COLS + C0), A(a->l1), NR * NC, COLS, NC, PI_CL_DMA_DIR_LOC2EXT, &cmd);
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < COLS; c++) {
            int inside = r >= R0 && r < R0 + NR && c >= C0 && c < C0 + NC;
            CHECK(a->l2_dst[r * COLS + c] == (inside ? POISON : 0x11));
        }
    pi_cl_dma_cmd_wait(&cmd);
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < COLS; c++) {
            int inside = r >= R0 && r < R0 + NR && c >= C0 && c < C0 + NC;
            uint8_t want = inside ? (uint8_t)(200 + (r - R0) * NC + (c - C0)) : 0x11;
            CHECK(a->l2_dst[r * COLS + c] == want);
        }
}

static void sc_dma2d(void)
{
    open_cluster();
    dma_args_t a;
    a.n = ROWS * COLS;
    a.l2_src = pi_l2_malloc((int)a.n);
    a.l2_dst = pi_l2_malloc((int)a.n);
    a.l1 = pi_cl_l1_malloc(&cluster_dev, NR * NC);
    fill(a.l2_src, a.n, 9);
    memset(a.l2_dst, 0x11, a.n);
    run_cluster(dma2d_entry, &a);
    pi_cluster_close(&cluster_dev);
}

/* the copy reads the source at wait time: a source overwritten before the wait is "caught"
 * because the new contents arrive */
static void source_at_wait_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    pi_cl_dma_cmd(A(a->l2_src), A(a->l1), a->n, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    memset(a->l2_src, 0x77, a->n); /* overwrite the source before the wait */
    pi_cl_dma_cmd_wait(&cmd);
    CHECK(all_equal(a->l1, a->n, 0x77));
    /* L1 source of an L1 -> L2 transfer */
    memset(a->l1, 0x10, a->n);
    pi_cl_dma_cmd(A(a->l2_dst), A(a->l1), a->n, PI_CL_DMA_DIR_LOC2EXT, &cmd);
    memset(a->l1, 0x20, a->n); /* e.g. the next tile computed into a buffer still being written out */
    pi_cl_dma_cmd_wait(&cmd);
    CHECK(all_equal(a->l2_dst, a->n, 0x20));
}

static void sc_source_at_wait(void)
{
    open_cluster();
    dma_args_t a;
    a.n = 256;
    a.l2_src = pi_l2_malloc((int)a.n);
    a.l2_dst = pi_l2_malloc((int)a.n);
    a.l1 = pi_cl_l1_malloc(&cluster_dev, a.n);
    fill(a.l2_src, a.n, 1);
    run_cluster(source_at_wait_entry, &a);
    pi_cluster_close(&cluster_dev);
}

/* a "kernel" that reads its input before waiting for the DMA computes garbage */
static uint32_t kernel_sum(const uint8_t *p, uint32_t n)
{
    uint32_t s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

static void premature_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    pi_cl_dma_cmd(A(a->l2_src), A(a->l1), a->n, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    uint32_t early = kernel_sum(a->l1, a->n); /* bug: before the wait */
    pi_cl_dma_cmd_wait(&cmd);
    uint32_t late = kernel_sum(a->l1, a->n);
    printf("premature sum %u, correct sum %u\n", (unsigned)early, (unsigned)late);
    CHECK(early == POISON * a->n);
    CHECK(late == kernel_sum(a->l2_src, a->n));
    CHECK(early != late);
}

static void sc_premature_read(void)
{
    open_cluster();
    dma_args_t a;
    a.n = 300;
    a.l2_src = pi_l2_malloc((int)a.n);
    a.l1 = pi_cl_l1_malloc(&cluster_dev, a.n);
    a.l2_dst = NULL;
    memset(a.l2_src, 1, a.n);
    run_cluster(premature_entry, &a);
    pi_cluster_close(&cluster_dev);
}

/* double buffering with several commands in flight, issued and waited by different cores */
static pi_cl_dma_cmd_t g_cmds[8];
static void multi_fork(void *arg)
{
    dma_args_t *a = arg;
    uint32_t id = pi_core_id();
    uint32_t chunk = a->n / 8;
    pi_cl_dma_cmd(A(a->l2_src + id * chunk), A(a->l1 + id * chunk), chunk, PI_CL_DMA_DIR_EXT2LOC, &g_cmds[id]);
    pi_cl_team_barrier();
    pi_cl_dma_cmd_wait(&g_cmds[(id + 1) % 8]); /* wait for the neighbour's transfer */
    pi_cl_team_barrier();
    CHECK(memcmp(a->l1, a->l2_src, a->n) == 0);
}

static void multi_entry(void *arg) { pi_cl_team_fork(8, multi_fork, arg); }

static void sc_dma_multicore(void)
{
    open_cluster();
    dma_args_t a;
    a.n = 8 * 64;
    a.l2_src = pi_l2_malloc((int)a.n);
    a.l1 = pi_cl_l1_malloc(&cluster_dev, a.n);
    a.l2_dst = NULL;
    fill(a.l2_src, a.n, 5);
    run_cluster(multi_entry, &a);
    pi_cluster_close(&cluster_dev);
}

/* negative DMA scenarios: each entry does one illegal thing */
static uint8_t g_global_buf[256];

static void bad_outside_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    /* a global is not L2 for the host runtime (and its address may not fit 32 bits) */
    pi_cl_dma_cmd(A(g_global_buf), A(a->l1), 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    pi_cl_dma_cmd_wait(&cmd);
}

static void bad_loc_in_l2_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    pi_cl_dma_cmd(A(a->l2_src), A(a->l2_dst), 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    pi_cl_dma_cmd_wait(&cmd);
}

static void bad_swapped_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    pi_cl_dma_cmd(A(a->l1), A(a->l2_src), 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    pi_cl_dma_cmd_wait(&cmd);
}

static void bad_overrun_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    pi_cl_dma_cmd(A(a->l2_src), A(a->l1 + 8), a->n, PI_CL_DMA_DIR_EXT2LOC, &cmd); /* 8 bytes too far */
    pi_cl_dma_cmd_wait(&cmd);
}

static void bad_overrun_2d_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    /* 4 lines of 64 bytes with stride 150: the last line ends at 3 * 150 + 64 = 514, 2 bytes past
     * the 512-byte L2 block, although the total size (256) would fit */
    uint32_t stride = 150;
    pi_cl_dma_cmd_2d(A(a->l2_src), A(a->l1), 4 * 64, stride, 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    pi_cl_dma_cmd_wait(&cmd);
}

static void bad_wait_twice_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    pi_cl_dma_cmd(A(a->l2_src), A(a->l1), 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    pi_cl_dma_cmd_wait(&cmd);
    pi_cl_dma_cmd_wait(&cmd);
}

static void bad_wait_never_entry(void *arg)
{
    (void)arg;
    pi_cl_dma_cmd_t cmd;
    memset(&cmd, 0, sizeof cmd);
    pi_cl_dma_cmd_wait(&cmd);
}

static void bad_reuse_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    pi_cl_dma_cmd(A(a->l2_src), A(a->l1), 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    pi_cl_dma_cmd(A(a->l2_src + 64), A(a->l1 + 64), 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    pi_cl_dma_cmd_wait(&cmd);
}

static void bad_not_waited_entry(void *arg)
{
    dma_args_t *a = arg;
    static pi_cl_dma_cmd_t cmd;
    pi_cl_dma_cmd(A(a->l2_src), A(a->l1), 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
}

static void bad_freed_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    pi_cl_dma_cmd(A(a->l2_src), A(a->l1), 64, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    pi_cl_l1_free(&cluster_dev, a->l1, (int)a->n);
    pi_cl_dma_cmd_wait(&cmd);
}

static void bad_2d_size_entry(void *arg)
{
    dma_args_t *a = arg;
    pi_cl_dma_cmd_t cmd;
    pi_cl_dma_cmd_2d(A(a->l2_src), A(a->l1), 100, 64, 30, PI_CL_DMA_DIR_EXT2LOC, &cmd);
    pi_cl_dma_cmd_wait(&cmd);
}

static void run_bad_dma(void (*entry)(void *))
{
    open_cluster();
    dma_args_t a;
    a.n = 512;
    a.l2_src = pi_l2_malloc((int)a.n);
    a.l2_dst = pi_l2_malloc((int)a.n);
    a.l1 = pi_cl_l1_malloc(&cluster_dev, a.n);
    run_cluster(entry, &a);
    printf("FAIL: the illegal transfer was not stopped\n");
    exit(1);
}

static void sc_dma_from_fc(void)
{
    open_cluster();
    uint8_t *l2 = pi_l2_malloc(64);
    uint8_t *l1 = pi_cl_l1_malloc(&cluster_dev, 64);
    pi_cl_dma_cmd_t cmd;
    pi_cl_dma_cmd(A(l2), A(l1), 64, PI_CL_DMA_DIR_EXT2LOC, &cmd); /* not on the cluster */
    printf("FAIL: DMA from the fabric controller was not stopped\n");
    exit(1);
}

/* ------------------------------------------------------------------ team */

static volatile uint32_t g_ids[8];
static volatile uint32_t g_round[8];
static volatile int g_team_ok;
static volatile int g_team_size;

static void team_fork(void *arg)
{
    (void)arg;
    uint32_t id = pi_core_id();
    CHECK(id < 8);
    g_ids[id] = id + 100;
    pi_cl_team_barrier();
    if (id == 0) {
        for (int i = 0; i < 8; i++)
            CHECK(g_ids[i] == (uint32_t)i + 100);
    }
    /* several rounds: each core reads its neighbour's value of the round */
    for (uint32_t r = 0; r < 50; r++) {
        g_round[id] = r * 10 + id;
        pi_cl_team_barrier();
        CHECK(g_round[(id + 1) % 8] == r * 10 + (id + 1) % 8);
        pi_cl_team_barrier();
    }
    if (id == 0)
        g_team_ok = 1;
}

static void count_fork(void *arg)
{
    (void)arg;
    uint32_t id = pi_core_id();
    __atomic_fetch_add(&g_team_size, 1, __ATOMIC_SEQ_CST);
    g_ids[id] = 1000 + id;
    pi_cl_team_barrier();
}

static void team_entry(void *arg)
{
    (void)arg;
    CHECK(pi_core_id() == 0);
    pi_cl_team_fork(8, team_fork, NULL);
    CHECK(g_team_ok == 1);
    CHECK(pi_core_id() == 0);
    /* nb_cores 0: the previous fork size (initially all 8) */
    g_team_size = 0;
    pi_cl_team_fork(0, count_fork, NULL);
    CHECK(g_team_size == 8);
    g_team_size = 0;
    pi_cl_team_fork(3, count_fork, NULL);
    CHECK(g_team_size == 3);
    g_team_size = 0;
    pi_cl_team_fork(0, count_fork, NULL);
    CHECK(g_team_size == 3);
    g_team_size = 0;
    pi_cl_team_fork(1, count_fork, NULL);
    CHECK(g_team_size == 1);
}

static void sc_team(void)
{
    open_cluster();
    CHECK(pi_core_id() == 0);
    run_cluster(team_entry, NULL);
    CHECK(pi_core_id() == 0);
    pi_cluster_close(&cluster_dev);
}

static void nested_inner(void *arg) { (void)arg; }
static void nested_fork(void *arg)
{
    (void)arg;
    if (pi_core_id() == 1)
        pi_cl_team_fork(2, nested_inner, NULL);
}
static void nested_entry(void *arg)
{
    (void)arg;
    pi_cl_team_fork(4, nested_fork, NULL);
}

static void mismatch_fork(void *arg)
{
    (void)arg;
    if (pi_core_id() == 0)
        pi_cl_team_barrier(); /* the other cores never reach a barrier */
}
static void mismatch_entry(void *arg)
{
    (void)arg;
    pi_cl_team_fork(8, mismatch_fork, NULL);
}

static void barrier_outside_entry(void *arg)
{
    (void)arg;
    pi_cl_team_barrier();
}

static void sc_fork_on_fc(void)
{
    open_cluster();
    pi_cl_team_fork(8, nested_inner, NULL);
    printf("FAIL: fork from the fabric controller was not stopped\n");
    exit(1);
}

static void run_bad_team(void (*entry)(void *))
{
    open_cluster();
    run_cluster(entry, NULL);
    printf("FAIL: the illegal team operation was not stopped\n");
    exit(1);
}

/* ------------------------------------------------------------------ L3 */

typedef struct {
    uint32_t l3a, l3b;
    uint8_t *l2, *l2b;
    uint32_t n;
} l3_args_t;

static void l3_entry(void *arg)
{
    l3_args_t *a = arg;
    pi_cl_ram_req_t req;
    /* L3 -> L2 */
    pi_cl_ram_read(&ram_dev, a->l3a, a->l2, a->n, &req);
    CHECK(all_equal(a->l2, a->n, POISON));
    pi_cl_ram_read_wait(&req);
    for (uint32_t i = 0; i < a->n; i++)
        CHECK(a->l2[i] == (uint8_t)(i * 3 + 1));
    /* L2 -> L3 */
    for (uint32_t i = 0; i < a->n; i++)
        a->l2b[i] = (uint8_t)(255 - i);
    pi_cl_ram_write(&ram_dev, a->l3b, a->l2b, a->n, &req);
    memset(a->l2b, 0x44, a->n / 2); /* source changed before the wait: what arrives is the new data */
    pi_cl_ram_write_wait(&req);
}

static void sc_l3(void)
{
    open_ram();
    open_cluster();
    l3_args_t a;
    a.n = 4096;
    CHECK(pi_ram_alloc(&ram_dev, &a.l3a, a.n) == 0);
    CHECK(pi_ram_alloc(&ram_dev, &a.l3b, a.n) == 0);
    CHECK(a.l3a != 0 && a.l3b != 0 && a.l3a != a.l3b);
    a.l2 = pi_l2_malloc((int)a.n);
    a.l2b = pi_l2_malloc((int)a.n);
    uint8_t *host = malloc(a.n);
    for (uint32_t i = 0; i < a.n; i++)
        host[i] = (uint8_t)(i * 3 + 1);
    pi_ram_write(&ram_dev, a.l3a, host, a.n); /* from ordinary host memory (weights in a global) */
    memset(host, 0, a.n);
    pi_ram_read(&ram_dev, a.l3a, host, a.n);
    for (uint32_t i = 0; i < a.n; i++)
        CHECK(host[i] == (uint8_t)(i * 3 + 1));
    run_cluster(l3_entry, &a);
    pi_ram_read(&ram_dev, a.l3b, a.l2, a.n); /* into an L2 buffer */
    for (uint32_t i = 0; i < a.n; i++)
        CHECK(a.l2[i] == (i < a.n / 2 ? 0x44 : (uint8_t)(255 - i)));
    CHECK(pi_ram_free(&ram_dev, a.l3a, a.n) == 0);
    CHECK(pi_ram_free(&ram_dev, a.l3b, a.n) == 0);
    uint32_t big;
    CHECK(pi_ram_alloc(&ram_dev, &big, 8388608 - 8) == 0); /* the whole L3 but the reserved address 0 */
    CHECK(pi_ram_free(&ram_dev, big, 8388608 - 8) == 0);
    free(host);
    pi_cluster_close(&cluster_dev);
    pi_ram_close(&ram_dev);
}

static void sc_l3_oob(void)
{
    open_ram();
    uint32_t a;
    uint8_t buf[64];
    CHECK(pi_ram_alloc(&ram_dev, &a, 32) == 0);
    pi_ram_read(&ram_dev, a + 16, buf, 32); /* 16 bytes past the block */
    printf("FAIL: out-of-range L3 read was not stopped\n");
    exit(1);
}

static void sc_l3_beyond(void)
{
    open_ram();
    uint8_t buf[64];
    pi_ram_write(&ram_dev, 8388608 - 16, buf, 64); /* past the end of L3 */
    printf("FAIL: write past the end of L3 was not stopped\n");
    exit(1);
}

static void sc_l3_unallocated(void)
{
    open_ram();
    uint8_t buf[16];
    pi_ram_read(&ram_dev, 0, buf, 16); /* address 0: never allocated */
    printf("FAIL: read of unallocated L3 was not stopped\n");
    exit(1);
}

static void l3_oob_cl_entry(void *arg)
{
    l3_args_t *a = arg;
    pi_cl_ram_req_t req;
    pi_cl_ram_read(&ram_dev, a->l3a, a->l2, a->n + 1, &req); /* one byte past both blocks */
    pi_cl_ram_read_wait(&req);
}

static void sc_l3_oob_cluster(void)
{
    open_ram();
    open_cluster();
    l3_args_t a;
    a.n = 128;
    CHECK(pi_ram_alloc(&ram_dev, &a.l3a, a.n) == 0);
    a.l2 = pi_l2_malloc((int)a.n + 8);
    run_cluster(l3_oob_cl_entry, &a);
    printf("FAIL: out-of-range cluster L3 read was not stopped\n");
    exit(1);
}

static void sc_l3_over(void)
{
    open_ram();
    uint32_t a;
    CHECK(pi_ram_alloc(&ram_dev, &a, 8000000) == 0);
    (void)pi_ram_alloc(&ram_dev, &a, 1000000);
    printf("FAIL: the allocation past the L3 budget returned\n");
    exit(1);
}

/* ------------------------------------------------------------------ perf */

static volatile uint32_t g_sink;

static void busy(int n)
{
    for (int i = 0; i < n; i++)
        g_sink += (uint32_t)i * 2654435761u;
}

static void sc_perf(void)
{
    pi_perf_conf(1u << PI_PERF_CYCLES | 1u << PI_PERF_INSTR);
    pi_perf_reset();
    pi_perf_start();
    busy(2000000);
    unsigned c1 = pi_perf_read(PI_PERF_CYCLES);
    unsigned i1 = pi_perf_read(PI_PERF_INSTR);
    busy(2000000);
    unsigned c2 = pi_perf_read(PI_PERF_CYCLES);
    pi_perf_stop();
    unsigned c3 = pi_perf_read(PI_PERF_CYCLES);
    busy(2000000);
    unsigned c4 = pi_perf_read(PI_PERF_CYCLES);
    printf("cycles %u %u %u %u instr %u\n", c1, c2, c3, c4, i1);
    CHECK(c1 > 0 && i1 > 0);
    CHECK(c2 > c1);
    CHECK(c3 >= c2 && c4 == c3); /* stopped: no more counting */
    pi_perf_reset();
    CHECK(pi_perf_read(PI_PERF_CYCLES) == 0);
    CHECK(pi_perf_read(PI_PERF_LD_STALL) == 0);
}

/* ------------------------------------------------------------------ a generated-code-like pipeline */

/* The pattern of generated code: input in L3, streamed to L2 by the cluster, then tile by tile
 * L2 -> L1 with double buffering, computed by an 8-core fork, L1 -> L2.  With `bug` the tile is
 * computed before waiting for its input transfer: the output must come out wrong. */
enum { NTILES = 12, TILE = 1000 };

typedef struct {
    uint32_t l3_in;
    uint8_t *in_l2, *out_l2;
    uint8_t *l1_in[2], *l1_out[2];
    int bug;
} pipe_t;

typedef struct {
    const uint8_t *in;
    uint8_t *out;
} tile_t;

static void tile_kernel(void *arg)
{
    const tile_t *t = arg;
    for (uint32_t i = pi_core_id(); i < TILE; i += 8)
        t->out[i] = (uint8_t)(t->in[i] * 3 + 1);
}

static void pipe_entry(void *arg)
{
    pipe_t *p = arg;
    pi_cl_ram_req_t req;
    pi_cl_ram_read(&ram_dev, p->l3_in, p->in_l2, NTILES * TILE, &req);
    pi_cl_ram_read_wait(&req);

    pi_cl_dma_cmd_t in_cmd[2], out_cmd[2];
    int out_pending[2] = {0, 0};
    pi_cl_dma_cmd(A(p->in_l2), A(p->l1_in[0]), TILE, PI_CL_DMA_DIR_EXT2LOC, &in_cmd[0]);
    for (int t = 0; t < NTILES; t++) {
        int b = t & 1;
        if (t + 1 < NTILES)
            pi_cl_dma_cmd(A(p->in_l2 + (t + 1) * TILE), A(p->l1_in[!b]), TILE, PI_CL_DMA_DIR_EXT2LOC, &in_cmd[!b]);
        if (!p->bug)
            pi_cl_dma_cmd_wait(&in_cmd[b]);
        if (out_pending[b]) {
            pi_cl_dma_cmd_wait(&out_cmd[b]);
            out_pending[b] = 0;
        }
        tile_t tile = {p->l1_in[b], p->l1_out[b]};
        pi_cl_team_fork(8, tile_kernel, &tile);
        if (p->bug)
            pi_cl_dma_cmd_wait(&in_cmd[b]);
        pi_cl_dma_cmd(A(p->out_l2 + t * TILE), A(p->l1_out[b]), TILE, PI_CL_DMA_DIR_LOC2EXT, &out_cmd[b]);
        out_pending[b] = 1;
    }
    for (int b = 0; b < 2; b++)
        if (out_pending[b])
            pi_cl_dma_cmd_wait(&out_cmd[b]);
}

static int run_pipeline(int bug)
{
    open_ram();
    open_cluster();
    static uint8_t weights_like[NTILES * TILE]; /* e.g. a constant array of the generated source */
    for (int i = 0; i < NTILES * TILE; i++)
        weights_like[i] = (uint8_t)(i * 7 + i / 300);
    pipe_t p;
    p.bug = bug;
    CHECK(pi_ram_alloc(&ram_dev, &p.l3_in, NTILES * TILE) == 0);
    pi_ram_write(&ram_dev, p.l3_in, weights_like, NTILES * TILE);
    p.in_l2 = pi_l2_malloc(NTILES * TILE);
    p.out_l2 = pi_l2_malloc(NTILES * TILE);
    for (int b = 0; b < 2; b++) {
        p.l1_in[b] = pi_cl_l1_malloc(&cluster_dev, TILE);
        p.l1_out[b] = pi_cl_l1_malloc(&cluster_dev, TILE);
    }
    run_cluster(pipe_entry, &p);
    int wrong = 0;
    for (int i = 0; i < NTILES * TILE; i++)
        wrong += p.out_l2[i] != (uint8_t)(weights_like[i] * 3 + 1);
    printf("%d wrong output bytes\n", wrong);
    pi_cluster_close(&cluster_dev);
    pi_ram_close(&ram_dev);
    return wrong;
}

static void sc_pipeline(void) { CHECK(run_pipeline(0) == 0); }
static void sc_pipeline_bug(void)
{
    /* every byte computed from poison is wrong, except where the real input happens to be 0xA5 */
    int wrong = run_pipeline(1), coincide = 0;
    for (int i = 0; i < NTILES * TILE; i++)
        coincide += (uint8_t)(i * 7 + i / 300) == POISON;
    CHECK(wrong == NTILES * TILE - coincide);
}

/* ------------------------------------------------------------------ AddressSanitizer integration */

static void sc_asan_overrun(void)
{
    open_cluster();
    uint8_t *p = pi_cl_l1_malloc(&cluster_dev, 100);
    volatile uint8_t *q = p;
    q[99] = 1;
    q[130] = 1; /* free L1 space past the block: reported by ASan (poisoned), silent otherwise */
    printf("no report\n");
}

/* ------------------------------------------------------------------ dispatch */

static void sc_bad_outside(void) { run_bad_dma(bad_outside_entry); }
static void sc_bad_loc_in_l2(void) { run_bad_dma(bad_loc_in_l2_entry); }
static void sc_bad_swapped(void) { run_bad_dma(bad_swapped_entry); }
static void sc_bad_overrun(void) { run_bad_dma(bad_overrun_entry); }
static void sc_bad_overrun_2d(void) { run_bad_dma(bad_overrun_2d_entry); }
static void sc_bad_wait_twice(void) { run_bad_dma(bad_wait_twice_entry); }
static void sc_bad_wait_never(void) { run_bad_dma(bad_wait_never_entry); }
static void sc_bad_reuse(void) { run_bad_dma(bad_reuse_entry); }
static void sc_bad_not_waited(void) { run_bad_dma(bad_not_waited_entry); }
static void sc_bad_freed(void) { run_bad_dma(bad_freed_entry); }
static void sc_bad_2d_size(void) { run_bad_dma(bad_2d_size_entry); }
static void sc_nested_fork(void) { run_bad_team(nested_entry); }
static void sc_barrier_mismatch(void) { run_bad_team(mismatch_entry); }
static void sc_barrier_outside(void) { run_bad_team(barrier_outside_entry); }

static const struct {
    const char *name;
    void (*fn)(void);
} scenarios[] = {
    {"address32", sc_address32},
    {"l1_full", sc_l1_full},
    {"l1_over", sc_l1_over},
    {"l1_over_single", sc_l1_over_single},
    {"l2_over", sc_l2_over},
    {"l1_closed", sc_l1_closed},
    {"free_size_mismatch", sc_free_size_mismatch},
    {"double_free", sc_double_free},
    {"dma1d", sc_dma1d},
    {"dma2d", sc_dma2d},
    {"source_at_wait", sc_source_at_wait},
    {"premature_read", sc_premature_read},
    {"dma_multicore", sc_dma_multicore},
    {"dma_from_fc", sc_dma_from_fc},
    {"bad_outside", sc_bad_outside},
    {"bad_loc_in_l2", sc_bad_loc_in_l2},
    {"bad_swapped", sc_bad_swapped},
    {"bad_overrun", sc_bad_overrun},
    {"bad_overrun_2d", sc_bad_overrun_2d},
    {"bad_wait_twice", sc_bad_wait_twice},
    {"bad_wait_never", sc_bad_wait_never},
    {"bad_reuse", sc_bad_reuse},
    {"bad_not_waited", sc_bad_not_waited},
    {"bad_freed", sc_bad_freed},
    {"bad_2d_size", sc_bad_2d_size},
    {"team", sc_team},
    {"nested_fork", sc_nested_fork},
    {"barrier_mismatch", sc_barrier_mismatch},
    {"barrier_outside", sc_barrier_outside},
    {"fork_on_fc", sc_fork_on_fc},
    {"l3", sc_l3},
    {"l3_oob", sc_l3_oob},
    {"l3_beyond", sc_l3_beyond},
    {"l3_unallocated", sc_l3_unallocated},
    {"l3_oob_cluster", sc_l3_oob_cluster},
    {"l3_over", sc_l3_over},
    {"perf", sc_perf},
    {"pipeline", sc_pipeline},
    {"pipeline_bug", sc_pipeline_bug},
    {"asan_overrun", sc_asan_overrun},
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <scenario>\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        if (strcmp(argv[1], scenarios[i].name) == 0) {
            scenarios[i].fn();
            printf("PASS %s\n", argv[1]);
            return 0;
        }
    }
    fprintf(stderr, "unknown scenario %s\n", argv[1]);
    return 2;
}
