// RUN: dory-opt %s --split-input-file --fuse | filecheck %s
// RUN: dory-opt %s --split-input-file --fuse | dory-opt --split-input-file | filecheck %s

// A pad by a non-zero value cannot merge with the conv's own zero padding: the pad is a layer of its
// own, an identity depthwise 1x1 conv with the pad's padding and value, requantized by 1 to its type.
func.func @network(%x: tensor<1x1x4x4xui8>) -> tensor<1x1x6x6xsi32> {
  %p = qnn.pad %x {pads = array<i64: 1, 1, 1, 1>, value = 7 : i64} : (tensor<1x1x4x4xui8>) -> tensor<1x1x6x6xui8> loc("Pad_3")
  %w = qnn.constant dense<1> : tensor<1x1x3x3xsi8>
  %acc = qnn.conv %p, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x1x6x6xui8>, tensor<1x1x3x3xsi8>) -> tensor<1x1x6x6xsi32>
  func.return %acc : tensor<1x1x6x6xsi32>
}

// CHECK:      %p = qnn.layer 0 (%x, {{.*}}) -> tensor<1x1x6x6xui8> {
// CHECK:        qnn.conv {{.*}} {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, pad_value = 7 : i64} : (tensor<1x1x4x4xui8>, tensor<1x1x1x1xsi8>) -> tensor<1x1x6x6xsi32>
// CHECK-NEXT:   qnn.requant {{.*}} {scale = 1 : i64, divisor = 1 : i64, min = 0 : i64, max = 255 : i64
// CHECK:      %acc = qnn.layer 1 (%p, %w)
// CHECK-NEXT: ^bb0
// CHECK-NEXT:   qnn.conv {{.*}} pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} :

// -----

// A pad read by a max pool (no conv to absorb it) is a layer too; the pool is the next one.
func.func @network(%x: tensor<1x2x4x4xsi8>) -> tensor<1x2x3x3xsi8> {
  %p = qnn.pad %x {pads = array<i64: 1, 1, 1, 1>, value = 0 : i64} : (tensor<1x2x4x4xsi8>) -> tensor<1x2x6x6xsi8> loc("Pad_0")
  %m = qnn.max_pool %p {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x2x6x6xsi8>) -> tensor<1x2x3x3xsi8>
  func.return %m : tensor<1x2x3x3xsi8>
}

// CHECK:      %p = qnn.layer 0
// CHECK:        qnn.conv {{.*}} groups = 2 : i64} : (tensor<1x2x4x4xsi8>, tensor<2x1x1x1xsi8>) -> tensor<1x2x6x6xsi32>
// CHECK-NEXT:   qnn.requant {{.*}} min = -128 : i64, max = 127 : i64
// CHECK:      qnn.layer 1 (%p)
// CHECK-NEXT: ^bb0
// CHECK-NEXT:   qnn.max_pool
