/*
 * Internal helpers of the dory-mlir kernel library (not part of the API).
 *
 * - NUM_CORES and the split of a kernel's work among the cores (by pi_core_id()).
 * - Exact integer helpers: wrap-around conversions, floor/trunc shifts and divisions that
 *   never rely on signed overflow nor on the implementation-defined right shift of
 *   negative numbers.
 * - The requantization of one value (dk_requant) and the final step of every output value
 *   (dk_emit: bias / partial sums across reduction slices, requant, store).
 * - The int8 dot products behind macros: the 4-way PULP SIMD builtins when built for
 *   PULP, portable C otherwise.
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

/* The share [*lo, *hi) of n work items of the calling core: contiguous chunks of
 * ceil(n / NUM_CORES) items rounded up to a multiple of `align` (1 or 2). */
DK_INLINE void dk_share(uint32_t n, uint32_t align, uint32_t *lo, uint32_t *hi)
{
    uint32_t core = (uint32_t)pi_core_id();
    uint32_t chunk = (n + NUM_CORES - 1) / NUM_CORES;
    chunk = (chunk + align - 1) / align * align;
    if (core >= NUM_CORES || chunk == 0) {
        *lo = *hi = n;
        return;
    }
    uint32_t start = core * chunk;
    if (start > n)
        start = n;
    *lo = start;
    *hi = (n - start > chunk) ? start + chunk : n;
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

DK_INLINE int64_t dk_rq_const(const void *p, int per_channel, int bits, int c, int64_t dflt)
{
    if (p == NULL)
        return dflt;
    int i = per_channel ? c : 0;
    return bits == 64 ? ((const int64_t *)p)[i] : (int64_t)((const int32_t *)p)[i];
}

/*
 * clip(round(((acc * mul + add) * scale) / divisor), min, max), exact.
 *
 * The products are computed modulo 2^32 (wide == 0) or 2^64 (wide == 1) in unsigned
 * arithmetic, then reinterpreted as signed: the qnn semantics guarantee that both
 * intermediates `acc * mul + add` and `(acc * mul + add) * scale` fit the stated width
 * (the golden model rejects the network otherwise), so the modular result is the exact
 * one -- even when a 64-bit mul/scale constant is used in a 32-bit requant, or when
 * `acc * mul` alone would leave the range before `add` brings it back.
 *
 * The requant of one output channel is decoded once (dk_chan) and applied to each of the
 * channel's values (dk_chan_requant). The inline path is the 32-bit requant by a shift or
 * by a divisor that fits int32 (single RV32IM instructions); the 64-bit requant and the
 * rare 32-bit one by a divisor >= 2^31 are out of line (dk_requant_general, requant.c),
 * which keeps the kernels free of 64-bit divisions and their register pressure.
 */
int32_t dk_requant_general(const dory_requant_t *rq, int32_t acc, int c);

typedef struct {
    const dory_requant_t *rq; /* NULL: no requant (int32 values) */
    int c;                    /* the output channel */
    int32_t bias;             /* bias[c] or 0 */
    uint8_t general;          /* 1: dk_requant_general */
    uint8_t trunc;
    int8_t shift;             /* >= 0: divide by 2^shift; < 0: by divisor */
    int32_t divisor;
    uint32_t mul, add, scale; /* modulo 2^32 */
    int32_t min, max;
} dk_chan_t;

DK_ALWAYS_INLINE void dk_chan(dk_chan_t *ch, const dory_requant_t *rq, const int32_t *bias, int c)
{
    *ch = (dk_chan_t){.rq = rq, .c = c, .bias = bias != NULL ? bias[c] : 0, .divisor = 1,
                      .mul = 1, .scale = 1, .min = INT32_MIN, .max = INT32_MAX};
    if (rq == NULL)
        return;
    const int s = rq->shift;
    ch->general = rq->wide || !(s >= 0 ? s <= 31 : rq->divisor <= INT32_MAX);
    ch->trunc = rq->trunc;
    ch->shift = (int8_t)s;
    ch->divisor = ch->general || s >= 0 ? 1 : (int32_t)rq->divisor;
    ch->mul = (uint32_t)dk_rq_const(rq->mul, rq->mul_per_channel, rq->const_bits, c, 1);
    ch->add = (uint32_t)dk_rq_const(rq->add, rq->add_per_channel, rq->const_bits, c, 0);
    ch->scale = (uint32_t)rq->scale;
    ch->min = rq->min;
    ch->max = rq->max;
}

/* The requant of one value of channel ch (ch->rq != NULL). */
DK_ALWAYS_INLINE int32_t dk_chan_requant(const dk_chan_t *ch, int32_t acc)
{
    if (ch->general)
        return dk_requant_general(ch->rq, acc, ch->c);
    const int32_t t = dk_i32(((uint32_t)acc * ch->mul + ch->add) * ch->scale);
    int32_t q;
    if (ch->shift >= 0) {
        const unsigned s = (unsigned)ch->shift;
        q = ch->trunc ? dk_trunc_shift32(t, s) : dk_floor_shift32(t, s);
    } else {
        q = ch->trunc ? t / ch->divisor : dk_floor_div32(t, ch->divisor);
    }
    return q < ch->min ? ch->min : q > ch->max ? ch->max : q;
}

DK_ALWAYS_INLINE int32_t dk_requant(const dory_requant_t *rq, int32_t acc, int c)
{
    dk_chan_t ch;
    dk_chan(&ch, rq, NULL, c);
    return dk_chan_requant(&ch, acc);
}

/* ------------------------------------------------------------------ loads and stores */

DK_INLINE int32_t dk_load(const void *p, dory_dtype_t type, size_t i)
{
    switch (type) {
    case DORY_U8:
        return ((const uint8_t *)p)[i];
    case DORY_I8:
        return ((const int8_t *)p)[i];
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
    default:
        ((int32_t *)p)[i] = v;
        break;
    }
}

/*
 * The end of one output value `idx` of channel ch of a conv/linear:
 *   no acc:      out = rq(bias[c] + sum)
 *   acc, first:  a = bias[c] + sum          (bias or 0)
 *   acc, later:  a = acc[idx] + sum
 *   then acc[idx] = a, unless it is the last slice: out = rq(a) (int32 copy when rq == NULL).
 */
DK_ALWAYS_INLINE void dk_emit(const dk_chan_t *ch, int32_t *acc, int first, int last, void *out,
                              dory_dtype_t out_type, size_t idx, int32_t sum)
{
    const int32_t v = dk_add32(acc == NULL || first ? ch->bias : acc[idx], sum);
    if (acc != NULL && !last) {
        acc[idx] = v;
        return;
    }
    dk_store(out, out_type, idx, ch->rq != NULL ? dk_chan_requant(ch, v) : v);
}

/* ------------------------------------------------------------------ int8 dot products
 *
 * dk_word: DK_LANES consecutive bytes (4 with PULP SIMD, 2 in portable C, which keeps the
 * 4x2 block's operands in the 31 registers of RV32); dk_ldw(p) loads DK_LANES weights
 * (int8), dk_ldx(p, sgn) DK_LANES activations (int8 if sgn, else uint8), and
 * dk_dotw(x, w, acc, sgn) = acc + Σ x[i]·w[i]. The `sgn` arguments are compile-time
 * constants at every call site (always-inlined bodies instantiated for u8 and i8), so the
 * branches fold away.
 *
 * Sums of products never overflow int32 in practice: |x·w| <= 255·128 = 32640 and a
 * reduction has at most 65,535 terms per output (uint16 channel counts; a conv tile's
 * kh·kw·ci is bounded by its im2col buffer in L1): 65,535 · 32,640 < 2^31.
 */
#ifdef DK_SIMD
typedef int8_t dk_v4s __attribute__((vector_size(4)));
typedef uint8_t dk_v4u __attribute__((vector_size(4)));
typedef dk_v4s dk_word;
#define DK_LANES 4
/* Word loads of byte arrays (may_alias: the bytes are accessed as a vector). PULP cluster
 * cores (RI5CY) perform misaligned word loads in hardware, which PULP-NN also relies on
 * for weight rows of any length. */
typedef dk_v4s dk_word_alias __attribute__((may_alias));
#define dk_ld4(p) (*(const dk_word_alias *)(const void *)(p))
#define dk_ldw(p) dk_ld4(p)
#define dk_ldx(p, sgn) ((void)(sgn), dk_ld4(p))
/* pv.sdotsp.b / pv.sdotusp.b: acc + Σ x[i]·w[i], x signed resp. unsigned bytes. */
DK_ALWAYS_INLINE int32_t dk_dotw(dk_word x, dk_word w, int32_t acc, int sgn)
{
    return sgn ? __builtin_pulp_sdotsp4(x, w, acc) : __builtin_pulp_sdotusp4((dk_v4u)x, w, acc);
}

#else /* portable C: two bytes per step */
typedef struct {
    int32_t v[2];
} dk_word;
#define DK_LANES 2
DK_ALWAYS_INLINE dk_word dk_ldx(const uint8_t *p, int sgn)
{
    if (sgn)
        return (dk_word){{(int8_t)p[0], (int8_t)p[1]}};
    return (dk_word){{p[0], p[1]}};
}
DK_ALWAYS_INLINE dk_word dk_ldw(const int8_t *p) { return (dk_word){{p[0], p[1]}}; }
DK_ALWAYS_INLINE int32_t dk_dotw(dk_word x, dk_word w, int32_t acc, int sgn)
{
    (void)sgn;
    return acc + x.v[0] * w.v[0] + x.v[1] * w.v[1];
}
#endif

/* One activation byte as a number. */
DK_ALWAYS_INLINE int32_t dk_x(const uint8_t *p, size_t i, int sgn)
{
    return sgn ? (int32_t)((const int8_t *)p)[i] : (int32_t)p[i];
}

/* Σ_{k<n} x[k]·w[k] over contiguous bytes. */
DK_ALWAYS_INLINE int32_t dk_dot(const uint8_t *x, const int8_t *w, uint32_t n, int sgn)
{
    int32_t s = 0;
    uint32_t k = 0;
    for (; k + DK_LANES <= n; k += DK_LANES)
        s = dk_dotw(dk_ldx(x + k, sgn), dk_ldw(w + k), s, sgn);
    for (; k < n; k++)
        s += dk_x(x, k, sgn) * w[k];
    return s;
}

#endif
