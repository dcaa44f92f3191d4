/*
 * dory-mlir: host (x86-64 Linux) implementation of the PMSIS subset of pmsis.h.
 *
 * Its purpose is to run generated code off-target *and to catch its bugs*, so it implements the
 * memory and DMA contract of GAP8 strictly rather than conveniently:
 *
 *  Memory
 *   - L1 and L2 are arenas of exactly DORY_L1_SIZE / DORY_L2_SIZE bytes mapped below 2 GiB
 *     (mmap MAP_32BIT), so a uint32_t holds an arena address exactly.  The arena ends at (or
 *     < 64 bytes before) a PROT_NONE guard page.  A first-fit allocator with frees hands out
 *     8-byte aligned blocks of round_up(size, 8) bytes; its bookkeeping lives outside the arena,
 *     so the whole budget is usable.  Fresh blocks are filled with 0x5A, freed blocks with 0xDE.
 *   - An allocation that does not fit prints
 *       pmsis-host: L1 allocation of N bytes exceeds the L1 budget (used U of S)
 *     (also for L2 and L3) and the process exits with status 3 (DORY_HOST_EXIT_BUDGET).
 *   - L3 (HyperRAM) is a separate heap buffer of DORY_L3_SIZE bytes, reachable only through the
 *     RAM API with the offsets pi_ram_alloc hands out (offset 0 is never handed out).
 *   - L1 exists while the cluster is open: pi_cluster_open (first open) starts an empty L1 heap,
 *     the last pi_cluster_close discards it.
 *   - With -fsanitize=address, free space, padding and freed blocks of the arenas are poisoned,
 *     so a kernel that overruns its buffer into free arena space is reported by ASan.
 *
 *  Transfers (cluster DMA L2<->L1, cluster RAM requests L3<->L2)
 *   - Issuing validates every address: `loc` must lie inside one live L1 allocation, `ext` inside
 *     one live L2 allocation (both ends, 2-D span included), the L3 range inside one live
 *     pi_ram_alloc block, the L2 side of a RAM request inside one live L2 allocation.
 *   - Issuing fills the destination with 0xA5; the copy is done by the wait, from the source as
 *     it is at that moment.  Reading a destination before its wait therefore reads 0xA5, and
 *     changing a source before the wait changes what arrives.
 *   - Waiting twice, waiting on a never-issued command, reusing a command that is in flight,
 *     modifying it, freeing one of its buffers before the wait, more than DORY_DMA_MAX_PENDING
 *     transfers in flight, or a cluster task that ends with transfers not waited: abort.
 *
 *  Cluster
 *   - pi_cluster_send_task_to_cl runs the entry on the calling thread as the cluster controller
 *     (core 0).  pi_cl_team_fork runs entry on nb_cores threads (core ids 0..n-1, core 0 is the
 *     caller) and returns after all of them returned; pi_cl_team_barrier is a real barrier that
 *     also detects a mismatch (some cores waiting while the others already left the fork).
 *
 *  Every contract violation prints "pmsis-host: <function>: <what>" to stderr and aborts.
 *
 * Build: gcc -std=c11 -Wall -Wextra -Werror -O2 -pthread -I dory_mlir/runtime/host ...
 *        [-DDORY_L1_SIZE=8000] [-DDORY_L2_SIZE=...] [-DDORY_L3_SIZE=...]
 */
#define _GNU_SOURCE /* MAP_32BIT */

#include "pmsis.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------ configuration */

#ifndef DORY_L1_SIZE
#define DORY_L1_SIZE 64000
#endif
#ifndef DORY_L2_SIZE
#define DORY_L2_SIZE 512000
#endif
#ifndef DORY_L3_SIZE
#define DORY_L3_SIZE 8388608
#endif
#ifndef DORY_CLUSTER_CORES
#define DORY_CLUSTER_CORES 8
#endif
#ifndef DORY_ALLOC_ALIGN
#define DORY_ALLOC_ALIGN 8
#endif
/* Transfers in flight at once (the cluster DMA tracks transfers with a few HW counters). */
#ifndef DORY_DMA_MAX_PENDING
#define DORY_DMA_MAX_PENDING 16
#endif
#ifndef DORY_RAM_MAX_PENDING
#define DORY_RAM_MAX_PENDING 64
#endif
/* Largest size / stride / length of one DMA command: the GAP8 runtimes pass them as 16-bit
 * values (CL_DMA_COMMON's uint16_t size, `unsigned short` 2-D arguments), larger ones would be
 * truncated on the chip. */
