/*
 * Fully connected layer: out[co] = rq(bias[co] + Σ_ci w[co][ci] · in[ci]).
 *
 * The output channels are split into contiguous chunks, one per core; each core walks its
 * channels 4 at a time (4 int32 accumulators sharing one load of the input word per
 * 4-way SIMD dot product), with leftover channels and input bytes handled separately.
 * The reduction may be split into slices (acc / first_slice / last_slice, see dk_emit).
 */
#include "dk_internal.h"

DK_NOINLINE void emit(const dory_linear_t *p, uint32_t c, int32_t sum)
{
    dk_chan_t ch;
    dk_chan(&ch, p->rq, p->bias, (int)c);
    dk_emit(&ch, p->acc, p->first_slice, p->last_slice, p->out, p->out_type, c, sum);
}
#define EMIT(c, sum) emit(p, (c), (sum))

DK_ALWAYS_INLINE void linear_body(const dory_linear_t *p, int sgn)
{
    const uint8_t *x = (const uint8_t *)p->in;
    const uint32_t K = p->in_c;
    uint32_t lo, hi;
    dk_share(p->out_c, 1, &lo, &hi);
    uint32_t co = lo;
    for (; co + 4 <= hi; co += 4) {
        const int8_t *w0 = p->weights + (size_t)co * K;
        const int8_t *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        uint32_t k = 0;
        for (; k + DK_LANES <= K; k += DK_LANES) {
            dk_word a = dk_ldx(x + k, sgn);
            s0 = dk_dotw(a, dk_ldw(w0 + k), s0, sgn);
            s1 = dk_dotw(a, dk_ldw(w1 + k), s1, sgn);
            s2 = dk_dotw(a, dk_ldw(w2 + k), s2, sgn);
            s3 = dk_dotw(a, dk_ldw(w3 + k), s3, sgn);
        }
        for (; k < K; k++) {
            const int32_t a = dk_x(x, k, sgn);
            s0 += a * w0[k];
            s1 += a * w1[k];
            s2 += a * w2[k];
            s3 += a * w3[k];
        }
        EMIT(co, s0);
        EMIT(co + 1, s1);
        EMIT(co + 2, s2);
        EMIT(co + 3, s3);
    }
    for (; co < hi; co++)
        EMIT(co, dk_dot(x, p->weights + (size_t)co * K, K, sgn));
}

static void linear_u8(const dory_linear_t *p) { linear_body(p, 0); }
static void linear_i8(const dory_linear_t *p) { linear_body(p, 1); }

void dory_linear(const dory_linear_t *p)
{
    if (p->in_type == DORY_I8)
        linear_i8(p);
    else
        linear_u8(p);
}
