/*
 * dory-mlir PMSIS runtime: L1 / L2 / L3 memory and the transfers between them (cluster DMA,
 * cluster RAM requests), implementing GAP8's contract strictly rather than conveniently, for
 * every platform (runtime_internal.h):
 *
 *  Memory
 *   - L1 and L2 are arenas of exactly DORY_L1_SIZE / DORY_L2_SIZE bytes where the platform puts
 *     them (platform_arena_memory). A first-fit allocator with frees hands out 8-byte aligned
 *     blocks of round_up(size, 8) bytes; its bookkeeping lives outside the arena, so the whole
 *     budget is usable. Fresh blocks are filled with 0x5A, freed blocks with 0xDE.
 *   - An allocation that does not fit prints
 *       <runtime>: L1 allocation of N bytes exceeds the L1 budget (used U of S)
 *     (also for L2 and L3) and the program exits with status 3 (DORY_EXIT_BUDGET).
 *   - L3 (HyperRAM) is an arena of up to DORY_L3_SIZE bytes reachable only through the RAM API
 *     with the offsets pi_ram_alloc hands out (offset 0 is never handed out).
 *   - L1 exists while the cluster is open: power-up and power-down empty its heap.
 *   - With -fsanitize=address, free space, padding and freed blocks of the arenas are poisoned.
 *
 *  Transfers
 *   - Issuing validates every address: `loc` must lie inside one live L1 allocation, `ext` inside
 *     one live L2 allocation (both ends, 2-D span included), the L3 range inside one live
 *     pi_ram_alloc block, the L2 side of a RAM request inside one live L2 allocation.
 *   - Issuing fills the destination with 0xA5; the copy is done by the wait, from the source as
 *     it is at that moment. Reading a destination before its wait therefore reads 0xA5, and
 *     changing a source before the wait changes what arrives.
 *   - Waiting twice, waiting on a never-issued command, reusing a command that is in flight,
 *     modifying it, freeing one of its buffers before the wait, more than DORY_DMA_MAX_PENDING
 *     transfers in flight, or a cluster task that ends with transfers not waited: abort.
 *
 *  Counts
 *   - Every cluster-DMA transfer and cluster RAM request adds its bytes, at its issue, to the count
 *     of its direction (L2 -> L1, L1 -> L2, L3 -> L2, L2 -> L3); dory_dma_count_layer (dory_dma.h)
 *     prints and resets them. The fabric controller's pi_ram_read / pi_ram_write are not counted.
 *
 *  Every contract violation prints "<runtime>: <function>: <what>" to stderr and aborts.
 */
#include "pmsis.h"
#include "dory_dma.h"
#include "runtime_internal.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------ arenas */

typedef struct {
    uint32_t off;   /* offset in the arena */
    uint32_t size;  /* requested size */
    uint32_t rsize; /* size taken from the budget: round_up(max(size, 1), DORY_ALLOC_ALIGN) */
} block_t;

typedef struct {
    const char *name; /* "L1", "L2", "L3" */
    const char *alloc_fn;
    memory_level_e level;
    uint8_t *base;    /* address of offset 0 (NULL: no memory yet) */
    uint32_t cap;     /* budget in bytes */
    uint32_t used;    /* sum of rsize of the live blocks */
    int ready;        /* the heap is initialised */
    block_t *blk;     /* live blocks sorted by offset */
    uint32_t n, nalloc;
} arena_t;

static arena_t g_l1 = {"L1", "pi_cl_l1_malloc", MEMORY_L1, NULL, DORY_L1_SIZE, 0, 0, NULL, 0, 0};
static arena_t g_l2 = {"L2", "pi_l2_malloc", MEMORY_L2, NULL, DORY_L2_SIZE, 0, 0, NULL, 0, 0};
static arena_t g_l3 = {"L3", "pi_ram_alloc", MEMORY_L3, NULL, 0, 0, 0, NULL, 0, 0}; /* cap: pi_ram_open */

