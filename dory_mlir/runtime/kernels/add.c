/*
 * Residual add: sum = floor((a * mul[0] + add[0]) / 2^shift[0])
 *                   + floor((b * mul[1] + add[1]) / 2^shift[1]),
 * then requant (rq), or the int32 sum itself when rq == NULL.
 *
 * Each term is computed in 32 bits when |mul| * max|x| + |add| fits int32 (decided once
 * per call from the input type), else in 64 bits; the sum of the two terms is exact
 * whenever it fits int32, which the qnn semantics guarantee.
 * The pixels (row-major, h * w, all channels of a pixel together) are split into
 * contiguous chunks, one per core.
 */
#include "dk_internal.h"

static int term_fits32(int32_t mul, int32_t add, uint8_t shift, dory_dtype_t type)
{
    const int64_t xmax = type == DORY_I8 ? 128 : 255;
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

void dory_add(const dory_add_t *p)
{
    const size_t C = p->c;
    const int narrow = term_fits32(p->mul[0], p->add[0], p->shift[0], p->a_type) &&
                       term_fits32(p->mul[1], p->add[1], p->shift[1], p->b_type);
    uint32_t lo, hi;
    dk_share((uint32_t)p->h * p->w, 1, &lo, &hi);
    for (size_t i = (size_t)lo * C; i < (size_t)hi * C; i++) {
        const int32_t a = dk_load(p->a, p->a_type, i), b = dk_load(p->b, p->b_type, i);
        int32_t sum;
        if (narrow) {
            sum = dk_add32(term32(a, p->mul[0], p->add[0], p->shift[0]),
                           term32(b, p->mul[1], p->add[1], p->shift[1]));
        } else {
            const int64_t s = term64(a, p->mul[0], p->add[0], p->shift[0]) +
                              term64(b, p->mul[1], p->add[1], p->shift[1]);
            sum = dk_i32((uint32_t)s); /* exact: the sum fits int32 */
        }
        const int c = (int)(i % C);
        dk_store(p->out, p->out_type, i, p->rq != NULL ? dk_requant(p->rq, sum, c) : sum);
    }
}
