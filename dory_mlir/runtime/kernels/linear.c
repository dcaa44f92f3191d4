/*
 * Fully connected layer: out[co] = rq(bias[co] + Σ_ci w[co][ci] · in[ci]).
 *
 * The output channels are split into contiguous chunks, one per core; each core walks its
 * channels as 4 x 1 blocks of the matrix product (dk_block: 4 weight rows share each
 * activation byte), then a 2 x 1 and a 1 x 1 block for the leftovers (a core often gets
 * only 2 channels of a small classifier). The reduction may be split into slices (acc /
 * first_slice / last_slice, see dk_out_general).
 */
#include "dk_internal.h"

/* The R channels co .. co + R - 1 (o: the caller's copy of o_in, see dk_chan). */
DK_ALWAYS_INLINE void linear_block(const dory_linear_t *p, const dk_out_t *o, const dk_out_t *o_in, uint32_t co,
                                   int R, int sgn, int kind)
{
    const uint32_t K = p->in_c;
    int32_t s[4][2];
    dk_rqc_t ch[4];
    dk_fold_t f[4];
    dk_block(s, p->weights + (size_t)co * K, K, (const uint8_t *)p->in, (const uint8_t *)p->in, K, R, 1, sgn);
    dk_chans(o_in, co, ch, f, R, kind);
    dk_out_block(o, ch, f, s, co, 0, R, 1, kind);
}

DK_ALWAYS_INLINE void linear_body(const dory_linear_t *p, const dk_out_t *o_in, int sgn, int kind)
{
    const dk_out_t o = *o_in; /* read before any output is stored, see dk_out_block */
    uint32_t lo, hi;
    dk_share(p->out_c, 1, &lo, &hi);
    uint32_t co = lo;
    for (; co + 4 <= hi; co += 4)
        linear_block(p, &o, o_in, co, 4, sgn, kind);
    if (co + 2 <= hi) {
        linear_block(p, &o, o_in, co, 2, sgn, kind);
        co += 2;
    }
    if (co < hi)
        linear_block(p, &o, o_in, co, 1, sgn, kind);
}

/* Instantiated for u8 activations and each output kind, i8 with the general output path. */
DK_NOINLINE void linear_u8(const dory_linear_t *p, const dk_out_t *o) { linear_body(p, o, 0, DK_OUT_ANY); }
DK_NOINLINE void linear_u8_w32(const dory_linear_t *p, const dk_out_t *o) { linear_body(p, o, 0, DK_OUT_W32); }
DK_NOINLINE void linear_u8_w64(const dory_linear_t *p, const dk_out_t *o) { linear_body(p, o, 0, DK_OUT_W64); }
DK_NOINLINE void linear_i8(const dory_linear_t *p, const dk_out_t *o) { linear_body(p, o, 1, DK_OUT_ANY); }

void dory_linear(const dory_linear_t *p)
{
    if (dk_wide(p->in_type)) {
        dk_linear_wide(p);
        return;
    }
    dk_out_t o;
    dk_out_init(&o, p->rq, p->bias, p->acc, p->first_slice, p->last_slice, p->out, p->out_type);
    const int kind = dk_out_kind(&o);
    if (p->in_type == DORY_I8)
        linear_i8(p, &o);
    else
        (kind == DK_OUT_W32 ? linear_u8_w32 : kind == DK_OUT_W64 ? linear_u8_w64 : linear_u8)(p, &o);
}
