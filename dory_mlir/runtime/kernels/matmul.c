/*
 * Product of two activation tiles (qnn.matmul): out[i][j] = rq(Σ_k a[i][k] · b[k][j]).
 *
 * Both operands are 8-bit activations, each signed or unsigned (the four combinations are
 * instantiated, so the inner loop has no type test). It is the pointwise conv's product with
 * the rows of a as pixels and the columns of b as output channels (out is [m][n], the
 * constants per column), register-blocked as dory_pointwise is: 4 columns x 2 rows (8 int32
 * accumulators in registers), leftover columns one at a time, an odd last row alone. The
 * difference is b's layout: a column is strided (n bytes apart), so a reduction step reads the
 * block's 4 bytes of b's row k at constant offsets from one pointer, advanced by n per step
 * (and a's 2 rows at constant offsets within the 4 steps of an iteration). Per step: 6 byte
 * loads, 8 mul + 8 add, 1 pointer add; per 4 steps 2 more adds and the branch: ~3 rv32
 * instructions per MAC. (No PULP SIMD path: its 4-way dot products need 4 consecutive k of a
 * column of b, which are n bytes apart.)
 *
 * Work split: the cores are a grid of row parts (pairs of rows) x column parts (groups of 4), the
 * shape with the smallest largest share of blocks and, among those, the fewest row parts: a core
 * decodes the requant constants of every column of its part once (per group of 4), which costs
 * about as much as a block's products when K is small. A decoder step's single row is shared by
 * columns, a tall tile by rows. Sums are exact in int32 (the qnn verifier and the golden model
 * bound them); each ends as every conv/linear output does (dk_out_block: partial sums across
 * slices of K, requantization with per-column or per-tensor constants), or, for int32 products
 * without partial sums, is stored as it is.
 */
#include "dk_internal.h"

/* One activation byte of b as a number (sgn: int8, else uint8). */
#define MM_B(p, i, sgn) (sgn ? (int32_t)((const int8_t *)(p))[i] : (int32_t)((const uint8_t *)(p))[i])

/* A reduction step's end, for GCC (see DK_STEP_END_4x2 in dk_internal.h: without it GCC
 * reassociates the unrolled sums and hoists every load of an iteration, spilling accumulators). */
#if defined(__GNUC__)
#define MM_STEP_END_4x2(s, y, x) \
    __asm__("" : "+r"(s[0][0]), "+r"(s[0][1]), "+r"(s[1][0]), "+r"(s[1][1]), "+r"(s[2][0]), "+r"(s[2][1]), \
            "+r"(s[3][0]), "+r"(s[3][1]), "+r"(y), "+r"(x[0]), "+r"(x[1]))
#define MM_STEP_END_4x1(s, y, x) \
    __asm__("" : "+r"(s[0][0]), "+r"(s[1][0]), "+r"(s[2][0]), "+r"(s[3][0]), "+r"(y), "+r"(x[0]))
#define MM_STEP_END_1x2(s, y, x) __asm__("" : "+r"(s[0][0]), "+r"(s[0][1]), "+r"(y), "+r"(x[0]), "+r"(x[1]))
#define MM_STEP_END_1x1(s, y, x) __asm__("" : "+r"(s[0][0]), "+r"(y), "+r"(x[0]))
#else
#define MM_STEP_END_ANY(s, y, x) ((void)(s), (void)(y), (void)(x))
#define MM_STEP_END_4x2 MM_STEP_END_ANY
#define MM_STEP_END_4x1 MM_STEP_END_ANY
#define MM_STEP_END_1x2 MM_STEP_END_ANY
#define MM_STEP_END_1x1 MM_STEP_END_ANY
#endif

/* Reduction step k: the P rows' bytes x[p][k], the R columns' bytes y[0 .. R-1] (b's row k),
 * R x P MACs; then y moves to b's next row. */
DK_ALWAYS_INLINE void mm_step(int32_t s[4][2], const uint8_t **y, const uint8_t *x[2], size_t k, size_t ldb,
                              int R, int P, int sa, int sb)
{
    const int32_t a0 = dk_x(x[0], k, sa), a1 = P > 1 ? dk_x(x[1], k, sa) : 0;
    dk_mac_row(s[0], MM_B(*y, 0, sb), a0, a1, P);
    if (R > 1)
        dk_mac_row(s[1], MM_B(*y, 1, sb), a0, a1, P);
    if (R > 2)
        dk_mac_row(s[2], MM_B(*y, 2, sb), a0, a1, P);
    if (R > 3)
        dk_mac_row(s[3], MM_B(*y, 3, sb), a0, a1, P);
    *y += ldb;
    if (R == 4 && P == 2)
        MM_STEP_END_4x2(s, *y, x);
    else if (R == 4)
        MM_STEP_END_4x1(s, *y, x);
    else if (P == 2)
        MM_STEP_END_1x2(s, *y, x);
    else
        MM_STEP_END_1x1(s, *y, x);
}

