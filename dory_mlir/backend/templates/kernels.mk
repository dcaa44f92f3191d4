# DORY_KERNELS_LIB (make or environment variable): an archive of the kernel library built with
# these flags, linked instead of compiling the kernels again (most of the build time).
ifdef DORY_KERNELS_LIB
KERNELS = $(DORY_KERNELS_LIB)
else
KERNELS = $(wildcard runtime/kernels/*.c) runtime/dma/dory_dma.c
endif
