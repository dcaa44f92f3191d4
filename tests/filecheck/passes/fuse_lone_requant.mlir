// RUN: dory-opt %s --split-input-file --fuse | filecheck %s
// RUN: dory-opt %s --split-input-file --fuse --fuse | filecheck %s

// A requant that no anchor's chain takes (it reads the network input, or a tensor with two readers as
// on a residual skip branch) is a layer of its own: its anchor is an identity, a depthwise 1x1 conv
// with unit weights for a feature map, a linear layer with identity weights for an N×K tensor.
func.func @network(%x: tensor<1x2x4x4xui8>) -> tensor<1x2x4x4xui8> {
  %k = qnn.constant dense<3> : tensor<1xsi32>
  %zero = qnn.constant dense<0> : tensor<1xsi32>
  %y = qnn.requant %x, %k, %zero {scale = 1 : i64, divisor = 4 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x2x4x4xui8>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x2x4x4xui8> loc("skip")
  func.return %y : tensor<1x2x4x4xui8>
}

// CHECK:      %{{.*}} = qnn.constant dense<1> : tensor<2x1x1x1xsi8>
// CHECK-NEXT: %k = qnn.constant
// CHECK-NEXT: %zero = qnn.constant
// CHECK-NEXT: %y = qnn.layer 0 (%x, %{{.*}}, %k, %zero)
// CHECK-NEXT: ^bb0
// CHECK-NEXT:   qnn.conv {{.*}} {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x2x4x4xui8>, tensor<2x1x1x1xsi8>) -> tensor<1x2x4x4xsi32>
// CHECK-NEXT:   qnn.requant {{.*}} divisor = 4 : i64
// CHECK-NEXT:   qnn.yield
// CHECK-NEXT: }
// CHECK-NEXT: func.return %y

// -----

// On an N×K tensor the identity is a linear layer with identity weights.
func.func @network(%x: tensor<1x3xsi8>) -> tensor<1x3xsi8> {
  %k = qnn.constant dense<3> : tensor<1xsi32>
  %zero = qnn.constant dense<0> : tensor<1xsi32>
  %y = qnn.requant %x, %k, %zero {scale = 1 : i64, divisor = 4 : i64, min = -128 : i64, max = 127 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x3xsi8>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x3xsi8> loc("skip")
  func.return %y : tensor<1x3xsi8>
}

// CHECK:      %{{.*}} = qnn.constant dense<{{\[\[}}1, 0, 0], [0, 1, 0], [0, 0, 1]]> : tensor<3x3xsi8>
// CHECK-NEXT: %k = qnn.constant
// CHECK-NEXT: %zero = qnn.constant
// CHECK-NEXT: %y = qnn.layer 0 (%x, %{{.*}}, %k, %zero)
// CHECK-NEXT: ^bb0
// CHECK-NEXT:   qnn.linear {{.*}} : (tensor<1x3xsi8>, tensor<3x3xsi8>) -> tensor<1x3xsi32>
// CHECK-NEXT:   qnn.requant
// CHECK-NEXT:   qnn.yield
