/*
 * Internal helpers of the dory-mlir kernel library (not part of the API).
 *
 * - NUM_CORES and the split of a kernel's work among the cores (by pi_core_id()).
 * - Exact integer helpers: wrap-around conversions, floor/trunc shifts and divisions that
 *   never rely on signed overflow nor on the implementation-defined right shift of
 *   negative numbers.
 * - The requantization (dk_rq: decoded once per call and per channel, then a multiply-add,
 *   a compare and a shift or division per value) and the final step of every output value
 *   (dk_out: bias / partial sums across reduction slices, requant, store).
 * - The register-blocked int8 matrix product (dk_block: up to 4 output channels x 2 pixels):
 *   byte loads and mul/add on plain RV32IMC, the 4-way PULP SIMD dot products when built
 *   for PULP.
 *
 * SIMD selection:
 *   DORY_NO_SIMD                       force portable C;
 *   DORY_PULP_SIMD                     force the PULP SIMD code path;
 *   __riscv/__riscv__ together with __PULP_SIMD__ or ARCHI_CORE_HAS_PULPV2 (the PULP SDK's
 *                                      config for cores with the Xpulpv2 extension, e.g.
 *                                      GAP8 cluster cores): PULP SIMD code path;
 * (tests/test_kernels.py runs the SIMD code path on the host with the two builtins
 * provided in C by tests/kernels/pulp_builtins.h.)
 */
#ifndef DORY_KERNELS_INTERNAL_H
#define DORY_KERNELS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pmsis.h"
#include "dory_kernels.h"

#ifndef NUM_CORES
#define NUM_CORES 8
#endif

#if defined(__GNUC__)
#define DK_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define DK_ALWAYS_INLINE static inline
#endif
#define DK_INLINE static inline
#if defined(__GNUC__) && __GNUC__ >= 7
#define DK_FALLTHROUGH __attribute__((fallthrough))
#else
#define DK_FALLTHROUGH ((void)0)
#endif
#if defined(__GNUC__)
#define DK_NOINLINE static __attribute__((noinline))
#else
#define DK_NOINLINE static
#endif

#if !defined(DORY_NO_SIMD) &&                                                          \
    (defined(DORY_PULP_SIMD) ||                                                        \
     ((defined(__riscv) || defined(__riscv__)) &&                                      \
      (defined(__PULP_SIMD__) || defined(ARCHI_CORE_HAS_PULPV2))))
#define DK_SIMD 1
#endif

/* ------------------------------------------------------------------ work split */

/* Part `index` [*lo, *hi) of n work items cut into `parts` contiguous chunks of
 * ceil(n / parts) items rounded up to a multiple of `align` (1 or 2); empty (n, n) for an
 * index >= parts. */
DK_INLINE void dk_part(uint32_t n, uint32_t parts, uint32_t index, uint32_t align, uint32_t *lo, uint32_t *hi)
{
    uint32_t chunk = (n + parts - 1) / parts;
    chunk = (chunk + align - 1) / align * align;
    if (index >= parts || chunk == 0) {
        *lo = *hi = n;
        return;
    }
    uint32_t start = index * chunk;
    if (start > n)
        start = n;
    *lo = start;
    *hi = (n - start > chunk) ? start + chunk : n;
}

/* The share [*lo, *hi) of n work items of the calling core: its part of NUM_CORES. */
DK_INLINE void dk_share(uint32_t n, uint32_t align, uint32_t *lo, uint32_t *hi)
{
    dk_part(n, NUM_CORES, (uint32_t)pi_core_id(), align, lo, hi);
}

/* ------------------------------------------------------------------ exact integer helpers */

/* Two's complement reinterpretation without implementation-defined conversions
 * (compiles to nothing). */
DK_INLINE int32_t dk_i32(uint32_t u)
{
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) - INT32_MAX - 1;
}

DK_INLINE int64_t dk_i64(uint64_t u)
{
    return u <= (uint64_t)INT64_MAX ? (int64_t)u
                                    : (int64_t)(u - 0x8000000000000000u) - INT64_MAX - 1;
}

/* a + b modulo 2^32: exact whenever the true sum fits int32 (partial sums of a split
 * reduction may leave the range in between; the final sum is guaranteed to fit). */
DK_INLINE int32_t dk_add32(int32_t a, int32_t b)
{
    return dk_i32((uint32_t)a + (uint32_t)b);
}

/* floor(t / 2^s), 0 <= s <= 31 (resp. 63): ~t = -t - 1 >= 0 for t < 0, and
 * floor(t / 2^s) = ~(~t >> s); only non-negative numbers are shifted. */
DK_INLINE int32_t dk_floor_shift32(int32_t t, unsigned s)
{
    return t >= 0 ? (t >> s) : ~(~t >> s);
}

DK_INLINE int64_t dk_floor_shift64(int64_t t, unsigned s)
{
    return t >= 0 ? (t >> s) : ~(~t >> s);
}

