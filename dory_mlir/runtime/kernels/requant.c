/*
 * The requantization of one value: dory_requant (the API) and dk_requant_general, the
 * out-of-line part of dk_requant (dk_internal.h) for the 64-bit requant and for a 32-bit
 * requant whose divisor does not fit int32. Exact in every case, see dk_internal.h.
 */
#include "dk_internal.h"

int32_t dk_requant_general(const dory_requant_t *rq, int32_t acc, int c)
{
    const int64_t mul = dk_rq_const(rq->mul, rq->mul_per_channel, rq->const_bits, c, 1);
    const int64_t add = dk_rq_const(rq->add, rq->add_per_channel, rq->const_bits, c, 0);
    const int s = rq->shift;
    int64_t q;
    if (!rq->wide) {
        uint32_t u = (uint32_t)acc * (uint32_t)mul + (uint32_t)add;
        u *= (uint32_t)rq->scale;
        const int32_t t = dk_i32(u);
        if (s >= 0 && s <= 31)
            q = rq->trunc ? dk_trunc_shift32(t, (unsigned)s) : dk_floor_shift32(t, (unsigned)s);
        else if (s < 0 && rq->divisor <= INT32_MAX)
            q = rq->trunc ? t / (int32_t)rq->divisor : dk_floor_div32(t, (int32_t)rq->divisor);
        else /* divisor >= 2^31: the 32-bit value divided exactly in 64 bits */
            q = rq->trunc ? (int64_t)t / rq->divisor : dk_floor_div64(t, rq->divisor);
    } else {
        uint64_t u = (uint64_t)(int64_t)acc * (uint64_t)mul + (uint64_t)add;
        u *= (uint64_t)rq->scale;
        const int64_t t = dk_i64(u);
        if (s >= 0 && s <= 62)
            q = rq->trunc ? dk_trunc_shift64(t, (unsigned)s) : dk_floor_shift64(t, (unsigned)s);
        else
            q = rq->trunc ? t / rq->divisor : dk_floor_div64(t, rq->divisor);
    }
    return (int32_t)(q < rq->min ? rq->min : q > rq->max ? rq->max : q);
}

int32_t dory_requant(const dory_requant_t *rq, int32_t acc, int c)
{
    return dk_requant(rq, acc, c);
}
