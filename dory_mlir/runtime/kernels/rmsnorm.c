/*
 * QuantLib's integer RMS norm (iRMSNorm, qnn.rms_norm) over the c features of each pixel of an
 * HWC tile (a pixel is a row of features): s = sum(x^2) / c + 1, r = floor(sqrt(s)), then every
 * feature y = clip((x * weight[j] / r) >> shift, min, max), the division toward zero (as Deeploy's
 * C), the shift arithmetic: the row norm of dk_internal.h, not centered, no bias. The importer
 * guarantees x * weight fits 32 bits (the cheap division).
 */
#include "dk_internal.h"

void dory_rmsnorm(const dory_rmsnorm_t *p)
{
    dk_row_norm(p->in, p->in_type, (uint32_t)p->h * p->w, p->c, 0, p->weight, NULL, p->shift, p->min, p->max,
                p->out, p->out_type);
}