/* trunc(t / 2^s): for t < 0, floor((t + 2^s - 1) / 2^s) (no overflow: t < 0). */
DK_INLINE int32_t dk_trunc_shift32(int32_t t, unsigned s)
{
    if (t >= 0)
        return t >> s;
    return dk_floor_shift32(t + (int32_t)((1u << s) - 1u), s);
}

DK_INLINE int64_t dk_trunc_shift64(int64_t t, unsigned s)
{
    if (t >= 0)
        return t >> s;
    return dk_floor_shift64(t + (int64_t)(((uint64_t)1 << s) - 1u), s);
}

/* Division by d > 0: C's `/` truncates toward zero; floor corrects a negative inexact
 * quotient (the remainder is then negative). */
DK_INLINE int32_t dk_floor_div32(int32_t t, int32_t d)
{
    int32_t q = t / d;
    return (t % d < 0) ? q - 1 : q;
}

DK_INLINE int64_t dk_floor_div64(int64_t t, int64_t d)
{
    int64_t q = t / d;
    return (t % d < 0) ? q - 1 : q;
}

/* ------------------------------------------------------------------ requant */

/*
 * clip(round(((acc * mul + add) * scale) / divisor), min, max), exact.
 *
 * The qnn semantics guarantee that the intermediates `acc * mul + add` and
 * `t = (acc * mul + add) * scale` fit the stated width (32 or 64 bits; the golden model
 * rejects the network otherwise), so t computed modulo 2^64 is t itself, and so is
 *     t = acc * M + A,   M = mul * scale,  A = add * scale   (modulo 2^64; or 2^32 when
 * t fits 32 bits): the ring identity lets a channel's constants be multiplied once, and a
 * value then costs one multiply-add, even when acc * mul alone leaves the range.
 *
 * The clip makes the division cheap (the "window"): with lo = min * d and hi = max * d,
 *     t <  lo       -> min
 *     t >= hi       -> max
 *     otherwise     -> min + (t - lo) / d, an unsigned 32-bit division (or shift) when
 *                      range = hi - lo < 2^32 (floor: t - lo >= 0 and lo = min * d).
 * With T = t - lo = acc * M + (A - lo) (modulo 2^32 or 2^64), the window is T < range
 * (unsigned), and outside it T >= split = 2^31 - lo (2^63 - lo) means t < lo: T wraps
 * around for t < lo and stays below split for t >= hi, since every t fits int32 (int64).
 * Rounding toward zero differs from floor only for t < 0, where both quotients are <= 0
 * and clip to min when min >= 0; trunc with min < 0 takes the general path.
 *
 * Modes (decided once per kernel call, dk_rq_init):
 *   DK_RQ_NONE     no requant: the int32 value itself;
 *   DK_RQ_WIN32    t fits int32 (wide == 0) and lo, hi fit int32: 32-bit window;
 *   DK_RQ_WIN64    range < 2^32: 64-bit window (the NEMO requants: 64-bit, divisor 2^k - 1);
 *   DK_RQ_GENERAL  anything else: dk_requant_general (requant.c), out of line, which keeps
 *                  the kernels free of 64-bit divisions and their register pressure.
 */
int32_t dk_requant_general(const dory_requant_t *rq, int32_t acc, int c);

enum { DK_RQ_NONE, DK_RQ_WIN32, DK_RQ_WIN64, DK_RQ_GENERAL, DK_RQ_WIN64S /* not a mode of a call */ };

typedef struct {
    const dory_requant_t *rq;
    const int32_t *bias;      /* bias[c] or NULL (0) */
    uint8_t mode;
    int8_t shift;             /* >= 0: the window's quotient is T >> shift, else T / divisor */
    uint8_t const_bits;       /* of mul/add: 32 or 64 */
    const void *mul, *add;    /* per-channel mul / add, or NULL (the one value is in m / a) */
    uint64_t scale;
    uint32_t divisor;
    uint32_t range;           /* hi - lo */
    uint64_t split;           /* T >= split: below the window */
    uint8_t split_sign;       /* lo == 0: split is 2^63 (2^31), T >= split is the sign of T */
    uint64_t lo;              /* min * divisor */
    uint64_t m, a;            /* M and A - lo of every channel when not per channel */
    int32_t min, max;
} dk_rq_t;

/* The constants of one output channel: t - lo = v * m + a (modulo 2^64; the low words are
 * the values modulo 2^32 of DK_RQ_WIN32), v the value with its bias. Folded: v the sum
 * without the bias, which a then includes (a + bias * m). */
typedef struct {
    uint64_t m, a;
} dk_fold_t;

typedef struct {
    int32_t bias;
    int c;
    dk_fold_t f;              /* not folded */
} dk_rqc_t;

/* The requant of a kernel call decoded (requant.c: once per call). */
void dk_rq_init(dk_rq_t *q, const dory_requant_t *rq, const int32_t *bias);

/* The constants of channel c, and folded (requant.c: out of line, once per channel and
 * call, or per channel and block). */
void dk_rqc(const dk_rq_t *q, int c, dk_rqc_t *ch);
void dk_fold(const dk_rq_t *q, int c, dk_fold_t *f);

