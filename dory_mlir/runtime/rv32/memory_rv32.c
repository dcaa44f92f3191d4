/*
 * dory-mlir rv32 runtime: L1 / L2 / L3 memory and the transfers between them (cluster DMA,
 * cluster RAM requests), with the host runtime's contract (pmsis_host.c) on fixed arenas.
 *
 *  - L1 and L2 are arenas of exactly DORY_L1_SIZE / DORY_L2_SIZE bytes at RV32_L1_BASE /
 *    RV32_L2_BASE. First fit with frees, 8-byte aligned blocks of round_up(size, 8) bytes
 *    (bookkeeping outside the arena), fresh blocks filled with 0x5A, freed ones with 0xDE.
 *    An allocation that does not fit prints "pmsis-rv32: L1 allocation of N bytes exceeds the
 *    L1 budget (used U of S)" and exits with status 3.
 *  - L3 is an arena of DORY_L3_SIZE bytes at RV32_L3_BASE addressed only by the offsets
 *    pi_ram_alloc hands out (0 never is), so generated code cannot dereference L3.
 *  - Issuing a transfer validates both ends against live allocations and fills the
 *    destination with 0xA5; the wait copies from the source as it is then.
 *  - Every contract violation: "pmsis-rv32: <function>: <what>" and abort().
 * The instructions spent here are hidden from the instruction counts (rv32_internal.h).
 */
#include "pmsis.h"
#include "rv32_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define fatal rv32_fatal

#define ALIGN 8
#define POISON_INFLIGHT 0xA5
#define FILL_ALLOC 0x5A
#define FILL_FREE 0xDE
#define DMA_MAX_PENDING 16
#define RAM_MAX_PENDING 64
/* GAP8 passes DMA sizes, strides and lengths as 16-bit values. */
#define DMA_MAX_FIELD 65535u
#define MAX_BLOCKS 1024

#define STATE_INFLIGHT 0x1F11F11Fu
#define STATE_DONE 0xD0D0D0D0u

/* ------------------------------------------------------------------------------ arenas */

typedef struct {
    uint32_t off, size, rsize;
} block_t;

typedef struct {
    const char *name, *alloc_fn;
    uint8_t *base;
    uint32_t cap, used;
    block_t blk[MAX_BLOCKS]; /* live blocks sorted by offset */
    uint32_t n;
    int ready;
} arena_t;

static arena_t g_l1 = {"L1", "pi_cl_l1_malloc", (uint8_t *)RV32_L1_BASE, DORY_L1_SIZE, 0, {{0, 0, 0}}, 0, 0};
static arena_t g_l2 = {"L2", "pi_l2_malloc", (uint8_t *)RV32_L2_BASE, DORY_L2_SIZE, 0, {{0, 0, 0}}, 0, 0};
static arena_t g_l3 = {"L3", "pi_ram_alloc", (uint8_t *)RV32_L3_BASE, 0, 0, {{0, 0, 0}}, 0, 0};

static uint32_t round_up(uint32_t size)
{
    uint64_t s = size ? size : 1;
    return (uint32_t)((s + ALIGN - 1) & ~(uint64_t)(ALIGN - 1));
}

static void arena_reset(arena_t *a)
{
    memset(a->base, FILL_FREE, a->cap);
    a->n = 0;
    a->used = 0;
    a->ready = 1;
}

static void arena_ensure(arena_t *a)
{
    if (!a->ready)
        arena_reset(a);
}

static uint32_t arena_addr(const arena_t *a, uint32_t off) { return (uint32_t)(uintptr_t)(a->base + off); }

