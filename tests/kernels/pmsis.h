/* The part of PMSIS the kernel library needs, for the host test build (tests/test_kernels.py). */
#ifndef PMSIS_H
#define PMSIS_H
int pi_core_id(void);
#endif