/* The requant of one value of channel c (requant.c; pools). */
int32_t dk_requant(const dory_requant_t *rq, int32_t acc, int c);

/* M fits int32: the 64-bit window's products are 32 x 32 bits. */
DK_ALWAYS_INLINE int dk_fold_small(const dk_fold_t *f)
{
    return f->m + 0x80000000u <= UINT32_MAX;
}

/* The requant of v with the constants f in a window mode known at compile time
 * (DK_RQ_WIN32, DK_RQ_WIN64, or DK_RQ_WIN64S: DK_RQ_WIN64 with dk_fold_small); in the
 * window, the quotient lies in [0, max - min] and min + quotient in [min, max], added
 * modulo 2^32. */
DK_ALWAYS_INLINE int32_t dk_rq_win(const dk_rq_t *q, const dk_fold_t *f, int32_t v, int mode)
{
    if (mode == DK_RQ_WIN32) {
        const uint32_t t = (uint32_t)v * (uint32_t)f->m + (uint32_t)f->a;
        if (t < q->range)
            return dk_i32((uint32_t)q->min + (q->shift >= 0 ? t >> q->shift : t / q->divisor));
        return t >= (uint32_t)q->split ? q->min : q->max;
    }
    /* DK_RQ_WIN64S: M fits int32 (the usual case, dk_fold_small), v * M is one mul and one mulh */
    const uint64_t t = (mode == DK_RQ_WIN64S ? (uint64_t)((int64_t)v * dk_i32((uint32_t)f->m))
                                             : (uint64_t)(int64_t)v * f->m) + f->a;
    if (t < q->range)
        return dk_i32((uint32_t)q->min + (q->shift >= 0 ? (uint32_t)t >> q->shift : (uint32_t)t / q->divisor));
    /* t >= split; with lo == 0 (min 0, the usual clip) split is 2^63: the sign of the high word */
    return (q->split_sign ? dk_i32((uint32_t)(t >> 32)) < 0 : t >= q->split) ? q->min : q->max;
}

/* The requant of the value v (bias included) of channel ch, in any mode. */
DK_ALWAYS_INLINE int32_t dk_rq(const dk_rq_t *q, const dk_rqc_t *ch, int32_t v)
{
    if (q->mode == DK_RQ_WIN32)
        return dk_rq_win(q, &ch->f, v, DK_RQ_WIN32);
    if (q->mode == DK_RQ_WIN64)
        return dk_rq_win(q, &ch->f, v, DK_RQ_WIN64);
    if (q->mode == DK_RQ_GENERAL)
        return dk_requant_general(q->rq, v, ch->c);
    return v;
}

/* ------------------------------------------------------------------ loads and stores */

/* 16-bit activations (DORY_U16 / DORY_I16) and their kernels (wide.c): simple exact loops,
 * taken at the top of a kernel entry when its input is 16-bit. A 16-bit output of an 8-bit
 * input stays on the kernel's own path: its general output kind (DK_OUT_ANY) stores it. */
DK_INLINE int dk_wide(dory_dtype_t type)
{
    return type == DORY_U16 || type == DORY_I16;
}
DK_INLINE size_t dk_elem_bytes(dory_dtype_t type)
{
    return type == DORY_I32 ? 4 : dk_wide(type) ? 2 : 1;
}
void dk_conv2d_wide(const dory_conv_t *p);
void dk_pointwise_wide(const dory_conv_t *p);
void dk_depthwise_wide(const dory_conv_t *p);
void dk_linear_wide(const dory_linear_t *p);
void dk_pool_wide(const dory_pool_t *p, int is_max);

DK_INLINE int32_t dk_load(const void *p, dory_dtype_t type, size_t i)
{
    switch (type) {
    case DORY_U8:
        return ((const uint8_t *)p)[i];
    case DORY_I8:
        return ((const int8_t *)p)[i];
    case DORY_U16:
        return ((const uint16_t *)p)[i];
    case DORY_I16:
        return ((const int16_t *)p)[i];
    default:
        return ((const int32_t *)p)[i];
    }
}

/* v already lies in the range of `type` (clipped by the requant, or an int32 sum). */
DK_INLINE void dk_store(void *p, dory_dtype_t type, size_t i, int32_t v)
{
    switch (type) {
    case DORY_U8:
        ((uint8_t *)p)[i] = (uint8_t)v;
        break;
    case DORY_I8:
        ((int8_t *)p)[i] = (int8_t)v;
        break;
    case DORY_U16:
        ((uint16_t *)p)[i] = (uint16_t)v;
        break;
    case DORY_I16:
        ((int16_t *)p)[i] = (int16_t)v;
        break;
    default:
        ((int32_t *)p)[i] = v;
        break;
    }
}

/*
 * The end of every output value of a conv/linear (dk_out):
 *   no acc:      out = rq(bias[c] + sum)
 *   acc, first:  a = bias[c] + sum          (bias or 0)
 *   acc, later:  a = acc[idx] + sum
 *   then acc[idx] = a, unless it is the last slice: out = rq(a) (int32 copy when rq == NULL).
 */
