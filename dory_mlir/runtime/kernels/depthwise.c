/*
 * Depthwise convolution (groups = channels; in_c == out_c; weights [c][kh][kw]).
 *
 * 3x3 windows with dilation 1 and a stride of 1 or 2 along one direction -- every
 * depthwise layer of the shared networks -- read the HWC input in place, with no im2col
 * copy. The outputs of a channel are computed line by line, a line being an output row
 * (the window slides along x) or an output column (along y), whichever is longer, since
 * each line costs a setup. Under a line lie 3 input lanes (rows, resp. columns: 3 pointers;
 * a lane in the padding is replaced by a valid one with zero weights) and the window
 * slides along them carrying partial sums, so that each input position (3 bytes, one per
 * lane) is loaded once: with stride 1, position x is the last of output x - 2 + pad, the
 * middle one of the next output and the first one of the one after; with stride 2, every
 * other position is shared by two outputs. The 9 weights stay in registers for the line;
 * the sums of up to RUN outputs are kept on the stack, then requantized in a loop of their
 * own (dk_out_run), which keeps both loops' values in registers. Positions outside the
 * input (the padding along the line) read as zeros. Any other window, and padding by a
 * non-zero pad_value, takes the general path, one output at a time over the window.
 *
 * Work split: the (channel, line) pairs c * lines + l are split into contiguous chunks, one
 * per core (balanced even for a few channels or lines); a core's lines come in runs of one
 * channel, whose requant constants and weights are decoded once per run.
 */
#include "dk_internal.h"

#define RUN 16 /* outputs computed before they are requantized (a stack buffer of sums) */

/* The geometry of a line of outputs of one channel. */
typedef struct {
    const uint8_t *lane[3];   /* the 3 input lanes of the window, at position 0 along the line */
    int32_t w[3][3];          /* w[lane][position in the window along the line] */
    size_t in_step;           /* bytes between consecutive input positions along the line */
    int in_len;               /* input positions along the line: [0, in_len) */
    int start;                /* the first position of output 0's window (-pad) */
    int out_len;              /* outputs of the line */
    size_t out_idx, out_step; /* element of output 0, and between outputs */
} line_t;

/* The 3 lane bytes at position pos, or zeros outside the input. */
DK_ALWAYS_INLINE void load_position(const line_t *l, int pos, int32_t v[3], int sgn)
{
    if ((unsigned)pos < (unsigned)l->in_len) {
        const size_t off = (size_t)pos * l->in_step;
        v[0] = dk_x(l->lane[0], off, sgn);
        v[1] = dk_x(l->lane[1], off, sgn);
        v[2] = dk_x(l->lane[2], off, sgn);
    } else {
        v[0] = v[1] = v[2] = 0;
    }
}

/* Σ_i w[i][j] * v[i]: position j of the window times the lane bytes v. */
DK_ALWAYS_INLINE int32_t wcol(const line_t *l, int j, const int32_t v[3])
{
    return l->w[0][j] * v[0] + l->w[1][j] * v[1] + l->w[2][j] * v[2];
}

/* One output of the sliding window from the next position(s) v1 (stride 2 only), v2:
 * returns the output's sum and updates the partial sums a (of the current output) and b
 * (of the next one, stride 1). */
DK_ALWAYS_INLINE int32_t slide(const line_t *l, const int32_t v1[3], const int32_t v2[3], int32_t *a, int32_t *b,
                               int s)
{
    int32_t sum;
    if (s == 1) {
        sum = *a + wcol(l, 2, v2);
        *a = *b + wcol(l, 1, v2);
        *b = wcol(l, 0, v2);
    } else {
        sum = *a + wcol(l, 1, v1) + wcol(l, 2, v2);
        *a = wcol(l, 0, v2);
    }
    return sum;
}

/* A line with stride s along it (1: start >= -2, 2: start >= -1). The window of output k
 * starts at pos = k * s + start and output k loads positions pos + 2 (and pos + 1 with
 * stride 2), never before the input: outputs [0, k_hi) load positions inside it,
 * unchecked, through lane pointers advanced by s * in_step before each load; for the last
 * ones (padding at the end) position pos + 2 lies past the input. */
