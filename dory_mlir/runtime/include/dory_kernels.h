/*
 * dory-mlir int8 kernel library: the compute of one L1 tile, HWC layout, run by every
 * core of the cluster (each core takes its share of the work by pi_core_id()).
 *
 * Semantics (exactly those of the qnn dialect, see dory_mlir/dialects/qnn.py):
 *   conv/linear accumulate in int32: acc = bias[c] + sum(w * x), padded positions holding
 *            pad_value (0, or a zero point: formats with one pad with it);
 *   requant: y = clip(round(((acc * mul[c] + add[c]) * scale) / divisor), min, max)
 *            round = floor (or toward zero when `trunc`), computed in 32- or 64-bit
 *            (`wide`) arithmetic; mul/add are per channel or one value (per tensor).
 *   add:     sum = floor((a * m0 + a0) >> s0) + floor((b * m1 + a1) >> s1), then requant.
 *   max pool: padding never wins; sum pool: window sum with zero padding, then requant.
 *   The requant is exact in its stated width: `wide` = 0 computes in 32 bits, which the qnn
 *   semantics guarantee is enough for both intermediates (acc*mul + add and its product with
 *   scale); `wide` = 1 in 64 bits. mul == NULL means 1 and add == NULL means 0.
 *
 * Memory layout of a tile (all dense, row-major):
 *   activations [h][w][c]; conv weights [co][kh][kw][ci]; depthwise weights [c][kh][kw];
 *   linear weights [co][ci]; per-channel constants [co].
 *   The `ci` of a tile may be a slice of the layer's input channels (reduction split):
 *   the weights of the tile are then [co][kh][kw][ci_slice], and `acc` holds int32
 *   partial sums [h][w][co] across slices (first slice initializes with the bias,
 *   last slice requantizes into `out`).
 *
 * Build: every .c file of dory_mlir/runtime/kernels; they include "pmsis.h" (pi_core_id) and use
 * NUM_CORES (default 8). Portable C11 by default; the PULP SIMD code path (4-way int8 dot
 * products with __builtin_pulp_sdotsp4 / __builtin_pulp_sdotusp4) with -DDORY_PULP_SIMD, or
 * by itself on RISC-V when __PULP_SIMD__ or the SDK's ARCHI_CORE_HAS_PULPV2 is defined;
 * -DDORY_NO_SIMD forces portable C.
 */
#ifndef DORY_KERNELS_H
#define DORY_KERNELS_H

#include <stdint.h>

/* Activations are 8-bit, or 16-bit where the exported network's own values exceed 8 bits
 * (DORY_U16 / DORY_I16: every kernel reads and writes them, through a simple exact path of
 * its own, wide.c; the int8 fast paths are untouched). */
typedef enum { DORY_U8 = 0, DORY_I8 = 1, DORY_I32 = 2, DORY_U16 = 3, DORY_I16 = 4 } dory_dtype_t;

typedef struct {
    const void *mul;          /* int32_t[] or int64_t[] (const_bits), per channel or 1 value */
    const void *add;
    uint8_t mul_per_channel;  /* 1: mul[c] for output channel c of the tile; 0: mul[0] */
    uint8_t add_per_channel;
    uint8_t const_bits;       /* 32 or 64 */
    uint8_t wide;             /* 1: 64-bit intermediate, 0: 32-bit */
    uint8_t trunc;            /* 1: round toward zero, 0: floor */
    int8_t shift;             /* log2(divisor) when divisor is a power of two, else -1
                                 (the shift is used when it is at most 31 (32-bit) / 62
                                 (64-bit); the division by divisor otherwise) */
    int64_t scale;
    int64_t divisor;          /* > 0 */
    int32_t min, max;
} dory_requant_t;

