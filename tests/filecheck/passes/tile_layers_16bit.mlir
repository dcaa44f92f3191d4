// RUN: dory-opt %s -p 'fuse,tile{l1-size=2000},bufferize-network,tile-layers' | filecheck %s
// RUN: dory-opt %s --tile | filecheck %s --check-prefix=TILE

// 16-bit activations (where the exported network's integers exceed 8 bits): a conv reading a ui16
// tensor, and an add of a ui16 and a ui8 tensor into an si16 one. The tiling model counts 2 bytes
// per input element (an add's two input slots both the wider one's); the one L1 allocation of each
// layer is exactly that footprint: conv 512 input + 512 output + 144 weights + 32 constants + 576
// im2col (bytes: the kernels read 16-bit inputs in place) = 1776; add 2 x 512 + 512 + 8 = 1544.

func.func @network(%x: tensor<1x4x8x8xui16>, %y: tensor<1x4x8x8xui8>) -> tensor<1x4x8x8xsi16> {
  %w = qnn.constant dense<1> : tensor<4x4x3x3xsi8>
  %k = qnn.constant dense<1> : tensor<4xsi32>
  %l = qnn.constant dense<0> : tensor<4xsi32>
  %one = qnn.constant dense<1> : tensor<1xsi32>
  %zero = qnn.constant dense<0> : tensor<1xsi32>
  %a = qnn.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8xui16>, tensor<4x4x3x3xsi8>) -> tensor<1x4x8x8xsi32> loc("Conv_0")
  %c = qnn.requant %a, %k, %l {scale = 1 : i64, divisor = 64 : i64, min = 0 : i64, max = 65535 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x4x8x8xsi32>, tensor<4xsi32>, tensor<4xsi32>) -> tensor<1x4x8x8xui16>
  %s = qnn.add %c, %y {mul = array<i64: 1, -1>, add = array<i64: 0, 0>, shift = array<i64: 0, 0>} : (tensor<1x4x8x8xui16>, tensor<1x4x8x8xui8>) -> tensor<1x4x8x8xsi32> loc("Add_1")
  %o = qnn.requant %s, %one, %zero {scale = 1 : i64, divisor = 2 : i64, min = -32768 : i64, max = 32767 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x4x8x8xsi32>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x4x8x8xsi16>
  func.return %o : tensor<1x4x8x8xsi16>
}

// TILE:       l1_bytes = 1776
// TILE:       l1_bytes = 1544

// CHECK:      func.func private @layer0(%in: memref<8x8x4xui16, "L2">, %weights: memref<4x3x3x4xsi8, "L2">, %mul: memref<4xsi32, "L2">, %add: memref<4xsi32, "L2">, %out: memref<8x8x4xui16, "L2">)
// CHECK:        %l1 = memref.alloc() {alignment = 4 : i64} : memref<1776xi8, "L1">
// CHECK:        %l1_in = memref.view %l1[{{%.*}}][] : memref<1776xi8, "L1"> to memref<512xi8, "L1">
// CHECK:        %l1_out = memref.view %l1[{{%.*}}][] : memref<1776xi8, "L1"> to memref<512xi8, "L1">
// CHECK:        memref.view %l1_in[{{%.*}}][{{%.*}}, {{%.*}}, {{%.*}}] : memref<512xi8, "L1"> to memref<?x?x?xui16, "L1">
// CHECK:      func.func private @layer1(%a: memref<8x8x4xui16, "L2">, %b: memref<8x8x4xui8, "L2">, %mul: memref<1xsi32, "L2">, %add: memref<1xsi32, "L2">, %out: memref<8x8x4xsi16, "L2">)
// CHECK:        %l1 = memref.alloc() {alignment = 4 : i64} : memref<1544xi8, "L1">
// CHECK:        %l1_a = memref.view %l1[{{%.*}}][] : memref<1544xi8, "L1"> to memref<512xi8, "L1">
// CHECK:        %l1_b = memref.view %l1[{{%.*}}][] : memref<1544xi8, "L1"> to memref<512xi8, "L1">
// CHECK:        %l1_out = memref.view %l1[{{%.*}}][] : memref<1544xi8, "L1"> to memref<512xi8, "L1">
