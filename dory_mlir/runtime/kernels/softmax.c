/*
 * QuantLib's integer softmax (iSoftmax, qnn.softmax) over the c features of each pixel of an
 * HWC tile (a pixel is a row of features): per row, the maximum m, then for every feature the
 * integer exponential e = (A * (q)^2 + C) >> z of d = x - m <= 0, z = min(-d / log2, 31),
 * q = d + z * log2 + B, the row's sum S, and y = e * (n_levels - 1) / S (unsigned). The importer
 * guarantees e * (n_levels - 1) and S fit 32 bits; e is computed twice (for S, then for y) so
 * that the kernel needs no scratch. The rows are split into contiguous chunks, one per core.
 */
#include "dk_internal.h"

DK_ALWAYS_INLINE uint32_t softmax_exp(const dory_softmax_t *p, int32_t d)
{
    int32_t z = -d / p->log2;
    z = z > 31 ? 31 : z;
    const int64_t q = (int64_t)d + (int64_t)z * p->log2 + p->coeff_b;
    return (uint32_t)(((int64_t)p->coeff_a * q * q + p->coeff_c) >> z);
}

void dory_softmax(const dory_softmax_t *p)
{
    const size_t C = p->c;
    const int sgn = p->in_type == DORY_I8;
    const uint32_t top = (uint32_t)p->n_levels - 1;
    uint32_t lo, hi;
    dk_share((uint32_t)p->h * p->w, 1, &lo, &hi);
    for (uint32_t pix = lo; pix < hi; pix++) {
        const uint8_t *x = (const uint8_t *)p->in + (size_t)pix * C;
        uint8_t *y = (uint8_t *)p->out + (size_t)pix * C;
        int32_t m = dk_x(x, 0, sgn);
        for (size_t j = 1; j < C; j++) {
            const int32_t v = dk_x(x, j, sgn);
            m = v > m ? v : m;
        }
        uint32_t sum = 0;
        for (size_t j = 0; j < C; j++)
            sum += softmax_exp(p, dk_x(x, j, sgn) - m);
        for (size_t j = 0; j < C; j++)
            y[j] = (uint8_t)(softmax_exp(p, dk_x(x, j, sgn) - m) * top / sum);
    }
}
