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
 *     channels x 2 pixels (dk_block: 8 accumulators in registers), with leftovers (out_c % 4
 *     channels, an odd last pixel) as 1-channel / 1-pixel blocks.
 * Every output value then goes through dk_out (bias / partial sums / requant / store).
 *
 * conv walks pixel pairs outside and channel groups inside (the scratch holds one pair);
 * pointwise walks channel groups outside, so each group's requant constants are decoded
 * once per call instead of once per pixel pair; when a tile has fewer pixel pairs than
 * cores (and more channel groups), the cores share the channel groups instead of the pixels.
 */
#include "dk_internal.h"

/* ------------------------------------------------------------------ conv2d (im2col) */

/* n bytes from src to dst, or n copies of `fill` (the padding byte) when src == NULL. Receptive-field pieces are short
 * and the library's memcpy/memset cost ~6 instructions per byte on rv32imc (picolibc):
 * words when dst and src are 4-byte aligned alike (2 instructions per 4 bytes + loop),
 * else bytes. The empty asm keeps GCC from turning the loops back into library calls. */
#if defined(__GNUC__)
typedef uint32_t word_alias __attribute__((may_alias, aligned(4)));
#define COPY_LOOP_BODY() __asm__("")
#endif
static void copy_or_fill(uint8_t *dst, const uint8_t *src, size_t n, uint8_t fill)
{
#if defined(__GNUC__)
    if (src == NULL) {
        const uint32_t word = fill * 0x01010101u;
        for (; n > 0 && ((uintptr_t)dst & 3) != 0; n--)
            *dst++ = fill;
        for (; n >= 4; n -= 4, dst += 4) {
            *(word_alias *)(void *)dst = word;
            COPY_LOOP_BODY();
        }
        for (; n > 0; n--) {
            *dst++ = fill;
            COPY_LOOP_BODY();
        }
        return;
    }
    if ((((uintptr_t)dst ^ (uintptr_t)src) & 3) == 0) {
        for (; n > 0 && ((uintptr_t)dst & 3) != 0; n--)
            *dst++ = *src++;
        for (; n >= 4; n -= 4, dst += 4, src += 4) {
            *(word_alias *)(void *)dst = *(const word_alias *)(const void *)src;
            COPY_LOOP_BODY();
        }
    }
    for (; n > 0; n--) {
        *dst++ = *src++;
        COPY_LOOP_BODY();
    }
#else
    if (src != NULL)
        memcpy(dst, src, n);
    else
        memset(dst, fill, n);
#endif
}

/* copy_or_fill, short pieces inline (first layers copy a few bytes per window row, where
 * the call and alignment tests would cost more than the bytes). */
DK_ALWAYS_INLINE void piece(uint8_t *dst, const uint8_t *src, size_t n, uint8_t fill)
{
    if (n >= 16) {
        copy_or_fill(dst, src, n, fill);
        return;
    }
    uint8_t *end = dst + n;
    if (src != NULL) {
        for (; dst != end; dst++, src++) {
            *dst = *src;
#if defined(__GNUC__)
            COPY_LOOP_BODY();
#endif
        }
        return;
    }
    for (; dst != end; dst++) {
        *dst = fill;
#if defined(__GNUC__)
        COPY_LOOP_BODY();
#endif
    }
}

/* The receptive field of output pixel `pix`, [kh][kw][in_c] with its padding, into dst:
 * with dw == 1 the in-bounds part of a window row is one contiguous run of the input row,
 * the same columns [j0, j1) for every row. The geometry is read into locals first: the byte
 * stores could alias *p. */
