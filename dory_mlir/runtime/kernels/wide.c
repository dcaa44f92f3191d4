/*
 * The kernels over 16-bit activations (DORY_U16 / DORY_I16): where the exported network's own
 * integers exceed 8 bits (e.g. a NEMO add with no clip feeding a conv), the deployed network
 * carries them as 16-bit tensors and computes exactly what the exported one computes.
 *
 * A simple, exact and portable path, taken at the top of the kernel entries when the input is
 * 16-bit (the int8 fast paths -- blocking, SIMD, sliding windows -- are untouched): every
 * output value is its window's sum read in place (padding by pad_value, no im2col copy), then
 * the shared end of an output value (dk_out_general: bias, partial sums, requant, a 1-, 2- or
 * 4-byte store). The work split is that of the int8 kernels' pixels (output pixels, row-major
 * chunks per core) or, for linear, output channels.
 *
 * Sums are accumulated modulo 2^32: |x · w| <= 65,535 · 128 < 2^23 per product, and the sum is
 * exact whenever its true value fits int32, which the qnn semantics guarantee (as for the
 * partial sums of a split reduction).
 */
#include "dk_internal.h"

/* Element i of a 16-bit activation tensor (sgn: DORY_I16, else DORY_U16). */
DK_ALWAYS_INLINE int32_t x16(const void *p, size_t i, int sgn)
{
    return sgn ? (int32_t)((const int16_t *)p)[i] : (int32_t)((const uint16_t *)p)[i];
}

/* The sum of output channel co at output pixel (oy, ox): conv (weights [co][kh][kw][in_c]) or,
 * with `depthwise`, input channel co alone (weights [co][kh][kw]). */
DK_ALWAYS_INLINE int32_t window_sum(const dory_conv_t *p, int oy, int ox, uint32_t co, int depthwise, int sgn)
{
    const size_t C = p->in_c, taps = depthwise ? 1 : C;
    const int8_t *w = p->weights + (size_t)co * p->kh * p->kw * taps;
    const int y0 = oy * p->sh - p->pad_t, x0 = ox * p->sw - p->pad_l;
    uint32_t s = 0;
    for (int i = 0; i < p->kh; i++) {
        const int iy = y0 + i * p->dh;
        for (int j = 0; j < p->kw; j++, w += taps) {
            const int ix = x0 + j * p->dw;
            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                for (size_t c = 0; c < taps; c++) /* a padded position holds pad_value */
                    s += (uint32_t)(p->pad_value * (int32_t)w[c]);
                continue;
            }
            const size_t at = ((size_t)iy * p->in_w + (size_t)ix) * C + (depthwise ? co : 0);
            for (size_t c = 0; c < taps; c++)
                s += (uint32_t)(x16(p->in, at + c, sgn) * (int32_t)w[c]);
        }
    }
    return dk_i32(s);
}

DK_ALWAYS_INLINE void conv_wide(const dory_conv_t *p, int depthwise)
{
    const int sgn = p->in_type == DORY_I16;
    dk_out_t o;
    dk_out_init(&o, p->rq, p->bias, p->acc, p->first_slice, p->last_slice, p->out, p->out_type);
    uint32_t lo, hi;
    dk_share((uint32_t)p->out_h * p->out_w, 1, &lo, &hi);
    for (uint32_t pix = lo; pix < hi; pix++) {
        const int oy = (int)(pix / p->out_w), ox = (int)(pix % p->out_w);
        for (uint32_t co = 0; co < p->out_c; co++) {
            dk_rqc_t ch;
            dk_rqc(&o.rq, (int)co, &ch);
            dk_out_general(&o, &ch, (size_t)pix * p->out_c + co, window_sum(p, oy, ox, co, depthwise, sgn));
        }
    }
}

void dk_conv2d_wide(const dory_conv_t *p) { conv_wide(p, 0); }
void dk_pointwise_wide(const dory_conv_t *p) { conv_wide(p, 0); }
void dk_depthwise_wide(const dory_conv_t *p) { conv_wide(p, 1); }

void dk_linear_wide(const dory_linear_t *p)
{
    const int sgn = p->in_type == DORY_I16;
    dk_out_t o;
    dk_out_init(&o, p->rq, p->bias, p->acc, p->first_slice, p->last_slice, p->out, p->out_type);
    uint32_t lo, hi;
    dk_share(p->out_c, 1, &lo, &hi);
    for (uint32_t co = lo; co < hi; co++) {
        const int8_t *w = p->weights + (size_t)co * p->in_c;
        uint32_t s = 0;
        for (size_t k = 0; k < p->in_c; k++)
            s += (uint32_t)(x16(p->in, k, sgn) * (int32_t)w[k]);
        dk_rqc_t ch;
        dk_rqc(&o.rq, (int)co, &ch);
        dk_out_general(&o, &ch, co, dk_i32(s));
    }
}

/* Max pool (padding never wins) or sum pool (zero padding) of any input and output types:
 * taken when either is 16-bit. */
void dk_pool_wide(const dory_pool_t *p, int is_max)
{
    const size_t C = p->c;
    const int32_t lowest = p->in_type == DORY_I16 ? INT16_MIN : p->in_type == DORY_I8 ? INT8_MIN : 0;
    dk_out_t o;
    dk_out_init(&o, p->rq, NULL, NULL, 1, 1, p->out, p->out_type);
    uint32_t lo, hi;
    dk_share((uint32_t)p->out_h * p->out_w, 1, &lo, &hi);
    for (uint32_t pix = lo; pix < hi; pix++) {
        const int oy = (int)(pix / p->out_w), ox = (int)(pix % p->out_w);
        const int ys = oy * p->sh - p->pad_t, xs = ox * p->sw - p->pad_l;
        const int y0 = ys < 0 ? 0 : ys, x0 = xs < 0 ? 0 : xs;
        const int y1 = ys + p->kh > p->in_h ? p->in_h : ys + p->kh, x1 = xs + p->kw > p->in_w ? p->in_w : xs + p->kw;
        for (size_t c = 0; c < C; c++) {
            int32_t r = is_max ? lowest : 0; /* a sum modulo 2^32: exact where it fits int32 */
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++) {
                    const int32_t v = dk_load(p->in, p->in_type, ((size_t)y * p->in_w + (size_t)x) * C + c);
                    r = is_max ? (v > r ? v : r) : dk_add32(r, v);
                }
            const size_t idx = (size_t)pix * C + c;
            if (is_max && p->rq == NULL) {
                dk_store(p->out, p->out_type, idx, r);
            } else {
                dk_rqc_t ch;
                dk_rqc(&o.rq, (int)c, &ch);
                dk_out_general(&o, &ch, idx, r);
            }
        }
    }
}
