// RUN: not dory-opt %s --fuse 2>&1 | filecheck %s

// A requant of an int32 accumulator that two ops read: no layer's chain takes it (the linear layer's
// result is also returned) and an identity anchor cannot read 32 bits. One line names the op.
func.func @network(%x: tensor<1x3xsi8>) -> (tensor<1x3xsi8>, tensor<1x3xsi32>) {
  %w = qnn.constant dense<1> : tensor<3x3xsi8>
  %k = qnn.constant dense<3> : tensor<1xsi32>
  %zero = qnn.constant dense<0> : tensor<1xsi32>
  %acc = qnn.linear %x, %w : (tensor<1x3xsi8>, tensor<3x3xsi8>) -> tensor<1x3xsi32> loc("fc")
  %y = qnn.requant %acc, %k, %zero {scale = 1 : i64, divisor = 4 : i64, min = -128 : i64, max = 127 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x3xsi32>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x3xsi8> loc("skip")
  func.return %y, %acc : tensor<1x3xsi8>, tensor<1x3xsi32>
}

// CHECK: error: qnn.requant at loc("skip"): a requantization of a 32-bit tensor that no layer computes cannot be placed in a layer
// CHECK-NOT: Traceback