typedef struct {
    dk_rq_t rq;
    int32_t *acc;             /* partial sums, or NULL */
    uint8_t first, last;
    uint8_t bytes;            /* size of an output element: 1 (u8, i8), 2 (u16, i16) or 4 (int32) */
    void *out;
} dk_out_t;

/* The end of a kernel call's outputs (requant.c: once per call). */
void dk_out_init(dk_out_t *o, const dory_requant_t *rq, const int32_t *bias, int32_t *acc, int first, int last,
                 void *out, dory_dtype_t out_type);

/* The kinds of outputs a kernel is instantiated for: the common ones -- no partial sums,
 * byte outputs, a window requant -- with the checks folded away (DK_OUT_W32, DK_OUT_W64),
 * and any (DK_OUT_ANY: every case checked per value). */
enum { DK_OUT_ANY, DK_OUT_W32, DK_OUT_W64, DK_OUT_W64S /* DK_OUT_W64 with dk_fold_small: per block */ };

DK_ALWAYS_INLINE int dk_out_kind(const dk_out_t *o)
{
    if (o->acc != NULL || o->bytes != 1)
        return DK_OUT_ANY;
    return o->rq.mode == DK_RQ_WIN32 ? DK_OUT_W32 : o->rq.mode == DK_RQ_WIN64 ? DK_OUT_W64 : DK_OUT_ANY;
}

/* Any output value: partial sums, int32 outputs, any requant (requant.c, out of line: the
 * general case is rare and would bloat every block it is inlined into). */
void dk_out_general(const dk_out_t *o, const dk_rqc_t *ch, size_t idx, int32_t sum);

/* An output value of a window kind (DK_OUT_W32 / DK_OUT_W64, a compile-time constant):
 * the byte of the requant of sum with the folded constants f. */
DK_ALWAYS_INLINE void dk_out_fast(const dk_out_t *o, const dk_fold_t *f, size_t idx, int32_t sum, int kind)
{
    const int mode = kind == DK_OUT_W32 ? DK_RQ_WIN32 : kind == DK_OUT_W64S ? DK_RQ_WIN64S : DK_RQ_WIN64;
    ((uint8_t *)o->out)[idx] = (uint8_t)dk_rq_win(&o->rq, f, sum, mode);
}

/* The constants of channel c for outputs of `kind`: ch for DK_OUT_ANY, f (folded) else.
 * Returned through temporaries: a variable whose address reaches an out-of-line function
 * may alias the byte stores of the outputs, and would be reloaded after each one. */
DK_ALWAYS_INLINE void dk_chan(const dk_out_t *o, uint32_t c, dk_rqc_t *ch, dk_fold_t *f, int kind)
{
    if (kind == DK_OUT_ANY) {
        dk_rqc_t t;
        dk_rqc(&o->rq, (int)c, &t);
        *ch = t;
    } else {
        dk_fold_t t;
        dk_fold(&o->rq, (int)c, &t);
        *f = t;
    }
}

/* dk_chan of the R (<= 4) channels c .. c + R - 1, written out (constant indices keep the
 * constants in registers, see dk_block). */
DK_ALWAYS_INLINE void dk_chans(const dk_out_t *o, uint32_t c, dk_rqc_t ch[4], dk_fold_t f[4], int R, int kind)
{
    dk_chan(o, c, &ch[0], &f[0], kind);
    if (R > 1)
        dk_chan(o, c + 1, &ch[1], &f[1], kind);
    if (R > 2)
        dk_chan(o, c + 2, &ch[2], &f[2], kind);
    if (R > 3)
        dk_chan(o, c + 3, &ch[3], &f[3], kind);
}

/* The output value idx of the r-th channel of ch[] / f[] (see dk_chan) from its sum; the
 * array of the other kind is not touched (it may be NULL). */
DK_ALWAYS_INLINE void dk_out(const dk_out_t *o, const dk_rqc_t *ch, const dk_fold_t *f, int r, size_t idx,
                             int32_t sum, int kind)
{
    if (kind == DK_OUT_ANY)
        dk_out_general(o, &ch[r], idx, sum);
    else
        dk_out_fast(o, &f[r], idx, sum, kind);
}

/* The values s[r][p] of an R x P block (R <= 4 channels, P <= 2 pixels) at the output
 * elements at[p] + r, channel r's constants ch[r] / f[r], written out rather than looped
 * (see dk_block). Callers pass an `o` of their own stack frame: the byte stores of the
 * outputs may alias anything the compiler cannot prove distinct, and would make it reload
 * every field after each one. */
