/*
 * ITA's integer softmax (QuantLib's ITAMax, qnn.ita_max, n_levels = 256) over the c features of
 * each pixel of an HWC tile (a pixel is a row of int8 features): per row the maximum m, for every
 * feature the shift s = (m - x + 16) >> 5 (the distance in steps of 1/32, rounded half up: 2^-s
 * stands for e^(x - m)), the sum S = sum(256 >> s) <= 256 * c, then y = ((n_levels - 1) * 256 / S) >> s
 * (unsigned). The shifts are computed twice (for S, then for y) so that the kernel needs no scratch.
 * The rows are split into contiguous chunks, one per core.
 */
#include "dk_internal.h"

DK_ALWAYS_INLINE uint32_t itamax_shift(int32_t m, int32_t x)
{
    return (uint32_t)(m - x + 16) >> 5;
}

void dory_itamax(const dory_itamax_t *p)
{
    const size_t C = p->c;
    uint32_t lo, hi;
    dk_share((uint32_t)p->h * p->w, 1, &lo, &hi);
    for (uint32_t pix = lo; pix < hi; pix++) {
        const int8_t *x = p->in + (size_t)pix * C;
        uint8_t *y = p->out + (size_t)pix * C;
        int32_t m = x[0];
        for (size_t j = 1; j < C; j++)
            m = x[j] > m ? x[j] : m;
        uint32_t sum = 0;
        for (size_t j = 0; j < C; j++)
            sum += 256u >> itamax_shift(m, x[j]);
        const uint32_t inverse = (uint32_t)(p->n_levels - 1) * 256u / sum;
        for (size_t j = 0; j < C; j++)
            y[j] = (uint8_t)(inverse >> itamax_shift(m, x[j]));
    }
}
