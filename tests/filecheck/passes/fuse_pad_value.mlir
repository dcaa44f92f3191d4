// RUN: dory-opt %s --fuse | filecheck %s
// RUN: dory-opt %s -p fuse --print-op-generic | dory-opt | filecheck %s

// A pad by a zero point (here -128, an int8 zero point) folds into the unpadded conv that
// reads it as the conv's padding and `pad_value`.
func.func @network(%x: tensor<1x1x4x4xsi8>) -> tensor<1x1x4x4xsi32> {
  %p = qnn.pad %x {pads = array<i64: 1, 1, 1, 1>, value = -128 : i64} : (tensor<1x1x4x4xsi8>) -> tensor<1x1x6x6xsi8> loc("Pad_3")
  %w = qnn.constant dense<1> : tensor<1x1x3x3xsi8>
  %acc = qnn.conv %p, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x1x6x6xsi8>, tensor<1x1x3x3xsi8>) -> tensor<1x1x4x4xsi32>
  func.return %acc : tensor<1x1x4x4xsi32>
}

// CHECK:      qnn.layer 0 (%x, %w)
// CHECK:        qnn.conv %{{.*}}, %{{.*}} {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, pad_value = -128 : i64} : (tensor<1x1x4x4xsi8>, tensor<1x1x3x3xsi8>) -> tensor<1x1x4x4xsi32>
// CHECK-NOT:  qnn.pad