DK_ALWAYS_INLINE void dk_out_rows(const dk_out_t *o, const dk_rqc_t *ch, const dk_fold_t *f, int32_t s[4][2],
                                  size_t at0, size_t at1, int R, int P, int kind)
{
#define DK_OUT_ROW(r)                                                                           \
    if (R > r && kind == DK_OUT_ANY) {                                                          \
        dk_out_general(o, &ch[r], at0 + r, s[r][0]);                                            \
        if (P > 1)                                                                              \
            dk_out_general(o, &ch[r], at1 + r, s[r][1]);                                        \
    } else if (R > r) { /* the channel's constants loaded here, once for its P values */        \
        const dk_fold_t fr = f[r];                                                              \
        dk_out_fast(o, &fr, at0 + r, s[r][0], kind);                                            \
        if (P > 1)                                                                              \
            dk_out_fast(o, &fr, at1 + r, s[r][1], kind);                                        \
    }
    DK_OUT_ROW(0)
    DK_OUT_ROW(1)
    DK_OUT_ROW(2)
    DK_OUT_ROW(3)
#undef DK_OUT_ROW
}

/* A 64-bit window output with any M (requant.c, out of line: rare). */
void dk_out_w64(const dk_out_t *o, const dk_fold_t *f, size_t idx, int32_t sum);

/* (A 64-bit window block whose channels all have dk_fold_small takes the 32 x 32-bit
 * products: one test per block; the other blocks, rare, are requantized out of line.) */
DK_ALWAYS_INLINE void dk_out_block(const dk_out_t *o, const dk_rqc_t *ch, const dk_fold_t *f, int32_t s[4][2],
                                   size_t at0, size_t at1, int R, int P, int kind)
{
    if (kind != DK_OUT_W64) {
        dk_out_rows(o, ch, f, s, at0, at1, R, P, kind);
    } else if (dk_fold_small(&f[0]) && (R < 2 || dk_fold_small(&f[1])) && (R < 3 || dk_fold_small(&f[2])) &&
               (R < 4 || dk_fold_small(&f[3]))) {
        dk_out_rows(o, ch, f, s, at0, at1, R, P, DK_OUT_W64S);
    } else {
        for (int r = 0; r < R; r++) {
            dk_out_w64(o, &f[r], at0 + (size_t)r, s[r][0]);
            if (P > 1)
                dk_out_w64(o, &f[r], at1 + (size_t)r, s[r][1]);
        }
    }
}

/* The n sums s[k] of channel ch / f (see dk_chan) into the output elements idx + k * step:
 * a run of one channel along a line (depthwise, add). The constants are read into locals
 * once, and the choice of shift or division is made once per run. */
#define DK_RUN_LOOP(T, PRODUCT, QUOTIENT)                                                       \
    for (int k = 0; k < n; k++, out += step) {                                                  \
        const T t = (PRODUCT) + a;                                                              \
        *out = (uint8_t)(t < range ? dk_i32((uint32_t)min + (QUOTIENT)) : t >= split ? min : max); \
    }
DK_ALWAYS_INLINE void dk_out_run(const dk_out_t *o, const dk_rqc_t *ch, const dk_fold_t *f, const int32_t *s,
                                 int n, size_t idx, size_t step, int kind)
{
    if (kind == DK_OUT_ANY) {
        for (int k = 0; k < n; k++, idx += step)
            dk_out_general(o, ch, idx, s[k]);
        return;
    }
    uint8_t *out = (uint8_t *)o->out + idx;
    const int32_t min = o->rq.min, max = o->rq.max;
    const int shift = o->rq.shift;
    const uint32_t range = o->rq.range, divisor = o->rq.divisor;
    if (kind == DK_OUT_W32) {
        const uint32_t m = (uint32_t)f->m, a = (uint32_t)f->a, split = (uint32_t)o->rq.split;
        if (shift >= 0)
            DK_RUN_LOOP(uint32_t, (uint32_t)s[k] * m, t >> shift)
        else
            DK_RUN_LOOP(uint32_t, (uint32_t)s[k] * m, t / divisor)
    } else if (dk_fold_small(f)) { /* s * M is one mul and one mulh */
        const int32_t m = dk_i32((uint32_t)f->m);
        const uint64_t a = f->a, split = o->rq.split;
        if (shift >= 0)
            DK_RUN_LOOP(uint64_t, (uint64_t)((int64_t)s[k] * m), (uint32_t)t >> shift)
        else
            DK_RUN_LOOP(uint64_t, (uint64_t)((int64_t)s[k] * m), (uint32_t)t / divisor)
    } else {
        const uint64_t m = f->m, a = f->a, split = o->rq.split;
        if (shift >= 0)
            DK_RUN_LOOP(uint64_t, (uint64_t)(int64_t)s[k] * m, (uint32_t)t >> shift)
        else
            DK_RUN_LOOP(uint64_t, (uint64_t)(int64_t)s[k] * m, (uint32_t)t / divisor)
    }
}
#undef DK_RUN_LOOP

