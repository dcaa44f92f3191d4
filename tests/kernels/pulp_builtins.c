/* Host definitions of the PULP builtins of pulp_builtins.h: pv.sdotsp.b / pv.sdotusp.b,
 * acc + x[0]*y[0] + x[1]*y[1] + x[2]*y[2] + x[3]*y[3], wrapping modulo 2^32 like the
 * hardware. */
#include <stdint.h>

#include "pulp_builtins.h"

static int wrap(int64_t v)
{
    uint32_t u = (uint32_t)(uint64_t)v;
    return u <= INT32_MAX ? (int)u : (int)(u - 0x80000000u) - INT32_MAX - 1;
}

int __builtin_pulp_sdotsp4(dory_test_v4s x, dory_test_v4s y, int acc)
{
    return wrap((int64_t)acc + x[0] * y[0] + x[1] * y[1] + x[2] * y[2] + x[3] * y[3]);
}

int __builtin_pulp_sdotusp4(dory_test_v4u x, dory_test_v4s y, int acc)
{
    return wrap((int64_t)acc + x[0] * y[0] + x[1] * y[1] + x[2] * y[2] + x[3] * y[3]);
}