static void im2col_pixel(const dory_conv_t *p, uint32_t pix, uint8_t *dst)
{
    const uint8_t *in = (const uint8_t *)p->in;
    const uint8_t fill = (uint8_t)p->pad_value; /* its byte in the input's type */
    const size_t c = p->in_c, row_bytes = (size_t)p->kw * c, in_row = (size_t)p->in_w * c;
    const int kh = p->kh, kw = p->kw, dh = p->dh, dw = p->dw, in_h = p->in_h, in_w = p->in_w;
    const int oy = (int)(pix / p->out_w), ox = (int)(pix % p->out_w);
    const int y0 = oy * p->sh - p->pad_t, x0 = ox * p->sw - p->pad_l;
    /* window columns [j0, j1) inside the input (dw == 1), 0 <= j0 <= j1 <= kw */
    int j0 = x0 < 0 ? -x0 : 0, j1 = x0 + kw > in_w ? in_w - x0 : kw;
    j0 = j0 < kw ? j0 : kw;
    j1 = j1 < j0 ? j0 : j1;
    for (int i = 0; i < kh; i++, dst += row_bytes) {
        const int iy = y0 + i * dh;
        if (iy < 0 || iy >= in_h) {
            piece(dst, NULL, row_bytes, fill);
            continue;
        }
        const uint8_t *row = in + (size_t)iy * in_row;
        if (dw == 1) {
            piece(dst, NULL, (size_t)j0 * c, fill);
            piece(dst + (size_t)j0 * c, row + (size_t)(x0 + j0) * c, (size_t)(j1 - j0) * c, fill);
            piece(dst + (size_t)j1 * c, NULL, (size_t)(kw - j1) * c, fill);
            continue;
        }
        for (int j = 0; j < kw; j++) {
            const int ix = x0 + j * dw;
            piece(dst + (size_t)j * c, ix < 0 || ix >= in_w ? NULL : row + (size_t)ix * c, c, fill);
        }
    }
}

#define TABLE 32 /* output channels whose folded requant constants a conv call keeps (512 bytes) */

/* The output channels [c0, c1) of the P pixels at o0, o1 from the columns x0, x1 of K bytes;
 * f: the folded constants of channels c0 .. c1 - 1 (window kinds; NULL for DK_OUT_ANY, whose
 * constants are decoded per block). o: the caller's copy of o_in (see dk_out_block). */
DK_ALWAYS_INLINE void matmul_body(const dory_conv_t *p, const dk_out_t *o, const dk_out_t *o_in,
                                  const dk_fold_t *f, uint32_t c0, uint32_t c1, uint32_t K, const uint8_t *x0,
                                  const uint8_t *x1, size_t o0, size_t o1, int P, int sgn, int kind)
{
    const int8_t *w = p->weights;
    int32_t s[4][2];
    dk_rqc_t ch[4];
    uint32_t co = c0;
    dk_fold_t fl[4]; /* DK_OUT_ANY: unused (f: the table, read channel by channel) */
    for (; co + 4 <= c1; co += 4) {
        dk_block(s, w + (size_t)co * K, K, x0, x1, K, 4, P, sgn);
        if (kind == DK_OUT_ANY)
            dk_chans(o_in, co, ch, fl, 4, kind);
        dk_out_block(o, ch, kind == DK_OUT_ANY ? fl : f + (co - c0), s, o0 + co, o1 + co, 4, P, kind);
    }
    for (; co < c1; co++) {
        dk_block(s, w + (size_t)co * K, K, x0, x1, K, 1, P, sgn);
        if (kind == DK_OUT_ANY)
            dk_chan(o_in, co, &ch[0], &fl[0], kind);
        dk_out_block(o, ch, kind == DK_OUT_ANY ? fl : f + (co - c0), s, o0 + co, o1 + co, 1, P, kind);
    }
}

/* An odd last pixel, with the general output path (code size). */
DK_NOINLINE void matmul_1px_u8(const dory_conv_t *p, const dk_out_t *o_in, uint32_t c0, uint32_t c1, uint32_t K,
                               const uint8_t *x, size_t o0)
{
    const dk_out_t o = *o_in;
    matmul_body(p, &o, o_in, NULL, c0, c1, K, x, x, o0, o0, 1, 0, DK_OUT_ANY);
}
DK_NOINLINE void matmul_1px_i8(const dory_conv_t *p, const dk_out_t *o_in, uint32_t c0, uint32_t c1, uint32_t K,
                               const uint8_t *x, size_t o0)
{
    const dk_out_t o = *o_in;
    matmul_body(p, &o, o_in, NULL, c0, c1, K, x, x, o0, o0, 1, 1, DK_OUT_ANY);
}

/* The receptive field of output pixel pix in place: its first byte when it lies inside the
 * input (no padding), else NULL. */
DK_ALWAYS_INLINE const uint8_t *field_in_place(const dory_conv_t *p, uint32_t pix)
{
    const int oy = (int)(pix / p->out_w), ox = (int)(pix % p->out_w);
    const int y0 = oy * p->sh - p->pad_t, x0 = ox * p->sw - p->pad_l;
    if (y0 < 0 || x0 < 0 || y0 + (p->kh - 1) * p->dh >= p->in_h || x0 + p->kw > p->in_w)
        return NULL;
    return (const uint8_t *)p->in + ((size_t)y0 * p->in_w + (size_t)x0) * p->in_c;
}

