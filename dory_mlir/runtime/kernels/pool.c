/*
 * Pooling over HWC tiles (dilation 1):
 *   max pool: the maximum of the window's input values; padded positions are not part
 *             of the window (padding never wins); then requant (rq) when the layer
 *             changes the quantization (QDQ models), else the maximum itself;
 *   sum pool: the window sum with zero padding (int32), then requant (rq), or the int32
 *             sum itself when rq == NULL.
 * The output pixels (row-major, out_h * out_w) are split into contiguous chunks, one per
 * core. A pixel's window is clipped to the input once; its channels then walk it with
 * pointers (in_c bytes between columns, a row between rows).
 */
#include "dk_internal.h"

/* The window of output pixel `pix` clipped to the input: its first byte (channel 0) and its
 * rows and columns inside the input (padding only shrinks it). */
DK_ALWAYS_INLINE const uint8_t *window_of(const dory_pool_t *p, uint32_t pix, int *rows, int *cols)
{
    const int oy = (int)(pix / p->out_w), ox = (int)(pix % p->out_w);
    const int ys = oy * p->sh - p->pad_t, xs = ox * p->sw - p->pad_l;
    const int y0 = ys < 0 ? 0 : ys, x0 = xs < 0 ? 0 : xs;
    const int y1 = ys + p->kh > p->in_h ? p->in_h : ys + p->kh, x1 = xs + p->kw > p->in_w ? p->in_w : xs + p->kw;
    *rows = y1 - y0;
    *cols = x1 - x0;
    return (const uint8_t *)p->in + ((size_t)y0 * p->in_w + (size_t)x0) * p->c;
}

/* The maximum (max pool) or the sum (sum pool) of channel c over the window at w. */
DK_ALWAYS_INLINE int32_t reduce(const uint8_t *w, int rows, int cols, size_t C, size_t row, int is_max, int sgn)
{
    int32_t r = is_max ? (sgn ? INT8_MIN : 0) : 0; /* the lowest value, for an empty window */
    for (int y = 0; y < rows; y++, w += row) {
        const uint8_t *x = w;
        for (int i = 0; i < cols; i++, x += C) {
            const int32_t v = dk_x(x, 0, sgn);
            if (is_max)
                r = v > r ? v : r;
            else
                r += v;
        }
    }
    return r;
}

/* The max pool of a whole 2x2 window (the usual one) without requant: channel by channel,
 * 4 pointers (the window's corners) walked in step, no loops over the window. */
DK_ALWAYS_INLINE void max2x2(const uint8_t *w, size_t C, size_t row, uint8_t *out, int sgn)
{
    const uint8_t *a = w, *b = w + C, *c = w + row, *d = w + row + C;
    for (uint8_t *end = out + C; out != end; out++, a++, b++, c++, d++) {
        const int32_t va = dk_x(a, 0, sgn), vb = dk_x(b, 0, sgn), vc = dk_x(c, 0, sgn), vd = dk_x(d, 0, sgn);
        const int32_t top = va > vb ? va : vb, bottom = vc > vd ? vc : vd;
        *out = (uint8_t)(top > bottom ? top : bottom);
    }
}

DK_ALWAYS_INLINE void pool_body(const dory_pool_t *p, int is_max, int sgn)
{
    const size_t C = p->c, row = (size_t)p->in_w * C;
    dk_out_t o;
    dk_out_init(&o, p->rq, NULL, NULL, 1, 1, p->out, p->out_type);
    uint32_t lo, hi;
    dk_share((uint32_t)p->out_h * p->out_w, 1, &lo, &hi);
    for (uint32_t pix = lo; pix < hi; pix++) {
        int rows, cols;
        const uint8_t *w = window_of(p, pix, &rows, &cols);
        if (is_max && p->rq == NULL && p->out_type != DORY_I32 && rows == 2 && cols == 2 && p->kh == 2 &&
            p->kw == 2) {
            max2x2(w, C, row, (uint8_t *)p->out + (size_t)pix * C, sgn);
            continue;
        }
        for (size_t c = 0; c < C; c++) {
            const int32_t r = reduce(w + c, rows, cols, C, row, is_max, sgn);
            if (is_max && p->rq == NULL) {
                dk_store(p->out, p->out_type, (size_t)pix * C + c, r);
            } else { /* the channel's requant: pools are a small part of a network's work */
                dk_rqc_t ch;
                dk_rqc(&o.rq, (int)c, &ch);
                dk_out_general(&o, &ch, (size_t)pix * C + c, r);
            }
        }
    }
}

DK_NOINLINE void maxpool_u8(const dory_pool_t *p) { pool_body(p, 1, 0); }
DK_NOINLINE void maxpool_i8(const dory_pool_t *p) { pool_body(p, 1, 1); }
DK_NOINLINE void sumpool_u8(const dory_pool_t *p) { pool_body(p, 0, 0); }
DK_NOINLINE void sumpool_i8(const dory_pool_t *p) { pool_body(p, 0, 1); }

void dory_maxpool(const dory_pool_t *p)
{
    if (dk_wide(p->in_type) || dk_wide(p->out_type))
        dk_pool_wide(p, 1);
    else if (p->in_type == DORY_I8)
        maxpool_i8(p);
    else
        maxpool_u8(p);
}

void dory_sumpool(const dory_pool_t *p)
{
    if (dk_wide(p->in_type) || dk_wide(p->out_type))
        dk_pool_wide(p, 0);
    else if (p->in_type == DORY_I8)
        sumpool_i8(p);
    else
        sumpool_u8(p);
}
