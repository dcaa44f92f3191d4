/*
 * ITA's integer softmax (QuantLib's ITAPartialMax, and ITAMax: one group of all c features;
 * qnn.ita_max, n_levels = 256) over the c features of each pixel of an HWC tile (a pixel is a row
 * of int8 features), in groups of group_width features as ITA streams them. The shift of x against
 * a maximum m is s = (m - x + 16) >> 5 (the distance in steps of 1/32, rounded half up: 2^-s stands
 * for e^(x - m)). Per row: a running maximum m from -127 (QuantLib's start) and partial sum P; per
 * group, if its maximum g exceeds m, P >>= shift(g, m) and m = g; then P += sum(256 >> shift(m, x)).
 * Finally y = ((n_levels - 1) * 256 / P) >> shift(m, x) (unsigned); P <= 256 * c. The shifts are
 * computed again for y so that the kernel needs no scratch. The rows are split into contiguous
 * chunks, one per core.
 */
#include "dk_internal.h"

DK_ALWAYS_INLINE uint32_t itamax_shift(int32_t m, int32_t x)
{
    return (uint32_t)(m - x + 16) >> 5;
}

void dory_itamax(const dory_itamax_t *p)
{
    const size_t C = p->c, W = p->group_width;
    uint32_t lo, hi;
    dk_share((uint32_t)p->h * p->w, 1, &lo, &hi);
    for (uint32_t pix = lo; pix < hi; pix++) {
        const int8_t *x = p->in + (size_t)pix * C;
        uint8_t *y = p->out + (size_t)pix * C;
        int32_t m = -127;
        uint32_t partial = 0;
        for (size_t start = 0; start < C; start += W) {
            int32_t group_max = x[start];
            for (size_t k = 1; k < W; k++)
                group_max = x[start + k] > group_max ? x[start + k] : group_max;
            if (group_max > m) {
                partial >>= itamax_shift(group_max, m);
                m = group_max;
            }
            for (size_t k = 0; k < W; k++)
                partial += 256u >> itamax_shift(m, x[start + k]);
        }
        const uint32_t inverse = (uint32_t)(p->n_levels - 1) * 256u / partial;
        for (size_t j = 0; j < C; j++)
            y[j] = (uint8_t)(inverse >> itamax_shift(m, x[j]));
    }
}
