// RUN: not dory-opt %s --fuse 2>&1 | filecheck %s

// A pad by a non-zero value cannot merge with the conv's own zero padding.
func.func @network(%x: tensor<1x1x4x4xui8>) -> tensor<1x1x6x6xsi32> {
  %p = qnn.pad %x {pads = array<i64: 1, 1, 1, 1>, value = 7 : i64} : (tensor<1x1x4x4xui8>) -> tensor<1x1x6x6xui8> loc("Pad_3")
  %w = qnn.constant dense<1> : tensor<1x1x3x3xsi8>
  %acc = qnn.conv %p, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x1x6x6xui8>, tensor<1x1x3x3xsi8>) -> tensor<1x1x6x6xsi32>
  func.return %acc : tensor<1x1x6x6xsi32>
}

// CHECK: error: qnn.pad at loc("Pad_3"): padding can only be folded into convolutions that read it and pad with the same value
