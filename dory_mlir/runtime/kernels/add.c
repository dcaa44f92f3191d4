/*
 * Residual add: sum = floor((a * mul[0] + add[0]) / 2^shift[0])
 *                   + floor((b * mul[1] + add[1]) / 2^shift[1]),
 * then requant (rq), or the int32 sum itself when rq == NULL.
 *
 * Each term is computed in 32 bits when |mul| * max|x| + |add| fits int32 (decided once
 * per call from the input type), else in 64 bits; the sum of the two terms is exact
 * whenever it fits int32, which the qnn semantics guarantee.
 * The pixels (row-major, h * w) are split into contiguous chunks, one per core. A core
 * walks its pixels channel by channel (elements c apart), so that a channel's requant is
 * decoded once, and requantizes the sums in runs (dk_out_run).
 */
#include "dk_internal.h"

#define RUN 16 /* sums computed before they are requantized (a stack buffer) */

static int term_fits32(int32_t mul, int32_t add, uint8_t shift, dory_dtype_t type)
{
    const int64_t xmax = type == DORY_I8 ? 128 : type == DORY_U8 ? 255 : type == DORY_I16 ? 32768 : 65535;
    const int64_t m = mul < 0 ? -(int64_t)mul : mul, a = add < 0 ? -(int64_t)add : add;
    return shift <= 31 && m * xmax + a <= INT32_MAX;
}

DK_ALWAYS_INLINE int32_t term32(int32_t x, int32_t mul, int32_t add, uint8_t shift)
{
    return dk_floor_shift32(x * mul + add, shift);
}

DK_ALWAYS_INLINE int64_t term64(int32_t x, int32_t mul, int32_t add, uint8_t shift)
{
    return dk_floor_shift64((int64_t)x * mul + add, shift > 63 ? 63 : shift);
}

/* The sum of element i. `fast`: u8 inputs with 32-bit terms (the usual case). */
DK_ALWAYS_INLINE int32_t sum_of(const dory_add_t *p, size_t i, int narrow, int fast)
{
    if (fast)
        return dk_add32(term32(((const uint8_t *)p->a)[i], p->mul[0], p->add[0], p->shift[0]),
                        term32(((const uint8_t *)p->b)[i], p->mul[1], p->add[1], p->shift[1]));
    const int32_t a = dk_load(p->a, p->a_type, i), b = dk_load(p->b, p->b_type, i);
    if (narrow)
        return dk_add32(term32(a, p->mul[0], p->add[0], p->shift[0]), term32(b, p->mul[1], p->add[1], p->shift[1]));
    const int64_t s = term64(a, p->mul[0], p->add[0], p->shift[0]) + term64(b, p->mul[1], p->add[1], p->shift[1]);
    return dk_i32((uint32_t)s); /* exact: the sum fits int32 */
}

DK_ALWAYS_INLINE void add_body(const dory_add_t *p_in, const dk_out_t *o_in, int narrow, int fast, int kind)
{
    const dory_add_t p = *p_in; /* read before any output is stored, see dk_out_block */
    const dk_out_t o = *o_in;
    const size_t C = p.c;
    uint32_t lo, hi;
    dk_share((uint32_t)p.h * p.w, 1, &lo, &hi);
    int32_t sums[RUN];
    for (size_t c = 0; c < C; c++) {
        dk_rqc_t ch;
        dk_fold_t f;
        dk_chan(o_in, (uint32_t)c, &ch, &f, kind);
        for (uint32_t pix = lo; pix < hi; pix += RUN) {
            const int n = hi - pix < RUN ? (int)(hi - pix) : RUN;
            for (int k = 0; k < n; k++)
                sums[k] = sum_of(&p, (pix + (uint32_t)k) * C + c, narrow, fast);
            dk_out_run(&o, &ch, &f, sums, n, pix * C + c, C, kind);
        }
    }
}

/* Instantiated for u8 inputs with 32-bit terms and each output kind, and in general. */
DK_NOINLINE void add_u8(const dory_add_t *p, const dk_out_t *o) { add_body(p, o, 1, 1, DK_OUT_ANY); }
DK_NOINLINE void add_u8_w32(const dory_add_t *p, const dk_out_t *o) { add_body(p, o, 1, 1, DK_OUT_W32); }
DK_NOINLINE void add_u8_w64(const dory_add_t *p, const dk_out_t *o) { add_body(p, o, 1, 1, DK_OUT_W64); }
DK_NOINLINE void add_narrow(const dory_add_t *p, const dk_out_t *o) { add_body(p, o, 1, 0, DK_OUT_ANY); }
DK_NOINLINE void add_wide(const dory_add_t *p, const dk_out_t *o) { add_body(p, o, 0, 0, DK_OUT_ANY); }

void dory_add(const dory_add_t *p)
{
    const int narrow = term_fits32(p->mul[0], p->add[0], p->shift[0], p->a_type) &&
                       term_fits32(p->mul[1], p->add[1], p->shift[1], p->b_type);
    dk_out_t o;
    dk_out_init(&o, p->rq, NULL, NULL, 1, 1, p->out, p->out_type);
    if (narrow && p->a_type == DORY_U8 && p->b_type == DORY_U8) {
        const int kind = dk_out_kind(&o);
        (kind == DK_OUT_W32 ? add_u8_w32 : kind == DK_OUT_W64 ? add_u8_w64 : add_u8)(p, &o);
    } else {
        (narrow ? add_narrow : add_wide)(p, &o);
    }
}
