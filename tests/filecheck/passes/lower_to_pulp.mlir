// RUN: dory-opt %s --tile --lower-to-pulp | filecheck %s
// RUN: dory-opt %s --tile --lower-to-pulp | dory-opt | filecheck %s
// RUN: dory-opt %s -p 'fuse,tile{l1-size=2000 l2-size=3000},lower-to-pulp' | filecheck %s --check-prefix=STREAM

// lower-to-pulp = bufferize-network + tile-layers: from tiled qnn layers to cluster functions
// on memrefs, called by a network function on the L2 arena; with a tiny L2 the layers stream
// their activations by rows and their weights by channel slices from L3.

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

// CHECK-NOT:  qnn.
// CHECK:      func.func private @layer0({{.*}}) attributes {pulp.cluster, pulp.layer = 0 : i64}
// CHECK:        scf.for
// CHECK:          pulp.kernel "dory_conv2d"
// CHECK:      func.func private @layer3({{.*}})
// CHECK:          pulp.kernel "dory_add"
// CHECK:      func.func private @layer6({{.*}})
// CHECK:          pulp.kernel "dory_linear"
// CHECK:      func.func @network(%input: memref<16x16x8xui8, "L2">, %{{.*}}: memref<10xsi32, "L2">)
// CHECK:        func.call @layer0(
// CHECK:        func.call @layer6(
// CHECK-NOT:  pulp.layer

// STREAM:     func.func private @layer0({{.*}}%out: memref<16x16x16xui8, "L3">, %out_slice: memref<{{[0-9]+}}xi8, "L2">, %weights_slice: memref<{{[0-9]+}}xi8, "L2">)
// STREAM:       %{{.*}} = memref.get_global @layer0_slices : memref<{{[0-9]+}}x9xi32, "L2">
// The L2 slices are pipelined: the first slice's weights (its channels) come from L3 before the loop...
// STREAM:       %[[FIRST_W:.*]] = dma.copy {{%.*}}, {{%.*}} : memref<?x?x?xsi8, strided<[72, 8, 1], offset: ?>, "L3"> to memref<?x?x?xsi8, "L2">
// STREAM:       scf.for %[[SLICE:.*]] = {{.*}} iter_args(%[[W:.*]] = %[[FIRST_W]], {{.*}}) -> (!dma.token, !dma.token, !dma.token, !dma.token)
// ...then slice k+1's, into the other slot of the weights' L2 buffer, before slice k's tiles run:
// STREAM:         %[[NEXT:.*]] = arith.addi %[[SLICE]], %{{.*}} : index
// STREAM:         scf.if %{{.*}} -> (!dma.token, !dma.token, !dma.token)
// STREAM:           %[[SLOT:.*]] = arith.remui %[[NEXT]], %{{.*}} : index
// STREAM:           arith.muli %[[SLOT]]
// STREAM:           dma.copy {{%.*}}, {{%.*}} : memref<?x?x?xsi8, strided<[72, 8, 1], offset: ?>, "L3"> to memref<?x?x?xsi8, "L2">
// STREAM:         } else {
// The output rows' slot alternates per slice of rows (slice / channel slices per row slice, mod 2):
// STREAM:         %[[ROW_SLICE:.*]] = arith.divui %[[SLICE]], %{{.*}} : index
// STREAM:         %[[OUT_SLOT:.*]] = arith.remui %[[ROW_SLICE]], %{{.*}} : index
// STREAM:         %[[OUT_BASE:.*]] = arith.muli %[[OUT_SLOT]], %{{.*}} : index
// STREAM:         memref.view %out_slice[%[[OUT_BASE]]]
// slice k's, issued in the previous iteration, is waited for only now:
// STREAM:         dma.wait %[[W]]
// STREAM:         scf.for
// STREAM:           pulp.kernel "dory_conv2d"
// slice k−1's output rows went out to L3 while slice k ran; slice k's go out after its last channel slice
// and are waited for one slice later (after the loop for the last):
// STREAM:         dma.wait %[[PREVIOUS_OUT:[^ ]*]]
// STREAM:         %[[OUT:.*]] = scf.if
// STREAM:           dma.copy {{%.*}}, {{%.*}} : memref<?x?x?xui8, "L2"> to memref<?x?x?xui8, strided<[256, 16, 1], offset: ?>, "L3">
// STREAM:         scf.yield {{.*}}, %[[OUT]] : !dma.token
// STREAM:       dma.wait
// STREAM:       func.return
// Layer 1 streams its input by rows (halo included) into two slots of its L2 buffer, alternating per
// slice of rows, the next slice's rows copied while this slice's tiles run:
// STREAM:     func.func private @layer1(%in: memref<16x16x16xui8, "L3">{{.*}}, %in_slice: memref<1536xi8, "L2">
// STREAM:       %[[FIRST_IN:.*]] = dma.copy {{%.*}}, {{%.*}} : memref<?x?x?xui8, strided<[256, 16, 1], offset: ?>, "L3"> to memref<?x?x?xui8, "L2">
// STREAM:       scf.for %[[ROWS:.*]] = {{.*}} iter_args(%[[IN:.*]] = %[[FIRST_IN]], {{.*}})
// STREAM:         %[[NEXT_ROWS:.*]] = arith.addi %[[ROWS]], %{{.*}} : index
// STREAM:         scf.if
// STREAM:           %[[IN_SLOT:.*]] = arith.remui %[[NEXT_ROWS]], %{{.*}} : index
// STREAM:           %[[IN_BASE:.*]] = arith.muli %[[IN_SLOT]], %{{.*}} : index
// STREAM:           %[[NEXT_IN:.*]] = memref.view %in_slice[%[[IN_BASE]]]
// STREAM:           dma.copy {{%.*}}, %[[NEXT_IN]] : memref<?x?x?xui8, strided<[256, 16, 1], offset: ?>, "L3"> to memref<?x?x?xui8, "L2">
// STREAM:         dma.wait %[[IN]]
// STREAM:         scf.for
// STREAM:           pulp.kernel "dory_depthwise"
