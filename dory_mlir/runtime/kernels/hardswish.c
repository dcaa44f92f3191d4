/*
 * QuantLib's integer hardswish (iHardswish, qnn.hardswish), elementwise over an HWC tile:
 * v = x * (clip(x + three, 0, six) * one_over_six) in 32 bits (the importer checks it fits), then
 * the layer's requant of channel c, or v itself (DORY_I32) when rq == NULL. The elements are
 * split into contiguous chunks, one per core.
 */
#include "dk_internal.h"

void dory_hardswish(const dory_hardswish_t *p)
{
    const size_t C = p->c;
    const int sgn = p->in_type == DORY_I8;
    dk_out_t o;
    dk_out_init(&o, p->rq, NULL, NULL, 1, 1, p->out, p->out_type);
    uint32_t lo, hi;
    dk_share((uint32_t)p->h * p->w * p->c, 1, &lo, &hi);
    for (uint32_t i = lo; i < hi; i++) {
        const int32_t x = dk_x((const uint8_t *)p->in, i, sgn);
        int32_t t = x + p->three;
        t = t < 0 ? 0 : t > p->six ? p->six : t;
        dk_rqc_t ch;
        dk_rqc(&o.rq, (int)(i % C), &ch);
        dk_out_general(&o, &ch, i, x * (t * p->one_over_six));
    }
}
