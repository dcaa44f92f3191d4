// RUN: dory-opt %s --tile --bufferize-network | filecheck %s
// RUN: dory-opt %s -p 'fuse,tile{l1-size=2000 l2-size=6000},bufferize-network' | filecheck %s --check-prefix=L3
// RUN: dory-opt %s --tile --bufferize-network | dory-opt | filecheck %s

// The network of tile.mlir on memrefs: HWC views of one L2 arena at the plan's offsets,
// constants as L3 globals in the kernels' layouts (OHWI, depthwise CHW) copied once into
// the arena when they stay resident, and one pulp.layer per layer.

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

// CHECK:      "memref.global"() <{sym_name = "layer0_weights", type = memref<16x3x3x8xsi8, "L3">, initial_value = dense<1> : tensor<16x3x3x8xsi8>, sym_visibility = "private", constant, alignment = 4 : i64}> : () -> ()
// CHECK:      "memref.global"() <{sym_name = "layer1_weights", type = memref<16x3x3xsi8, "L3">
// CHECK:      "memref.global"() <{sym_name = "layer6_weights", type = memref<10x16xsi8, "L3">
// CHECK:      func.func @network(%input: memref<16x16x8xui8, "L2">, %{{.*}}: memref<10xsi32, "L2">) attributes {l2_plan = #tiling.l2_plan<peak = 14400, weights = "L2"
// CHECK-NEXT:   %l2_arena = memref.alloc() {alignment = 4 : i64} : memref<14400xi8, "L2">
// CHECK-NEXT:   [[IN_OFF:%.*]] = arith.constant 4096 : index
// CHECK-NEXT:   [[IN:%.*]] = memref.view %l2_arena[[[IN_OFF]]][] : memref<14400xi8, "L2"> to memref<16x16x8xui8, "L2">
// CHECK-NEXT:   "memref.copy"(%input, [[IN]])
// CHECK-NEXT:   [[W0G:%.*]] = memref.get_global @layer0_weights : memref<16x3x3x8xsi8, "L3">
// CHECK-NEXT:   [[W0_OFF:%.*]] = arith.constant 12288 : index
// CHECK-NEXT:   [[W0:%.*]] = memref.view %l2_arena[[[W0_OFF]]][] : memref<14400xi8, "L2"> to memref<16x3x3x8xsi8, "L2">
// CHECK-NEXT:   [[W0G_FLAT:%.*]] = memref.collapse_shape [[W0G]] {{\[\[}}0 : i64, 1 : i64, 2 : i64, 3 : i64]] : memref<16x3x3x8xsi8, "L3"> into memref<1152xsi8, "L3">
// CHECK-NEXT:   [[W0_FLAT:%.*]] = memref.collapse_shape [[W0]]
// CHECK-NEXT:   [[T:%.*]] = dma.copy [[W0G_FLAT]], [[W0_FLAT]] : memref<1152xsi8, "L3"> to memref<1152xsi8, "L2">
// CHECK-NEXT:   dma.wait [[T]]
// CHECK:        %layer0 = memref.view %l2_arena[{{%.*}}][] : memref<14400xi8, "L2"> to memref<16x16x16xui8, "L2">
// CHECK-NEXT:   pulp.layer 0 "dory_conv2d" ([[IN]], [[W0]], {{%.*}}, {{%.*}}, %layer0) {roles = ["in", "weights", "mul", "add", "out"], params = {kh = 3 : i64, kw = 3 : i64, sh = 1 : i64, sw = 1 : i64, pad_t = 1 : i64, pad_l = 1 : i64, pad_b = 1 : i64, pad_r = 1 : i64, dh = 1 : i64, dw = 1 : i64, scale = 1 : i64, divisor = 64 : i64, min = 0 : i64, max = 255 : i64, trunc = 0 : i64, wide = 0 : i64, shift = 6 : i64, const_bits = 32 : i64, mul_per_channel = 1 : i64, add_per_channel = 1 : i64}, tiling = #tiling.layer<{{.*}}>}
// CHECK:        pulp.layer 1 "dory_depthwise" (%layer0,
// CHECK:        pulp.layer 2 "dory_pointwise" (%layer1,
// CHECK:        pulp.layer 3 "dory_add" (%layer2, %layer0, {{.*}} {roles = ["a", "b", "mul", "add", "out"], params = {in_mul = array<i64: 1, 1>, in_add = array<i64: 0, 0>, in_shift = array<i64: 0, 0>,
// CHECK:        pulp.layer 4 "dory_maxpool" (%layer3, %layer4) {roles = ["in", "out"]
// CHECK:        pulp.layer 5 "dory_sumpool" (%layer4, {{%.*}}, {{%.*}}, %layer5) {roles = ["in", "mul", "add", "out"]
// The flatten is a vector view of the pooled bytes.
// CHECK-NEXT:   [[FLAT:%.*]] = memref.view %l2_arena[{{%.*}}][] : memref<14400xi8, "L2"> to memref<16xui8, "L2">
// CHECK-NEXT:   %layer6 = memref.view %l2_arena[{{%.*}}][] : memref<14400xi8, "L2"> to memref<10xsi32, "L2">
// CHECK-NEXT:   pulp.layer 6 "dory_linear" ([[FLAT]], {{%.*}}, %layer6) {roles = ["in", "weights", "out"]
// CHECK-NEXT:   "memref.copy"(%layer6, %{{.*}})
// CHECK-NEXT:   memref.dealloc %l2_arena : memref<14400xi8, "L2">

// With weights in L3 each layer copies its own into its L2 buffer right before it runs;
// activations the plan streams get L3 buffers.
// L3:         %l2_arena = memref.alloc() {alignment = 4 : i64} : memref<5904xi8, "L2">
// L3:         %layer0 = memref.alloc() {alignment = 4 : i64} : memref<16x16x16xui8, "L3">
// L3-NEXT:    [[WG:%.*]] = memref.get_global @layer0_weights : memref<16x3x3x8xsi8, "L3">
// L3:         [[W:%.*]] = memref.view %l2_arena[{{%.*}}][] : memref<5904xi8, "L2"> to memref<16x3x3x8xsi8, "L2">
// L3:         dma.copy {{%.*}}, {{%.*}} : memref<1152xsi8, "L3"> to memref<1152xsi8, "L2">
// The output streams to L3 through a slice buffer of the arena:
// L3:         pulp.layer 0 "dory_conv2d" ({{%.*}}, [[W]], {{%.*}}, {{%.*}}, %layer0, {{%.*}}) {roles = ["in", "weights", "mul", "add", "out", "out_slice"]