#ifndef DORY_DMA_MAX_FIELD
#define DORY_DMA_MAX_FIELD 65535u
#endif
#ifndef DORY_HOST_PERF_HZ
#define DORY_HOST_PERF_HZ 100000000ull
#endif
#ifndef DORY_HOST_EXIT_BUDGET
#define DORY_HOST_EXIT_BUDGET 3
#endif

#define POISON_INFLIGHT 0xA5 /* destination of a transfer not waited yet */
#define FILL_ALLOC 0x5A      /* freshly allocated (uninitialised) memory */
#define FILL_FREE 0xDE       /* freed / never allocated arena memory */

_Static_assert(DORY_L1_SIZE > 0 && DORY_L1_SIZE <= 0x20000000, "DORY_L1_SIZE out of range");
_Static_assert(DORY_L2_SIZE > 0 && DORY_L2_SIZE <= 0x20000000, "DORY_L2_SIZE out of range");
_Static_assert(DORY_L3_SIZE > 8 && DORY_L3_SIZE <= 0x7fffffff, "DORY_L3_SIZE out of range");
_Static_assert(DORY_CLUSTER_CORES >= 1 && DORY_CLUSTER_CORES <= 64, "DORY_CLUSTER_CORES out of range");
_Static_assert((DORY_ALLOC_ALIGN & (DORY_ALLOC_ALIGN - 1)) == 0 && DORY_ALLOC_ALIGN <= 64,
               "DORY_ALLOC_ALIGN must be a power of two <= 64");

/* ------------------------------------------------------------------------------ AddressSanitizer */

#if defined(__SANITIZE_ADDRESS__)
#define HOST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOST_ASAN 1
#endif
#endif

#ifdef HOST_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* ------------------------------------------------------------------------------ diagnostics */

