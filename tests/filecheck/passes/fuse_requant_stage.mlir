// RUN: dory-opt %s --fuse 2>&1 | filecheck %s

// NEMO's residual add followed by a separate requantization stage (Add → Div(8) → Floor → Mul(29) →
// Div(64) → Floor → Clip): the first division is no exact power-of-two fold into the add (the
// multipliers 3 and 5 are odd), so the add's layer ends after it and the second stage is a layer of
// its own, as DORY numbers it. The first stage's values reach [0, 510]: exact by default, a 16-bit
// tensor (fuse_requant_stage_saturate.mlir: 8 bits, saturating, as DORY's kernels do).
func.func @network(%a: tensor<1x2x4x4xui8>, %b: tensor<1x2x4x4xui8>) -> tensor<1x2x4x4xui8> {
  %one = qnn.constant dense<1> : tensor<1xsi32>
  %zero = qnn.constant dense<0> : tensor<1xsi32>
  %m = qnn.constant dense<29> : tensor<1xsi32>
  %sum = qnn.add %a, %b {mul = array<i64: 3, 5>, add = array<i64: 0, 0>, shift = array<i64: 0, 0>} : (tensor<1x2x4x4xui8>, tensor<1x2x4x4xui8>) -> tensor<1x2x4x4xsi32> loc("Add_4")
  %s1 = qnn.requant %sum, %one, %zero {scale = 1 : i64, divisor = 8 : i64, min = 0 : i64, max = 510 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x2x4x4xsi32>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x2x4x4xsi32> loc("Floor_6")
  %s2 = qnn.requant %s1, %m, %zero {scale = 1 : i64, divisor = 64 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x2x4x4xsi32>, tensor<1xsi32>, tensor<1xsi32>) -> tensor<1x2x4x4xui8> loc("Clip_10")
  func.return %s2 : tensor<1x2x4x4xui8>
}

// CHECK-NOT:  warning
// CHECK:      %s1 = qnn.layer 0 (%a, %b,
// CHECK-NEXT: ^bb0
// CHECK-NEXT:   qnn.add
// CHECK-NEXT:   qnn.requant {{.*}} divisor = 8 : i64, min = 0 : i64, max = 510 : i64{{.*}} -> tensor<1x2x4x4xui16>
// CHECK:      %s2 = qnn.layer 1 (%s1,
// CHECK-NEXT: ^bb0
// CHECK-NEXT:   qnn.conv {{.*}} groups = 2 : i64} : (tensor<1x2x4x4xui16>, tensor<2x1x1x1xsi8>) -> tensor<1x2x4x4xsi32>
// CHECK-NEXT:   qnn.requant {{.*}} divisor = 64 : i64
