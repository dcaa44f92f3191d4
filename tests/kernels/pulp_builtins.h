/*
 * The two PULP GCC builtins the kernels' SIMD code path uses, declared as the PULP
 * toolchain's gcc declares them (int __builtin_pulp_sdotsp4(v4s, v4s, int) and
 * int __builtin_pulp_sdotusp4(v4u, v4s, int)), so the SIMD code path builds and runs on a
 * host: tests/test_kernels.py compiles the kernels with -DDORY_PULP_SIMD
 * -include tests/kernels/pulp_builtins.h and links tests/kernels/pulp_builtins.c.
 */
#ifndef DORY_TEST_PULP_BUILTINS_H
#define DORY_TEST_PULP_BUILTINS_H

typedef signed char dory_test_v4s __attribute__((vector_size(4)));
typedef unsigned char dory_test_v4u __attribute__((vector_size(4)));

int __builtin_pulp_sdotsp4(dory_test_v4s x, dory_test_v4s y, int acc);
int __builtin_pulp_sdotusp4(dory_test_v4u x, dory_test_v4s y, int acc);

#endif