static uint32_t round_up_align(uint32_t size)
{
    uint64_t s = size ? size : 1;
    return (uint32_t)((s + DORY_ALLOC_ALIGN - 1) & ~(uint64_t)(DORY_ALLOC_ALIGN - 1));
}

/* Empties the heap (L1 at cluster power-up / power-down, L3 at pi_ram_open). */
static void arena_reset(arena_t *a)
{
    if (!a->base)
        a->base = platform_arena_memory(a->level, a->level == MEMORY_L3 ? DORY_L3_SIZE : a->cap);
    UNPOISON(a->base, a->cap);
    memset(a->base, FILL_FREE, a->cap);
    POISON(a->base, a->cap);
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

/* First fit. Returns the offset; exits loudly (status 3) when the block does not fit. */
static uint32_t arena_alloc(arena_t *a, uint32_t size)
{
    uint32_t rsize = round_up_align(size);
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
        fprintf(stderr, "%s: %s allocation of %" PRIu32 " bytes exceeds the %s budget (used %" PRIu32 " of %" PRIu32 ")\n",
                dory_runtime_name, a->name, size, a->name, a->used, a->cap);
        if ((uint64_t)a->used + rsize <= a->cap)
            fprintf(stderr, "%s: (the %s heap is fragmented: the largest free block has %" PRIu64 " bytes)\n",
                    dory_runtime_name, a->name, largest);
        fflush(stderr);
        _Exit(DORY_EXIT_BUDGET);
    }
    if (a->n == a->nalloc) {
        uint32_t grown = a->nalloc ? 2 * a->nalloc : 64;
        block_t *blocks = realloc(a->blk, grown * sizeof *blocks);
        if (!blocks)
            dory_fatal("%s: out of memory for the bookkeeping of %" PRIu32 " live %s allocations", a->alloc_fn, a->n,
                       a->name);
        a->blk = blocks;
        a->nalloc = grown;
    }
    memmove(&a->blk[i + 1], &a->blk[i], (a->n - i) * sizeof *a->blk);
    a->blk[i] = (block_t){(uint32_t)prev_end, size, rsize};
    a->n++;
    a->used += rsize;
    uint8_t *p = a->base + prev_end;
    UNPOISON(p, size);
    memset(p, FILL_ALLOC, size);
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

/* Index of the live block containing [off, off + len), or -1. */
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
        dory_fatal("%s: 0x%08" PRIx64 " is not the start of a live %s allocation (double free, or a pointer that "
                   "%s did not return)",
                   fn, (uint64_t)(uintptr_t)a->base + off, a->name, a->alloc_fn);
    if ((int64_t)a->blk[i].size != size)
        dory_fatal("%s: the %s block at 0x%08" PRIx32 " was allocated with %" PRIu32 " bytes but is freed with %" PRId64
                   " (the size given to the free must be the allocated size)",
                   fn, a->name, arena_addr(a, a->blk[i].off), a->blk[i].size, size);
    uint8_t *p = a->base + off;
    memset(p, FILL_FREE, a->blk[i].size);
    POISON(p, a->blk[i].rsize);
    a->used -= a->blk[i].rsize;
    memmove(&a->blk[i], &a->blk[i + 1], (a->n - (uint32_t)i - 1) * sizeof *a->blk);
    a->n--;
}

static int in_arena(const arena_t *a, uint64_t addr, uint64_t len)
{
    uint64_t b = (uintptr_t)a->base;
    return a->ready && addr >= b && addr + len <= b + a->cap;
}

static void describe_addr(uint64_t addr, char *buf, size_t n)
{
    /* Only a 64-bit platform can truncate a pointer to the uint32_t of the DMA API. */
    const char *truncated = sizeof(void *) > 4 ? ", or a truncated 64-bit pointer" : "";
    if (in_arena(&g_l1, addr, 1))
        snprintf(buf, n, "0x%08" PRIx64 " (L1 offset %" PRIu64 ")", addr, addr - (uintptr_t)g_l1.base);
    else if (in_arena(&g_l2, addr, 1))
        snprintf(buf, n, "0x%08" PRIx64 " (L2 offset %" PRIu64 ")", addr, addr - (uintptr_t)g_l2.base);
    else
        snprintf(buf, n, "0x%08" PRIx64 " (outside the L1 and L2 arenas: not memory from pi_cl_l1_malloc / "
                         "pi_l2_malloc, e.g. a global, stack or malloc buffer%s)",
                 addr, truncated);
}