static void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fatal(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("pmsis-host: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

/* ------------------------------------------------------------------------------ global state */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* arenas, transfers */

static _Thread_local uint32_t tls_core;   /* pi_core_id() */
static _Thread_local int tls_in_cluster;  /* running cluster code (controller or team) */
static _Thread_local int tls_in_fork;     /* running inside pi_cl_team_fork */

/* ------------------------------------------------------------------------------ arenas */

typedef struct {
    uint32_t off;   /* offset in the arena */
    uint32_t size;  /* requested size */
    uint32_t rsize; /* size taken from the budget: round_up(max(size, 1), DORY_ALLOC_ALIGN) */
} block_t;

typedef struct {
    const char *name; /* "L1", "L2", "L3" */
    const char *alloc_fn;
    uint8_t *base;    /* host address of offset 0 (NULL: not created) */
    uint32_t cap;     /* budget in bytes */
    uint32_t used;    /* sum of rsize of the live blocks */
    block_t *blk;     /* live blocks sorted by offset */
    size_t n, nalloc;
} arena_t;

static arena_t g_l1 = {"L1", "pi_cl_l1_malloc", NULL, DORY_L1_SIZE, 0, NULL, 0, 0};
static arena_t g_l2 = {"L2", "pi_l2_malloc", NULL, DORY_L2_SIZE, 0, NULL, 0, 0};
static arena_t g_l3 = {"L3", "pi_ram_alloc", NULL, 0, 0, NULL, 0, 0};

static uint32_t round_up_align(uint32_t size)
{
    uint64_t s = size ? size : 1;
    return (uint32_t)((s + DORY_ALLOC_ALIGN - 1) & ~(uint64_t)(DORY_ALLOC_ALIGN - 1));
}

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
        fatal("cannot map the %s arena (%" PRIu32 " bytes) below 2 GiB (%s); addresses are passed as "
              "uint32_t and must not be truncated",
              name, cap, strerror(errno));
    uint8_t *lo = (uint8_t *)p + page;
    uint8_t *hi = lo + body;
    if (mprotect(p, page, PROT_NONE) != 0 || mprotect(hi, page, PROT_NONE) != 0)
        fatal("cannot protect the guard pages of the %s arena (%s)", name, strerror(errno));
    uint8_t *base = (uint8_t *)((uintptr_t)(hi - cap) & ~(uintptr_t)63);
    if ((uint64_t)(uintptr_t)base + cap > limit || (uint64_t)(uint32_t)(uintptr_t)base != (uintptr_t)base)
        fatal("the %s arena at %p is not addressable with 32 bits", name, (void *)base);
    memset(lo, FILL_FREE, body);
    POISON(lo, body);
    return base;
}

static void arena_ensure(arena_t *a)
{
    if (!a->base)
        a->base = map_low(a->name, a->cap);
}

/* Drops every block of the arena (L1 at cluster power-up / power-down). */
static void arena_reset(arena_t *a)
{
    arena_ensure(a);
    UNPOISON(a->base, a->cap);
    memset(a->base, FILL_FREE, a->cap);
    POISON(a->base, a->cap);
    a->n = 0;
    a->used = 0;
}

static uint32_t arena_addr(const arena_t *a, uint32_t off) { return (uint32_t)(uintptr_t)(a->base + off); }

/* First fit.  Returns the offset; exits loudly (status 3) when the block does not fit. */
static uint32_t arena_alloc(arena_t *a, uint32_t size)
{
    uint32_t rsize = round_up_align(size);
    uint64_t prev_end = 0;
    size_t i = 0, largest = 0;
    for (; i <= a->n; i++) {
        uint64_t next = i < a->n ? a->blk[i].off : a->cap;
        uint64_t gap = next > prev_end ? next - prev_end : 0;
        if (gap > largest)
            largest = (size_t)gap;
        if (gap >= rsize)
            break;
        if (i < a->n)
            prev_end = (uint64_t)a->blk[i].off + a->blk[i].rsize;
    }
    if (i > a->n) {
        fflush(stdout);
        fprintf(stderr, "pmsis-host: %s allocation of %" PRIu32 " bytes exceeds the %s budget (used %" PRIu32
                        " of %" PRIu32 ")\n",
                a->name, size, a->name, a->used, a->cap);
        if ((uint64_t)a->used + rsize <= a->cap)
            fprintf(stderr, "pmsis-host: (the %s heap is fragmented: the largest free block has %zu bytes)\n",
                    a->name, largest);
        fflush(stderr);
        _exit(DORY_HOST_EXIT_BUDGET);
    }
    if (a->n == a->nalloc) {
        size_t nn = a->nalloc ? 2 * a->nalloc : 64;
        block_t *nb = realloc(a->blk, nn * sizeof *nb);
        if (!nb)
            fatal("out of host memory");
        a->blk = nb;
        a->nalloc = nn;
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
    if (i < 0)
        return -1;
    if (off + len > (uint64_t)a->blk[i].off + a->blk[i].size)
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
    uint8_t *p = a->base + off;
    memset(p, FILL_FREE, a->blk[i].size);
    POISON(p, a->blk[i].rsize);
    a->used -= a->blk[i].rsize;
    memmove(&a->blk[i], &a->blk[i + 1], (a->n - (size_t)i - 1) * sizeof *a->blk);
    a->n--;
}

static int in_arena(const arena_t *a, uint64_t addr, uint64_t len)
{
    uint64_t b = (uintptr_t)a->base;
    return a->base && addr >= b && addr + len <= b + a->cap;
}

static void describe_addr(uint64_t addr, char *buf, size_t n)
{
    if (in_arena(&g_l1, addr, 0) && addr < (uintptr_t)g_l1.base + g_l1.cap)
        snprintf(buf, n, "0x%08" PRIx64 " (L1 offset %" PRIu64 ")", addr, addr - (uintptr_t)g_l1.base);
    else if (in_arena(&g_l2, addr, 0) && addr < (uintptr_t)g_l2.base + g_l2.cap)
        snprintf(buf, n, "0x%08" PRIx64 " (L2 offset %" PRIu64 ")", addr, addr - (uintptr_t)g_l2.base);
    else
        snprintf(buf, n, "0x%08" PRIx64 " (outside the L1 and L2 arenas: not memory from pi_cl_l1_malloc / "
                         "pi_l2_malloc, e.g. a global, stack or malloc buffer, or a truncated 64-bit pointer)",
                 addr);
}

/* [addr, addr + len) must lie inside one live block of `a`; returns its host pointer. */
static uint8_t *check_range(const arena_t *a, uint64_t addr, uint64_t len, const char *fn, const char *what)
{
    char d[256];
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

#define STATE_INFLIGHT 0x1F11F11Fu
#define STATE_DONE 0xD0D0D0D0u

typedef struct {
    const void *key;  /* the pi_cl_dma_cmd_t / pi_cl_ram_req_t */
    uint32_t id;
    uint32_t ext_addr, loc_addr; /* DMA: 32-bit addresses; RAM: L3 offset, unused */
    uint8_t *ext, *loc;          /* host pointers: ext = L2 (DMA) / L3 (RAM), loc = L1 (DMA) / L2 (RAM) */
    uint32_t size, stride, length;
    int ext2loc;
    uint32_t core;
} xfer_t;

static xfer_t g_dma[DORY_DMA_MAX_PENDING];
static size_t g_ndma;
static xfer_t g_ram[DORY_RAM_MAX_PENDING];
static size_t g_nram;
static uint32_t g_next_id = 1;

static long xfer_find(const xfer_t *v, size_t n, const void *key)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].key == key)
            return (long)i;
    return -1;
}