/* ------------------------------------------------------------------ int8 matrix blocks
 *
 * dk_block computes an R x P block (R <= 4 output channels, P <= 2 pixels) of a matrix
 * product: s[r][p] = Σ_{k<K} x_p[k] · w_r[k], the weight rows w_r = w + r * ldw. R, P and
 * `sgn` (int8 activations if 1, uint8 if 0) are compile-time constants at every call site,
 * so the block is fully unrolled and its R * P accumulators live in registers.
 *
 * Plain RV32IMC has neither SIMD nor a multiply-accumulate: every MAC is a mul and an add,
 * and the 4x2 block loads R + P = 6 bytes per 8 MACs (one lb/lbu each: extracting bytes
 * from a word costs more than loading them). The reduction is unrolled by 4 so the six
 * pointer increments and the loop branch are shared by 32 MACs: ~2.9 instructions per MAC.
 * The PULP SIMD path loads the 4 bytes as one word and uses the 4-way dot products
 * (pv.sdotsp.b / pv.sdotusp.b).
 *
 * Sums of products never overflow int32 in practice: |x·w| <= 255·128 = 32640 and a
 * reduction has at most 65,535 terms per output (uint16 channel counts; a conv tile's
 * kh·kw·ci is bounded by its im2col buffer in L1): 65,535 · 32,640 < 2^31.
 */
#ifdef DK_SIMD
typedef int8_t dk_v4s __attribute__((vector_size(4)));
typedef uint8_t dk_v4u __attribute__((vector_size(4)));
/* Word loads of byte arrays (may_alias: the bytes are accessed as a vector). PULP cluster
 * cores (RI5CY) perform misaligned word loads in hardware, which PULP-NN also relies on
 * for weight rows of any length. */
typedef dk_v4s dk_word_alias __attribute__((may_alias));
#define dk_ld4(p) (*(const dk_word_alias *)(const void *)(p))
/* pv.sdotsp.b / pv.sdotusp.b: acc + Σ x[i]·w[i], x signed resp. unsigned bytes. */
DK_ALWAYS_INLINE int32_t dk_dot4(const uint8_t *x, const int8_t *w, int32_t acc, int sgn)
{
    return sgn ? __builtin_pulp_sdotsp4(dk_ld4(x), dk_ld4(w), acc)
               : __builtin_pulp_sdotusp4((dk_v4u)dk_ld4(x), dk_ld4(w), acc);
}
#endif

/* A reduction step's end, for GCC's optimizers: the block's accumulators and pointers
 * pass through one empty asm statement, so the next step's loads depend on this step's
 * sums. Otherwise GCC reassociates the unrolled sums (all bytes of an iteration into one
 * tree per accumulator) and hoists all loads of an iteration to its top, keeping 16+
 * activation and weight bytes live at once and spilling accumulators to the stack; with
 * the barrier a step holds 2 activations and 1 weight. */
#if defined(__GNUC__) && !defined(DK_SIMD)
#define DK_STEP_END_4x2(s, w, x)                                                                \
    __asm__("" : "+r"(s[0][0]), "+r"(s[0][1]), "+r"(s[1][0]), "+r"(s[1][1]), "+r"(s[2][0]),   \
            "+r"(s[2][1]), "+r"(s[3][0]), "+r"(s[3][1]), "+r"(w[0]), "+r"(w[1]), "+r"(w[2]),   \
            "+r"(w[3]), "+r"(x[0]), "+r"(x[1]))
#define DK_STEP_END_4x1(s, w, x)                                                                \
    __asm__("" : "+r"(s[0][0]), "+r"(s[1][0]), "+r"(s[2][0]), "+r"(s[3][0]), "+r"(w[0]),      \
            "+r"(w[1]), "+r"(w[2]), "+r"(w[3]), "+r"(x[0]))
#define DK_STEP_END_2x1(s, w, x) __asm__("" : "+r"(s[0][0]), "+r"(s[1][0]), "+r"(w[0]), "+r"(w[1]), "+r"(x[0]))
#define DK_STEP_END_1x2(s, w, x) __asm__("" : "+r"(s[0][0]), "+r"(s[0][1]), "+r"(w[0]), "+r"(x[0]), "+r"(x[1]))
#define DK_STEP_END_1x1(s, w, x) __asm__("" : "+r"(s[0][0]), "+r"(w[0]), "+r"(x[0]))
#else
#define DK_STEP_END_ANY(s, w, x) ((void)(s), (void)(w), (void)(x))
#define DK_STEP_END_4x2 DK_STEP_END_ANY
#define DK_STEP_END_4x1 DK_STEP_END_ANY
#define DK_STEP_END_2x1 DK_STEP_END_ANY
#define DK_STEP_END_1x2 DK_STEP_END_ANY
#define DK_STEP_END_1x1 DK_STEP_END_ANY
#endif

/* One activation byte as a number. */
DK_ALWAYS_INLINE int32_t dk_x(const uint8_t *p, size_t i, int sgn)
{
    return sgn ? (int32_t)((const int8_t *)p)[i] : (int32_t)p[i];
}

/* The block's code is written out for its 4 x 2 positions with compile-time guards (R > r,
 * P > p) rather than as loops: GCC at -O2 keeps short loops as loops (accumulators in
 * memory), and unroll pragmas spill over to the enclosing reduction loop. */