/* [addr, addr + len) must lie inside one live block of `a`; returns its pointer. */
static uint8_t *check_range(const arena_t *a, uint64_t addr, uint64_t len, const char *fn, const char *what)
{
    char d[256];
    if (!in_arena(a, addr, len)) {
        describe_addr(addr, d, sizeof d);
        dory_fatal("%s: %s = %s with %" PRIu64 " bytes is not inside the %s arena [0x%08" PRIx64 ", 0x%08" PRIx64 ")",
                   fn, what, d, len, a->name, (uint64_t)(uintptr_t)a->base, (uint64_t)(uintptr_t)a->base + a->cap);
    }
    uint64_t off = addr - (uintptr_t)a->base;
    if (arena_find(a, off, len) < 0) {
        long i = arena_floor(a, off);
        if (i >= 0 && off < (uint64_t)a->blk[i].off + a->blk[i].rsize)
            dory_fatal("%s: %s range [0x%08" PRIx64 ", 0x%08" PRIx64 ") overruns the %s block at 0x%08" PRIx32
                       " of %" PRIu32 " bytes",
                       fn, what, addr, addr + len, a->name, arena_addr(a, a->blk[i].off), a->blk[i].size);
        dory_fatal("%s: %s range [0x%08" PRIx64 ", 0x%08" PRIx64 ") (%s offsets [%" PRIu64 ", %" PRIu64
                   ")) is not inside a live %s allocation (freed, or never allocated)",
                   fn, what, addr, addr + len, a->name, off, off + len, a->alloc_fn);
    }
    return a->base + off;
}

/* ------------------------------------------------------------------------------ transfers */

#define STATE_INFLIGHT 0x1F11F11Fu
#define STATE_DONE 0xD0D0D0D0u

/* Room for a copy of the caller's command / request structure while its transfer is in flight. */
#define HANDLE_BYTES 64
_Static_assert(sizeof(pi_cl_dma_cmd_t) <= HANDLE_BYTES && sizeof(pi_cl_ram_req_t) <= HANDLE_BYTES,
               "HANDLE_BYTES too small");

typedef struct {
    const void *key;  /* the pi_cl_dma_cmd_t / pi_cl_ram_req_t */
    uint32_t id;
    uint8_t *ext, *loc;          /* pointers: ext = L2 (DMA) / L3 (RAM), loc = L1 (DMA) / L2 (RAM) */
    uint32_t size, stride, length;
    int ext2loc;
    uint32_t core;
    unsigned char issued[HANDLE_BYTES]; /* the caller's structure as issued: changing it is a bug */
} xfer_t;

/* The transfers in flight of one kind, in issue order, and their handles (the caller's
 * structures, which hold a state word: in flight or done). */
typedef struct {
    const char *kind;      /* "cluster-DMA transfers" */
    const char *issue_fns; /* "pi_cl_dma_cmd / pi_cl_dma_cmd_2d" */
    const char *handle_name; /* "command" */
    const char *argument;  /* "cmd" */
    size_t handle_size, state_offset;
    xfer_t *v;
    uint32_t n, max;
} xfer_list_t;

static xfer_t g_dma_slots[DORY_DMA_MAX_PENDING];
static xfer_t g_ram_slots[DORY_RAM_MAX_PENDING];
static xfer_list_t g_dma = {"cluster-DMA transfers", "pi_cl_dma_cmd / pi_cl_dma_cmd_2d", "command", "cmd",
                            sizeof(pi_cl_dma_cmd_t), offsetof(pi_cl_dma_cmd_t, state), g_dma_slots, 0,
                            DORY_DMA_MAX_PENDING};
