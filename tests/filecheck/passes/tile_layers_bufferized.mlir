// RUN: dory-opt %s --tile-layers | filecheck %s
// RUN: dory-opt %s --tile-layers | dory-opt | filecheck %s
// RUN: not dory-opt %s -p 'tile-layers{cores=2}' 2>&1 | filecheck %s --check-prefix=DISAGREE

// tile-layers alone, from a bufferized network checked in here (tile{l1-size=1200},bufferize-network
// of one 3x3 conv 4->8 on 8x8, tiled by output channel: 8 tiles of 1 channel): the layer becomes a
// cluster function with its tile table and one L1 allocation of the bytes the tiler proved
// (`l1_bytes = 1048` of the layer's tiling); the network calls it. The cores come from the target.

builtin.module attributes {tiling.target = #tiling.target<chip = "gap8", cores = 8, l1_budget = 1200, l2_budget = 400000, l3_size = 8388608, double_buffer = true>} {
  "memref.global"() <{sym_name = "layer0_weights", type = memref<8x3x3x4xsi8, "L3">, initial_value = dense<1> : tensor<8x3x3x4xsi8>, sym_visibility = "private", constant, alignment = 4 : i64}> : () -> ()
  "memref.global"() <{sym_name = "layer0_mul", type = memref<8xsi32, "L3">, initial_value = dense<1> : tensor<8xsi32>, sym_visibility = "private", constant, alignment = 4 : i64}> : () -> ()
  "memref.global"() <{sym_name = "layer0_add", type = memref<8xsi32, "L3">, initial_value = dense<0> : tensor<8xsi32>, sym_visibility = "private", constant, alignment = 4 : i64}> : () -> ()
  func.func @network(%input: memref<8x8x4xui8, "L2">, %0: memref<8x8x8xui8, "L2">) attributes {l2_plan = #tiling.l2_plan<peak = 1120, weights = "L2", buffers = [#tiling.l2_buffer<buffer = "layer0", offset = 0, bytes = 512, first = 0, last = 1>, #tiling.l2_buffer<buffer = "weights of layer 0", offset = 512, bytes = 352, first = 0, last = 1>, #tiling.l2_buffer<buffer = "input", offset = 864, bytes = 256, first = 0, last = 0>]>, network_inputs = 1 : i64} {
    %l2_arena = memref.alloc() {alignment = 4 : i64} : memref<1120xi8, "L2">
    %1 = arith.constant 864 : index
    %2 = memref.view %l2_arena[%1][] : memref<1120xi8, "L2"> to memref<8x8x4xui8, "L2">
    "memref.copy"(%input, %2) : (memref<8x8x4xui8, "L2">, memref<8x8x4xui8, "L2">) -> ()
    %3 = memref.get_global @layer0_weights : memref<8x3x3x4xsi8, "L3">
    %4 = arith.constant 512 : index
    %5 = memref.view %l2_arena[%4][] : memref<1120xi8, "L2"> to memref<8x3x3x4xsi8, "L2">
    %6 = memref.collapse_shape %3 [[0 : i64, 1 : i64, 2 : i64, 3 : i64]] : memref<8x3x3x4xsi8, "L3"> into memref<288xsi8, "L3">
    %7 = memref.collapse_shape %5 [[0 : i64, 1 : i64, 2 : i64, 3 : i64]] : memref<8x3x3x4xsi8, "L2"> into memref<288xsi8, "L2">
    %8 = dma.copy %6, %7 : memref<288xsi8, "L3"> to memref<288xsi8, "L2">
    dma.wait %8
    %9 = memref.get_global @layer0_mul : memref<8xsi32, "L3">
    %10 = arith.constant 800 : index
    %11 = memref.view %l2_arena[%10][] : memref<1120xi8, "L2"> to memref<8xsi32, "L2">
    %12 = dma.copy %9, %11 : memref<8xsi32, "L3"> to memref<8xsi32, "L2">
    dma.wait %12
    %13 = memref.get_global @layer0_add : memref<8xsi32, "L3">
    %14 = arith.constant 832 : index
    %15 = memref.view %l2_arena[%14][] : memref<1120xi8, "L2"> to memref<8xsi32, "L2">
    %16 = dma.copy %13, %15 : memref<8xsi32, "L3"> to memref<8xsi32, "L2">
    dma.wait %16
    %17 = arith.constant 0 : index
    %layer0 = memref.view %l2_arena[%17][] : memref<1120xi8, "L2"> to memref<8x8x8xui8, "L2">
    pulp.layer 0 "dory_conv2d" (%2, %5, %11, %15, %layer0) {roles = ["in", "weights", "mul", "add", "out"], params = {kh = 3 : i64, kw = 3 : i64, sh = 1 : i64, sw = 1 : i64, pad_t = 1 : i64, pad_l = 1 : i64, pad_b = 1 : i64, pad_r = 1 : i64, dh = 1 : i64, dw = 1 : i64, scale = 1 : i64, divisor = 64 : i64, min = 0 : i64, max = 255 : i64, trunc = 0 : i64, wide = 0 : i64, shift = 6 : i64, const_bits = 32 : i64, mul_per_channel = 1 : i64, add_per_channel = 1 : i64}, tiling = #tiling.layer<l1_tile = [1, 8, 8, 4], l1_tiles = [8, 1, 1, 1], l1_bytes = 1048, l2_tile = [8, 8], weights = "L2", streamed = [], loop_order = "input-stationary", stationary_slots = 2>} : memref<8x8x4xui8, "L2">, memref<8x3x3x4xsi8, "L2">, memref<8xsi32, "L2">, memref<8xsi32, "L2">, memref<8x8x8xui8, "L2">
    "memref.copy"(%layer0, %0) : (memref<8x8x8xui8, "L2">, memref<8x8x8xui8, "L2">) -> ()
    memref.dealloc %l2_arena : memref<1120xi8, "L2">
    func.return
  }
}


// CHECK:      "memref.global"() <{sym_name = "layer0_tiles", type = memref<8x18xi32, "L2">
// CHECK:      func.func private @layer0(%in: memref<8x8x4xui8, "L2">, %weights: memref<8x3x3x4xsi8, "L2">, %mul: memref<8xsi32, "L2">, %add: memref<8xsi32, "L2">, %out: memref<8x8x8xui8, "L2">) attributes {pulp.cluster, pulp.layer = 0 : i64} {
// CHECK:        %l1 = memref.alloc() {alignment = 4 : i64} : memref<1048xi8, "L1">
// CHECK:        scf.for
// CHECK:          pulp.kernel "dory_conv2d" (%{{.*}}) [%{{.*}}] {roles = ["in", "weights", "mul", "add", "out", "im2col", "pad_t", "pad_l", "pad_b", "pad_r", "first", "last"]
// CHECK:      func.func @network(
// CHECK:        func.call @layer0(
// CHECK-NOT:    pulp.layer

// DISAGREE: error: lowering option cores=2 disagrees with the tiling, which the tile pass made for cores=8
