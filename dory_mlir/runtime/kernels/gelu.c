/*
 * QuantLib's integer GELU (iGELU, qnn.gelu: I-BERT's second-order polynomial), elementwise over an
 * HWC tile: q = min(|x|, -b), L = sgn(x) * (one - (q + b)^2), v = x * ((one + L) >> 1) in 32 bits
 * (the verifier checks every intermediate fits; >> is arithmetic: the floor of QuantLib's halving),
 * then the layer's requant of channel c, or v itself (DORY_I32) when rq == NULL (dk_elementwise).
 */
#include "dk_internal.h"

DK_ALWAYS_INLINE int32_t gelu_value(const void *params, int32_t x)
{
    const dory_gelu_t *p = (const dory_gelu_t *)params;
    const int32_t magnitude = x < 0 ? -x : x;
    const int32_t d = (magnitude < -p->b ? magnitude : -p->b) + p->b;
    const int32_t l = ((x > 0) - (x < 0)) * (p->one - d * d);
    return x * ((p->one + l) >> 1);
}

void dory_gelu(const dory_gelu_t *p)
{
    dk_elementwise(p->in, p->in_type, (uint32_t)p->h * p->w * p->c, p->c, p->rq, p->out, p->out_type, gelu_value, p);
}
