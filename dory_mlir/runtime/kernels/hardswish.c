/*
 * QuantLib's integer hardswish (iHardswish, qnn.hardswish), elementwise over an HWC tile:
 * v = x * (clip(x + three, 0, six) * one_over_six) in 32 bits (the importer checks it fits), then
 * the layer's requant of channel c, or v itself (DORY_I32) when rq == NULL (dk_elementwise).
 */
#include "dk_internal.h"

DK_ALWAYS_INLINE int32_t hardswish_value(const void *params, int32_t x)
{
    const dory_hardswish_t *p = (const dory_hardswish_t *)params;
    int32_t t = x + p->three;
    t = t < 0 ? 0 : t > p->six ? p->six : t;
    return x * (t * p->one_over_six);
}

void dory_hardswish(const dory_hardswish_t *p)
{
    dk_elementwise(p->in, p->in_type, (uint32_t)p->h * p->w * p->c, p->c, p->rq, p->out, p->out_type,
                   hardswish_value, p);
}