DK_ALWAYS_INLINE void line_3x3(const line_t *l, const dk_out_t *o, const dk_rqc_t *ch, const dk_fold_t *f, int s,
                               int sgn, int kind)
{
    const int len = l->in_len, start = l->start;
    int32_t v1[3] = {0, 0, 0}, v2[3], a, b = 0;
    load_position(l, start, v2, sgn);
    a = wcol(l, 0, v2);
    if (s == 1) {
        load_position(l, start + 1, v2, sgn);
        a += wcol(l, 1, v2);
        b = wcol(l, 0, v2);
    }
    int k_hi = s == 1 ? len - start - 2 : len - start >= 3 ? (len - start - 1) / 2 : 0;
    k_hi = k_hi < l->out_len ? k_hi : l->out_len;
    /* before the first load: position start + 2 - s, inside the input when k_hi > 0 */
    const size_t first = k_hi > 0 ? (size_t)(start + 2 - s) * l->in_step : 0, step = (size_t)s * l->in_step;
    const size_t half = l->in_step;
    const uint8_t *p0 = l->lane[0] + first, *p1 = l->lane[1] + first, *p2 = l->lane[2] + first;
    size_t idx = l->out_idx;
    int32_t sums[RUN];
    for (int k0 = 0; k0 < l->out_len; k0 += RUN) {
        const int n = l->out_len - k0 < RUN ? l->out_len - k0 : RUN;
        const int unchecked = k_hi - k0 < 0 ? 0 : k_hi - k0 < n ? k_hi - k0 : n;
        int k = 0;
        for (; k < unchecked; k++) {
            if (s == 2) {
                v1[0] = dk_x(p0, half, sgn);
                v1[1] = dk_x(p1, half, sgn);
                v1[2] = dk_x(p2, half, sgn);
            }
            p0 += step;
            p1 += step;
            p2 += step;
            v2[0] = dk_x(p0, 0, sgn);
            v2[1] = dk_x(p1, 0, sgn);
            v2[2] = dk_x(p2, 0, sgn);
            sums[k] = slide(l, v1, v2, &a, &b, s);
        }
        for (; k < n; k++) { /* position pos + 2 lies past the input */
            if (s == 1) {
                sums[k] = a;
                a = b;
                b = 0;
            } else {
                load_position(l, (k0 + k) * 2 + start + 1, v1, sgn);
                sums[k] = a + wcol(l, 1, v1);
                a = 0;
            }
        }
        dk_out_run(o, ch, f, sums, n, idx, l->out_step, kind);
        idx += (size_t)n * l->out_step;
    }
}

/* Output row oy of channel c, any window: Σ over its rows and columns, pad_value outside the input. */
DK_ALWAYS_INLINE void row_general(const dory_conv_t *p, const dk_out_t *o, const dk_rqc_t *ch, uint32_t c, int oy,
                                  int sgn)
{
    const size_t C = p->in_c;
    const uint8_t *base = (const uint8_t *)p->in + c;
    const int8_t *wt = p->weights + (size_t)c * p->kh * p->kw;
    const int y0 = oy * p->sh - p->pad_t;
    size_t idx = (size_t)oy * p->out_w * p->out_c + c;
    for (int ox = 0; ox < p->out_w; ox++, idx += p->out_c) {
        const int x0 = ox * p->sw - p->pad_l;
        int32_t sum = 0;
        for (int i = 0; i < p->kh; i++) {
            const int iy = y0 + i * p->dh;
            const uint8_t *in_row = base + (size_t)(iy < 0 ? 0 : iy) * p->in_w * C;
            for (int j = 0; j < p->kw; j++) {
                const int ix = x0 + j * p->dw;
                if (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w)
                    sum += dk_x(in_row, (size_t)ix * C, sgn) * wt[i * p->kw + j];
                else
                    sum += p->pad_value * wt[i * p->kw + j];
            }
        }
        dk_out_general(o, ch, idx, sum);
    }
}

/* Lines of the 3x3 window: along x (output rows) or along y (output columns). */
enum { ALONG_X = 1, ALONG_Y = 2 };

