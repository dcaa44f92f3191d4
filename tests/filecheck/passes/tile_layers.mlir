// RUN: dory-opt %s -p 'fuse,tile{l1-size=4000},bufferize-network,tile-layers' | filecheck %s
// RUN: dory-opt %s -p 'fuse,tile{l1-size=4000 double-buffer=false},bufferize-network,tile-layers' | filecheck %s --check-prefix=SINGLE
// RUN: not dory-opt %s -p 'fuse,tile{l1-size=4000},bufferize-network,tile-layers{double-buffer=false}' 2>&1 | filecheck %s --check-prefix=DISAGREE
// RUN: dory-opt %s -p 'fuse,tile{l1-size=4000},bufferize-network,tile-layers' | dory-opt | filecheck %s --check-prefix=SINGLE-OR-DOUBLE

// The network of tile.mlir with 4,000 B of L1: each layer becomes a cluster function that
// walks its tile table; with double buffering the copies of tile t+1 are issued before
// tile t computes, and the output of tile t is waited one iteration later.

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

// CHECK:      "memref.global"() <{sym_name = "layer0_tiles", type = memref<8x18xi32, "L2">
// CHECK:      func.func private @layer0(%in: memref<16x16x8xui8, "L2">, %weights: memref<16x3x3x8xsi8, "L2">, %mul: memref<16xsi32, "L2">, %add: memref<16xsi32, "L2">, %out: memref<16x16x16xui8, "L2">) attributes {pulp.cluster, pulp.layer = 0 : i64}
// One L1 allocation within the tiling model's footprint, cut into the buffers. The weights and
// per-channel constants are the same for every tile (all 16 output channels and all input channels
// in each 4x8-pixel tile): one slot each, copied once before the loop. The input changes from tile
// to tile; the tiler keeps it, the input-stationary order's buffer, in one slot (`stationary_slots = 1`):
// copied at each tile and waited for (the two-slot prefetch: tile_layers_loop_order.mlir).
// CHECK:        %l1 = memref.alloc() {alignment = 4 : i64} : memref<3888xi8, "L1">
// CHECK:        %l1_in = memref.view %l1[{{%.*}}][] : memref<3888xi8, "L1"> to memref<432xi8, "L1">
// CHECK:        %l1_weights = memref.view %l1[{{%.*}}][] : memref<3888xi8, "L1"> to memref<1152xi8, "L1">
// CHECK:        %l1_im2col = memref.view %l1[{{%.*}}][] : memref<3888xi8, "L1"> to memref<1152xi8, "L1">
// CHECK:        memref.collapse_shape %weights {{\[\[}}0 : i64], [1 : i64, 2 : i64], [3 : i64]] : memref<16x3x3x8xsi8, "L2"> into memref<16x9x8xsi8, "L2">
// CHECK:        [[W_ONCE:%.*]] = dma.copy {{%.*}}, %weights_tile : memref<?x?x?xsi8, strided<[72, 8, 1], offset: ?>, "L2"> to memref<?x?x?xsi8, "L1">
// CHECK:        dma.wait [[W_ONCE]]
// CHECK:        [[NONE:%.*]] = dma.completed
// CHECK:        {{.*}} = scf.for [[T:%.*]] = {{%.*}} to {{%.*}} step {{%.*}} iter_args([[PREV:%.*]] = [[NONE]]) -> (!dma.token) {
// CHECK:          [[IN:%.*]] = dma.copy {{%.*}}, %in_tile : memref<?x?x?xui8, strided<[128, 8, 1], offset: ?>, "L2"> to memref<?x?x?xui8, "L1">
// CHECK-NEXT:     dma.wait [[IN]]
// CHECK-NEXT:     pulp.barrier
// CHECK:          pulp.kernel "dory_conv2d" ({{.*}}) [{{.*}}] {roles = ["in", "weights", "mul", "add", "out", "im2col", "pad_t", "pad_l", "pad_b", "pad_r", "first", "last"]
// CHECK-NEXT:     pulp.barrier
// CHECK-NEXT:     dma.wait [[PREV]]
// CHECK:          dma.copy %out_tile, {{%.*}} : memref<?x?x?xui8, "L1"> to memref<?x?x?xui8, strided<[256, 16, 1], offset: ?>, "L2">
// CHECK:        func.func private @layer1(
// CHECK:          pulp.kernel "dory_depthwise"
// CHECK:        func.func @network(
// CHECK:          func.call @layer0(
// CHECK:          func.call @layer6(

// SINGLE:      func.func private @layer0(
// SINGLE:        scf.for
// SINGLE-NOT:      scf.if
// SINGLE:          dma.copy
// SINGLE:          dma.wait
// SINGLE:          pulp.barrier
// SINGLE:          pulp.kernel "dory_conv2d"
// SINGLE-NEXT:     pulp.barrier
// SINGLE:          dma.copy %out_tile
// SINGLE-NEXT:     dma.wait

// SINGLE-OR-DOUBLE: func.call @layer6(

// The lowering takes the cores and double buffering from the tiling's plan; an option that disagrees
// would allocate another L1 footprint than the one the tiler proved.
// DISAGREE: error: lowering option double-buffer=false disagrees with the tiling, which the tile pass made for double-buffer=true