typedef struct {
    const void *in;           /* [in_h][in_w][in_c], in_type */
    dory_dtype_t in_type;     /* DORY_U8, DORY_I8, DORY_U16 or DORY_I16 */
    uint16_t in_h, in_w, in_c;
    const int8_t *weights;    /* conv [out_c][kh][kw][in_c]; depthwise [out_c][kh][kw] */
    const int32_t *bias;      /* [out_c] or NULL */
    uint16_t out_h, out_w, out_c;
    uint8_t kh, kw, sh, sw, dh, dw;
    uint8_t pad_t, pad_l, pad_b, pad_r;  /* padding around this input tile (by pad_value) */
    int32_t *acc;             /* partial sums [out_h][out_w][out_c] when the reduction is split, else NULL */
    uint8_t first_slice;      /* with acc: this slice starts the sum (bias + products) */
    uint8_t last_slice;       /* with acc: this slice ends it (requantize / copy into out) */
    const dory_requant_t *rq; /* NULL: out is DORY_I32 accumulators */
    void *out;                /* [out_h][out_w][out_c], out_type */
    dory_dtype_t out_type;
    int8_t *im2col;           /* scratch: 2 * NUM_CORES * kh * kw * in_c bytes (conv), NUM_CORES * in_h * kw
                                 (depthwise: reserved, the kernel reads its input in place and leaves it
                                 untouched), unused (NULL) for pointwise; core k uses the k-th part.
                                 16-bit inputs read in place and leave it untouched too. */
    int16_t pad_value;        /* the value of padded input positions, in in_type's range (usually 0) */
} dory_conv_t;

typedef struct {
    const void *in;           /* [in_c], in_type */
    dory_dtype_t in_type;
    uint16_t in_c, out_c;
    const int8_t *weights;    /* [out_c][in_c] */
    const int32_t *bias;      /* [out_c] or NULL */
    int32_t *acc;             /* partial sums [out_c] when the reduction is split, else NULL */
    uint8_t first_slice, last_slice;
    const dory_requant_t *rq; /* NULL: out is DORY_I32 */
    void *out;
    dory_dtype_t out_type;
} dory_linear_t;

typedef struct {
    const void *in;
    dory_dtype_t in_type;
    uint16_t in_h, in_w, c;
    uint16_t out_h, out_w;
    uint8_t kh, kw, sh, sw;
    uint8_t pad_t, pad_l, pad_b, pad_r;
    const dory_requant_t *rq; /* the requant of the max or sum; NULL: the max itself, resp. int32 sums */
    void *out;
    dory_dtype_t out_type;
} dory_pool_t;

typedef struct {
    const void *a, *b;        /* [h][w][c] each */
    dory_dtype_t a_type, b_type;
    uint16_t h, w, c;
    int32_t mul[2], add[2];
    uint8_t shift[2];
    const dory_requant_t *rq; /* NULL: out is DORY_I32 sums */
    void *out;
    dory_dtype_t out_type;
} dory_add_t;                 /* out: the requant of the sum (channel c = the element's channel) */

typedef struct {
    const void *a;            /* [m][k], a_type: rows of the left operand (a slice of K when it is split) */
    const void *b;            /* [k][n], b_type: the block of the right operand */
    dory_dtype_t a_type, b_type; /* DORY_U8 or DORY_I8 each */
    uint16_t m, k, n;
    int32_t *acc;             /* partial sums [m][n] when K is split, else NULL */
    uint8_t first_slice, last_slice;
    const dory_requant_t *rq; /* NULL: out is DORY_I32 sums; per-channel constants are per column n */
    void *out;                /* [m][n], out_type */
    dory_dtype_t out_type;
} dory_matmul_t;              /* out[i][j] = rq(sum_k a[i][k] * b[k][j]), int32 accumulation */

typedef struct {
    const void *in;           /* [h][w][c], in_type DORY_U8 or DORY_I8: each pixel a row of c features */
    dory_dtype_t in_type;
    uint16_t h, w, c;
    int32_t coeff_a, coeff_b, coeff_c, log2, n_levels;
    uint8_t *out;             /* [h][w][c], unsigned: 0 .. n_levels - 1 */
} dory_softmax_t;             /* QuantLib's iSoftmax over the c features of every pixel (qnn.softmax) */

typedef struct {
    const void *in;           /* [h][w][c], in_type DORY_U8 or DORY_I8: each pixel a row of c features */
    dory_dtype_t in_type;
    uint16_t h, w, c;
    const int32_t *weight;    /* [c] */
    uint8_t shift;
    int32_t min, max;
    void *out;                /* [h][w][c], out_type DORY_I8 (or DORY_U8) */
    dory_dtype_t out_type;
} dory_rmsnorm_t;

typedef struct {
    const void *in;           /* [h][w][c], in_type DORY_U8 or DORY_I8 */
    dory_dtype_t in_type;
    uint16_t h, w, c;
    int32_t one_over_six, three, six;
    const dory_requant_t *rq; /* NULL: out is DORY_I32 */
    void *out;
    dory_dtype_t out_type;
} dory_hardswish_t;           /* out = rq(x * (clip(x + three, 0, six) * one_over_six)) (qnn.hardswish) */             /* QuantLib's iRMSNorm over the c features of every pixel (qnn.rms_norm) */