/* s[r][p] = Σ_{k<K} x_p[k] · b[k * ldb + r] for the R (4 or 1) columns at b and the P (<= 2)
 * rows x0, x1 of K bytes. */
DK_ALWAYS_INLINE void mm_block(int32_t s[4][2], const uint8_t *b, size_t ldb, const uint8_t *x0, const uint8_t *x1,
                               uint32_t K, int R, int P, int sa, int sb)
{
    const uint8_t *x[2] = {x0, x1};
    const uint8_t *y = b;
    int32_t t[4][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}}; /* local: kept in registers */
    /* 4 steps per iteration, the loop ending on the first row's pointer */
    for (const uint8_t *end = x0 + (K & ~3u); x[0] != end;) {
        mm_step(t, &y, x, 0, ldb, R, P, sa, sb);
        mm_step(t, &y, x, 1, ldb, R, P, sa, sb);
        mm_step(t, &y, x, 2, ldb, R, P, sa, sb);
        mm_step(t, &y, x, 3, ldb, R, P, sa, sb);
        x[0] += 4;
        if (P > 1)
            x[1] += 4;
    }
    for (uint32_t k = 0; k < (K & 3); k++)
        mm_step(t, &y, x, k, ldb, R, P, sa, sb);
    memcpy(s, t, sizeof t);
}

/* Whether every column has the same requant constants: per tensor, or no requant (a matmul
 * has no bias). (Not dk_rq_t's per-channel pointers: a general-mode requant leaves them NULL.) */
DK_ALWAYS_INLINE int same_constants(const dory_requant_t *rq)
{
    return rq == NULL || !((rq->mul != NULL && rq->mul_per_channel) || (rq->add != NULL && rq->add_per_channel));
}

/* The output kinds of a matmul: dk_out_kind's, and int32 products (no requant, no partial sums:
 * with no bias, the value is the sum itself, stored without dk_out_general's per-value checks). */
enum { MM_OUT_I32 = DK_OUT_W64S + 1 };

/* dk_out_block, or the sums themselves for MM_OUT_I32. */
DK_ALWAYS_INLINE void mm_out_block(const dk_out_t *o, const dk_rqc_t *ch, const dk_fold_t *f, int32_t s[4][2],
                                   size_t at0, size_t at1, int R, int P, int kind)
{
    if (kind != MM_OUT_I32) {
        dk_out_block(o, ch, f, s, at0, at1, R, P, kind);
        return;
    }
    int32_t *out = (int32_t *)o->out;
#define MM_STORE(r)                                                                             \
    if (R > r) {                                                                                \
        out[at0 + r] = s[r][0];                                                                 \
        if (P > 1)                                                                              \
            out[at1 + r] = s[r][1];                                                             \
    }
    MM_STORE(0) MM_STORE(1) MM_STORE(2) MM_STORE(3)
#undef MM_STORE
}

/* The R columns col .. col + R - 1 of the rows [lo, hi): pairs of rows as R x 2 blocks, an odd
 * last row as an R x 1 block. */
DK_ALWAYS_INLINE void mm_columns(const dory_matmul_t *p, const dk_out_t *o_in, uint32_t col, uint32_t lo,
                                 uint32_t hi, int R, int sa, int sb, int kind)
{
    const dk_out_t o = *o_in; /* read before any output is stored, see dk_out_block */
    const uint32_t K = p->k, N = p->n;
    const uint8_t *a = (const uint8_t *)p->a, *b = (const uint8_t *)p->b + col;
    dk_rqc_t ch[4];
    dk_fold_t f[4];
    if (R > 1 && same_constants(o_in->rq.rq)) {
        dk_chan(o_in, col, &ch[0], &f[0], kind);
        ch[3] = ch[2] = ch[1] = ch[0];
        f[3] = f[2] = f[1] = f[0];
    } else {
        dk_chans(o_in, col, ch, f, R, kind);
    }
    int32_t s[4][2];
    uint32_t row = lo;
    for (; row + 2 <= hi; row += 2) {
        const uint8_t *x0 = a + (size_t)row * K;
        const size_t o0 = (size_t)row * N + col;
        mm_block(s, b, N, x0, x0 + K, K, R, 2, sa, sb);
        mm_out_block(&o, ch, f, s, o0, o0 + N, R, 2, kind);
    }
    if (row < hi) {
        const size_t o0 = (size_t)row * N + col;
        mm_block(s, b, N, a + (size_t)row * K, NULL, K, R, 1, sa, sb);
        mm_out_block(&o, ch, f, s, o0, 0, R, 1, kind);
    }
}