static xfer_list_t g_ram = {"RAM requests", "pi_cl_ram_read / pi_cl_ram_write", "request", "req",
                            sizeof(pi_cl_ram_req_t), offsetof(pi_cl_ram_req_t, state), g_ram_slots, 0,
                            DORY_RAM_MAX_PENDING};
static uint32_t g_next_id = 1;

/* Bytes moved since the last dory_dma_count_layer, per direction. */
enum { COUNT_L2_L1, COUNT_L1_L2, COUNT_L3_L2, COUNT_L2_L3, COUNT_DIRECTIONS };
static uint64_t g_moved[COUNT_DIRECTIONS];

void dory_dma_count_layer(int layer)
{
    runtime_enter();
    printf("dma layer %d l2_l1 %" PRIu64 " l1_l2 %" PRIu64 " l3_l2 %" PRIu64 " l2_l3 %" PRIu64 "\n", layer,
           g_moved[COUNT_L2_L1], g_moved[COUNT_L1_L2], g_moved[COUNT_L3_L2], g_moved[COUNT_L2_L3]);
    memset(g_moved, 0, sizeof g_moved);
    runtime_leave();
}

/* The destination rows of a transfer: ext side strided, loc side contiguous. */
static void xfer_poison(const xfer_t *x)
{
    if (x->ext2loc) {
        memset(x->loc, POISON_INFLIGHT, x->size);
        return;
    }
    for (uint32_t r = 0; r < x->size / x->length; r++)
        memset(x->ext + (uint64_t)r * x->stride, POISON_INFLIGHT, x->length);
}

static void xfer_copy(const xfer_t *x)
{
    for (uint32_t r = 0; r < x->size / x->length; r++) {
        uint8_t *e = x->ext + (uint64_t)r * x->stride, *l = x->loc + (uint64_t)r * x->length;
        if (x->ext2loc)
            memmove(l, e, x->length);
        else
            memmove(e, l, x->length);
    }
}

static uint32_t *handle_state(const xfer_list_t *list, const void *key)
{
    return (uint32_t *)((uintptr_t)key + list->state_offset);
}

static long xfer_find(const xfer_list_t *list, const void *key)
{
    for (uint32_t i = 0; i < list->n; i++)
        if (list->v[i].key == key)
            return (long)i;
    return -1;
}

/* Adds the transfer of `key`, which must not be in flight already (the caller checks its
 * addresses next: a failure there aborts). */
static xfer_t *xfer_add(xfer_list_t *list, const void *key, const char *fn)
{
    long i = xfer_find(list, key);
    if (i >= 0)
        dory_fatal("%s: the %s at %p is still in flight (transfer #%" PRIu32 " issued by core %" PRIu32
                   "): wait for it before reusing the %s structure",
                   fn, list->handle_name, key, list->v[i].id, list->v[i].core, list->handle_name);
    if (list->n == list->max)
        dory_fatal("%s: more than %" PRIu32 " %s in flight; the hardware tracks transfers with a small number of "
                   "counters, wait for earlier ones first",
                   fn, list->max, list->kind);
    xfer_t *x = &list->v[list->n++];
    memset(x, 0, sizeof *x);
    x->key = key;
    x->id = g_next_id++;
    x->core = platform_core();
    return x;
}

/* The caller filled its handle: the transfer is in flight, its destination poisoned. */
static void xfer_issued(const xfer_list_t *list, xfer_t *x)
{
    *handle_state(list, x->key) = STATE_INFLIGHT;
    memcpy(x->issued, x->key, list->handle_size);
    xfer_poison(x);
}

/* Removes and returns the in-flight transfer of the handle `key` being waited for. */
static xfer_t xfer_take(xfer_list_t *list, const void *key, const char *fn)
{
    require_cluster(fn);
    if (!key)
        dory_fatal("%s: %s is NULL", fn, list->argument);
    long i = xfer_find(list, key);
    if (i < 0) {
        if (*handle_state(list, key) == STATE_DONE)
            dory_fatal("%s: the %s at %p was already waited for (waited twice)", fn, list->handle_name, key);
        dory_fatal("%s: the %s at %p was never issued (no %s in flight with it)", fn, list->handle_name, key,
                   list->issue_fns);
    }
    xfer_t x = list->v[i];
    if (memcmp(x.issued, key, list->handle_size) != 0)
        dory_fatal("%s: the %s structure at %p was modified while its transfer #%" PRIu32 " was in flight", fn,
                   list->handle_name, key, x.id);
    memmove(&list->v[i], &list->v[i + 1], (list->n - (uint32_t)i - 1) * sizeof *list->v);
    list->n--;
    return x;
}

