// RUN: dory-opt %s --tile | filecheck %s
// RUN: dory-opt %s -p 'fuse,tile{l1-size=2000 l2-size=6000}' | filecheck %s --check-prefix=SMALL
// RUN: dory-opt %s --tile | dory-opt --tile | filecheck %s

// One layer of every kind: conv, depthwise, pointwise, add, max pool, average pool, linear.
// With the default GAP8 budgets every layer is a single tile and all weights stay in L2;
// with 2,000 B of L1 and 6,000 B of L2 activations move to L3 and stream by rows, the
// conv splits its reduction (ci < c_in) in output-channel tiles of the kernel's 4-channel block,
// the max pool splits by channels (no halo), and weights are copied from L3 per layer.

func.func @network(%x: tensor<1x8x16x16xui8>) -> tensor<1x10xsi32> {
  %w0 = qnn.constant dense<1> : tensor<16x8x3x3xsi8>
  %k16 = qnn.constant dense<1> : tensor<16xsi32>
  %l16 = qnn.constant dense<0> : tensor<16xsi32>
  %wd = qnn.constant dense<1> : tensor<16x1x3x3xsi8>
  %wp = qnn.constant dense<1> : tensor<16x16x1x1xsi8>
  %one = qnn.constant dense<1> : tensor<1xsi32>
  %zero = qnn.constant dense<0> : tensor<1xsi32>
  %wl = qnn.constant dense<1> : tensor<10x16xsi8>
  %a0 = qnn.conv %x, %w0 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x8x16x16xui8>, tensor<16x8x3x3xsi8>) -> tensor<1x16x16x16xsi32> loc("Conv_0")
  %y0 = qnn.requant %a0, %k16, %l16 {scale = 1 : i64, divisor = 64 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x16x16x16xsi32>, tensor<16xsi32>, tensor<16xsi32>) -> tensor<1x16x16x16xui8>
  %a1 = qnn.conv %y0, %wd {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 16 : i64} : (tensor<1x16x16x16xui8>, tensor<16x1x3x3xsi8>) -> tensor<1x16x16x16xsi32> loc("Conv_1")
  %y1 = qnn.requant %a1, %k16, %l16 {scale = 1 : i64, divisor = 16 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x16x16x16xsi32>, tensor<16xsi32>, tensor<16xsi32>) -> tensor<1x16x16x16xui8>
  %a2 = qnn.conv %y1, %wp {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x16x16x16xui8>, tensor<16x16x1x1xsi8>) -> tensor<1x16x16x16xsi32> loc("Conv_2")
  %y2 = qnn.requant %a2, %k16, %l16 {scale = 1 : i64, divisor = 16 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x16x16x16xsi32>, tensor<16xsi32>, tensor<16xsi32>) -> tensor<1x16x16x16xui8>
  %s = qnn.add %y2, %y0 {mul = array<i64: 1, 1>, add = array<i64: 0, 0>, shift = array<i64: 0, 0>} : (tensor<1x16x16x16xui8>, tensor<1x16x16x16xui8>) -> tensor<1x16x16x16xsi32> loc("Add_3")
  %y3 = qnn.requant %s, %one, %zero {scale = 1 : i64, divisor = 2 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x16x16x16xsi32>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x16x16x16xui8>
  %p = qnn.max_pool %y3 {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x16x16x16xui8>) -> tensor<1x16x8x8xui8> loc("MaxPool_4")
  %g = qnn.sum_pool %p {kernel = array<i64: 8, 8>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x16x8x8xui8>) -> tensor<1x16x1x1xsi32> loc("AveragePool_5")
  %y5 = qnn.requant %g, %one, %zero {scale = 1 : i64, divisor = 64 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x16x1x1xsi32>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x16x1x1xui8>
  %f = qnn.reshape %y5 : (tensor<1x16x1x1xui8>) -> tensor<1x16xui8> loc("Flatten_6")
  %o = qnn.linear %f, %wl : (tensor<1x16xui8>, tensor<10x16xsi8>) -> tensor<1x10xsi32> loc("Gemm_7")
  func.return %o : tensor<1x10xsi32>
}

// CHECK:      builtin.module attributes {tiling.target = #tiling.target<chip = "gap8", cores = 8, l1_budget = 36700, l2_budget = 400000, l3_size = 8388608, double_buffer = true>}
// CHECK:      func.func @network(%x: tensor<1x8x16x16xui8>) -> tensor<1x10xsi32> attributes {l2_plan = #tiling.l2_plan<peak = 14400, weights = "L2", buffers = [#tiling.l2_buffer<buffer = "layer0", offset = 0, bytes = 4096, first = 0, last = 3>, #tiling.l2_buffer<buffer = "input", offset = 4096, bytes = 2048, first = 0, last = 0>,
// CHECK:      qnn.layer 0 {{.*}} {tiling = #tiling.layer<l1_tile = [16, 16, 16, 8], l1_tiles = [1, 1, 1, 1], l1_bytes = 8576, l2_tile = [16, 16], weights = "L2", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}
// CHECK:        qnn.conv
// CHECK:      qnn.layer 1 {{.*}} {tiling = #tiling.layer<l1_tile = [16, 16, 16, 16], l1_tiles = [1, 1, 1, 1], l1_bytes = 8848, l2_tile = [16, 16], weights = "L2", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}
// CHECK:        qnn.conv {{.*}} groups = 16
// CHECK:      qnn.layer 2 {{.*}} {tiling = #tiling.layer<l1_tile = [16, 16, 16, 16], l1_tiles = [1, 1, 1, 1], l1_bytes = 8576, l2_tile = [16, 16], weights = "L2", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}
// CHECK:      qnn.layer 3 {{.*}} {tiling = #tiling.layer<l1_tile = [16, 16, 16, 16], l1_tiles = [1, 1, 1, 1], l1_bytes = 12296, l2_tile = [16, 16], weights = "L2", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}
// CHECK:        qnn.add
// CHECK:      qnn.layer 4 {{.*}} {tiling = #tiling.layer<l1_tile = [16, 8, 8, 16], l1_tiles = [1, 1, 1, 1], l1_bytes = 5120, l2_tile = [16, 8], weights = "none", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}
// CHECK:        qnn.max_pool
// CHECK:      qnn.layer 5 {{.*}} {tiling = #tiling.layer<l1_tile = [16, 1, 1, 16], l1_tiles = [1, 1, 1, 1], l1_bytes = 1048, l2_tile = [16, 1], weights = "L2", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}
// CHECK:        qnn.sum_pool
// CHECK:      qnn.layer 6 {{.*}} {tiling = #tiling.layer<l1_tile = [10, 1, 1, 16], l1_tiles = [1, 1, 1, 1], l1_bytes = 216, l2_tile = [10, 1], weights = "L2", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}
// CHECK:        qnn.linear

// SMALL:      tiling.target = #tiling.target<chip = "gap8", cores = 8, l1_budget = 2000, l2_budget = 6000, l3_size = 8388608, double_buffer = true>
// SMALL:      l2_plan = #tiling.l2_plan<peak = 5904, weights = "L3",
// SMALL:      qnn.layer 0 {{.*}} {tiling = #tiling.layer<l1_tile = [4, 3, 8, 4], l1_tiles = [4, 7, 2, 2], l1_bytes = 1904, l2_tile = [16, 5], weights = "L3", streamed = ["layer0"], loop_order = "input-stationary", stationary_slots = 2>}
// SMALL:      qnn.layer 1 {{.*}} {tiling = #tiling.layer<l1_tile = [16, 1, 16, 16], l1_tiles = [1, 16, 1, 1], l1_bytes = 1368, l2_tile = [16, 1], weights = "L3", streamed = ["layer0"], loop_order = "input-stationary", stationary_slots = 2>}
// SMALL:      qnn.layer 2 {{.*}} {tiling = #tiling.layer<l1_tile = [16, 2, 16, 16], l1_tiles = [1, 8, 1, 1], l1_bytes = 1408, l2_tile = [16, 2], weights = "L3", streamed = ["layer2"], loop_order = "input-stationary", stationary_slots = 2>}
// SMALL:      qnn.layer 3 {{.*}} {tiling = #tiling.layer<l1_tile = [16, 1, 16, 16], l1_tiles = [1, 16, 1, 1], l1_bytes = 776, l2_tile = [16, 1], weights = "L3", streamed = ["layer2", "layer0"], loop_order = "input-stationary", stationary_slots = 2>}
// SMALL:      qnn.layer 4 {{.*}} {tiling = #tiling.layer<l1_tile = [4, 8, 8, 4], l1_tiles = [4, 1, 1, 1], l1_bytes = 1536, l2_tile = [16, 8], weights = "none", streamed = [], loop_order = "input-stationary", stationary_slots = 1>}
// SMALL:      qnn.layer 5 {{.*}} weights = "L3"
// SMALL:      qnn.layer 6 {{.*}} weights = "L3"