/* Groups of 4 columns for each pair of operand types and output kind; single leftover columns
 * (at most 3 per call) with the general output path, which keeps the code size in check. */
typedef void columns_fn(const dory_matmul_t *p, const dk_out_t *o, uint32_t col, uint32_t lo, uint32_t hi);
#define COLUMNS(name, R, sa, sb, kind)                                                          \
    DK_NOINLINE void name(const dory_matmul_t *p, const dk_out_t *o, uint32_t col, uint32_t lo, uint32_t hi) \
    {                                                                                           \
        mm_columns(p, o, col, lo, hi, R, sa, sb, kind);                                         \
    }
#define COLUMNS_OF_TYPES(ta, tb, sa, sb)                                                        \
    COLUMNS(columns4_##ta##_##tb, 4, sa, sb, DK_OUT_ANY)                                        \
    COLUMNS(columns4_##ta##_##tb##_w32, 4, sa, sb, DK_OUT_W32)                                  \
    COLUMNS(columns4_##ta##_##tb##_w64, 4, sa, sb, DK_OUT_W64)                                  \
    COLUMNS(columns4_##ta##_##tb##_i32, 4, sa, sb, MM_OUT_I32)                                  \
    COLUMNS(columns1_##ta##_##tb, 1, sa, sb, DK_OUT_ANY)
COLUMNS_OF_TYPES(u8, u8, 0, 0)
COLUMNS_OF_TYPES(u8, i8, 0, 1)
COLUMNS_OF_TYPES(i8, u8, 1, 0)
COLUMNS_OF_TYPES(i8, i8, 1, 1)
#undef COLUMNS_OF_TYPES
#undef COLUMNS

/* [a is int8][b is int8][output kind: DK_OUT_ANY, DK_OUT_W32, DK_OUT_W64, MM_OUT_I32] */
#define KINDS(ta, tb) {columns4_##ta##_##tb, columns4_##ta##_##tb##_w32, columns4_##ta##_##tb##_w64, columns4_##ta##_##tb##_i32}
static columns_fn *const COLUMNS4[2][2][4] = {{KINDS(u8, u8), KINDS(u8, i8)}, {KINDS(i8, u8), KINDS(i8, i8)}};
#undef KINDS
static columns_fn *const COLUMNS1[2][2] = {{columns1_u8_u8, columns1_u8_i8}, {columns1_i8_u8, columns1_i8_i8}};

/* The cores as a grid of NUM_CORES / cols row parts x cols column parts (cols a power of two):
 * the smallest largest share of 2 x 4 blocks, and among those the fewest row parts, since every
 * core decodes the requant constants of all columns of its part (M = N = 16: 2 x 4 parts, not
 * 8 x 1). */
static uint32_t column_parts(uint32_t pairs, uint32_t quads)
{
    uint32_t best = 1, best_blocks = UINT32_MAX;
    for (uint32_t cols = 1; cols <= NUM_CORES; cols *= 2) {
        const uint32_t rows = NUM_CORES / cols;
        const uint32_t blocks = (pairs + rows - 1) / rows * ((quads + cols - 1) / cols);
        if (blocks <= best_blocks) {
            best = cols;
            best_blocks = blocks;
        }
    }
    return best;
}

void dory_matmul(const dory_matmul_t *p)
{
    const int sa = p->a_type == DORY_I8, sb = p->b_type == DORY_I8;
    dk_out_t o;
    dk_out_init(&o, p->rq, NULL, p->acc, p->first_slice, p->last_slice, p->out, p->out_type);
    const int i32 = p->rq == NULL && p->acc == NULL; /* (out is then DORY_I32) */
    columns_fn *const groups = COLUMNS4[sa][sb][i32 ? 3 : dk_out_kind(&o)];
    columns_fn *const single = COLUMNS1[sa][sb];
    const uint32_t quads = ((uint32_t)p->n + 3) / 4;
    const uint32_t cols = column_parts(((uint32_t)p->m + 1) / 2, quads), core = (uint32_t)pi_core_id();
    uint32_t lo, hi, col, col_end;
    dk_part(p->m, NUM_CORES / cols, core / cols, 2, &lo, &hi);
    dk_part(quads, cols, core % cols, 1, &col, &col_end);
    col *= 4;
    col_end = col_end * 4 < p->n ? col_end * 4 : p->n;
    if (lo == hi || col >= col_end) /* (an idle core's col may pass col_end) */
        return;
    for (; col + 4 <= col_end; col += 4)
        groups(p, &o, col, lo, hi);
    for (; col < col_end; col++)
        single(p, &o, col, lo, hi);
}