/* The wait found the transfer's buffers still live: the data arrives. */
static void xfer_complete(const xfer_list_t *list, const xfer_t *x)
{
    xfer_copy(x);
    *handle_state(list, x->key) = STATE_DONE;
}

void memory_check_transfers_done(const char *fn)
{
    if (g_dma.n || g_ram.n)
        dory_fatal("%s: the cluster task ended with %" PRIu32 " cluster-DMA transfer(s) and %" PRIu32
                   " RAM request(s) never waited for (first: %s #%" PRIu32 ")",
                   fn, g_dma.n, g_ram.n, g_dma.n ? "DMA" : "RAM", g_dma.n ? g_dma.v[0].id : g_ram.v[0].id);
}

/* ------------------------------------------------------------------------------ cluster DMA (L2 <-> L1) */

static void dma_issue(uint32_t ext, uint32_t loc, uint32_t size, uint32_t stride, uint32_t length,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd, int is_2d)
{
    const char *fn = is_2d ? "pi_cl_dma_cmd_2d" : "pi_cl_dma_cmd";
    require_cluster(fn);
    if (!cmd)
        dory_fatal("%s: cmd is NULL", fn);
    if (dir != PI_CL_DMA_DIR_LOC2EXT && dir != PI_CL_DMA_DIR_EXT2LOC)
        dory_fatal("%s: invalid direction %d", fn, (int)dir);
    if (size == 0)
        dory_fatal("%s: transfer of 0 bytes (ext 0x%08" PRIx32 ", loc 0x%08" PRIx32 ")", fn, ext, loc);
    if (size > DORY_DMA_MAX_FIELD)
        dory_fatal("%s: size %" PRIu32 " exceeds %u, the largest a single cluster-DMA command carries on GAP8 "
                   "(split the transfer)",
                   fn, size, DORY_DMA_MAX_FIELD);
    if (is_2d) {
        if (length == 0)
            dory_fatal("%s: length (bytes per line) is 0", fn);
        if (length > DORY_DMA_MAX_FIELD || stride > DORY_DMA_MAX_FIELD)
            dory_fatal("%s: stride %" PRIu32 " / length %" PRIu32 " exceed %u, the 16-bit limit of the GAP8 2-D "
                       "cluster-DMA arguments",
                       fn, stride, length, DORY_DMA_MAX_FIELD);
        if (size % length != 0)
            dory_fatal("%s: size %" PRIu32 " is not a multiple of length %" PRIu32
                       " (size is the total number of bytes, length the bytes per line)",
                       fn, size, length);
    } else {
        stride = length = size;
    }
    uint64_t ext_span = (uint64_t)(size / length - 1) * stride + length;
    arena_ensure(&g_l2);
    xfer_t *x = xfer_add(&g_dma, cmd, fn);
    if (in_arena(&g_l2, loc, size) && in_arena(&g_l1, ext, ext_span))
        dory_fatal("%s: loc 0x%08" PRIx32 " is in L2 and ext 0x%08" PRIx32 " is in L1: are ext and loc swapped? "
                   "(ext is the L2 address, loc the L1 address, whatever the direction)",
                   fn, loc, ext);
    x->ext = check_range(&g_l2, ext, ext_span, fn, "ext (L2)");
    x->loc = check_range(&g_l1, loc, size, fn, "loc (L1)");
    x->size = size;
    x->stride = stride;
    x->length = length;
    x->ext2loc = dir == PI_CL_DMA_DIR_EXT2LOC;
    g_moved[x->ext2loc ? COUNT_L2_L1 : COUNT_L1_L2] += size;
    cmd->id = x->id;
    cmd->ext = ext;
    cmd->loc = loc;
    cmd->size = size;
    cmd->stride = stride;
    cmd->length = length;
    cmd->dir = dir;
    xfer_issued(&g_dma, x);
}