/* The weights of a lane: its row of the window, or zeros for a lane in the padding. */
DK_ALWAYS_INLINE void lane_weights(int32_t w[3], const int32_t wc[3], int in)
{
    w[0] = in ? wc[0] : 0;
    w[1] = in ? wc[1] : 0;
    w[2] = in ? wc[2] : 0;
}

/* What the lines of a call share, read once (as locals, never reloaded after the byte
 * stores of the outputs). */
typedef struct {
    line_t l;                 /* all but the lanes, weights and out_idx */
    const uint8_t *base;      /* the input, channel 0 */
    int across0, across_stride; /* line li lies over the lanes li * across_stride + across0 + 0..2 */
    unsigned across_len;
    size_t across_step;       /* bytes between lanes */
    size_t line_step;         /* output elements between lines */
} lines_t;

DK_ALWAYS_INLINE void lines_of(const dory_conv_t *p, int along, lines_t *g)
{
    const size_t C = p->in_c, row = (size_t)p->in_w * C;
    g->base = (const uint8_t *)p->in;
    if (along == ALONG_X) {
        g->l.in_step = C;
        g->l.in_len = p->in_w;
        g->l.start = -(int)p->pad_l;
        g->l.out_len = p->out_w;
        g->l.out_step = p->out_c;
        g->across0 = -(int)p->pad_t;
        g->across_stride = p->sh;
        g->across_len = p->in_h;
        g->across_step = row;
        g->line_step = (size_t)p->out_w * p->out_c;
    } else {
        g->l.in_step = row;
        g->l.in_len = p->in_h;
        g->l.start = -(int)p->pad_t;
        g->l.out_len = p->out_h;
        g->l.out_step = (size_t)p->out_w * p->out_c;
        g->across0 = -(int)p->pad_l;
        g->across_stride = p->sw;
        g->across_len = p->in_w;
        g->across_step = C;
        g->line_step = p->out_c;
    }
}

/* Line li of channel c: the lanes under it and the weights (zero for a lane in the
 * padding, which then points at a valid one: the last one inside, or the first). Written
 * out lane by lane, so that the line stays in registers (see dk_block). */
DK_ALWAYS_INLINE void line_of(const lines_t *g, uint32_t c, int li, int32_t wc[3][3], line_t *l)
{
    *l = g->l;
    const uint8_t *base = g->base + c;
    const int across = li * g->across_stride + g->across0;
    const unsigned len = g->across_len;
    const int in0 = (unsigned)across < len, in1 = (unsigned)(across + 1) < len, in2 = (unsigned)(across + 2) < len;
    const int valid = in2 ? across + 2 : in1 ? across + 1 : in0 ? across : 0;
    l->lane[0] = base + (size_t)(in0 ? across : valid) * g->across_step;
    l->lane[1] = base + (size_t)(in1 ? across + 1 : valid) * g->across_step;
    l->lane[2] = base + (size_t)(in2 ? across + 2 : valid) * g->across_step;
    lane_weights(l->w[0], wc[0], in0);
    lane_weights(l->w[1], wc[1], in1);
    lane_weights(l->w[2], wc[2], in2);
    l->out_idx = (size_t)li * g->line_step + c;
}

/* The lines [l0, l1) of channel c. `s`: 1 or 2 = the 3x3 window with that stride along the
 * lines (`along`), 0 = any window (lines are output rows). The output state is copied into
 * a local first: the byte stores of the outputs could alias it otherwise (see dk_out_block). */
DK_ALWAYS_INLINE void lines(const dory_conv_t *p, const dk_out_t *o_in, uint32_t c, int l0, int l1, int along,
                            int s, int sgn, int kind)
{
    const dk_out_t o = *o_in;
    dk_rqc_t ch;
    dk_fold_t f;
    dk_chan(o_in, c, &ch, &f, kind);
    if (s == 0) {
        for (int li = l0; li < l1; li++)
            row_general(p, &o, &ch, c, li, sgn);
        return;
    }
    lines_t g;
    lines_of(p, along, &g);
    const int8_t *wt = p->weights + (size_t)c * 9;
    /* the weights [across][along]: [row][column] for lines along x, transposed along y */
    const int t = along == ALONG_Y;
    int32_t wc[3][3] = {{wt[0], wt[t ? 3 : 1], wt[t ? 6 : 2]},
                        {wt[t ? 1 : 3], wt[4], wt[t ? 7 : 5]},
                        {wt[t ? 2 : 6], wt[t ? 5 : 7], wt[8]}};
    for (int li = l0; li < l1; li++) {
        line_t l;
        line_of(&g, c, li, wc, &l);
        line_3x3(&l, &o, &ch, &f, s, sgn, kind);
    }
}