static void xfer_remove(xfer_t *v, size_t *n, long i)
{
    memmove(&v[i], &v[i + 1], (*n - (size_t)i - 1) * sizeof *v);
    (*n)--;
}

/* The destination rows of a transfer: ext side strided, loc side contiguous. */
static void xfer_poison(const xfer_t *x)
{
    uint32_t rows = x->size / x->length;
    if (x->ext2loc) {
        memset(x->loc, POISON_INFLIGHT, x->size);
    } else {
        for (uint32_t r = 0; r < rows; r++)
            memset(x->ext + (uint64_t)r * x->stride, POISON_INFLIGHT, x->length);
    }
}

static void xfer_copy(const xfer_t *x)
{
    uint32_t rows = x->size / x->length;
    for (uint32_t r = 0; r < rows; r++) {
        uint8_t *e = x->ext + (uint64_t)r * x->stride;
        uint8_t *l = x->loc + (uint64_t)r * x->length;
        if (x->ext2loc)
            memmove(l, e, x->length);
        else
            memmove(e, l, x->length);
    }
}

static void require_cluster(const char *fn)
{
    if (!tls_in_cluster)
        fatal("%s called outside a cluster task: it is a cluster-side call (from the entry of "
              "pi_cluster_send_task_to_cl or of pi_cl_team_fork)",
              fn);
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
    if (size > DORY_DMA_MAX_FIELD)
        fatal("%s: size %" PRIu32 " exceeds %u, the largest a single cluster-DMA command carries on GAP8 "
              "(split the transfer)",
              fn, size, DORY_DMA_MAX_FIELD);
    if (is_2d) {
        if (length == 0)
            fatal("%s: length (bytes per line) is 0", fn);
        if (length > DORY_DMA_MAX_FIELD || stride > DORY_DMA_MAX_FIELD)
            fatal("%s: stride %" PRIu32 " / length %" PRIu32 " exceed %u, the 16-bit limit of the GAP8 2-D "
                  "cluster-DMA arguments",
                  fn, stride, length, DORY_DMA_MAX_FIELD);
        if (size % length != 0)
            fatal("%s: size %" PRIu32 " is not a multiple of length %" PRIu32
                  " (size is the total number of bytes, length the bytes per line)",
                  fn, size, length);
    } else {
        stride = length = size;
    }
    uint64_t rows = size / length;
    uint64_t ext_span = (rows - 1) * (uint64_t)stride + length;

    pthread_mutex_lock(&g_lock);
    arena_ensure(&g_l1);
    arena_ensure(&g_l2);
    long i = xfer_find(g_dma, g_ndma, cmd);
    if (i >= 0)
        fatal("%s: the command at %p is still in flight (transfer #%" PRIu32 " issued by core %" PRIu32
              "): wait for it before reusing the command structure",
              fn, (void *)cmd, g_dma[i].id, g_dma[i].core);
    if (g_ndma == DORY_DMA_MAX_PENDING)
        fatal("%s: more than %d cluster-DMA transfers in flight; the cluster DMA tracks transfers with a "
              "small number of counters, wait for earlier ones first",
              fn, DORY_DMA_MAX_PENDING);
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
    x.core = tls_core;
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
    pthread_mutex_unlock(&g_lock);
}

void pi_cl_dma_cmd(uint32_t ext, uint32_t loc, uint32_t size, pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd)
{
    dma_issue(ext, loc, size, 0, 0, dir, cmd, 0);
}

void pi_cl_dma_cmd_2d(uint32_t ext, uint32_t loc, uint32_t size, uint32_t stride, uint32_t length,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd)
{
    dma_issue(ext, loc, size, stride, length, dir, cmd, 1);
}

void pi_cl_dma_cmd_wait(pi_cl_dma_cmd_t *cmd)
{
    const char *fn = "pi_cl_dma_cmd_wait";
    require_cluster(fn);
    if (!cmd)
        fatal("%s: cmd is NULL", fn);
    pthread_mutex_lock(&g_lock);
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
    /* the buffers must still be live */
    check_range(&g_l2, x.ext_addr, (uint64_t)(x.size / x.length - 1) * x.stride + x.length, fn,
                "ext (L2) of this in-flight transfer");
    check_range(&g_l1, x.loc_addr, x.size, fn, "loc (L1) of this in-flight transfer");
    xfer_copy(&x);
    xfer_remove(g_dma, &g_ndma, i);
    cmd->state = STATE_DONE;
    pthread_mutex_unlock(&g_lock);
}