/* The block shapes in use: R x P = 4 x 2, 4 x 1, 2 x 1, 1 x 2, 1 x 1. */
DK_ALWAYS_INLINE void dk_step_end(int32_t s[4][2], const int8_t *w[4], const uint8_t *x[2], int R, int P)
{
    if (R == 4 && P == 2)
        DK_STEP_END_4x2(s, w, x);
    else if (R == 4)
        DK_STEP_END_4x1(s, w, x);
    else if (R == 2)
        DK_STEP_END_2x1(s, w, x);
    else if (P == 2)
        DK_STEP_END_1x2(s, w, x);
    else
        DK_STEP_END_1x1(s, w, x);
}

/* The P (<= 2) multiply-adds of one weight v (a block row's: conv's channel, matmul's column)
 * with the step's activations a0, a1 into the row's sums s[0 .. P-1]. */
DK_ALWAYS_INLINE void dk_mac_row(int32_t s[2], int32_t v, int32_t a0, int32_t a1, int P)
{
    s[0] += a0 * v;
    if (P > 1)
        s[1] += a1 * v;
}

/* One reduction step at byte k: 1 activation per pixel, 1 weight per row, R x P MACs. */
DK_ALWAYS_INLINE void dk_block_mac1(int32_t s[4][2], const int8_t *w[4], const uint8_t *x[2],
                                    size_t k, int R, int P, int sgn)
{
    const int32_t a0 = dk_x(x[0], k, sgn), a1 = P > 1 ? dk_x(x[1], k, sgn) : 0;
    dk_mac_row(s[0], w[0][k], a0, a1, P);
    if (R > 1)
        dk_mac_row(s[1], w[1][k], a0, a1, P);
    if (R > 2)
        dk_mac_row(s[2], w[2][k], a0, a1, P);
    if (R > 3)
        dk_mac_row(s[3], w[3][k], a0, a1, P);
    dk_step_end(s, w, x, R, P);
}

/* Four reduction steps at bytes k .. k + 3. */
DK_ALWAYS_INLINE void dk_block_mac4(int32_t s[4][2], const int8_t *w[4], const uint8_t *x[2],
                                    size_t k, int R, int P, int sgn)
{
#ifdef DK_SIMD
#define DK_DOT(r, p)                                                                            \
    if (R > r && P > p)                                                                         \
        s[r][p] = dk_dot4(x[p] + k, w[r] + k, s[r][p], sgn);
    DK_DOT(0, 0) DK_DOT(0, 1) DK_DOT(1, 0) DK_DOT(1, 1)
    DK_DOT(2, 0) DK_DOT(2, 1) DK_DOT(3, 0) DK_DOT(3, 1)
#undef DK_DOT
#else
    dk_block_mac1(s, w, x, k, R, P, sgn);
    dk_block_mac1(s, w, x, k + 1, R, P, sgn);
    dk_block_mac1(s, w, x, k + 2, R, P, sgn);
    dk_block_mac1(s, w, x, k + 3, R, P, sgn);
#endif
}

/* Advances the block's R weight rows and P columns by n bytes. */
DK_ALWAYS_INLINE void dk_block_advance(const int8_t *w[4], const uint8_t *x[2], size_t n, int R, int P)
{
    w[0] += n;
    if (R > 1)
        w[1] += n;
    if (R > 2)
        w[2] += n;
    if (R > 3)
        w[3] += n;
    x[0] += n;
    if (P > 1)
        x[1] += n;
}

