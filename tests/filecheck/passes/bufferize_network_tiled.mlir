// RUN: dory-opt %s --bufferize-network | filecheck %s
// RUN: dory-opt %s --bufferize-network | dory-opt | filecheck %s

// bufferize-network alone, from a tiled network checked in here (tile{l1-size=1200} of one 3x3
// conv 4->8 on 8x8): the tensors become views of one L2 arena of the plan's peak at the plan's
// offsets, the layer a `pulp.layer` that carries its tiling; a tiler change does not reach this test.

builtin.module attributes {tiling.target = #tiling.target<chip = "gap8", cores = 8, l1_budget = 1200, l2_budget = 400000, l3_size = 8388608, double_buffer = true>} {
  func.func @network(%x: tensor<1x4x8x8xui8>) -> tensor<1x8x8x8xui8> attributes {l2_plan = #tiling.l2_plan<peak = 1120, weights = "L2", buffers = [#tiling.l2_buffer<buffer = "layer0", offset = 0, bytes = 512, first = 0, last = 1>, #tiling.l2_buffer<buffer = "weights of layer 0", offset = 512, bytes = 352, first = 0, last = 1>, #tiling.l2_buffer<buffer = "input", offset = 864, bytes = 256, first = 0, last = 0>]>} {
    %w = qnn.constant dense<1> : tensor<8x4x3x3xsi8>
    %k = qnn.constant dense<1> : tensor<8xsi32>
    %l = qnn.constant dense<0> : tensor<8xsi32>
    %y = qnn.layer 0 (%x, %w, %k, %l) {tiling = #tiling.layer<l1_tile = [1, 8, 8, 4], l1_tiles = [8, 1, 1, 1], l1_bytes = 1048, l2_tile = [8, 8], weights = "L2", streamed = [], loop_order = "input-stationary", stationary_slots = 2>} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x8x8xui8> {
    ^bb0(%0: tensor<1x4x8x8xui8>, %1: tensor<8x4x3x3xsi8>, %2: tensor<8xsi32>, %3: tensor<8xsi32>):
      %a = qnn.conv %0, %1 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<8x4x3x3xsi8>) -> tensor<1x8x8x8xsi32>
      %y_1 = qnn.requant %a, %2, %3 {scale = 1 : i64, divisor = 64 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x8x8x8xsi32>, tensor<8xsi32>, tensor<8xsi32>) -> tensor<1x8x8x8xui8>
      qnn.yield %y_1 : tensor<1x8x8x8xui8>
    }
    func.return %y : tensor<1x8x8x8xui8>
  }
}


// CHECK:      func.func @network(%input: memref<8x8x4xui8, "L2">, %{{.*}}: memref<8x8x8xui8, "L2">) attributes {l2_plan = #tiling.l2_plan<peak = 1120
// CHECK:        %l2_arena = memref.alloc() {alignment = 4 : i64} : memref<1120xi8, "L2">
// CHECK:        %[[IN_AT:.*]] = arith.constant 864 : index
// CHECK-NEXT:   %[[IN:.*]] = memref.view %l2_arena[%[[IN_AT]]][] : memref<1120xi8, "L2"> to memref<8x8x4xui8, "L2">
// CHECK:        %[[W_AT:.*]] = arith.constant 512 : index
// CHECK-NEXT:   %[[W:.*]] = memref.view %l2_arena[%[[W_AT]]][] : memref<1120xi8, "L2"> to memref<8x3x3x4xsi8, "L2">
// CHECK:        %layer0 = memref.view %l2_arena[%{{.*}}][] : memref<1120xi8, "L2"> to memref<8x8x8xui8, "L2">
// CHECK-NEXT:   pulp.layer 0 "dory_conv2d" (%[[IN]], %[[W]], %{{.*}}, %{{.*}}, %layer0) {roles = ["in", "weights", "mul", "add", "out"], params = {kh = 3 : i64
// CHECK-SAME:   tiling = #tiling.layer<l1_tile = [1, 8, 8, 4], l1_tiles = [8, 1, 1, 1], l1_bytes = 1048, l2_tile = [8, 8], weights = "L2", streamed = [], loop_order = "input-stationary", stationary_slots = 2>}
// CHECK:        memref.dealloc %l2_arena