/* ------------------------------------------------------------------------------ devices, cluster */

static int g_cluster_tag; /* &g_cluster_tag is the data of an opened cluster device */
static int g_cluster_open_count;
static int g_task_cores; /* cores of the running cluster task */
static int g_last_fork;  /* team size used by pi_cl_team_fork(0, ...) */

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
    conf->id = 0;
    conf->flags = PI_CLUSTER_FLAGS_FORK_BASED;
}

int pi_cluster_open(struct pi_device *device)
{
    if (!device || !device->config)
        fatal("pi_cluster_open: the device has no configuration (pi_cluster_conf_init + pi_open_from_conf)");
    struct pi_cluster_conf *conf = device->config;
    if (conf->device_type != PI_DEVICE_CLUSTER_TYPE)
        fatal("pi_cluster_open: the device configuration is not a cluster configuration (pi_cluster_conf_init)");
    if (conf->id != 0)
        fatal("pi_cluster_open: cluster id %d does not exist (GAP8 has one cluster, id 0)", conf->id);
    if (tls_in_cluster)
        fatal("pi_cluster_open called from the cluster");
    pthread_mutex_lock(&g_lock);
    if (g_cluster_open_count++ == 0)
        arena_reset(&g_l1); /* power-up: empty L1 heap */
    pthread_mutex_unlock(&g_lock);
    device->data = &g_cluster_tag;
    return 0;
}

static void require_cluster_device(struct pi_device *device, const char *fn, int allow_null)
{
    if (!device && allow_null)
        return;
    if (!device || device->data != &g_cluster_tag)
        fatal("%s: the device is not an opened cluster (pi_cluster_open)", fn);
}

int pi_cluster_close(struct pi_device *device)
{
    require_cluster_device(device, "pi_cluster_close", 0);
    if (tls_in_cluster)
        fatal("pi_cluster_close called from the cluster");
    pthread_mutex_lock(&g_lock);
    if (g_cluster_open_count <= 0)
        fatal("pi_cluster_close: the cluster is not open");
    if (--g_cluster_open_count == 0)
        arena_reset(&g_l1); /* power-down: L1 contents and heap are lost */
    pthread_mutex_unlock(&g_lock);
    device->data = NULL;
    return 0;
}

struct pi_cluster_task *pi_cluster_task(struct pi_cluster_task *task, void (*entry)(void *), void *arg)
{
    if (!task)
        fatal("pi_cluster_task: task is NULL");
    memset(task, 0, sizeof *task);
    task->entry = entry;
    task->arg = arg;
    task->stacks = NULL;
    task->stack_size = 0;
    task->slave_stack_size = 0;
    task->nb_cores = 0;
    return task;
}

int pi_cluster_send_task_to_cl(struct pi_device *device, struct pi_cluster_task *task)
{
    const char *fn = "pi_cluster_send_task_to_cl";
    require_cluster_device(device, fn, 0);
    if (!task || !task->entry)
        fatal("%s: no task or no task entry", fn);
    if (tls_in_cluster)
        fatal("%s called from the cluster (nested cluster task)", fn);
    if (task->nb_cores < 0 || task->nb_cores > DORY_CLUSTER_CORES)
        fatal("%s: task nb_cores = %d, the cluster has %d cores", fn, task->nb_cores, DORY_CLUSTER_CORES);
    g_task_cores = task->nb_cores ? task->nb_cores : DORY_CLUSTER_CORES;
    g_last_fork = g_task_cores;
    tls_in_cluster = 1;
    tls_core = 0;
    task->entry(task->arg);
    tls_in_cluster = 0;
    tls_core = 0;
    pthread_mutex_lock(&g_lock);
    if (g_ndma || g_nram)
        fatal("%s: the cluster task ended with %zu cluster-DMA transfer(s) and %zu RAM request(s) never "
              "waited for (first: %s #%" PRIu32 ")",
              fn, g_ndma, g_nram, g_ndma ? "DMA" : "RAM", g_ndma ? g_dma[0].id : g_ram[0].id);
    pthread_mutex_unlock(&g_lock);
    return 0;
}

int pi_cl_cluster_nb_cores(void) { return DORY_CLUSTER_CORES; }

uint32_t pi_core_id(void) { return tls_core; }

/* ------------------------------------------------------------------------------ team */

static struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    int n;        /* team size */
    int arrived;  /* cores waiting in the current barrier */
    int finished; /* cores returned from the entry */
    unsigned gen;
} g_team = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};

