// RUN: dory-opt %s --split-input-file --verify-diagnostics | filecheck %s

// qnn.matmul (dory_mlir/dialects/qnn.py): the product of two activations held as rows of features.
// The first case verifies and round-trips; each later one is a verifier error, matched on the
// line right after its chunk separator.

// A [2, 1, 4, 8] × B [1, 3, 8, 5]: batch [2, 3], M = 4, K = 8, N = 5, 2·3·4 = 24 output rows.
// CHECK:      func.func @batched_broadcast
// CHECK-NEXT:   %y = qnn.matmul %a, %b {lhs_batch = array<i64: 2, 1>, rhs_batch = array<i64: 1, 3>} : (tensor<1x8x8x1xsi8>, tensor<1x5x24x1xui8>) -> tensor<1x5x24x1xsi32>
func.func @batched_broadcast(%a: tensor<1x8x8x1xsi8>, %b: tensor<1x5x24x1xui8>) {
  %y = qnn.matmul %a, %b {lhs_batch = array<i64: 2, 1>, rhs_batch = array<i64: 1, 3>} : (tensor<1x8x8x1xsi8>, tensor<1x5x24x1xui8>) -> tensor<1x5x24x1xsi32>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}batch dimensions [2] and [3] do not broadcast
func.func @no_broadcast(%a: tensor<1x8x8x1xsi8>, %b: tensor<1x5x24x1xsi8>) {
  %y = qnn.matmul %a, %b {lhs_batch = array<i64: 2>, rhs_batch = array<i64: 3>} : (tensor<1x8x8x1xsi8>, tensor<1x5x24x1xsi8>) -> tensor<1x5x24x1xsi32>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}rhs must hold 1 slices of K = 8 rows, got 6 rows
func.func @k_mismatch(%a: tensor<1x8x4x1xsi8>, %b: tensor<1x5x6x1xsi8>) {
  %y = qnn.matmul %a, %b {lhs_batch = array<i64>, rhs_batch = array<i64>} : (tensor<1x8x4x1xsi8>, tensor<1x5x6x1xsi8>) -> tensor<1x5x4x1xsi32>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must have shape [1, 5, 4, 1], got [1, 5, 8, 1]
func.func @wrong_result(%a: tensor<1x8x4x1xsi8>, %b: tensor<1x5x8x1xsi8>) {
  %y = qnn.matmul %a, %b {lhs_batch = array<i64>, rhs_batch = array<i64>} : (tensor<1x8x4x1xsi8>, tensor<1x5x8x1xsi8>) -> tensor<1x5x8x1xsi32>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}lhs must be rows of features 1xCxRx1, got [1, 8, 4, 2]
func.func @not_rows(%a: tensor<1x8x4x2xsi8>, %b: tensor<1x5x8x1xsi8>) {
  %y = qnn.matmul %a, %b {lhs_batch = array<i64>, rhs_batch = array<i64>} : (tensor<1x8x4x2xsi8>, tensor<1x5x8x1xsi8>) -> tensor<1x5x4x1xsi32>
  func.return
}

// -----

// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}result must have si32 elements, got si8
func.func @narrow_result(%a: tensor<1x8x4x1xsi8>, %b: tensor<1x5x8x1xsi8>) {
  %y = qnn.matmul %a, %b {lhs_batch = array<i64>, rhs_batch = array<i64>} : (tensor<1x8x4x1xsi8>, tensor<1x5x8x1xsi8>) -> tensor<1x5x4x1xsi8>
  func.return
}

// -----

// qnn.requant with one constant per group of rows: G must divide the rows (here 8).
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}mul per group of rows [G, 1] needs G > 1 dividing the 8 rows, got [3, 1]
func.func @groups(%x: tensor<1x5x8x1xsi32>) {
  %m = qnn.constant dense<1> : tensor<3x1xsi32>
  %a = qnn.constant dense<0> : tensor<1xsi32>
  %y = qnn.requant %x, %m, %a {scale = 1 : i64, divisor = 1 : i64, min = 0 : i64, max = 255 : i64, rounding = "floor", intermediate_bits = 32 : i64} : (tensor<1x5x8x1xsi32>, tensor<3x1xsi32>, tensor<1xsi32>) -> tensor<1x5x8x1xui8>
  func.return
}
