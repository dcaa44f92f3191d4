/*
 * The out-of-line part of the requantization (see dk_internal.h for the method): the
 * decoding once per kernel call (dk_rq_init, dk_out_init) and once per channel (dk_rqc);
 * dk_requant_general for the requants outside the window modes; dk_out_general, the end
 * of an output value in every case (partial sums, int32 outputs); the requant of one
 * value (dk_requant, and dory_requant of the API). Exact in every case.
 */
#include "dk_internal.h"

/* Constant i of an int32 or int64 array. Buffers are 4-byte aligned in L1/L2 (the lowering's
 * alignment), so an int64 is read as its two little-endian words, never as one 8-byte load. */
static uint64_t rq_const(const void *p, int per_channel, int bits, int c, int64_t dflt)
{
    if (p == NULL)
        return (uint64_t)dflt;
    const uint32_t *words = (const uint32_t *)p;
    const size_t i = per_channel ? (size_t)c : 0;
    if (bits == 64)
        return (uint64_t)words[2 * i] | (uint64_t)words[2 * i + 1] << 32;
    return (uint64_t)(int64_t)(int32_t)words[i];
}

/* M and A - lo of channel c (modulo 2^64; the low words are the values modulo 2^32). */
static void rq_consts(const dk_rq_t *q, int c, uint64_t *m, uint64_t *a)
{
    const dory_requant_t *rq = q->rq;
    const uint64_t scale = (uint64_t)rq->scale;
    *m = rq_const(rq->mul, rq->mul_per_channel, rq->const_bits, c, 1) * scale;
    *a = rq_const(rq->add, rq->add_per_channel, rq->const_bits, c, 0) * scale - q->lo;
}

void dk_rq_init(dk_rq_t *q, const dory_requant_t *rq, const int32_t *bias)
{
    *q = (dk_rq_t){.rq = rq, .bias = bias, .mode = DK_RQ_NONE, .shift = -1, .divisor = 1};
    if (rq == NULL)
        return;
    q->mode = DK_RQ_GENERAL;
    q->min = rq->min;
    q->max = rq->max;
    const int64_t d = rq->divisor;
    if (d > (int64_t)UINT32_MAX || rq->max < rq->min || (rq->trunc && rq->min < 0))
        return;
    /* |min|, |max| <= 2^31 and d < 2^32: lo and hi fit int64, hi - lo fits uint64 */
    const int64_t lo = rq->min * d, hi = rq->max * d;
    const uint64_t range = (uint64_t)((int64_t)rq->max - rq->min) * (uint64_t)d;
    if (range > UINT32_MAX)
        return;
    const int s = rq->shift;
    q->shift = (int8_t)(s >= 0 && s <= 31 && ((int64_t)1 << s) == d ? s : -1);
    q->divisor = (uint32_t)d;
    q->range = (uint32_t)range;
    q->lo = (uint64_t)lo;
    q->split_sign = lo == 0;
    if (!rq->wide && lo > INT32_MIN && hi <= INT32_MAX) {
        q->mode = DK_RQ_WIN32;
        q->split = (uint32_t)(0x80000000u - (uint32_t)q->lo);
    } else {
        q->mode = DK_RQ_WIN64;
        q->split = ((uint64_t)1 << 63) - q->lo;
    }
    rq_consts(q, 0, &q->m, &q->a); /* the values of every channel for what is not per channel */
    q->mul = rq->mul != NULL && rq->mul_per_channel ? rq->mul : NULL;
    q->add = rq->add != NULL && rq->add_per_channel ? rq->add : NULL;
    q->const_bits = rq->const_bits;
    q->scale = (uint64_t)rq->scale;
}

void dk_out_init(dk_out_t *o, const dory_requant_t *rq, const int32_t *bias, int32_t *acc, int first, int last,
                 void *out, dory_dtype_t out_type)
{
    dk_rq_init(&o->rq, rq, bias);
    o->acc = acc;
    o->first = (uint8_t)first;
    o->last = (uint8_t)last;
    o->bytes = (uint8_t)dk_elem_bytes(out_type);
    o->out = out;
}

int32_t dk_requant_general(const dory_requant_t *rq, int32_t acc, int c)
{
    const int64_t mul = (int64_t)rq_const(rq->mul, rq->mul_per_channel, rq->const_bits, c, 1);
    const int64_t add = (int64_t)rq_const(rq->add, rq->add_per_channel, rq->const_bits, c, 0);
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

void dk_rqc(const dk_rq_t *q, int c, dk_rqc_t *ch)
{
    *ch = (dk_rqc_t){.bias = q->bias != NULL ? q->bias[c] : 0, .c = c, .f = {.m = q->m, .a = q->a}};
    if (q->mode != DK_RQ_WIN32 && q->mode != DK_RQ_WIN64)
        return;
    if (q->mul != NULL)
        ch->f.m = rq_const(q->mul, 1, q->const_bits, c, 1) * q->scale;
    if (q->add != NULL)
        ch->f.a = rq_const(q->add, 1, q->const_bits, c, 0) * q->scale - q->lo;
}

void dk_fold(const dk_rq_t *q, int c, dk_fold_t *f)
{
    dk_rqc_t ch;
    dk_rqc(q, c, &ch);
    *f = (dk_fold_t){.m = ch.f.m, .a = ch.f.a + (uint64_t)(int64_t)ch.bias * ch.f.m};
}

void dk_out_w64(const dk_out_t *o, const dk_fold_t *f, size_t idx, int32_t sum)
{
    dk_out_fast(o, f, idx, sum, DK_OUT_W64);
}

void dk_out_general(const dk_out_t *o, const dk_rqc_t *ch, size_t idx, int32_t sum)
{
    int32_t v;
    if (o->acc == NULL) {
        v = dk_add32(ch->bias, sum);
    } else {
        v = dk_add32(o->first ? ch->bias : o->acc[idx], sum);
        if (!o->last) {
            o->acc[idx] = v;
            return;
        }
    }
    v = dk_rq(&o->rq, ch, v);
    if (o->bytes == 1)
        ((uint8_t *)o->out)[idx] = (uint8_t)v; /* the two's complement byte of an i8 */
    else if (o->bytes == 2)
        ((uint16_t *)o->out)[idx] = (uint16_t)v; /* likewise for an i16 */
    else
        ((int32_t *)o->out)[idx] = v;
}

int32_t dk_requant(const dory_requant_t *rq, int32_t acc, int c)
{
    dk_rq_t q;
    dk_rqc_t ch;
    dk_rq_init(&q, rq, NULL);
    dk_rqc(&q, c, &ch);
    return dk_rq(&q, &ch, acc);
}

int32_t dory_requant(const dory_requant_t *rq, int32_t acc, int c)
{
    return dk_requant(rq, acc, c);
}