static void team_mismatch(void)
{
    fatal("pi_cl_team_barrier mismatch: %d core(s) wait in pi_cl_team_barrier while %d core(s) already "
          "returned from the forked entry (every core of the team must execute the same barriers)",
          g_team.arrived, g_team.finished);
}

void pi_cl_team_barrier(void)
{
    if (!tls_in_fork)
        fatal("pi_cl_team_barrier called outside pi_cl_team_fork (core %" PRIu32 ")", tls_core);
    pthread_mutex_lock(&g_team.m);
    unsigned gen = g_team.gen;
    if (++g_team.arrived == g_team.n) {
        g_team.arrived = 0;
        g_team.gen++;
        pthread_cond_broadcast(&g_team.c);
    } else {
        if (g_team.arrived + g_team.finished == g_team.n)
            team_mismatch();
        while (gen == g_team.gen)
            pthread_cond_wait(&g_team.c, &g_team.m);
    }
    pthread_mutex_unlock(&g_team.m);
}

static void team_finish(void)
{
    pthread_mutex_lock(&g_team.m);
    g_team.finished++;
    if (g_team.arrived > 0 && g_team.arrived + g_team.finished == g_team.n)
        team_mismatch();
    pthread_mutex_unlock(&g_team.m);
}

/* Worker threads of cores 1..DORY_CLUSTER_CORES-1, created at the first fork and parked between
 * forks (creating threads per fork costs ~1 ms). */
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
        team_finish();
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
            fatal("pi_cl_team_fork: cannot start the thread of core %d (%s)", i, strerror(err));
    }
    pthread_attr_destroy(&attr);
    g_pool.started = 1;
}

void pi_cl_team_fork(int nb_cores, void (*entry)(void *), void *arg)
{
    const char *fn = "pi_cl_team_fork";
    require_cluster(fn);
    if (tls_in_fork)
        fatal("%s called inside a fork (core %" PRIu32 "): nested forks are not supported", fn, tls_core);
    if (!entry)
        fatal("%s: entry is NULL", fn);
    if (nb_cores < 0 || nb_cores > DORY_CLUSTER_CORES)
        fatal("%s: nb_cores = %d, the cluster has %d cores", fn, nb_cores, DORY_CLUSTER_CORES);
    int n = nb_cores ? nb_cores : g_last_fork;
    if (n > g_task_cores)
        fatal("%s: fork on %d cores but the cluster task was sent with nb_cores = %d", fn, n, g_task_cores);
    g_last_fork = n;

    pthread_mutex_lock(&g_team.m);
    g_team.n = n;
    g_team.arrived = 0;
    g_team.finished = 0;
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
    team_finish();
    if (n > 1) {
        pthread_mutex_lock(&g_pool.m);
        while (g_pool.done < n - 1)
            pthread_cond_wait(&g_pool.done_cv, &g_pool.m);
        pthread_mutex_unlock(&g_pool.m);
    }
    tls_in_fork = 0;
    tls_core = 0;
}

/* ------------------------------------------------------------------------------ L1 / L2 heaps */

void *pi_cl_l1_malloc(struct pi_device *device, uint32_t size)
{
    require_cluster_device(device, "pi_cl_l1_malloc", 1);
    pthread_mutex_lock(&g_lock);
    if (g_cluster_open_count <= 0)
        fatal("pi_cl_l1_malloc: the cluster is not open (L1 exists only while the cluster is powered)");
    uint32_t off = arena_alloc(&g_l1, size);
    void *p = g_l1.base + off;
    pthread_mutex_unlock(&g_lock);
    return p;
}

void pi_cl_l1_free(struct pi_device *device, void *chunk, int size)
{
    const char *fn = "pi_cl_l1_free";
    require_cluster_device(device, fn, 1);
    if (!chunk)
        fatal("%s: chunk is NULL", fn);
    pthread_mutex_lock(&g_lock);
    if (g_cluster_open_count <= 0)
        fatal("%s: the cluster is not open", fn);
    if (!in_arena(&g_l1, (uintptr_t)chunk, 0))
        fatal("%s: %p is not in the L1 arena", fn, chunk);
    arena_free(&g_l1, (uintptr_t)chunk - (uintptr_t)g_l1.base, size, fn);
    pthread_mutex_unlock(&g_lock);
}

void *pi_l2_malloc(int size)
{
    if (size < 0)
        fatal("pi_l2_malloc: negative size %d", size);
    if (tls_in_cluster)
        fatal("pi_l2_malloc called from the cluster: it is a fabric-controller call");
    pthread_mutex_lock(&g_lock);
    arena_ensure(&g_l2);
    uint32_t off = arena_alloc(&g_l2, (uint32_t)size);
    void *p = g_l2.base + off;
    pthread_mutex_unlock(&g_lock);
    return p;
}

