/*
 * Convolution (dory_conv2d) and pointwise 1x1 convolution (dory_pointwise), organized as
 * PULP-NN does:
 *   - the output pixels of the tile (row-major, out_h * out_w) are split into contiguous
 *     chunks, one per core (an even number of pixels per core, so pairs stay together;
 *     a chunk of rows when out_w is even, and still balanced when out_h < NUM_CORES);
 *   - conv: the receptive fields of 2 output pixels are copied (im2col, zero padding) into
 *     the core's scratch `im2col + core_id * 2 * kh * kw * in_c`; pointwise reads the two
 *     input pixels in place (no im2col);
 *   - a matrix product of the weights [out_c][K] with the 2 columns, blocked by 4 output
 *     channels x 2 pixels (8 int32 accumulators, 4-way SIMD dot products), with leftovers
 *     (out_c % 4 channels, K % DK_LANES bytes, an odd last pixel) handled separately.
 * Every output value then goes through dk_emit (bias / partial sums / requant / store).
 */
#include "dk_internal.h"

/* The end of the values of output channel c at the output elements o0 and o1 (o1 ==
 * SIZE_MAX: one pixel only): the channel's requant is decoded once for both (out of line:
 * a 4x2 block has 4 of them). */
DK_NOINLINE void emit2(const dory_conv_t *p, uint32_t c, size_t o0, size_t o1, int32_t s0, int32_t s1)
{
    dk_chan_t ch;
    dk_chan(&ch, p->rq, p->bias, (int)c);
    dk_emit(&ch, p->acc, p->first_slice, p->last_slice, p->out, p->out_type, o0 + c, s0);
    if (o1 != SIZE_MAX)
        dk_emit(&ch, p->acc, p->first_slice, p->last_slice, p->out, p->out_type, o1 + c, s1);
}
#define EMIT2(c, s0, s1) emit2(p, (c), o0, o1, (s0), (s1))
#define EMIT1(c, s0) emit2(p, (c), o0, SIZE_MAX, (s0), 0)

/* Both output pixels o0, o1 (element offsets pixel * out_c) from the columns x0, x1 of K
 * bytes each. */
DK_ALWAYS_INLINE void matmul_2px_body(const dory_conv_t *p, uint32_t K, const uint8_t *x0,
                                      const uint8_t *x1, size_t o0, size_t o1, int sgn)
{
    const uint32_t n = p->out_c;
    uint32_t co = 0;
    for (; co + 4 <= n; co += 4) {
        const int8_t *w0 = p->weights + (size_t)co * K;
        const int8_t *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
        int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
        uint32_t k = 0;
        for (; k + DK_LANES <= K; k += DK_LANES) {
            dk_word a = dk_ldx(x0 + k, sgn), b = dk_ldx(x1 + k, sgn);
            dk_word v0 = dk_ldw(w0 + k), v1 = dk_ldw(w1 + k);
            dk_word v2 = dk_ldw(w2 + k), v3 = dk_ldw(w3 + k);
            s00 = dk_dotw(a, v0, s00, sgn);
            s01 = dk_dotw(b, v0, s01, sgn);
            s10 = dk_dotw(a, v1, s10, sgn);
            s11 = dk_dotw(b, v1, s11, sgn);
            s20 = dk_dotw(a, v2, s20, sgn);
            s21 = dk_dotw(b, v2, s21, sgn);
            s30 = dk_dotw(a, v3, s30, sgn);
            s31 = dk_dotw(b, v3, s31, sgn);
        }
        for (; k < K; k++) {
            const int32_t a = dk_x(x0, k, sgn), b = dk_x(x1, k, sgn);
            s00 += a * w0[k];
            s01 += b * w0[k];
            s10 += a * w1[k];
            s11 += b * w1[k];
            s20 += a * w2[k];
            s21 += b * w2[k];
            s30 += a * w3[k];
            s31 += b * w3[k];
        }
        EMIT2(co, s00, s01);
        EMIT2(co + 1, s10, s11);
        EMIT2(co + 2, s20, s21);
        EMIT2(co + 3, s30, s31);
    }
    for (; co < n; co++) { /* leftover channels: 1 x 2 */
        const int8_t *w0 = p->weights + (size_t)co * K;
        int32_t s0 = 0, s1 = 0;
        uint32_t k = 0;
        for (; k + DK_LANES <= K; k += DK_LANES) {
            dk_word v0 = dk_ldw(w0 + k);
            s0 = dk_dotw(dk_ldx(x0 + k, sgn), v0, s0, sgn);
            s1 = dk_dotw(dk_ldx(x1 + k, sgn), v0, s1, sgn);
        }
        for (; k < K; k++) {
            s0 += dk_x(x0, k, sgn) * w0[k];
            s1 += dk_x(x1, k, sgn) * w0[k];
        }
        EMIT2(co, s0, s1);
    }
}

