/*
 * Product of two activation tiles (qnn.matmul): out[i][j] = rq(Σ_k a[i][k] · b[k][j]).
 *
 * Both operands are 8-bit activations, each signed or unsigned (the four combinations are
 * instantiated, so the inner loop has no type test). The output elements (row-major over
 * m x n) are split into contiguous chunks, one per core: balanced even when a tile has fewer
 * rows than there are cores. Each element is one dot product of a row of a with a column of
 * b (stride n), accumulated exactly in int32 (the qnn verifier and the golden model bound
 * the sum), then ends as every conv/linear output does (dk_out_general: partial sums across
 * slices of K, requantization with per-column or per-tensor constants, int32 copy).
 */
#include "dk_internal.h"

#define MATMUL_BODY(A_T, B_T)                                                                  \
    {                                                                                          \
        const dk_out_t o = *o_in; /* read before any output is stored, see dk_out_block */     \
        const A_T *a = (const A_T *)p->a;                                                      \
        const B_T *b = (const B_T *)p->b;                                                      \
        const uint32_t K = p->k, N = p->n;                                                     \
        uint32_t lo, hi;                                                                       \
        dk_share((uint32_t)p->m * N, 1, &lo, &hi);                                             \
        /* the constants of every column, unless they are per column (read per element) */     \
        const int per_column = p->rq != NULL && (p->rq->mul_per_channel || p->rq->add_per_channel); \
        dk_rqc_t ch;                                                                           \
        dk_rqc(&o.rq, 0, &ch);                                                                 \
        for (uint32_t idx = lo; idx < hi; idx++) {                                             \
            const uint32_t row = idx / N, col = idx % N;                                       \
            const A_T *x = a + (size_t)row * K;                                                \
            const B_T *y = b + col;                                                            \
            int32_t sum = 0;                                                                   \
            for (uint32_t k = 0; k < K; k++, y += N)                                           \
                sum += (int32_t)x[k] * (int32_t)*y;                                            \
            if (per_column)                                                                    \
                dk_rqc(&o.rq, (int)col, &ch);                                                  \
            dk_out_general(&o, &ch, idx, sum);                                                 \
        }                                                                                      \
    }

DK_NOINLINE void matmul_u8_u8(const dory_matmul_t *p, const dk_out_t *o_in) MATMUL_BODY(uint8_t, uint8_t)
DK_NOINLINE void matmul_u8_i8(const dory_matmul_t *p, const dk_out_t *o_in) MATMUL_BODY(uint8_t, int8_t)
DK_NOINLINE void matmul_i8_u8(const dory_matmul_t *p, const dk_out_t *o_in) MATMUL_BODY(int8_t, uint8_t)
DK_NOINLINE void matmul_i8_i8(const dory_matmul_t *p, const dk_out_t *o_in) MATMUL_BODY(int8_t, int8_t)

void dory_matmul(const dory_matmul_t *p)
{
    dk_out_t o;
    dk_out_init(&o, p->rq, NULL, p->acc, p->first_slice, p->last_slice, p->out, p->out_type);
    if (p->a_type == DORY_I8)
        (p->b_type == DORY_I8 ? matmul_i8_i8 : matmul_i8_u8)(p, &o);
    else
        (p->b_type == DORY_I8 ? matmul_u8_i8 : matmul_u8_u8)(p, &o);
}
