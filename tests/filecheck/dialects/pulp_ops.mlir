// RUN: dory-opt %s | dory-opt | filecheck %s
// RUN: dory-opt %s --print-op-generic | dory-opt | filecheck %s

func.func @layer(%in: memref<16x16x8xui8, "L2">, %w: memref<16x3x3x8xsi8, "L3">, %k: memref<16xsi32, "L2">,
                 %l: memref<16xsi32, "L2">, %out: memref<16x16x16xui8, "L2">) {
  pulp.layer 0 "dory_conv2d" (%in, %w, %k, %l, %out) {roles = ["in", "weights", "mul", "add", "out"], params = {kh = 3 : i64, kw = 3 : i64}} : memref<16x16x8xui8, "L2">, memref<16x3x3x8xsi8, "L3">, memref<16xsi32, "L2">, memref<16xsi32, "L2">, memref<16x16x16xui8, "L2">
  func.return
}

// CHECK:      pulp.layer 0 "dory_conv2d" (%in, %w, %k, %l, %out) {roles = ["in", "weights", "mul", "add", "out"], params = {kh = 3 : i64, kw = 3 : i64}} : memref<16x16x8xui8, "L2">, memref<16x3x3x8xsi8, "L3">, memref<16xsi32, "L2">, memref<16xsi32, "L2">, memref<16x16x16xui8, "L2">

func.func @tile(%in: memref<4x16x8xui8, "L1">, %out: memref<2x8x8xui8, "L1">, %p: index) {
  pulp.kernel "dory_maxpool" (%in, %out) [%p, %p, %p, %p] {roles = ["in", "out", "pad_t", "pad_l", "pad_b", "pad_r"], params = {kh = 2 : i64}} : memref<4x16x8xui8, "L1">, memref<2x8x8xui8, "L1">
  pulp.barrier
  func.return
}

// CHECK:      pulp.kernel "dory_maxpool" (%in, %out) [%p, %p, %p, %p] {roles = ["in", "out", "pad_t", "pad_l", "pad_b", "pad_r"], params = {kh = 2 : i64}} : memref<4x16x8xui8, "L1">, memref<2x8x8xui8, "L1">
// CHECK-NEXT: pulp.barrier

// A transpose: no kernel, a data movement (kernel_abi.DATA_MOVES) with its input's shape and the permutation.
func.func @transpose(%in: memref<6x1x4xsi8, "L2">, %out: memref<8x1x3xsi8, "L2">) {
  pulp.layer 1 "dma_transpose" (%in, %out) {roles = ["in", "out"], params = {shape = array<i64: 2, 3, 4>, perm = array<i64: 0, 2, 1>}} : memref<6x1x4xsi8, "L2">, memref<8x1x3xsi8, "L2">
  func.return
}

// CHECK: pulp.layer 1 "dma_transpose" (%in, %out) {roles = ["in", "out"], params = {shape = array<i64: 2, 3, 4>, perm = array<i64: 0, 2, 1>}} : memref<6x1x4xsi8, "L2">, memref<8x1x3xsi8, "L2">