/* matmul_body over two receptive fields in place (dw == 1): kh rows of kw * in_c bytes,
 * dh input rows apart (dk_block_rows). */
DK_ALWAYS_INLINE void rows_body(const dory_conv_t *p, const dk_out_t *o, const dk_fold_t *f, uint32_t c0,
                                uint32_t c1, const uint8_t *x0, const uint8_t *x1, size_t o0, size_t o1, int sgn,
                                int kind)
{
    const int rows = p->kh, L = p->kw * p->in_c;
    const size_t K = (size_t)rows * L, row_step = (size_t)p->dh * p->in_w * p->in_c;
    const int8_t *w = p->weights;
    int32_t s[4][2];
    dk_rqc_t ch[4]; /* (unused: window kinds) */
    uint32_t co = c0;
    for (; co + 4 <= c1; co += 4) {
        dk_block_rows(s, w + co * K, K, x0, x1, rows, L, row_step, 4, 2, sgn);
        dk_out_block(o, ch, f + (co - c0), s, o0 + co, o1 + co, 4, 2, kind);
    }
    for (; co < c1; co++) {
        dk_block_rows(s, w + co * K, K, x0, x1, rows, L, row_step, 1, 2, sgn);
        dk_out_block(o, ch, f + (co - c0), s, o0 + co, o1 + co, 1, 2, kind);
    }
}

/* The pixels [lo, hi) of the output channels [c0, c1): the receptive fields of each pair of
 * pixels copied into buf0 and buf1, then their product (an odd last pixel alone). With the
 * window kinds on plain RV32, pairs whose fields lie inside the input and have short rows
 * (kw * in_c <= DK_ROW_MAX: first layers) are read in place instead: the copy would cost
 * as much as the product itself when few output channels share it. */
DK_ALWAYS_INLINE void pixels_body(const dory_conv_t *p, const dk_out_t *o_in, const dk_fold_t *f, uint32_t c0,
                                  uint32_t c1, uint8_t *buf0, uint8_t *buf1, uint32_t lo, uint32_t hi, int sgn,
                                  int kind)
{
    const dk_out_t o = *o_in; /* read before any output is stored, see dk_out_block */
    const uint32_t K = (uint32_t)p->kh * p->kw * p->in_c;
#ifdef DK_SIMD
    const int in_place = 0;
#else
    const int in_place = kind != DK_OUT_ANY && p->dw == 1 && p->kw * p->in_c <= DK_ROW_MAX;
#endif
    uint32_t pix = lo;
    for (; pix + 2 <= hi; pix += 2) {
        const size_t o0 = (size_t)pix * p->out_c;
        if (in_place) {
            const uint8_t *x0 = field_in_place(p, pix), *x1 = field_in_place(p, pix + 1);
            if (x0 != NULL && x1 != NULL) {
                rows_body(p, &o, f, c0, c1, x0, x1, o0, o0 + p->out_c, sgn, kind);
                continue;
            }
        }
        im2col_pixel(p, pix, buf0);
        im2col_pixel(p, pix + 1, buf1);
        matmul_body(p, &o, o_in, f, c0, c1, K, buf0, buf1, o0, o0 + p->out_c, 2, sgn, kind);
    }
    if (pix < hi) {
        im2col_pixel(p, pix, buf0);
        const size_t o0 = (size_t)pix * p->out_c;
        (sgn ? matmul_1px_i8 : matmul_1px_u8)(p, o_in, c0, c1, K, buf0, o0);
    }
}

/* Instantiated for u8 activations and each output kind (dk_out_kind); i8 activations (rare:
 * a signed network input) take the general output path, which keeps the code size in check. */
typedef void pixels_fn(const dory_conv_t *p, const dk_out_t *o, const dk_fold_t *f, uint32_t c0, uint32_t c1,
                       uint8_t *buf0, uint8_t *buf1, uint32_t lo, uint32_t hi);
#define PIXELS(name, sgn, kind)                                                                 \
    DK_NOINLINE void name(const dory_conv_t *p, const dk_out_t *o, const dk_fold_t *f, uint32_t c0, uint32_t c1, \
                          uint8_t *buf0, uint8_t *buf1, uint32_t lo, uint32_t hi)               \
    {                                                                                           \
        pixels_body(p, o, f, c0, c1, buf0, buf1, lo, hi, sgn, kind);                            \
    }