DK_ALWAYS_INLINE void dk_block(int32_t s[4][2], const int8_t *w, size_t ldw, const uint8_t *x0,
                               const uint8_t *x1, uint32_t K, int R, int P, int sgn)
{
    /* rows past R point at row 0 (never read); t: the accumulators, local so that they
     * stay in registers */
    const int8_t *wr[4] = {w, R > 1 ? w + ldw : w, R > 2 ? w + 2 * ldw : w, R > 3 ? w + 3 * ldw : w};
    const uint8_t *x[2] = {x0, x1};
    int32_t t[4][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
    /* 8 bytes per iteration, the loop ending on the first column's pointer */
    for (const uint8_t *end = x0 + (K & ~7u); x[0] != end;) {
        dk_block_mac4(t, wr, x, 0, R, P, sgn);
        dk_block_mac4(t, wr, x, 4, R, P, sgn);
        dk_block_advance(wr, x, 8, R, P);
    }
    for (uint32_t k = 0; k < (K & 7); k++)
        dk_block_mac1(t, wr, x, k, R, P, sgn);
    memcpy(s, t, sizeof t);
}

/* dk_block over a receptive field read in place (no im2col copy): `rows` window rows of
 * L <= DK_ROW_MAX contiguous bytes each, row_step bytes apart in the input (the weights'
 * rows follow each other). Each row is one pass through an unrolled sequence entered at
 * step L (a switch falling through): constant offsets and no remainder loop, which suits
 * the short rows (kw * in_c bytes) of first layers. */
#define DK_ROW_MAX 16
DK_ALWAYS_INLINE void dk_block_rows(int32_t s[4][2], const int8_t *w, size_t ldw, const uint8_t *x0,
                                    const uint8_t *x1, int rows, int L, size_t row_step, int R, int P, int sgn)
{
    const int8_t *wr[4] = {w, R > 1 ? w + ldw : w, R > 2 ? w + 2 * ldw : w, R > 3 ? w + 3 * ldw : w};
    const uint8_t *x[2] = {x0, x1};
    int32_t t[4][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
    for (int i = 0; i < rows; i++) {
#define DK_STEP(k)                                                                              \
    case (k) + 1:                                                                               \
        dk_block_mac1(t, wr, x, (k), R, P, sgn);                                                \
        DK_FALLTHROUGH;
        switch (L) {
            DK_STEP(15) DK_STEP(14) DK_STEP(13) DK_STEP(12) DK_STEP(11) DK_STEP(10) DK_STEP(9) DK_STEP(8)
            DK_STEP(7) DK_STEP(6) DK_STEP(5) DK_STEP(4) DK_STEP(3) DK_STEP(2) DK_STEP(1) DK_STEP(0)
        default:
            break;
        }
#undef DK_STEP
        wr[0] += L;
        if (R > 1)
            wr[1] += L;
        if (R > 2)
            wr[2] += L;
        if (R > 3)
            wr[3] += L;
        x[0] += row_step;
        if (P > 1)
            x[1] += row_step;
    }
    memcpy(s, t, sizeof t);
}

/* floor(sqrt(s)), bit by bit (the row norms' root of the mean square). */
DK_ALWAYS_INLINE uint32_t dk_isqrt32(uint32_t s)
{
    uint32_t root = 0, bit = 1u << 30;
    while (bit > s)
        bit >>= 2;
    for (; bit; bit >>= 2) {
        if (s >= root + bit) {
            s -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
    }
    return root;
}

/* The elementwise int32 ops (hardswish, gelu): v = value(params, x) for each of the `elements` of
 * an HWC tile of c channels, then the layer's requant of its channel, or v itself (DORY_I32) when
 * rq == NULL. The elements are split into contiguous chunks, one per core. Always inlined with a
 * constant `value`, so the call is direct (and inlined in its turn). */
DK_ALWAYS_INLINE void dk_elementwise(const void *in, dory_dtype_t in_type, uint32_t elements, uint32_t c,
                                     const dory_requant_t *rq, void *out, dory_dtype_t out_type,
                                     int32_t (*value)(const void *params, int32_t x), const void *params)
{
    const int sgn = in_type == DORY_I8;
    dk_out_t o;
    dk_out_init(&o, rq, NULL, NULL, 1, 1, out, out_type);
    uint32_t lo, hi;
    dk_share(elements, 1, &lo, &hi);
    for (uint32_t i = lo; i < hi; i++) {
        dk_rqc_t ch;
        dk_rqc(&o.rq, (int)(i % c), &ch);
        dk_out_general(&o, &ch, i, value(params, dk_x((const uint8_t *)in, i, sgn)));
    }
}

/* The row norms over the c features of each of `rows` pixels of an HWC tile (a pixel is a row of
 * features): m = sum(x) / c toward zero when `centered` (the layer norm; the RMS norm: m = 0),
 * d = x - m, r = floor(sqrt(sum(d^2) / c + 1)), then every feature
 * y = clip((d * weight[j] / r + bias[j]) >> shift, min, max) (bias NULL: 0), the division toward zero
 * (as Deeploy's C), the shift arithmetic. |d| <= 255, so sum(d^2) fits 32 bits (the verifier bounds
 * c); d * weight and the biased quotient take 64 bits (a 32-bit division where the product fits: the
 * cheap case on rv32). The rows are split into contiguous chunks, one per core. */
DK_ALWAYS_INLINE void dk_row_norm(const void *in, dory_dtype_t in_type, uint32_t rows, size_t c, int centered,
                                  const int32_t *weight, const int32_t *bias, uint8_t shift, int32_t min,
                                  int32_t max, void *out, dory_dtype_t out_type)
{
    const int sgn = in_type == DORY_I8;
    uint32_t lo, hi;
    dk_share(rows, 1, &lo, &hi);
    for (uint32_t pix = lo; pix < hi; pix++) {
        const uint8_t *x = (const uint8_t *)in + (size_t)pix * c;
        int32_t mean = 0;
        if (centered) {
            for (size_t j = 0; j < c; j++)
                mean += dk_x(x, j, sgn);
            mean /= (int32_t)c;
        }
        uint32_t squares = 0;
        for (size_t j = 0; j < c; j++) {
            const int32_t d = dk_x(x, j, sgn) - mean;
            squares += (uint32_t)(d * d);
        }
        const int32_t root = (int32_t)dk_isqrt32(squares / (uint32_t)c + 1);
        for (size_t j = 0; j < c; j++) {
            const int64_t num = (int64_t)(dk_x(x, j, sgn) - mean) * weight[j];
            const int64_t quotient = (num >= INT32_MIN && num <= INT32_MAX) ? (int32_t)num / root : num / root;
            int64_t y = (quotient + (bias ? bias[j] : 0)) >> shift;
            y = y < min ? min : y > max ? max : y;
            dk_store(out, out_type, (size_t)pix * c + j, (int32_t)y);
        }
    }
}

#endif
