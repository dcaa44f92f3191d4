/*
 * The types of the kernel table the test drivers are built with (tests/kernels/shim.c on the host,
 * rv32_driver.c under QEMU): kernel_table.h, generated from dory_mlir/kernel_abi.py by
 * tests/test_kernels.py (kernel_table_source), lists every kernel -- its number is its index --
 * with a caller and the fields of its argument struct, so a kernel added to the table is called
 * and read by the drivers with no code of their own.
 */
#ifndef DORY_TEST_KERNEL_TABLE_TYPES_H
#define DORY_TEST_KERNEL_TABLE_TYPES_H

#include <stddef.h>

#include "dory_kernels.h"

/* What a field holds: `count` values of a C base type, a buffer pointer, or the requant pointer
 * (a present flag, then the fields of dory_requant_t, in the recorded cases). */
enum { DT_U8, DT_I8, DT_U16, DT_I16, DT_I32, DT_I64, DT_DTYPE, DT_POINTER, DT_REQUANT };

/* (the table's field lists: a driver may not read the requant's) */
#if defined(__GNUC__)
#define DT_MAYBE_UNUSED __attribute__((unused))
#else
#define DT_MAYBE_UNUSED
#endif

typedef struct {
    size_t offset;
    unsigned char kind, count;
} dt_field_t;

typedef struct {
    const char *name;
    void (*call)(const void *params); /* the kernel on its argument struct */
    size_t size;                      /* of the argument struct */
    const dt_field_t *fields;
    int n_fields;
} dt_kernel_t;

#endif