static uint32_t arena_alloc(arena_t *a, uint32_t size)
{
    uint32_t rsize = round_up(size);
    uint64_t prev_end = 0, largest = 0;
    uint32_t i = 0;
    for (; i <= a->n; i++) {
        uint64_t next = i < a->n ? a->blk[i].off : a->cap;
        uint64_t gap = next > prev_end ? next - prev_end : 0;
        if (gap > largest)
            largest = gap;
        if (gap >= rsize)
            break;
        if (i < a->n)
            prev_end = (uint64_t)a->blk[i].off + a->blk[i].rsize;
    }
    if (i > a->n) {
        fflush(stdout);
        fprintf(stderr, "pmsis-rv32: %s allocation of %" PRIu32 " bytes exceeds the %s budget (used %" PRIu32
                        " of %" PRIu32 ")\n",
                a->name, size, a->name, a->used, a->cap);
        if ((uint64_t)a->used + rsize <= a->cap)
            fprintf(stderr, "pmsis-rv32: (the %s heap is fragmented: the largest free block has %" PRIu64 " bytes)\n",
                    a->name, largest);
        fflush(stderr);
        exit(RV32_EXIT_BUDGET);
    }
    if (a->n == MAX_BLOCKS)
        fatal("%s: more than %d live %s allocations", a->alloc_fn, MAX_BLOCKS, a->name);
    memmove(&a->blk[i + 1], &a->blk[i], (a->n - i) * sizeof *a->blk);
    a->blk[i] = (block_t){(uint32_t)prev_end, size, rsize};
    a->n++;
    a->used += rsize;
    memset(a->base + prev_end, FILL_ALLOC, size);
    return (uint32_t)prev_end;
}

