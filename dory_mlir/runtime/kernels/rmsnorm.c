/*
 * QuantLib's integer RMS norm (iRMSNorm, qnn.rms_norm) over the c features of each pixel of an
 * HWC tile (a pixel is a row of features): s = sum(x^2) / c + 1, r = floor(sqrt(s)), then every
 * feature y = clip((x * weight[j] / r) >> shift, min, max), the division toward zero (as Deeploy's
 * C), the shift arithmetic. The importer guarantees c * x^2 and x * weight fit 32 bits. The rows
 * are split into contiguous chunks, one per core.
 */
#include "dk_internal.h"

void dory_rmsnorm(const dory_rmsnorm_t *p)
{
    const size_t C = p->c;
    const int sgn = p->in_type == DORY_I8;
    uint32_t lo, hi;
    dk_share((uint32_t)p->h * p->w, 1, &lo, &hi);
    for (uint32_t pix = lo; pix < hi; pix++) {
        const uint8_t *x = (const uint8_t *)p->in + (size_t)pix * C;
        uint32_t sum = 0;
        for (size_t j = 0; j < C; j++) {
            const int32_t v = dk_x(x, j, sgn);
            sum += (uint32_t)(v * v);
        }
        const int32_t root = (int32_t)dk_isqrt32(sum / (uint32_t)C + 1);
        for (size_t j = 0; j < C; j++) {
            int32_t y = (dk_x(x, j, sgn) * p->weight[j] / root) >> p->shift;
            y = y < p->min ? p->min : y > p->max ? p->max : y;
            dk_store(p->out, p->out_type, (size_t)pix * C + j, y);
        }
    }
}