/* One output pixel o0 from the column x0 (NULL: an all-padding input, sums are 0). */
DK_ALWAYS_INLINE void matmul_1px_body(const dory_conv_t *p, uint32_t K, const uint8_t *x0,
                                      size_t o0, int sgn)
{
    const uint32_t n = p->out_c;
    uint32_t co = 0;
    if (x0 == NULL) {
        for (; co < n; co++)
            EMIT1(co, 0);
        return;
    }
    for (; co + 4 <= n; co += 4) {
        const int8_t *w0 = p->weights + (size_t)co * K;
        const int8_t *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        uint32_t k = 0;
        for (; k + DK_LANES <= K; k += DK_LANES) {
            dk_word a = dk_ldx(x0 + k, sgn);
            s0 = dk_dotw(a, dk_ldw(w0 + k), s0, sgn);
            s1 = dk_dotw(a, dk_ldw(w1 + k), s1, sgn);
            s2 = dk_dotw(a, dk_ldw(w2 + k), s2, sgn);
            s3 = dk_dotw(a, dk_ldw(w3 + k), s3, sgn);
        }
        for (; k < K; k++) {
            const int32_t a = dk_x(x0, k, sgn);
            s0 += a * w0[k];
            s1 += a * w1[k];
            s2 += a * w2[k];
            s3 += a * w3[k];
        }
        EMIT1(co, s0);
        EMIT1(co + 1, s1);
        EMIT1(co + 2, s2);
        EMIT1(co + 3, s3);
    }
    for (; co < n; co++)
        EMIT1(co, dk_dot(x0, p->weights + (size_t)co * K, K, sgn));
}

/* The products instantiated for u8 and i8 activations (sgn folds into the SIMD builtins). */
DK_NOINLINE void matmul_2px_u8(const dory_conv_t *p, uint32_t K, const uint8_t *x0,
                               const uint8_t *x1, size_t o0, size_t o1)
{
    matmul_2px_body(p, K, x0, x1, o0, o1, 0);
}
DK_NOINLINE void matmul_2px_i8(const dory_conv_t *p, uint32_t K, const uint8_t *x0,
                               const uint8_t *x1, size_t o0, size_t o1)
{
    matmul_2px_body(p, K, x0, x1, o0, o1, 1);
}
DK_NOINLINE void matmul_1px_u8(const dory_conv_t *p, uint32_t K, const uint8_t *x0, size_t o0)
{
    matmul_1px_body(p, K, x0, o0, 0);
}
DK_NOINLINE void matmul_1px_i8(const dory_conv_t *p, uint32_t K, const uint8_t *x0, size_t o0)
{
    matmul_1px_body(p, K, x0, o0, 1);
}

static void matmul_2px(const dory_conv_t *p, uint32_t K, const uint8_t *x0, const uint8_t *x1,
                       size_t o0, size_t o1)
{
    if (p->in_type == DORY_I8)
        matmul_2px_i8(p, K, x0, x1, o0, o1);
    else
        matmul_2px_u8(p, K, x0, x1, o0, o1);
}