void pi_l2_free(void *chunk, int size)
{
    const char *fn = "pi_l2_free";
    if (!chunk)
        fatal("%s: chunk is NULL", fn);
    if (tls_in_cluster)
        fatal("%s called from the cluster: it is a fabric-controller call", fn);
    pthread_mutex_lock(&g_lock);
    arena_ensure(&g_l2);
    if (!in_arena(&g_l2, (uintptr_t)chunk, 0))
        fatal("%s: %p is not in the L2 arena", fn, chunk);
    arena_free(&g_l2, (uintptr_t)chunk - (uintptr_t)g_l2.base, size, fn);
    pthread_mutex_unlock(&g_lock);
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
        fatal("pi_hyperram_conf_init: conf is NULL");
    memset(conf, 0, sizeof *conf);
    conf->ram.api = &g_hyperram_api;
    conf->ram_start = 0;
    conf->ram_size = DORY_L3_SIZE;
    conf->reserve_addr_0 = 1;
}

int32_t pi_ram_open(struct pi_device *device)
{
    const char *fn = "pi_ram_open";
    if (!device || !device->config)
        fatal("%s: the device has no configuration (pi_hyperram_conf_init + pi_open_from_conf)", fn);
    struct pi_hyperram_conf *conf = device->config;
    if (conf->ram.api != &g_hyperram_api)
        fatal("%s: the device configuration is not a RAM configuration (pi_hyperram_conf_init)", fn);
    if (tls_in_cluster)
        fatal("%s called from the cluster", fn);
    pthread_mutex_lock(&g_lock);
    if (g_ram_open_count == 0) {
        if (conf->ram_size <= 8 || conf->ram_size > DORY_L3_SIZE)
            fatal("%s: ram_size %d out of range (0, %d]", fn, conf->ram_size, DORY_L3_SIZE);
        g_l3.cap = (uint32_t)conf->ram_size;
        g_l3.base = malloc(g_l3.cap);
        if (!g_l3.base)
            fatal("%s: cannot allocate %" PRIu32 " bytes of host memory for L3", fn, g_l3.cap);
        memset(g_l3.base, FILL_FREE, g_l3.cap);
        g_l3.n = 0;
        g_l3.used = 0;
        g_l3_reserved = conf->reserve_addr_0 != 0;
        if (g_l3_reserved)
            (void)arena_alloc(&g_l3, DORY_ALLOC_ALIGN); /* address 0 is never handed out */
    }
    g_ram_open_count++;
    pthread_mutex_unlock(&g_lock);
    device->data = &g_ram_tag;
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
    require_ram(device, fn);
    if (tls_in_cluster)
        fatal("%s called from the cluster", fn);
    pthread_mutex_lock(&g_lock);
    if (g_nram)
        fatal("%s: %zu RAM request(s) still in flight", fn, g_nram);
    if (--g_ram_open_count == 0) {
        free(g_l3.base);
        free(g_l3.blk);
        g_l3.base = NULL;
        g_l3.blk = NULL;
        g_l3.n = g_l3.nalloc = 0;
        g_l3.used = 0;
    }
    pthread_mutex_unlock(&g_lock);
    device->data = NULL;
}

int pi_ram_alloc(struct pi_device *device, uint32_t *addr, uint32_t size)
{
    require_ram(device, "pi_ram_alloc");
    if (!addr)
        fatal("pi_ram_alloc: addr is NULL");
    pthread_mutex_lock(&g_lock);
    *addr = arena_alloc(&g_l3, size);
    pthread_mutex_unlock(&g_lock);
    return 0;
}

int pi_ram_free(struct pi_device *device, uint32_t addr, uint32_t size)
{
    require_ram(device, "pi_ram_free");
    pthread_mutex_lock(&g_lock);
    if (addr >= g_l3.cap)
        fatal("pi_ram_free: L3 address 0x%08" PRIx32 " is outside the L3 memory (%" PRIu32 " bytes)", addr,
              g_l3.cap);
    if (g_l3_reserved && addr < DORY_ALLOC_ALIGN)
        fatal("pi_ram_free: L3 address 0x%08" PRIx32 " is reserved, pi_ram_alloc never hands it out", addr);
    arena_free(&g_l3, addr, size, "pi_ram_free");
    pthread_mutex_unlock(&g_lock);
    return 0;
}