void pi_cl_dma_cmd(uint32_t ext, uint32_t loc, uint32_t size, pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd)
{
    runtime_enter();
    dma_issue(ext, loc, size, 0, 0, dir, cmd, 0);
    runtime_leave();
}

void pi_cl_dma_cmd_2d(uint32_t ext, uint32_t loc, uint32_t size, uint32_t stride, uint32_t length,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd)
{
    runtime_enter();
    dma_issue(ext, loc, size, stride, length, dir, cmd, 1);
    runtime_leave();
}

void pi_cl_dma_cmd_wait(pi_cl_dma_cmd_t *cmd)
{
    const char *fn = "pi_cl_dma_cmd_wait";
    runtime_enter();
    xfer_t x = xfer_take(&g_dma, cmd, fn);
    /* the buffers must still be live */
    check_range(&g_l2, cmd->ext, (uint64_t)(x.size / x.length - 1) * x.stride + x.length, fn,
                "ext (L2) of this in-flight transfer");
    check_range(&g_l1, cmd->loc, x.size, fn, "loc (L1) of this in-flight transfer");
    xfer_complete(&g_dma, &x);
    runtime_leave();
}

/* ------------------------------------------------------------------------------ L1 / L2 heaps */

static int g_l1_powered; /* the cluster is open: L1 exists */

void memory_l1_power(int on)
{
    arena_reset(&g_l1);
    g_l1_powered = on;
}

void *pi_cl_l1_malloc(struct pi_device *device, uint32_t size)
{
    const char *fn = "pi_cl_l1_malloc";
    runtime_enter();
    require_cluster_device(device, fn, 1);
    if (!g_l1_powered)
        dory_fatal("%s: the cluster is not open (L1 exists only while the cluster is powered)", fn);
    void *p = g_l1.base + arena_alloc(&g_l1, size);
    runtime_leave();
    return p;
}

void pi_cl_l1_free(struct pi_device *device, void *chunk, int size)
{
    const char *fn = "pi_cl_l1_free";
    runtime_enter();
    require_cluster_device(device, fn, 1);
    if (!chunk)
        dory_fatal("%s: chunk is NULL", fn);
    if (!g_l1_powered)
        dory_fatal("%s: the cluster is not open", fn);
    if (!in_arena(&g_l1, (uintptr_t)chunk, 0))
        dory_fatal("%s: %p is not in the L1 arena", fn, chunk);
    arena_free(&g_l1, (uintptr_t)chunk - (uintptr_t)g_l1.base, size, fn);
    runtime_leave();
}

static void require_fabric_controller(const char *fn)
{
    if (platform_in_cluster())
        dory_fatal("%s called from the cluster: it is a fabric-controller call", fn);
}

void *pi_l2_malloc(int size)
{
    const char *fn = "pi_l2_malloc";
    runtime_enter();
    if (size < 0)
        dory_fatal("%s: negative size %d", fn, size);
    require_fabric_controller(fn);
    arena_ensure(&g_l2);
    void *p = g_l2.base + arena_alloc(&g_l2, (uint32_t)size);
    runtime_leave();
    return p;
}

void pi_l2_free(void *chunk, int size)
{
    const char *fn = "pi_l2_free";
    runtime_enter();
    if (!chunk)
        dory_fatal("%s: chunk is NULL", fn);
    require_fabric_controller(fn);
    arena_ensure(&g_l2);
    if (!in_arena(&g_l2, (uintptr_t)chunk, 0))
        dory_fatal("%s: %p is not in the L2 arena", fn, chunk);
    arena_free(&g_l2, (uintptr_t)chunk - (uintptr_t)g_l2.base, size, fn);
    runtime_leave();
}

/* ------------------------------------------------------------------------------ RAM (L3) */