typedef struct {
    const void *in;           /* [h][w][c], in_type DORY_U8 or DORY_I8 */
    dory_dtype_t in_type;
    uint16_t h, w, c;
    int32_t b, one;
    const dory_requant_t *rq; /* NULL: out is DORY_I32 */
    void *out;
    dory_dtype_t out_type;
} dory_gelu_t;                /* out = rq(x * ((one + sgn(x) * (one - (min(|x|, -b) + b)^2)) >> 1)) (qnn.gelu) */

typedef struct {
    const void *in;           /* [h][w][c], in_type DORY_U8 or DORY_I8: each pixel a row of c features */
    dory_dtype_t in_type;
    uint16_t h, w, c;
    const int32_t *weight;    /* [c] */
    const int32_t *bias;      /* [c] */
    uint8_t shift;
    int32_t min, max;
    void *out;                /* [h][w][c], out_type DORY_I8 (or DORY_U8) */
    dory_dtype_t out_type;
} dory_layernorm_t;           /* QuantLib's iLayerNorm over the c features of every pixel (qnn.layer_norm) */

typedef struct {
    const int8_t *in;         /* [h][w][c]: each pixel a row of c features */
    uint16_t h, w, c;
    int32_t n_levels;         /* 256 */
    uint16_t group_width;     /* divides c: ITA's groups of features (c: QuantLib's ITAMax) */
    uint8_t *out;             /* [h][w][c], unsigned: 0 .. n_levels - 1 */
} dory_itamax_t;              /* ITA's integer softmax (QuantLib's ITAMax, ITAPartialMax) over the c features of every pixel (qnn.ita_max) */

/* Each function is called by all cores of the team with the same arguments; each core
 * computes its share and returns (the caller places the barrier after it). There is no
 * synchronization inside; a core writes only its own outputs (and partial sums, and its own
 * part of the im2col scratch). The shares (contiguous chunks by pi_core_id()):
 *   conv2d / pointwise / pools / add: output pixels, row-major over out_h * out_w (whole rows
 *     when the chunk is a multiple of out_w, still balanced when out_h < NUM_CORES);
 *     pointwise with fewer pixel pairs than cores (and more groups of 4 output channels):
 *     the channel groups, each core computing every pixel of its channels;
 *   depthwise: (channel, line) pairs, the lines being the output rows or columns (the longer);
 *   linear: output channels;
 *   matmul: a grid of row parts (pairs of rows) x column parts (groups of 4 columns);
 *   softmax, itamax, rmsnorm, layernorm: pixels (rows of features); hardswish, gelu: elements. */
void dory_conv2d(const dory_conv_t *p);      /* im2col + 4x2-blocked matrix product */
void dory_pointwise(const dory_conv_t *p);   /* 1x1 (kh = kw = 1, any stride / padding), no im2col */
void dory_depthwise(const dory_conv_t *p);   /* in_c == out_c, weights [c][kh][kw] */
void dory_linear(const dory_linear_t *p);
void dory_maxpool(const dory_pool_t *p);
void dory_sumpool(const dory_pool_t *p);
void dory_add(const dory_add_t *p);
void dory_matmul(const dory_matmul_t *p);   /* two activations (qnn.matmul), 4-column x 2-row blocks */
void dory_softmax(const dory_softmax_t *p); /* integer softmax over each pixel's channels (qnn.softmax) */
void dory_rmsnorm(const dory_rmsnorm_t *p); /* integer RMS norm over each pixel's channels (qnn.rms_norm) */
void dory_hardswish(const dory_hardswish_t *p); /* integer hardswish, elementwise (qnn.hardswish) */
void dory_gelu(const dory_gelu_t *p);           /* integer GELU (I-BERT), elementwise (qnn.gelu) */
void dory_layernorm(const dory_layernorm_t *p); /* integer layer norm over each pixel's channels (qnn.layer_norm) */
void dory_itamax(const dory_itamax_t *p);       /* ITA's integer softmax over each pixel's channels (qnn.ita_max) */

/* The requantization of one value of output channel c (exposed for tests). */
int32_t dory_requant(const dory_requant_t *rq, int32_t acc, int c);

#endif
