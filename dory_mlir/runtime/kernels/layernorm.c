/*
 * QuantLib's integer layer norm (iLayerNorm, qnn.layer_norm) over the c features of each pixel of
 * an HWC tile (a pixel is a row of features), as Deeploy's C computes it: m = sum(x) / c (toward
 * zero), d = x - m, r = floor(sqrt(sum(d^2) / c + 1)), then every feature
 * y = clip((d * weight[j] / r + bias[j]) >> shift, min, max): the row norm of dk_internal.h, centered.
 */
#include "dk_internal.h"

void dory_layernorm(const dory_layernorm_t *p)
{
    dk_row_norm(p->in, p->in_type, (uint32_t)p->h * p->w, p->c, 1, p->weight, p->bias, p->shift, p->min, p->max,
                p->out, p->out_type);
}
