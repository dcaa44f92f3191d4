/*
 * Depthwise convolution (groups = channels; in_c == out_c; weights [c][kh][kw]).
 *
 * As in PULP-NN, the HWC input is re-laid per channel so that the window becomes
 * contiguous bytes for the 4-way dot products: for one channel c and one output column
 * ox, the core gathers the kw input columns of that window (all in_h input rows, zero
 * for padded columns) into its scratch `im2col + core_id * in_h * kw` as [in_h][kw]; the
 * kh x kw window of output (oy, ox) is then rows y0 .. y0 + (kh-1)*dh of that buffer
 * (padded rows are skipped, never stored), contiguous when dh == 1, and is dotted with
 * the channel's weights [kh][kw].
 *
 * Work split: the (channel, output column) pairs c * out_w + ox are split into
 * contiguous chunks, one per core (balanced even for a few channels or columns).
 */
#include "dk_internal.h"

/* The kw columns of output column ox, channel c, all input rows: buf[in_h][kw]. */
static void gather_column(const dory_conv_t *p, uint32_t c, int ox, uint8_t *buf)
{
    const uint8_t *in = (const uint8_t *)p->in;
    const int x0 = ox * p->sw - p->pad_l;
    for (int j = 0; j < p->kw; j++) {
        const int ix = x0 + j * p->dw;
        uint8_t *dst = buf + j;
        if (ix < 0 || ix >= p->in_w) {
            for (int r = 0; r < p->in_h; r++, dst += p->kw)
                *dst = 0;
        } else {
            const uint8_t *src = in + (size_t)ix * p->in_c + c;
            const size_t row = (size_t)p->in_w * p->in_c;
            for (int r = 0; r < p->in_h; r++, dst += p->kw, src += row)
                *dst = *src;
        }
    }
}

DK_ALWAYS_INLINE void depthwise_body(const dory_conv_t *p, int sgn)
{
    const uint32_t kk = (uint32_t)p->kh * p->kw;
    uint8_t *buf = (uint8_t *)p->im2col + (size_t)pi_core_id() * p->in_h * p->kw;
    uint32_t lo, hi;
    dk_share((uint32_t)p->out_c * p->out_w, 1, &lo, &hi);
    for (uint32_t u = lo; u < hi; u++) {
        const uint32_t c = u / p->out_w;
        const int ox = (int)(u % p->out_w);
        const int8_t *w = p->weights + (size_t)c * kk;
        dk_chan_t ch; /* the channel's bias and requant, decoded once for the column */
        dk_chan(&ch, p->rq, p->bias, (int)c);
        gather_column(p, c, ox, buf);
        for (int oy = 0; oy < p->out_h; oy++) {
            /* window rows i in [i0, i1) lie inside the input */
            const int y0 = oy * p->sh - p->pad_t;
            int i0 = 0, i1 = p->kh;
            if (y0 < 0)
                i0 = (-y0 + p->dh - 1) / p->dh;
            if (y0 + (i1 - 1) * p->dh >= p->in_h)
                i1 = y0 >= p->in_h ? 0 : (p->in_h - 1 - y0) / p->dh + 1;
            int32_t sum = 0;
            if (i0 < i1) {
                if (p->dh == 1) {
                    sum = dk_dot(buf + (size_t)(y0 + i0) * p->kw, w + (size_t)i0 * p->kw,
                                 (uint32_t)(i1 - i0) * p->kw, sgn);
                } else {
                    for (int i = i0; i < i1; i++)
                        sum += dk_dot(buf + (size_t)(y0 + i * p->dh) * p->kw,
                                      w + (size_t)i * p->kw, p->kw, sgn);
                }
            }
            const size_t idx = ((size_t)oy * p->out_w + (size_t)ox) * p->out_c + c;
            dk_emit(&ch, p->acc, p->first_slice, p->last_slice, p->out, p->out_type, idx, sum);
        }
    }
}

static void depthwise_u8(const dory_conv_t *p) { depthwise_body(p, 0); }
static void depthwise_i8(const dory_conv_t *p) { depthwise_body(p, 1); }

void dory_depthwise(const dory_conv_t *p)
{
    if (p->in_type == DORY_I8)
        depthwise_i8(p);
    else
        depthwise_u8(p);
}
