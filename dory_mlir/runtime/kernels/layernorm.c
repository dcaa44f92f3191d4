/*
 * QuantLib's integer layer norm (iLayerNorm, qnn.layer_norm) over the c features of each pixel of
 * an HWC tile (a pixel is a row of features), as Deeploy's C computes it: m = sum(x) / c (toward
 * zero), d = x - m, r = floor(sqrt(sum(d^2) / c + 1)), then every feature
 * y = clip((d * weight[j] / r + bias[j]) >> shift, min, max), the division toward zero, the shift
 * arithmetic. |d| <= 255, so sum(d^2) fits 32 bits (the verifier bounds c); d * weight and the
 * biased quotient take 64 bits (a 32-bit division where the product fits: the cheap case on rv32).
 * The rows are split into contiguous chunks, one per core.
 */
#include "dk_internal.h"

void dory_layernorm(const dory_layernorm_t *p)
{
    const size_t C = p->c;
    const int sgn = p->in_type == DORY_I8;
    uint32_t lo, hi;
    dk_share((uint32_t)p->h * p->w, 1, &lo, &hi);
    for (uint32_t pix = lo; pix < hi; pix++) {
        const uint8_t *x = (const uint8_t *)p->in + (size_t)pix * C;
        int32_t total = 0;
        for (size_t j = 0; j < C; j++)
            total += dk_x(x, j, sgn);
        const int32_t mean = total / (int32_t)C;
        uint32_t squares = 0;
        for (size_t j = 0; j < C; j++) {
            const int32_t d = dk_x(x, j, sgn) - mean;
            squares += (uint32_t)(d * d);
        }
        const int32_t root = (int32_t)dk_isqrt32(squares / (uint32_t)C + 1);
        for (size_t j = 0; j < C; j++) {
            const int64_t num = (int64_t)(dk_x(x, j, sgn) - mean) * p->weight[j];
            const int64_t quotient = (num >= INT32_MIN && num <= INT32_MAX) ? (int32_t)num / root : num / root;
            int64_t y = (quotient + p->bias[j]) >> p->shift;
            y = y < p->min ? p->min : y > p->max ? p->max : y;
            dk_store(p->out, p->out_type, (size_t)pix * C + j, (int32_t)y);
        }
    }
}