/* Index of the last block starting at or before off, or -1. */
static long arena_floor(const arena_t *a, uint64_t off)
{
    long lo = 0, hi = (long)a->n - 1, r = -1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        if (a->blk[mid].off <= off) {
            r = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return r;
}

static long arena_find(const arena_t *a, uint64_t off, uint64_t len)
{
    long i = arena_floor(a, off);
    if (i < 0 || off + len > (uint64_t)a->blk[i].off + a->blk[i].size)
        return -1;
    return i;
}

static void arena_free(arena_t *a, uint64_t off, int64_t size, const char *fn)
{
    long i = arena_floor(a, off);
    if (i < 0 || a->blk[i].off != off)
        fatal("%s: 0x%08" PRIx64 " is not the start of a live %s allocation (double free, or a pointer that "
              "%s did not return)",
              fn, (uint64_t)(uintptr_t)a->base + off, a->name, a->alloc_fn);
    if ((int64_t)a->blk[i].size != size)
        fatal("%s: the %s block at 0x%08" PRIx32 " was allocated with %" PRIu32 " bytes but is freed with %" PRId64
              " (the size given to the free must be the allocated size)",
              fn, a->name, arena_addr(a, a->blk[i].off), a->blk[i].size, size);
    memset(a->base + off, FILL_FREE, a->blk[i].size);
    a->used -= a->blk[i].rsize;
    memmove(&a->blk[i], &a->blk[i + 1], (a->n - (uint32_t)i - 1) * sizeof *a->blk);
    a->n--;
}

static int in_arena(const arena_t *a, uint64_t addr, uint64_t len)
{
    uint64_t b = (uintptr_t)a->base;
    return addr >= b && addr + len <= b + a->cap;
}

static void describe_addr(uint64_t addr, char *buf, size_t n)
{
    if (in_arena(&g_l1, addr, 1))
        snprintf(buf, n, "0x%08" PRIx64 " (L1 offset %" PRIu64 ")", addr, addr - (uintptr_t)g_l1.base);
    else if (in_arena(&g_l2, addr, 1))
        snprintf(buf, n, "0x%08" PRIx64 " (L2 offset %" PRIu64 ")", addr, addr - (uintptr_t)g_l2.base);
    else
        snprintf(buf, n, "0x%08" PRIx64 " (outside the L1 and L2 arenas: not memory from pi_cl_l1_malloc / "
                         "pi_l2_malloc, e.g. a global, stack or malloc buffer)",
                 addr);
}

/* [addr, addr + len) must lie inside one live block of `a`. */
static uint8_t *check_range(const arena_t *a, uint64_t addr, uint64_t len, const char *fn, const char *what)
{
    char d[200];
    if (!in_arena(a, addr, len)) {
        describe_addr(addr, d, sizeof d);
        fatal("%s: %s = %s with %" PRIu64 " bytes is not inside the %s arena [0x%08" PRIx64 ", 0x%08" PRIx64 ")",
              fn, what, d, len, a->name, (uint64_t)(uintptr_t)a->base, (uint64_t)(uintptr_t)a->base + a->cap);
    }
    uint64_t off = addr - (uintptr_t)a->base;
    if (arena_find(a, off, len) < 0) {
        long i = arena_floor(a, off);
        if (i >= 0 && off < (uint64_t)a->blk[i].off + a->blk[i].rsize)
            fatal("%s: %s range [0x%08" PRIx64 ", 0x%08" PRIx64 ") overruns the %s block at 0x%08" PRIx32
                  " of %" PRIu32 " bytes",
                  fn, what, addr, addr + len, a->name, arena_addr(a, a->blk[i].off), a->blk[i].size);
        fatal("%s: %s range [0x%08" PRIx64 ", 0x%08" PRIx64 ") (%s offsets [%" PRIu64 ", %" PRIu64
              ")) is not inside a live %s allocation (freed, or never allocated)",
              fn, what, addr, addr + len, a->name, off, off + len, a->alloc_fn);
    }
    return a->base + off;
}

/* ------------------------------------------------------------------------------ transfers */

typedef struct {
    const void *key; /* the pi_cl_dma_cmd_t / pi_cl_ram_req_t */
    uint32_t id;
    uint32_t ext_addr, loc_addr;
    uint8_t *ext, *loc; /* ext = L2 (DMA) / L3 (RAM), loc = L1 (DMA) / L2 (RAM) */
    uint32_t size, stride, length;
    int ext2loc;
    uint32_t core;
} xfer_t;

static xfer_t g_dma[DMA_MAX_PENDING];
static uint32_t g_ndma;
static xfer_t g_ram[RAM_MAX_PENDING];
static uint32_t g_nram;
static uint32_t g_next_id = 1;

static long xfer_find(const xfer_t *v, uint32_t n, const void *key)
{
    for (uint32_t i = 0; i < n; i++)
        if (v[i].key == key)
            return (long)i;
    return -1;
}

static void xfer_remove(xfer_t *v, uint32_t *n, long i)
{
    memmove(&v[i], &v[i + 1], (*n - (uint32_t)i - 1) * sizeof *v);
    (*n)--;
}

static void xfer_poison(const xfer_t *x)
{
    if (x->ext2loc) {
        memset(x->loc, POISON_INFLIGHT, x->size);
        return;
    }
    for (uint32_t r = 0; r < x->size / x->length; r++)
        memset(x->ext + r * x->stride, POISON_INFLIGHT, x->length);
}

static void xfer_copy(const xfer_t *x)
{
    for (uint32_t r = 0; r < x->size / x->length; r++) {
        uint8_t *e = x->ext + r * x->stride, *l = x->loc + r * x->length;
        if (x->ext2loc)
            memmove(l, e, x->length);
        else
            memmove(e, l, x->length);
    }
}

static void require_cluster(const char *fn)
{
    if (!rv32_in_cluster())
        fatal("%s called outside a cluster task: it is a cluster-side call (from the entry of "
              "pi_cluster_send_task_to_cl or of pi_cl_team_fork)",
              fn);
}

/* Called by pi_cluster_send_task_to_cl when the task returns. */
void rv32_check_transfers_done(const char *fn)
{
    if (g_ndma || g_nram)
        fatal("%s: the cluster task ended with %" PRIu32 " cluster-DMA transfer(s) and %" PRIu32
              " RAM request(s) never waited for (first: %s #%" PRIu32 ")",
              fn, g_ndma, g_nram, g_ndma ? "DMA" : "RAM", g_ndma ? g_dma[0].id : g_ram[0].id);
}

static void dma_issue(uint32_t ext, uint32_t loc, uint32_t size, uint32_t stride, uint32_t length,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd, int is_2d)
{
    const char *fn = is_2d ? "pi_cl_dma_cmd_2d" : "pi_cl_dma_cmd";
    require_cluster(fn);
    if (!cmd)
        fatal("%s: cmd is NULL", fn);
    if (dir != PI_CL_DMA_DIR_LOC2EXT && dir != PI_CL_DMA_DIR_EXT2LOC)
        fatal("%s: invalid direction %d", fn, (int)dir);
    if (size == 0)
        fatal("%s: transfer of 0 bytes (ext 0x%08" PRIx32 ", loc 0x%08" PRIx32 ")", fn, ext, loc);
    if (size > DMA_MAX_FIELD)
        fatal("%s: size %" PRIu32 " exceeds %u, the largest a single cluster-DMA command carries on GAP8 "
              "(split the transfer)",
              fn, size, DMA_MAX_FIELD);
    if (is_2d) {
        if (length == 0)
            fatal("%s: length (bytes per line) is 0", fn);
        if (length > DMA_MAX_FIELD || stride > DMA_MAX_FIELD)
            fatal("%s: stride %" PRIu32 " / length %" PRIu32 " exceed %u, the 16-bit limit of the GAP8 2-D "
                  "cluster-DMA arguments",
                  fn, stride, length, DMA_MAX_FIELD);
        if (size % length != 0)
            fatal("%s: size %" PRIu32 " is not a multiple of length %" PRIu32
                  " (size is the total number of bytes, length the bytes per line)",
                  fn, size, length);
    } else {
        stride = length = size;
    }
    uint64_t ext_span = (uint64_t)(size / length - 1) * stride + length;
    arena_ensure(&g_l2);
    long i = xfer_find(g_dma, g_ndma, cmd);
    if (i >= 0)
        fatal("%s: the command at %p is still in flight (transfer #%" PRIu32 " issued by core %" PRIu32
              "): wait for it before reusing the command structure",
              fn, (void *)cmd, g_dma[i].id, g_dma[i].core);
    if (g_ndma == DMA_MAX_PENDING)
        fatal("%s: more than %d cluster-DMA transfers in flight; the cluster DMA tracks transfers with a "
              "small number of counters, wait for earlier ones first",
              fn, DMA_MAX_PENDING);
    if (in_arena(&g_l2, loc, size) && in_arena(&g_l1, ext, ext_span))
        fatal("%s: loc 0x%08" PRIx32 " is in L2 and ext 0x%08" PRIx32 " is in L1: are ext and loc swapped? "
              "(ext is the L2 address, loc the L1 address, whatever the direction)",
              fn, loc, ext);
    xfer_t x;
    x.key = cmd;
    x.id = g_next_id++;
    x.ext_addr = ext;
    x.loc_addr = loc;
    x.ext = check_range(&g_l2, ext, ext_span, fn, "ext (L2)");
    x.loc = check_range(&g_l1, loc, size, fn, "loc (L1)");
    x.size = size;
    x.stride = stride;
    x.length = length;
    x.ext2loc = dir == PI_CL_DMA_DIR_EXT2LOC;
    x.core = rv32_core();
    g_dma[g_ndma++] = x;
    cmd->id = x.id;
    cmd->ext = ext;
    cmd->loc = loc;
    cmd->size = size;
    cmd->stride = stride;
    cmd->length = length;
    cmd->dir = dir;
    cmd->state = STATE_INFLIGHT;
    xfer_poison(&x);
}

void pi_cl_dma_cmd(uint32_t ext, uint32_t loc, uint32_t size, pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd)
{
    rv32_hide_begin();
    dma_issue(ext, loc, size, 0, 0, dir, cmd, 0);
    rv32_hide_end();
}

void pi_cl_dma_cmd_2d(uint32_t ext, uint32_t loc, uint32_t size, uint32_t stride, uint32_t length,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd)
{
    rv32_hide_begin();
    dma_issue(ext, loc, size, stride, length, dir, cmd, 1);
    rv32_hide_end();
}

void pi_cl_dma_cmd_wait(pi_cl_dma_cmd_t *cmd)
{
    const char *fn = "pi_cl_dma_cmd_wait";
    rv32_hide_begin();
    require_cluster(fn);
    if (!cmd)
        fatal("%s: cmd is NULL", fn);
    long i = xfer_find(g_dma, g_ndma, cmd);
    if (i < 0) {
        if (cmd->state == STATE_DONE)
            fatal("%s: the transfer of the command at %p was already waited for (waited twice)", fn, (void *)cmd);
        fatal("%s: the command at %p was never issued (no pi_cl_dma_cmd / pi_cl_dma_cmd_2d in flight with it)",
              fn, (void *)cmd);
    }
    xfer_t x = g_dma[i];
    if (cmd->state != STATE_INFLIGHT || cmd->id != x.id || cmd->ext != x.ext_addr || cmd->loc != x.loc_addr ||
        cmd->size != x.size || cmd->stride != x.stride || cmd->length != x.length)
        fatal("%s: the command structure at %p was modified while its transfer #%" PRIu32 " was in flight", fn,
              (void *)cmd, x.id);
    check_range(&g_l2, x.ext_addr, (uint64_t)(x.size / x.length - 1) * x.stride + x.length, fn,
                "ext (L2) of this in-flight transfer");
    check_range(&g_l1, x.loc_addr, x.size, fn, "loc (L1) of this in-flight transfer");
    xfer_copy(&x);
    xfer_remove(g_dma, &g_ndma, i);
    cmd->state = STATE_DONE;
    rv32_hide_end();
}

/* ------------------------------------------------------------------------------ L1 / L2 heaps */

static int g_l1_powered; /* the cluster is open: L1 exists */

/* pi_cluster_open / pi_cluster_close: power-up and power-down empty the L1 heap. */
void rv32_l1_power(int on)
{
    arena_reset(&g_l1);
    g_l1_powered = on;
}

void *pi_cl_l1_malloc(struct pi_device *device, uint32_t size)
{
    rv32_hide_begin();
    rv32_require_cluster_device(device, "pi_cl_l1_malloc", 1);
    if (!g_l1_powered)
        fatal("pi_cl_l1_malloc: the cluster is not open (L1 exists only while the cluster is powered)");
    void *p = g_l1.base + arena_alloc(&g_l1, size);
    rv32_hide_end();
    return p;
}

void pi_cl_l1_free(struct pi_device *device, void *chunk, int size)
{
    const char *fn = "pi_cl_l1_free";
    rv32_hide_begin();
    rv32_require_cluster_device(device, fn, 1);
    if (!chunk)
        fatal("%s: chunk is NULL", fn);
    if (!g_l1_powered)
        fatal("%s: the cluster is not open", fn);
    if (!in_arena(&g_l1, (uintptr_t)chunk, 0))
        fatal("%s: %p is not in the L1 arena", fn, chunk);
    arena_free(&g_l1, (uintptr_t)chunk - (uintptr_t)g_l1.base, size, fn);
    rv32_hide_end();
}

void *pi_l2_malloc(int size)
{
    rv32_hide_begin();
    if (size < 0)
        fatal("pi_l2_malloc: negative size %d", size);
    if (rv32_in_cluster())
        fatal("pi_l2_malloc called from the cluster: it is a fabric-controller call");
    arena_ensure(&g_l2);
    void *p = g_l2.base + arena_alloc(&g_l2, (uint32_t)size);
    rv32_hide_end();
    return p;
}

void pi_l2_free(void *chunk, int size)
{
    const char *fn = "pi_l2_free";
    rv32_hide_begin();
    if (!chunk)
        fatal("%s: chunk is NULL", fn);
    if (rv32_in_cluster())
        fatal("%s called from the cluster: it is a fabric-controller call", fn);
    arena_ensure(&g_l2);
    if (!in_arena(&g_l2, (uintptr_t)chunk, 0))
        fatal("%s: %p is not in the L2 arena", fn, chunk);
    arena_free(&g_l2, (uintptr_t)chunk - (uintptr_t)g_l2.base, size, fn);
    rv32_hide_end();
}

/* ------------------------------------------------------------------------------ RAM (L3) */

struct __pi_ram_api_t {
    uint32_t magic;
};
static struct __pi_ram_api_t g_hyperram_api = {0x48595052u};
static int g_ram_tag;
static int g_ram_open_count;
static int g_l3_reserved;

void pi_hyperram_conf_init(struct pi_hyperram_conf *conf)
{
    if (!conf)
        fatal("pi_hyperram_conf_init: conf is NULL");
    memset(conf, 0, sizeof *conf);
    conf->ram.api = &g_hyperram_api;
    conf->ram_size = DORY_L3_SIZE;
    conf->reserve_addr_0 = 1;
}

int32_t pi_ram_open(struct pi_device *device)
{
    const char *fn = "pi_ram_open";
    rv32_hide_begin();
    if (!device || !device->config)
        fatal("%s: the device has no configuration (pi_hyperram_conf_init + pi_open_from_conf)", fn);
    struct pi_hyperram_conf *conf = device->config;
    if (conf->ram.api != &g_hyperram_api)
        fatal("%s: the device configuration is not a RAM configuration (pi_hyperram_conf_init)", fn);
    if (rv32_in_cluster())
        fatal("%s called from the cluster", fn);
    if (g_ram_open_count == 0) {
        if (conf->ram_size <= 8 || conf->ram_size > DORY_L3_SIZE)
            fatal("%s: ram_size %d out of range (0, %d]", fn, conf->ram_size, DORY_L3_SIZE);
        g_l3.cap = (uint32_t)conf->ram_size;
        arena_reset(&g_l3);
        g_l3_reserved = conf->reserve_addr_0 != 0;
        if (g_l3_reserved)
            (void)arena_alloc(&g_l3, ALIGN); /* address 0 is never handed out */
    }
    g_ram_open_count++;
    device->data = &g_ram_tag;
    rv32_hide_end();
    return 0;
}

static void require_ram(struct pi_device *device, const char *fn)
{
    if (!device || device->data != &g_ram_tag || g_ram_open_count <= 0)
        fatal("%s: the device is not an opened RAM (pi_ram_open)", fn);
}

void pi_ram_close(struct pi_device *device)
{
    const char *fn = "pi_ram_close";
    rv32_hide_begin();
    require_ram(device, fn);
    if (rv32_in_cluster())
        fatal("%s called from the cluster", fn);
    if (g_nram)
        fatal("%s: %" PRIu32 " RAM request(s) still in flight", fn, g_nram);
    if (--g_ram_open_count == 0) {
        g_l3.n = 0;
        g_l3.used = 0;
        g_l3.ready = 0;
    }
    device->data = NULL;
    rv32_hide_end();
}

int pi_ram_alloc(struct pi_device *device, uint32_t *addr, uint32_t size)
{
    rv32_hide_begin();
    require_ram(device, "pi_ram_alloc");
    if (!addr)
        fatal("pi_ram_alloc: addr is NULL");
    *addr = arena_alloc(&g_l3, size);
    rv32_hide_end();
    return 0;
}

int pi_ram_free(struct pi_device *device, uint32_t addr, uint32_t size)
{
    rv32_hide_begin();
    require_ram(device, "pi_ram_free");
    if (addr >= g_l3.cap)
        fatal("pi_ram_free: L3 address 0x%08" PRIx32 " is outside the L3 memory (%" PRIu32 " bytes)", addr,
              g_l3.cap);
    if (g_l3_reserved && addr < ALIGN)
        fatal("pi_ram_free: L3 address 0x%08" PRIx32 " is reserved, pi_ram_alloc never hands it out", addr);
    arena_free(&g_l3, addr, size, "pi_ram_free");
    rv32_hide_end();
    return 0;
}

static uint8_t *check_l3(uint32_t ram_addr, uint32_t size, const char *fn)
{
    uint64_t end = (uint64_t)ram_addr + size;
    if (end > g_l3.cap)
        fatal("%s: L3 range [0x%08" PRIx32 ", 0x%08" PRIx64 ") is outside the L3 memory (%" PRIu32 " bytes)", fn,
              ram_addr, end, g_l3.cap);
    if (arena_find(&g_l3, ram_addr, size) < 0) {
        long i = arena_floor(&g_l3, ram_addr);
        if (g_l3_reserved && i == 0 && ram_addr < ALIGN)
            fatal("%s: L3 range [0x%08" PRIx32 ", 0x%08" PRIx64 ") is not inside a live pi_ram_alloc block "
                  "(L3 addresses below %d are reserved and never handed out: an L3 address left 0?)",
                  fn, ram_addr, end, ALIGN);
        if (i >= 0 && ram_addr < (uint64_t)g_l3.blk[i].off + g_l3.blk[i].rsize)
            fatal("%s: L3 range [0x%08" PRIx32 ", 0x%08" PRIx64 ") overruns the L3 block at 0x%08" PRIx32
                  " of %" PRIu32 " bytes",
                  fn, ram_addr, end, g_l3.blk[i].off, g_l3.blk[i].size);
        fatal("%s: L3 range [0x%08" PRIx32 ", 0x%08" PRIx64 ") is not inside a live pi_ram_alloc block", fn,
              ram_addr, end);
    }
    return g_l3.base + ram_addr;
}

/* The fabric-controller side of pi_ram_read / pi_ram_write: never L1; inside a live block when
 * it is in the L2 arena; other memory (globals, the heap: L2 on GAP8) is accepted. */
static void check_fc_buffer(const void *data, uint32_t size, const char *fn)
{
    uint64_t a = (uintptr_t)data;
    if (!data)
        fatal("%s: data is NULL", fn);
    if (a < (uintptr_t)g_l1.base + g_l1.cap && a + size > (uintptr_t)g_l1.base)
        fatal("%s: the buffer %p is in L1; RAM transfers reach L2 only", fn, data);
    if (a < (uintptr_t)g_l2.base + g_l2.cap && a + size > (uintptr_t)g_l2.base)
        check_range(&g_l2, a, size, fn, "data (L2)");
}

static void ram_sync(struct pi_device *device, uint32_t ram_addr, void *data, uint32_t size, int ext2loc)
{
    const char *fn = ext2loc ? "pi_ram_read" : "pi_ram_write";
    rv32_hide_begin();
    require_ram(device, fn);
    if (rv32_in_cluster())
        fatal("%s called from the cluster: it is a fabric-controller call (use pi_cl_ram_%s)", fn,
              ext2loc ? "read" : "write");
    uint8_t *l3 = check_l3(ram_addr, size, fn);
    check_fc_buffer(data, size, fn);
    if (size) {
        if (ext2loc)
            memcpy(data, l3, size);
        else
            memcpy(l3, data, size);
    }
    rv32_hide_end();
}

void pi_ram_read(struct pi_device *device, uint32_t pi_ram_addr, void *data, uint32_t size)
{
    ram_sync(device, pi_ram_addr, data, size, 1);
}

void pi_ram_write(struct pi_device *device, uint32_t pi_ram_addr, void *data, uint32_t size)
{
    ram_sync(device, pi_ram_addr, data, size, 0);
}

static void ram_issue(struct pi_device *device, uint32_t ram_addr, void *addr, uint32_t size, pi_cl_ram_req_t *req,
                      int ext2loc)
{
    const char *fn = ext2loc ? "pi_cl_ram_read" : "pi_cl_ram_write";
    rv32_hide_begin();
    require_cluster(fn);
    require_ram(device, fn);
    if (!req)
        fatal("%s: req is NULL", fn);
    if (size == 0)
        fatal("%s: transfer of 0 bytes", fn);
    long i = xfer_find(g_ram, g_nram, req);
    if (i >= 0)
        fatal("%s: the request at %p is still in flight (request #%" PRIu32 "): wait for it before reusing it", fn,
              (void *)req, g_ram[i].id);
    if (g_nram == RAM_MAX_PENDING)
        fatal("%s: more than %d RAM requests in flight", fn, RAM_MAX_PENDING);
    arena_ensure(&g_l2);
    xfer_t x;
    x.key = req;
    x.id = g_next_id++;
    x.ext_addr = ram_addr;
    x.loc_addr = 0;
    x.ext = check_l3(ram_addr, size, fn);
    x.loc = check_range(&g_l2, (uintptr_t)addr, size, fn, "addr (L2)");
    x.size = x.stride = x.length = size;
    x.ext2loc = ext2loc;
    x.core = rv32_core();
    g_ram[g_nram++] = x;
    req->device = device;
    req->addr = addr;
    req->pi_ram_addr = ram_addr;
    req->size = size;
    req->id = x.id;
    req->state = STATE_INFLIGHT;
    req->ext2loc = (unsigned char)ext2loc;
    xfer_poison(&x);
    rv32_hide_end();
}

static void ram_wait(pi_cl_ram_req_t *req, const char *fn)
{
    rv32_hide_begin();
    require_cluster(fn);
    if (!req)
        fatal("%s: req is NULL", fn);
    long i = xfer_find(g_ram, g_nram, req);
    if (i < 0) {
        if (req->state == STATE_DONE)
            fatal("%s: the request at %p was already waited for (waited twice)", fn, (void *)req);
        fatal("%s: the request at %p was never issued (no pi_cl_ram_read / pi_cl_ram_write in flight with it)", fn,
              (void *)req);
    }
    xfer_t x = g_ram[i];
    if (req->state != STATE_INFLIGHT || req->id != x.id || req->pi_ram_addr != x.ext_addr || req->size != x.size ||
        (uint8_t *)req->addr != x.loc)
        fatal("%s: the request structure at %p was modified while request #%" PRIu32 " was in flight", fn,
              (void *)req, x.id);
    check_l3(x.ext_addr, x.size, fn);
    check_range(&g_l2, (uintptr_t)x.loc, x.size, fn, "addr (L2) of this in-flight request");
    xfer_copy(&x);
    xfer_remove(g_ram, &g_nram, i);
    req->state = STATE_DONE;
    rv32_hide_end();
}

void pi_cl_ram_read(struct pi_device *device, uint32_t pi_ram_addr, void *addr, uint32_t size, pi_cl_ram_req_t *req)
{
    ram_issue(device, pi_ram_addr, addr, size, req, 1);
}

void pi_cl_ram_write(struct pi_device *device, uint32_t pi_ram_addr, void *addr, uint32_t size, pi_cl_ram_req_t *req)
{
    ram_issue(device, pi_ram_addr, addr, size, req, 0);
}

void pi_cl_ram_read_wait(pi_cl_ram_req_t *req) { ram_wait(req, "pi_cl_ram_read_wait"); }

void pi_cl_ram_write_wait(pi_cl_ram_req_t *req) { ram_wait(req, "pi_cl_ram_write_wait"); }