/* Instantiated for u8 activations, each stride and output kind; i8 activations and other
 * windows with the general output path (code size). */
typedef void lines_fn(const dory_conv_t *p, const dk_out_t *o, uint32_t c, int l0, int l1, int along);
#define LINES(name, s, sgn, kind)                                                               \
    DK_NOINLINE void name(const dory_conv_t *p, const dk_out_t *o, uint32_t c, int l0, int l1, int along) \
    {                                                                                           \
        lines(p, o, c, l0, l1, along, s, sgn, kind);                                            \
    }
LINES(lines_any_u8, 0, 0, DK_OUT_ANY)
LINES(lines_any_i8, 0, 1, DK_OUT_ANY)
LINES(lines_s1_u8, 1, 0, DK_OUT_ANY)
LINES(lines_s1_u8_w32, 1, 0, DK_OUT_W32)
LINES(lines_s1_u8_w64, 1, 0, DK_OUT_W64)
LINES(lines_s2_u8, 2, 0, DK_OUT_ANY)
LINES(lines_s2_u8_w32, 2, 0, DK_OUT_W32)
LINES(lines_s2_u8_w64, 2, 0, DK_OUT_W64)
LINES(lines_s1_i8, 1, 1, DK_OUT_ANY)
LINES(lines_s2_i8, 2, 1, DK_OUT_ANY)
static lines_fn *const LINES_3x3[2][2][3] = {
    {{lines_s1_u8, lines_s1_u8_w32, lines_s1_u8_w64}, {lines_s2_u8, lines_s2_u8_w32, lines_s2_u8_w64}},
    {{lines_s1_i8, lines_s1_i8, lines_s1_i8}, {lines_s2_i8, lines_s2_i8, lines_s2_i8}}};

/* The direction of the lines of a 3x3 window (0: the general path): the longer one among
 * those whose stride is 1 or 2 and whose padding at the start the slide handles. */
static int lines_along(const dory_conv_t *p)
{
    if (p->kh != 3 || p->kw != 3 || p->dh != 1 || p->dw != 1)
        return 0;
    if (p->pad_value != 0 && (p->pad_t | p->pad_l | p->pad_b | p->pad_r) != 0)
        return 0; /* the slide reads padding as zeros */
    const int ok_x = (p->sw == 1 || p->sw == 2) && p->pad_l <= 3 - p->sw;
    const int ok_y = (p->sh == 1 || p->sh == 2) && p->pad_t <= 3 - p->sh;
    if (ok_y && (p->out_h > p->out_w || !ok_x))
        return ALONG_Y;
    return ok_x ? ALONG_X : 0;
}

void dory_depthwise(const dory_conv_t *p)
{
    if (dk_wide(p->in_type)) {
        dk_depthwise_wide(p);
        return;
    }
    dk_out_t o;
    dk_out_init(&o, p->rq, p->bias, p->acc, p->first_slice, p->last_slice, p->out, p->out_type);
    const int sgn = p->in_type == DORY_I8, along = lines_along(p);
    lines_fn *run = sgn ? lines_any_i8 : lines_any_u8;
    if (along != 0)
        run = LINES_3x3[sgn][(along == ALONG_X ? p->sw : p->sh) - 1][dk_out_kind(&o)];
    const uint32_t per_channel = along == ALONG_Y ? p->out_w : p->out_h; /* lines */
    uint32_t lo, hi;
    dk_share((uint32_t)p->out_c * per_channel, 1, &lo, &hi);
    for (uint32_t u = lo; u < hi;) { /* runs of lines of one channel */
        const uint32_t c = u / per_channel, l = u % per_channel;
        const uint32_t n = hi - u < per_channel - l ? hi - u : per_channel - l;
        run(p, &o, c, (int)l, (int)(l + n), along);
        u += n;
    }
}