struct __pi_ram_api_t {
    uint32_t magic;
};
static struct __pi_ram_api_t g_hyperram_api = {0x48595052u};
static int g_ram_tag; /* &g_ram_tag is the data of an opened RAM device */
static int g_ram_open_count;
static int g_l3_reserved; /* block 0 of L3 is the reserved address 0 */

void pi_hyperram_conf_init(struct pi_hyperram_conf *conf)
{
    if (!conf)
        dory_fatal("pi_hyperram_conf_init: conf is NULL");
    memset(conf, 0, sizeof *conf);
    conf->ram.api = &g_hyperram_api;
    conf->ram_start = 0;
    conf->ram_size = DORY_L3_SIZE;
    conf->reserve_addr_0 = 1;
}

int32_t pi_ram_open(struct pi_device *device)
{
    const char *fn = "pi_ram_open";
    runtime_enter();
    struct pi_hyperram_conf *conf = require_device_config(device, fn, "pi_hyperram_conf_init");
    if (conf->ram.api != &g_hyperram_api)
        dory_fatal("%s: the device configuration is not a RAM configuration (pi_hyperram_conf_init)", fn);
    if (platform_in_cluster())
        dory_fatal("%s called from the cluster", fn);
    if (g_ram_open_count == 0) {
        if (conf->ram_size <= 8 || conf->ram_size > DORY_L3_SIZE)
            dory_fatal("%s: ram_size %d out of range (0, %d]", fn, conf->ram_size, DORY_L3_SIZE);
        g_l3.cap = (uint32_t)conf->ram_size;
        arena_reset(&g_l3);
        g_l3_reserved = conf->reserve_addr_0 != 0;
        if (g_l3_reserved)
            (void)arena_alloc(&g_l3, DORY_ALLOC_ALIGN); /* address 0 is never handed out */
    }
    g_ram_open_count++;
    device->data = &g_ram_tag;
    runtime_leave();
    return 0;
}

static void require_ram(struct pi_device *device, const char *fn)
{
    if (!device || device->data != &g_ram_tag || g_ram_open_count <= 0)
        dory_fatal("%s: the device is not an opened RAM (pi_ram_open)", fn);
}

void pi_ram_close(struct pi_device *device)
{
    const char *fn = "pi_ram_close";
    runtime_enter();
    require_ram(device, fn);
    if (platform_in_cluster())
        dory_fatal("%s called from the cluster", fn);
    if (g_ram.n)
        dory_fatal("%s: %" PRIu32 " RAM request(s) still in flight", fn, g_ram.n);
    if (--g_ram_open_count == 0)
        g_l3.ready = 0; /* its contents are lost; the memory is kept for the next open */
    device->data = NULL;
    runtime_leave();
}

int pi_ram_alloc(struct pi_device *device, uint32_t *addr, uint32_t size)
{
    runtime_enter();
    require_ram(device, "pi_ram_alloc");
    if (!addr)
        dory_fatal("pi_ram_alloc: addr is NULL");
    *addr = arena_alloc(&g_l3, size);
    runtime_leave();
    return 0;
}

int pi_ram_free(struct pi_device *device, uint32_t addr, uint32_t size)
{
    const char *fn = "pi_ram_free";
    runtime_enter();
    require_ram(device, fn);
    if (addr >= g_l3.cap)
        dory_fatal("%s: L3 address 0x%08" PRIx32 " is outside the L3 memory (%" PRIu32 " bytes)", fn, addr, g_l3.cap);
    if (g_l3_reserved && addr < DORY_ALLOC_ALIGN)
        dory_fatal("%s: L3 address 0x%08" PRIx32 " is reserved, pi_ram_alloc never hands it out", fn, addr);
    arena_free(&g_l3, addr, size, fn);
    runtime_leave();
    return 0;
}