PIXELS(pixels_u8, 0, DK_OUT_ANY)
PIXELS(pixels_u8_w32, 0, DK_OUT_W32)
PIXELS(pixels_u8_w64, 0, DK_OUT_W64)
PIXELS(pixels_i8, 1, DK_OUT_ANY)
static pixels_fn *const PIXELS_U8[3] = {pixels_u8, pixels_u8_w32, pixels_u8_w64};

void dory_conv2d(const dory_conv_t *p)
{
    if (dk_wide(p->in_type)) {
        dk_conv2d_wide(p);
        return;
    }
    const uint32_t K = (uint32_t)p->kh * p->kw * p->in_c, n = p->out_c;
    uint8_t *buf0 = (uint8_t *)p->im2col + (size_t)pi_core_id() * 2 * K;
    uint8_t *buf1 = buf0 + K;
    const int sgn = p->in_type == DORY_I8;
    dk_out_t o;
    dk_out_init(&o, p->rq, p->bias, p->acc, p->first_slice, p->last_slice, p->out, p->out_type);
    const int kind = sgn ? DK_OUT_ANY : dk_out_kind(&o);
    pixels_fn *const pixels = sgn ? pixels_i8 : PIXELS_U8[kind];
    uint32_t lo, hi;
    dk_share((uint32_t)p->out_h * p->out_w, 2, &lo, &hi);
    if (lo == hi)
        return;
    /* the channels TABLE at a time, with their folded constants decoded once (window kinds;
     * the receptive fields are copied again for each TABLE channels) */
    dk_fold_t fold[TABLE];
    for (uint32_t c0 = 0; c0 < n; c0 += TABLE) {
        const uint32_t c1 = kind == DK_OUT_ANY || n - c0 <= TABLE ? n : c0 + TABLE;
        if (kind != DK_OUT_ANY)
            for (uint32_t c = c0; c < c1; c++)
                dk_fold(&o.rq, (int)c, &fold[c - c0]);
        pixels(p, &o, fold, c0, c1, buf0, buf1, lo, hi);
        if (c1 == n)
            break;
    }
}

/* ------------------------------------------------------------------ pointwise (no im2col) */

/* The input pixel under output pixel `pix` of a 1x1 conv, NULL when it is padding. */
DK_ALWAYS_INLINE const uint8_t *pointwise_pixel(const dory_conv_t *p, uint32_t pix)
{
    const int oy = (int)(pix / p->out_w), ox = (int)(pix % p->out_w);
    const int iy = oy * p->sh - p->pad_t, ix = ox * p->sw - p->pad_l;
    if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w)
        return NULL;
    return (const uint8_t *)p->in + ((size_t)iy * p->in_w + (size_t)ix) * p->in_c;
}

/* pad_value · Σ w of each of the R channels at w, w + K, ...: the sums of a padding pixel. */
static void padding_sums(int32_t s[4][2], const int8_t *w, uint32_t K, int R, int32_t pad_value)
{
    for (int r = 0; r < R; r++) {
        int32_t total = 0;
        for (uint32_t k = 0; pad_value != 0 && k < K; k++)
            total += w[(size_t)r * K + k];
        s[r][0] = pad_value * total;
    }
}

/* The R output channels co .. co + R - 1 of the pixels [lo, hi): pairs of pixels as R x 2
 * blocks; a padding pixel (no input) sums pad_value times the channel's weights. */
