/*
 * Pooling over HWC tiles (dilation 1):
 *   max pool: the maximum of the window's input values; padded positions are not part
 *             of the window (padding never wins);
 *   sum pool: the window sum with zero padding (int32), then requant (rq), or the int32
 *             sum itself when rq == NULL.
 * The output pixels (row-major, out_h * out_w) are split into contiguous chunks, one per
 * core.
 */
#include "dk_internal.h"

/* The window of output pixel `pix` clipped to the input: rows [*y0, *y1), cols [*x0, *x1). */
static void window_of(const dory_pool_t *p, uint32_t pix, int *y0, int *y1, int *x0, int *x1)
{
    const int oy = (int)(pix / p->out_w), ox = (int)(pix % p->out_w);
    const int ys = oy * p->sh - p->pad_t, xs = ox * p->sw - p->pad_l;
    *y0 = ys < 0 ? 0 : ys;
    *y1 = ys + p->kh > p->in_h ? p->in_h : ys + p->kh;
    *x0 = xs < 0 ? 0 : xs;
    *x1 = xs + p->kw > p->in_w ? p->in_w : xs + p->kw;
}

DK_ALWAYS_INLINE void maxpool_body(const dory_pool_t *p, int sgn)
{
    const uint8_t *in = (const uint8_t *)p->in;
    const size_t C = p->c;
    uint32_t lo, hi;
    dk_share((uint32_t)p->out_h * p->out_w, 1, &lo, &hi);
    for (uint32_t pix = lo; pix < hi; pix++) {
        int y0, y1, x0, x1;
        window_of(p, pix, &y0, &y1, &x0, &x1);
        for (size_t c = 0; c < C; c++) {
            int32_t m = sgn ? INT8_MIN : 0; /* the lowest value; only for an empty window */
            for (int y = y0; y < y1; y++) {
                const uint8_t *row = in + ((size_t)y * p->in_w) * C + c;
                for (int x = x0; x < x1; x++) {
                    const int32_t v = dk_x(row, (size_t)x * C, sgn);
                    if (v > m)
                        m = v;
                }
            }
            dk_store(p->out, p->out_type, (size_t)pix * C + c, m);
        }
    }
}

DK_ALWAYS_INLINE void sumpool_body(const dory_pool_t *p, int sgn)
{
    const uint8_t *in = (const uint8_t *)p->in;
    const size_t C = p->c;
    uint32_t lo, hi;
    dk_share((uint32_t)p->out_h * p->out_w, 1, &lo, &hi);
    for (uint32_t pix = lo; pix < hi; pix++) {
        int y0, y1, x0, x1;
        window_of(p, pix, &y0, &y1, &x0, &x1);
        for (size_t c = 0; c < C; c++) {
            int32_t s = 0;
            for (int y = y0; y < y1; y++) {
                const uint8_t *row = in + ((size_t)y * p->in_w) * C + c;
                for (int x = x0; x < x1; x++)
                    s += dk_x(row, (size_t)x * C, sgn);
            }
            dk_store(p->out, p->out_type, (size_t)pix * C + c,
                     p->rq != NULL ? dk_requant(p->rq, s, (int)c) : s);
        }
    }
}

static void maxpool_u8(const dory_pool_t *p) { maxpool_body(p, 0); }
static void maxpool_i8(const dory_pool_t *p) { maxpool_body(p, 1); }
static void sumpool_u8(const dory_pool_t *p) { sumpool_body(p, 0); }
static void sumpool_i8(const dory_pool_t *p) { sumpool_body(p, 1); }

void dory_maxpool(const dory_pool_t *p)
{
    if (p->in_type == DORY_I8)
        maxpool_i8(p);
    else
        maxpool_u8(p);
}

void dory_sumpool(const dory_pool_t *p)
{
    if (p->in_type == DORY_I8)
        sumpool_i8(p);
    else
        sumpool_u8(p);
}