static void matmul_1px(const dory_conv_t *p, uint32_t K, const uint8_t *x0, size_t o0)
{
    if (p->in_type == DORY_I8)
        matmul_1px_i8(p, K, x0, o0);
    else
        matmul_1px_u8(p, K, x0, o0);
}

/* ------------------------------------------------------------------ conv2d (im2col) */

/* The receptive field of output pixel `pix`, [kh][kw][in_c] with zero padding, into dst. */
static void im2col_pixel(const dory_conv_t *p, uint32_t pix, uint8_t *dst)
{
    const uint8_t *in = (const uint8_t *)p->in;
    const size_t c = p->in_c;
    const int oy = (int)(pix / p->out_w), ox = (int)(pix % p->out_w);
    const int y0 = oy * p->sh - p->pad_t, x0 = ox * p->sw - p->pad_l;
    for (int i = 0; i < p->kh; i++) {
        const int iy = y0 + i * p->dh;
        if (iy < 0 || iy >= p->in_h) {
            memset(dst, 0, (size_t)p->kw * c);
            dst += (size_t)p->kw * c;
            continue;
        }
        const uint8_t *row = in + (size_t)iy * p->in_w * c;
        for (int j = 0; j < p->kw; j++, dst += c) {
            const int ix = x0 + j * p->dw;
            if (ix < 0 || ix >= p->in_w)
                memset(dst, 0, c);
            else
                memcpy(dst, row + (size_t)ix * c, c);
        }
    }
}

void dory_conv2d(const dory_conv_t *p)
{
    const uint32_t K = (uint32_t)p->kh * p->kw * p->in_c;
    uint8_t *buf0 = (uint8_t *)p->im2col + (size_t)pi_core_id() * 2 * K;
    uint8_t *buf1 = buf0 + K;
    uint32_t lo, hi;
    dk_share((uint32_t)p->out_h * p->out_w, 2, &lo, &hi);
    uint32_t pix = lo;
    for (; pix + 2 <= hi; pix += 2) {
        im2col_pixel(p, pix, buf0);
        im2col_pixel(p, pix + 1, buf1);
        matmul_2px(p, K, buf0, buf1, (size_t)pix * p->out_c, (size_t)(pix + 1) * p->out_c);
    }
    if (pix < hi) {
        im2col_pixel(p, pix, buf0);
        matmul_1px(p, K, buf0, (size_t)pix * p->out_c);
    }
}

/* ------------------------------------------------------------------ pointwise (no im2col) */

/* The input pixel under output pixel `pix` of a 1x1 conv, NULL when it is padding. */
static const uint8_t *pointwise_pixel(const dory_conv_t *p, uint32_t pix)
{
    const int oy = (int)(pix / p->out_w), ox = (int)(pix % p->out_w);
    const int iy = oy * p->sh - p->pad_t, ix = ox * p->sw - p->pad_l;
    if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w)
        return NULL;
    return (const uint8_t *)p->in + ((size_t)iy * p->in_w + (size_t)ix) * p->in_c;
}

void dory_pointwise(const dory_conv_t *p)
{
    const uint32_t K = p->in_c;
    uint32_t lo, hi;
    dk_share((uint32_t)p->out_h * p->out_w, 2, &lo, &hi);
    uint32_t pix = lo;
    for (; pix + 2 <= hi; pix += 2) {
        const uint8_t *x0 = pointwise_pixel(p, pix), *x1 = pointwise_pixel(p, pix + 1);
        if (x0 != NULL && x1 != NULL) {
            matmul_2px(p, K, x0, x1, (size_t)pix * p->out_c, (size_t)(pix + 1) * p->out_c);
        } else {
            matmul_1px(p, K, x0, (size_t)pix * p->out_c);
            matmul_1px(p, K, x1, (size_t)(pix + 1) * p->out_c);
        }
    }
    if (pix < hi)
        matmul_1px(p, K, pointwise_pixel(p, pix), (size_t)pix * p->out_c);
}