/* [ram_addr, ram_addr + size) must lie inside one live L3 block; returns its pointer. */
static uint8_t *check_l3(uint32_t ram_addr, uint32_t size, const char *fn)
{
    uint64_t end = (uint64_t)ram_addr + size;
    if (end > g_l3.cap)
        dory_fatal("%s: L3 range [0x%08" PRIx32 ", 0x%08" PRIx64 ") is outside the L3 memory (%" PRIu32 " bytes)", fn,
                   ram_addr, end, g_l3.cap);
    if (arena_find(&g_l3, ram_addr, size) < 0) {
        long i = arena_floor(&g_l3, ram_addr);
        if (g_l3_reserved && i == 0 && ram_addr < DORY_ALLOC_ALIGN)
            dory_fatal("%s: L3 range [0x%08" PRIx32 ", 0x%08" PRIx64 ") is not inside a live pi_ram_alloc block "
                       "(L3 addresses below %d are reserved and never handed out: an L3 address left 0?)",
                       fn, ram_addr, end, DORY_ALLOC_ALIGN);
        if (i >= 0 && ram_addr < (uint64_t)g_l3.blk[i].off + g_l3.blk[i].rsize)
            dory_fatal("%s: L3 range [0x%08" PRIx32 ", 0x%08" PRIx64 ") overruns the L3 block at 0x%08" PRIx32
                       " of %" PRIu32 " bytes",
                       fn, ram_addr, end, g_l3.blk[i].off, g_l3.blk[i].size);
        dory_fatal("%s: L3 range [0x%08" PRIx32 ", 0x%08" PRIx64 ") is not inside a live pi_ram_alloc block", fn,
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
        dory_fatal("%s: data is NULL", fn);
    if (g_l1.base && a < (uintptr_t)g_l1.base + g_l1.cap && a + size > (uintptr_t)g_l1.base)
        dory_fatal("%s: the buffer %p is in L1; RAM transfers reach L2 only", fn, data);
    if (g_l2.base && a < (uintptr_t)g_l2.base + g_l2.cap && a + size > (uintptr_t)g_l2.base)
        check_range(&g_l2, a, size, fn, "data (L2)");
}

static void ram_sync(struct pi_device *device, uint32_t ram_addr, void *data, uint32_t size, int ext2loc)
{
    const char *fn = ext2loc ? "pi_ram_read" : "pi_ram_write";
    runtime_enter();
    require_ram(device, fn);
    if (platform_in_cluster())
        dory_fatal("%s called from the cluster: it is a fabric-controller call (use pi_cl_ram_%s)", fn,
                   ext2loc ? "read" : "write");
    uint8_t *l3 = check_l3(ram_addr, size, fn);
    check_fc_buffer(data, size, fn);
    if (size) {
        if (ext2loc)
            memcpy(data, l3, size);
        else
            memcpy(l3, data, size);
    }
    runtime_leave();
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
    runtime_enter();
    require_cluster(fn);
    require_ram(device, fn);
    if (!req)
        dory_fatal("%s: req is NULL", fn);
    if (size == 0)
        dory_fatal("%s: transfer of 0 bytes", fn);
    xfer_t *x = xfer_add(&g_ram, req, fn);
    arena_ensure(&g_l2);
    x->ext = check_l3(ram_addr, size, fn);
    x->loc = check_range(&g_l2, (uintptr_t)addr, size, fn, "addr (L2)");
    x->size = x->stride = x->length = size;
    x->ext2loc = ext2loc;
    g_moved[ext2loc ? COUNT_L3_L2 : COUNT_L2_L3] += size;
    req->device = device;
    req->addr = addr;
    req->pi_ram_addr = ram_addr;
    req->size = size;
    req->id = x->id;
    req->ext2loc = (unsigned char)ext2loc;
    xfer_issued(&g_ram, x);
    runtime_leave();
}

static void ram_wait(pi_cl_ram_req_t *req, const char *fn)
{
    runtime_enter();
    xfer_t x = xfer_take(&g_ram, req, fn);
    /* the buffers must still be live */
    check_l3(req->pi_ram_addr, x.size, fn);
    check_range(&g_l2, (uintptr_t)req->addr, x.size, fn, "addr (L2) of this in-flight request");
    xfer_complete(&g_ram, &x);
    runtime_leave();
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