/* [ram_addr, ram_addr + size) must lie inside one live L3 block; returns its host pointer. */
static uint8_t *check_l3(uint32_t ram_addr, uint32_t size, const char *fn)
{
    uint64_t end = (uint64_t)ram_addr + size;
    if (end > g_l3.cap)
        fatal("%s: L3 range [0x%08" PRIx32 ", 0x%08" PRIx64 ") is outside the L3 memory (%" PRIu32 " bytes)", fn,
              ram_addr, end, g_l3.cap);
    if (arena_find(&g_l3, ram_addr, size) < 0) {
        long i = arena_floor(&g_l3, ram_addr);
        if (g_l3_reserved && i == 0 && ram_addr < DORY_ALLOC_ALIGN)
            fatal("%s: L3 range [0x%08" PRIx32 ", 0x%08" PRIx64 ") is not inside a live pi_ram_alloc block "
                  "(L3 addresses below %d are reserved and never handed out: an L3 address left 0?)",
                  fn, ram_addr, end, DORY_ALLOC_ALIGN);
        if (i >= 0 && ram_addr < (uint64_t)g_l3.blk[i].off + g_l3.blk[i].rsize)
            fatal("%s: L3 range [0x%08" PRIx32 ", 0x%08" PRIx64 ") overruns the L3 block at 0x%08" PRIx32
                  " of %" PRIu32 " bytes",
                  fn, ram_addr, end, g_l3.blk[i].off, g_l3.blk[i].size);
        fatal("%s: L3 range [0x%08" PRIx32 ", 0x%08" PRIx64 ") is not inside a live pi_ram_alloc block", fn,
              ram_addr, end);
    }
    return g_l3.base + ram_addr;
}

/* Host memory on the fabric-controller side of pi_ram_read / pi_ram_write: never L1; inside a
 * live block when it is in the L2 arena; other host memory (globals: L2 on GAP8) is accepted. */
static void check_fc_buffer(const void *data, uint32_t size, const char *fn)
{
    uint64_t a = (uintptr_t)data;
    if (!data)
        fatal("%s: data is NULL", fn);
    if (g_l1.base && a < (uintptr_t)g_l1.base + g_l1.cap && a + size > (uintptr_t)g_l1.base)
        fatal("%s: the buffer %p is in L1; RAM transfers reach L2 only", fn, data);
    if (g_l2.base && a < (uintptr_t)g_l2.base + g_l2.cap && a + size > (uintptr_t)g_l2.base)
        check_range(&g_l2, a, size, fn, "data (L2)");
}

static void ram_sync(struct pi_device *device, uint32_t ram_addr, void *data, uint32_t size, int ext2loc)
{
    const char *fn = ext2loc ? "pi_ram_read" : "pi_ram_write";
    require_ram(device, fn);
    if (tls_in_cluster)
        fatal("%s called from the cluster: it is a fabric-controller call (use pi_cl_ram_%s)", fn,
              ext2loc ? "read" : "write");
    pthread_mutex_lock(&g_lock);
    uint8_t *l3 = check_l3(ram_addr, size, fn);
    check_fc_buffer(data, size, fn);
    if (size) {
        if (ext2loc)
            memcpy(data, l3, size);
        else
            memcpy(l3, data, size);
    }
    pthread_mutex_unlock(&g_lock);
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
    require_cluster(fn);
    require_ram(device, fn);
    if (!req)
        fatal("%s: req is NULL", fn);
    if (size == 0)
        fatal("%s: transfer of 0 bytes", fn);
    pthread_mutex_lock(&g_lock);
    long i = xfer_find(g_ram, g_nram, req);
    if (i >= 0)
        fatal("%s: the request at %p is still in flight (request #%" PRIu32 "): wait for it before reusing it", fn,
              (void *)req, g_ram[i].id);
    if (g_nram == DORY_RAM_MAX_PENDING)
        fatal("%s: more than %d RAM requests in flight", fn, DORY_RAM_MAX_PENDING);
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
    x.core = tls_core;
    g_ram[g_nram++] = x;
    req->device = device;
    req->addr = addr;
    req->pi_ram_addr = ram_addr;
    req->size = size;
    req->id = x.id;
    req->state = STATE_INFLIGHT;
    req->ext2loc = (unsigned char)ext2loc;
    xfer_poison(&x);
    pthread_mutex_unlock(&g_lock);
}

static void ram_wait(pi_cl_ram_req_t *req, const char *fn)
{
    require_cluster(fn);
    if (!req)
        fatal("%s: req is NULL", fn);
    pthread_mutex_lock(&g_lock);
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
    pthread_mutex_unlock(&g_lock);
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