DK_ALWAYS_INLINE void pointwise_group(const dory_conv_t *p, const dk_out_t *o_in, uint32_t co, uint32_t lo,
                                      uint32_t hi, int R, int sgn, int kind)
{
    const dk_out_t o = *o_in; /* read before any output is stored, see dk_out_block */
    const uint32_t K = p->in_c, n = p->out_c;
    const int8_t *w = p->weights + (size_t)co * K;
    dk_rqc_t ch[4];
    dk_fold_t f[4];
    dk_chans(o_in, co, ch, f, R, kind);
    int32_t s[4][2];
    /* no stride, no padding, whole rows: pixel pix is in + pix * K */
    const int dense = p->sh == 1 && p->sw == 1 && p->in_w == p->out_w &&
                      (p->pad_t | p->pad_l | p->pad_b | p->pad_r) == 0;
    for (uint32_t pix = lo; pix < hi; pix += 2) {
        const uint8_t *x0, *x1 = NULL;
        if (dense) {
            x0 = (const uint8_t *)p->in + (size_t)pix * K;
            if (pix + 1 < hi)
                x1 = x0 + K;
        } else {
            x0 = pointwise_pixel(p, pix);
            if (pix + 1 < hi)
                x1 = pointwise_pixel(p, pix + 1);
        }
        const size_t o0 = (size_t)pix * n + co;
        if (x0 != NULL && x1 != NULL) {
            dk_block(s, w, K, x0, x1, K, R, 2, sgn);
            dk_out_block(&o, ch, f, s, o0, o0 + n, R, 2, kind);
            continue;
        }
        /* an odd last pixel, or padding */
        const uint8_t *x[2] = {x0, x1};
        for (int k = 0; k < 2 && pix + (uint32_t)k < hi; k++) {
            if (x[k] != NULL)
                dk_block(s, w, K, x[k], x[k], K, R, 1, sgn);
            else
                padding_sums(s, w, K, R, p->pad_value);
            dk_out_block(&o, ch, f, s, o0 + (uint32_t)k * n, 0, R, 1, kind);
        }
    }
}

/* Groups of 4 channels and single leftover channels instantiated for u8 activations and
 * each output kind, i8 with the general output path (see MATMUL). */
typedef void pointwise_fn(const dory_conv_t *p, const dk_out_t *o, uint32_t co, uint32_t lo, uint32_t hi);
#define POINTWISE(name, R, sgn, kind)                                                           \
    DK_NOINLINE void name(const dory_conv_t *p, const dk_out_t *o, uint32_t co, uint32_t lo, uint32_t hi) \
    {                                                                                           \
        pointwise_group(p, o, co, lo, hi, R, sgn, kind);                                        \
    }
POINTWISE(pointwise_4_u8, 4, 0, DK_OUT_ANY)
POINTWISE(pointwise_4_u8_w32, 4, 0, DK_OUT_W32)
POINTWISE(pointwise_4_u8_w64, 4, 0, DK_OUT_W64)
POINTWISE(pointwise_4_i8, 4, 1, DK_OUT_ANY)
POINTWISE(pointwise_1_u8, 1, 0, DK_OUT_ANY)
POINTWISE(pointwise_1_u8_w32, 1, 0, DK_OUT_W32)
POINTWISE(pointwise_1_u8_w64, 1, 0, DK_OUT_W64)
POINTWISE(pointwise_1_i8, 1, 1, DK_OUT_ANY)
static pointwise_fn *const POINTWISE_4[3] = {pointwise_4_u8, pointwise_4_u8_w32, pointwise_4_u8_w64};
static pointwise_fn *const POINTWISE_1[3] = {pointwise_1_u8, pointwise_1_u8_w32, pointwise_1_u8_w64};

void dory_pointwise(const dory_conv_t *p)
{
    if (dk_wide(p->in_type)) {
        dk_pointwise_wide(p);
        return;
    }
    const int sgn = p->in_type == DORY_I8;
    dk_out_t o;
    dk_out_init(&o, p->rq, p->bias, p->acc, p->first_slice, p->last_slice, p->out, p->out_type);
    const int kind = dk_out_kind(&o);
    pointwise_fn *const groups = sgn ? pointwise_4_i8 : POINTWISE_4[kind];
    pointwise_fn *const single = sgn ? pointwise_1_i8 : POINTWISE_1[kind];
    const uint32_t pixels = (uint32_t)p->out_h * p->out_w;
    const uint32_t pairs = (pixels + 1) / 2, quads = ((uint32_t)p->out_c + 3) / 4;
    uint32_t lo, hi, co, co_end;
    if (pairs < NUM_CORES && quads > pairs) {
        /* Fewer pixel pairs than cores (a tile of one GEMM row is one pixel): sharing the
         * pixels would leave cores idle, so the cores share the output channels instead, in
         * groups of 4, each computing all pixels of its channels (the same values either way). */
        dk_share(quads, 1, &co, &co_end);
        co *= 4;
        co_end = co_end * 4 < p->out_c ? co_end * 4 : p->out_c;
        lo = 0;
        hi = pixels;
    } else {
        dk_share(pixels, 2, &lo, &hi);
        co = 0;
        co_end = p->out_c;
    }
    if (lo == hi || co == co_end)
        return;
    for (; co + 4 <= co_end; co += 4)
        groups(p, &o, co, lo, hi);
    for (; co < co_end; co++)
        single(p, &o, co, lo, hi);
}
