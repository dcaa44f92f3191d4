// RUN: dory-opt %s --split-input-file --verify-diagnostics | filecheck %s

func.func @unknown(%a: memref<4xui8, "L1">) {
  pulp.kernel "dory_no_such_kernel" (%a) [] {roles = ["in"], params = {}} : memref<4xui8, "L1">
  func.return
}

// CHECK: unknown kernel 'dory_no_such_kernel' (known: dory_conv2d, dory_pointwise, dory_depthwise, dory_linear, dory_maxpool, dory_sumpool, dory_add, dory_matmul, dory_softmax, dory_rmsnorm, dory_hardswish, dory_gelu, dory_layernorm, dory_itamax)

// -----

func.func @missing(%a: memref<4xui8, "L1">) {
  pulp.kernel "dory_maxpool" (%a) [] {roles = ["in"], params = {}} : memref<4xui8, "L1">
  func.return
}

// CHECK: dory_maxpool needs buffers ['out']

// -----

func.func @scalars(%a: memref<4xui8, "L1">, %b: memref<4xui8, "L1">) {
  pulp.kernel "dory_maxpool" (%a, %b) [] {roles = ["in", "out"], params = {}} : memref<4xui8, "L1">, memref<4xui8, "L1">
  func.return
}

// CHECK: dory_maxpool takes index operands ['pad_t', 'pad_l', 'pad_b', 'pad_r'], got []

// -----

func.func @level(%a: memref<4xui8, "L2">, %b: memref<4xui8, "L1">) {
  pulp.kernel "dory_add" (%a, %a, %b) [] {roles = ["a", "b", "out"], params = {}} : memref<4xui8, "L2">, memref<4xui8, "L2">, memref<4xui8, "L1">
  func.return
}

// CHECK: kernels work on L1 buffers, got memref<4xui8, "L2">

// -----

func.func @count(%a: memref<4xui8, "L1">, %b: memref<4xui8, "L1">) {
  pulp.kernel "dory_add" (%a, %a, %b) [] {roles = ["a", "b"], params = {}} : memref<4xui8, "L1">, memref<4xui8, "L1">, memref<4xui8, "L1">
  func.return
}

// CHECK: 2 roles for 3 operands

// -----

func.func @twice(%a: memref<4xui8, "L1">, %b: memref<4xui8, "L1">) {
  pulp.kernel "dory_add" (%a, %a, %b) [] {roles = ["a", "a", "out"], params = {}} : memref<4xui8, "L1">, memref<4xui8, "L1">, memref<4xui8, "L1">
  func.return
}

// CHECK: a buffer role appears twice: ['a', 'a', 'out']

// -----

func.func @extra(%a: memref<4xui8, "L1">, %b: memref<4xui8, "L1">) {
  pulp.kernel "dory_add" (%a, %a, %b, %b) [] {roles = ["a", "b", "out", "weights"], params = {}} : memref<4xui8, "L1">, memref<4xui8, "L1">, memref<4xui8, "L1">, memref<4xui8, "L1">
  func.return
}

// CHECK: dory_add has no buffer role ['weights']

// -----

func.func @layer_in_l1(%a: memref<4xui8, "L1">, %b: memref<4xui8, "L2">) {
  pulp.layer 0 "dory_maxpool" (%a, %b) {roles = ["in", "out"], params = {}} : memref<4xui8, "L1">, memref<4xui8, "L2">
  func.return
}

// CHECK: a layer's buffers live in L2 or L3, not L1

// -----

func.func @layer_scratch(%a: memref<4xui8, "L2">, %b: memref<4xui8, "L2">, %c: memref<4xsi8, "L2">, %d: memref<4xui8, "L2">) {
  pulp.layer 0 "dory_conv2d" (%a, %c, %b, %d) {roles = ["in", "weights", "out", "im2col"], params = {}} : memref<4xui8, "L2">, memref<4xsi8, "L2">, memref<4xui8, "L2">, memref<4xui8, "L2">
  func.return
}

// CHECK: dory_conv2d has no buffer role ['im2col']

// -----

func.func @unknown_param(%a: memref<4x4x1xui8, "L2">, %b: memref<2x2x1xui8, "L2">) {
  pulp.layer 0 "dory_maxpool" (%a, %b) {roles = ["in", "out"], params = {kh = 2 : i64, stride = 2 : i64}} : memref<4x4x1xui8, "L2">, memref<2x2x1xui8, "L2">
  func.return
}

// CHECK: dory_maxpool has no parameter 'stride' (it takes: kh, kw, sh, sw, mul_per_channel, add_per_channel, const_bits, wide, trunc, shift, scale, divisor, min, max, pad_t, pad_l, pad_b, pad_r, rows_per_batch, lhs_slices, rhs_slices)

// -----

func.func @param_type(%a: memref<4xui8, "L1">, %b: memref<4xui8, "L1">, %p: index) {
  pulp.kernel "dory_maxpool" (%a, %b) [%p, %p, %p, %p] {roles = ["in", "out", "pad_t", "pad_l", "pad_b", "pad_r"], params = {kh = "2"}} : memref<4xui8, "L1">, memref<4xui8, "L1">
  func.return
}

// CHECK: parameter 'kh' of dory_maxpool must be an integer, got "2"

// -----

func.func @layer_param_in_a_call(%a: memref<4xui8, "L1">, %b: memref<4xui8, "L1">, %p: index) {
  pulp.kernel "dory_maxpool" (%a, %b) [%p, %p, %p, %p] {roles = ["in", "out", "pad_t", "pad_l", "pad_b", "pad_r"], params = {pad_t = 1 : i64}} : memref<4xui8, "L1">, memref<4xui8, "L1">
  func.return
}

// CHECK: dory_maxpool has no parameter 'pad_t' (it takes: kh, kw, sh, sw, mul_per_channel, add_per_channel, const_bits, wide, trunc, shift, scale, divisor, min, max)

// -----

// A layer that only moves data (kernel_abi.DATA_MOVES) takes its own roles and parameters.
func.func @transpose_without_output(%a: memref<6x1x4xsi8, "L2">) {
  pulp.layer 0 "dma_transpose" (%a) {roles = ["in"], params = {shape = array<i64: 2, 3, 4>, perm = array<i64: 1, 0, 2>}} : memref<6x1x4xsi8, "L2">
  func.return
}

// CHECK: dma_transpose needs buffers ['out']

// -----

func.func @transpose_with_a_window(%a: memref<6x1x4xsi8, "L2">, %b: memref<6x1x4xsi8, "L2">) {
  pulp.layer 0 "dma_transpose" (%a, %b) {roles = ["in", "out"], params = {kh = 3 : i64}} : memref<6x1x4xsi8, "L2">, memref<6x1x4xsi8, "L2">
  func.return
}

// CHECK: dma_transpose has no parameter 'kh' (it takes: shape, perm)
