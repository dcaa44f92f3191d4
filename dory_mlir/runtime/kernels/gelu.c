/*
 * QuantLib's integer GELU (iGELU, qnn.gelu: I-BERT's second-order polynomial), elementwise over an
 * HWC tile: q = min(|x|, -b), L = sgn(x) * (one - (q + b)^2), v = x * ((one + L) >> 1) in 32 bits
 * (the verifier checks every intermediate fits; >> is arithmetic: the floor of QuantLib's halving),
 * then the layer's requant of channel c, or v itself (DORY_I32) when rq == NULL. The elements are
 * split into contiguous chunks, one per core.
 */
#include "dk_internal.h"

void dory_gelu(const dory_gelu_t *p)
{
    const size_t C = p->c;
    const int sgn = p->in_type == DORY_I8;
    dk_out_t o;
    dk_out_init(&o, p->rq, NULL, NULL, 1, 1, p->out, p->out_type);
    uint32_t lo, hi;
    dk_share((uint32_t)p->h * p->w * p->c, 1, &lo, &hi);
    for (uint32_t i = lo; i < hi; i++) {
        const int32_t x = dk_x((const uint8_t *)p->in, i, sgn);
        const int32_t magnitude = x < 0 ? -x : x;
        const int32_t d = (magnitude < -p->b ? magnitude : -p->b) + p->b;
        const int32_t level = (x > 0) - (x < 0);
        const int32_t l = level * (p->one - d * d);
        dk_rqc_t ch;
        dk_rqc(&o.rq, (int)(i % C), &ch);
        dk_out_general(&o, &ch, i, x * ((p->one + l) >> 1));
    }
}
